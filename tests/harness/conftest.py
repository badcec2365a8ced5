"""Harness fixtures: tiny suites over a dataset cache shared by the whole session (built once)."""

from __future__ import annotations

import pytest

from mmbench.harness.suites import Suite

SMALL = {"split_sizes": {"train": 8, "val": 1536, "test": 768}}


def tiny_suite(*, seeds: tuple[int, ...] = (0, 1), mlp: bool = False) -> Suite:
    """Misalignment-joint (every probe metric + consistency) and cl-ica (mcc_corr), on tiny splits."""
    metrics: list = ["r2_linear", {"name": "r2_kernel", "params": {"n_fit": 768}},
                     {"name": "identifiability_consistency", "params": {"source": "r2_kernel"}}]
    if mlp:
        metrics.insert(2, {"name": "r2_mlp", "params": {"max_iter": 60, "n_fit": 768}})
    return Suite.from_dict({
        "name": "tiny", "version": 1, "seeds": list(seeds),
        "entries": [
            {"dataset": "numerical/misalignment/joint:1.0.0", "label": "joint", "overrides": SMALL, "metrics": metrics},
            {"dataset": "numerical/clica/sphere-uniform-vmf1:1.0.0", "label": "clica", "overrides": SMALL,
             "latents": ["z"], "metrics": ["r2_linear", "mcc_corr"]},
        ],
    })


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("harness-cache")


@pytest.fixture
def suite() -> Suite:
    return tiny_suite()


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Tiny problems: one BLAS/torch thread is faster, and much faster when the cores are shared."""
    import torch
    from threadpoolctl import threadpool_limits

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(old)
