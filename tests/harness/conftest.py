"""Harness fixtures: tiny suites over a dataset cache shared by the whole session (built once).

``tiny_suite`` covers the regression metrics on numerical data (continuous latents);
``classification_suite`` the classification metrics (acc_logistic, acc_mlp, mcc_matthews) on a
two-modality PolyMNIST built from fake MNIST digits (the categorical ``digit`` latent).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


#: PolyMNIST from fake MNIST: 2 modalities, 300 val (probe-fit) and 300 test (score) tuples.
POLYMNIST_TINY = {"num_modalities": 2, "val_size": 300,
                  "split_sizes": {"train": 8, "val": 300, "test": 300}}


def classification_suite(*, seeds: tuple[int, ...] = (0,), metrics: list | None = None) -> Suite:
    """One PolyMNIST entry scoring the categorical ``digit`` with every classification metric."""
    metrics = metrics or ["acc_logistic", {"name": "acc_mlp", "params": {"max_iter": 100}}, "mcc_matthews"]
    return Suite.from_dict({
        "name": "tiny-classification", "version": 1, "seeds": list(seeds),
        "entries": [{"dataset": "polymnist:1.0.1", "label": "polymnist", "overrides": POLYMNIST_TINY,
                     "latents": ["digit"], "metrics": metrics}],
    })


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("harness-cache")


@pytest.fixture(scope="session")
def fake_mnist(tmp_path_factory: pytest.TempPathFactory):
    """A data_dir with fake MNIST IDX files (600 train / 300 test digits)."""
    from mmbench.testing.mnist import write_fake_mnist

    return write_fake_mnist(tmp_path_factory.mktemp("fake-mnist"), n_train=600, n_test=300)


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


def _chromium() -> str:
    """Debian's chromium (installed by .ci/run), or a skip that says how to get it."""
    import shutil

    pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency: pip install -e '.[dev]'")
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no chromium executable: install it with `apt-get install -y chromium` (.ci/run does when it can)")
    return path


@pytest.fixture
def chromium_page() -> Iterator[Callable[[Path], tuple[Any, list[str]]]]:
    """``open(html_path) -> (page, errors)`` in headless Chromium; ``errors`` collects the page's
    console errors and uncaught exceptions. The browser closes when the test ends."""
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])

        def open_page(html: Path) -> tuple[Any, list[str]]:
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(html.as_uri())
            return page, errors

        try:
            yield open_page
        finally:
            browser.close()
