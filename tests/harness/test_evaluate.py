"""mmbench.evaluate end to end on tiny datasets: oracle scores, provenance, atomic output, bad submissions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import mmbench
from mmbench.errors import InvalidConfigError, SubmissionError
from mmbench.harness.evaluate import RESULT_SCHEMA, RunResult, evaluate
from mmbench.harness.protocols import ModelCard
from mmbench.harness.suites import Suite
from mmbench.testing.oracles import ConstantEncoder, LatentOracle, NoiseEncoder
from tests.harness.conftest import tiny_suite

IDENTIFIABLE = ["s3", "s4", "s5", "s6", "s7", "s8"]  # joint: I_θ = [8], I_ρ = [2]


@pytest.fixture(scope="module")
def oracle_result(tmp_path_factory, shared_cache):
    out = tmp_path_factory.mktemp("results")
    res = evaluate(LatentOracle(), tiny_suite(mlp=True), device="cpu", cache_dir=shared_cache, results_dir=out)
    return res, out


def test_oracle_recovers_identifiable_latents_only(oracle_result):
    res, _ = oracle_result
    joint = res.entry("joint")
    assert joint["expected_identifiable"] == IDENTIFIABLE
    for metric in ("r2_linear", "r2_kernel", "r2_mlp"):
        for modality in ("x", "t"):
            vals = joint["metrics"][metric]["values"][modality]
            assert min(vals[n]["mean"] for n in IDENTIFIABLE) >= 0.95, (metric, modality)
            assert max(v["mean"] for n, v in vals.items() if n not in IDENTIFIABLE) <= 0.05, (metric, modality)
    assert res.value("joint", "identifiability_consistency") >= 0.97
    assert res.value("clica", "mcc_corr") >= 0.99
    assert res.value("joint", "r2_kernel", "x", "s3") >= 0.95


def test_result_provenance(oracle_result):
    res, out = oracle_result
    d = json.loads(res.path.read_text())
    assert res.path.parent == out and d["schema"] == RESULT_SCHEMA
    assert d["model"]["name"] == "oracle-identifiable" and d["model"]["uses_ground_truth"] is True
    assert d["suite"]["id"] == "tiny:v1" and len(d["suite"]["fingerprint"]) == 16 and d["suite"]["definition"]["entries"]
    assert d["mmbench_version"] == mmbench.__version__ and d["seeds"] == [0, 1]
    assert {"platform", "cpu_count", "torch", "numpy", "scikit_learn", "python"} <= set(d["hardware"])
    assert d["device"] == "cpu" and d["backend"] == "torch" and d["timings"]["total_s"] > 0
    e = d["entries"][0]
    assert e["dataset_id"] == "numerical/misalignment/joint:1.0.0" and e["dataset_version"] == "1.0.0"
    for key in ("config_fingerprint", "content_fingerprint", "data_fingerprint"):
        assert isinstance(e[key], str) and e[key]
    assert e["splits"]["fit"]["name"] == "val" and e["splits"]["score"]["name"] == "test"
    assert e["splits"]["fit"]["fingerprint"] and e["splits"]["fit"]["rows_used"] == 1536
    assert set(e["timings"]) == {"load_s", "embed_s", "total_s"}
    cell = e["metrics"]["r2_mlp"]["values"]["x"]["s3"]
    assert len(cell["per_seed"]) == 2 and cell["std"] is not None
    assert e["metrics"]["r2_kernel"]["params"] == {"n_fit": 768}
    assert RunResult.load(res.path).data == res.data
    assert not list(out.glob(".*"))  # no temp files left


def test_constant_scores_zero_and_noise_too(shared_cache):
    for model in (ConstantEncoder(), NoiseEncoder(dim=6)):
        res = evaluate(model, tiny_suite(seeds=(0,)), device="cpu", cache_dir=shared_cache)
        joint = res.entry("joint")
        for metric in ("r2_linear", "r2_kernel"):
            assert joint["metrics"][metric]["summary"]["mean"]["mean"] <= 0.05
        assert res.value("clica", "mcc_corr") <= 0.15
        assert res.value("joint", "identifiability_consistency") == pytest.approx(0.5, abs=0.05)


def test_sklearn_backend_gives_same_numbers(shared_cache):
    from tests.harness.conftest import SMALL

    suite = Suite.from_dict({"name": "one", "version": 1, "seeds": [0], "entries": [
        {"dataset": "numerical/misalignment/joint:1.0.0", "label": "joint", "overrides": SMALL, "latents": ["s1", "s3", "m_x"],
         "metrics": [{"name": "r2_kernel", "params": {"n_fit": 300}}]}]})
    a = evaluate(LatentOracle(transform="mix"), suite, device="cpu", cache_dir=shared_cache)
    b = evaluate(LatentOracle(transform="mix"), suite, device="cpu", cache_dir=shared_cache, backend="sklearn")
    va, vb = (r.entry("joint")["metrics"]["r2_kernel"]["values"]["x"] for r in (a, b))
    for n in va:
        assert va[n]["mean"] == pytest.approx(vb[n]["mean"], abs=0.01)


# ----------------------------------------------------------------------------- bad submissions
class Bad:
    def __init__(self, mode: str, dim: int | None = 4) -> None:
        self.mode = mode
        self.calls = 0
        self.card = ModelCard(name=f"bad-{mode}", embedding_dim=dim)

    def encode(self, batch, *, modality):
        self.calls += 1
        n = len(batch[modality])
        z = torch.zeros(n, 4)
        if self.mode == "shape":
            return torch.zeros(n, 4, 1)
        if self.mode == "nan" and self.calls == 2:
            z[3, 1] = float("nan")
        if self.mode == "inf":
            z[0, 0] = float("inf")
        if self.mode == "rows":
            return z[:-1]
        if self.mode == "raise":
            raise RuntimeError("boom")
        if self.mode == "dim":
            return torch.zeros(n, 5)
        if self.mode == "drift":
            return torch.zeros(n, 4 + self.calls)
        if self.mode == "type":
            return "not an array"
        return z


@pytest.mark.parametrize("mode,pattern", [
    ("shape", r"shape \(512, 4, 1\).*expected a 2-D embedding of shape \(512, 4\)"),
    ("nan", r"NaN/inf in 1 of 512 embeddings.*batch 1"),
    ("inf", "NaN/inf"),
    ("rows", r"511 embeddings for a batch of 512.*expected shape \(512, 4\)"),
    ("raise", "raised RuntimeError in encode.*boom"),
    ("dim", "embedding_dim=4"),
    ("type", "expected real numbers|expected a tensor"),
])
def test_bad_submission_raises_and_writes_nothing(shared_cache, tmp_path, mode, pattern):
    with pytest.raises(SubmissionError, match=pattern) as info:
        evaluate(Bad(mode), tiny_suite(seeds=(0,)), device="cpu", cache_dir=shared_cache, results_dir=tmp_path / "out", batch_size=512)
    assert "modality 'x'" in str(info.value) and "split 'val'" in str(info.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_embedding_size_must_not_change(shared_cache):
    with pytest.raises(SubmissionError, match="must not change"):
        evaluate(Bad("drift", dim=None), tiny_suite(seeds=(0,)), device="cpu", cache_dir=shared_cache, batch_size=512)


def test_model_without_supported_modality(shared_cache):
    class TextOnly(ConstantEncoder):
        def __init__(self):
            super().__init__()
            self.card = ModelCard(name="img", modalities=("image",))

    with pytest.raises(SubmissionError, match="none of which"):
        evaluate(TextOnly(), tiny_suite(seeds=(0,)), device="cpu", cache_dir=shared_cache)


def test_argument_errors(shared_cache):
    with pytest.raises(InvalidConfigError, match="backend"):
        evaluate(ConstantEncoder(), tiny_suite(), backend="jax")
    with pytest.raises(InvalidConfigError, match="Did you mean 'joint'"):
        evaluate(ConstantEncoder(), tiny_suite(), entries=["joitn"], cache_dir=shared_cache)
    with pytest.raises(SubmissionError, match="card"):
        evaluate(object(), tiny_suite())


def test_mmbench_evaluate_is_exposed():
    assert mmbench.evaluate is evaluate
    assert np.isfinite(0.0)


@pytest.mark.slow
def test_full_suite_oracle_matches_theory(shared_cache):
    """The real identifiability-numerical:v1 (20,480-row splits): minutes on a CPU."""
    res = evaluate(LatentOracle(), "identifiability-numerical:v1", device=None, seeds=[0], cache_dir=shared_cache)
    for e in res.entries:
        assert res.value(e["label"], "identifiability_consistency") >= 0.97
        assert res.value(e["label"], "r2_kernel") >= 0.97
