"""mmbench.evaluate end to end on tiny datasets: oracle scores, provenance, atomic output, bad submissions."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

import mmbench
from mmbench.errors import InvalidConfigError, MMBenchError, SubmissionError
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
    # An overridden config may be reported as 'joint~<config fingerprint>'.
    assert re.fullmatch(r"numerical/misalignment/joint(~[0-9a-f]+)?:1\.0\.0", e["dataset_id"]) and e["dataset_version"] == "1.0.0"
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
        if self.mode == "huge":  # finite in float64, inf in float32
            return np.full((n, 4), 1e300)
        return z


@pytest.mark.parametrize("mode,pattern", [
    ("shape", r"shape \(512, 4, 1\).*expected a 2-D embedding of shape \(512, 4\)"),
    ("nan", r"NaN/inf in 1 of 512 embeddings.*batch 1"),
    ("inf", "NaN/inf"),
    ("rows", r"511 embeddings for a batch of 512.*expected shape \(512, 4\)"),
    ("raise", "raised RuntimeError in encode.*boom"),
    ("dim", "embedding_dim=4"),
    ("type", "expected real numbers|expected a tensor"),
    ("huge", r"beyond the float32 range .* in 512 of 512 embeddings"),
])
def test_bad_submission_raises_and_writes_nothing(shared_cache, tmp_path, mode, pattern):
    with pytest.raises(SubmissionError, match=pattern) as info:
        evaluate(Bad(mode), tiny_suite(seeds=(0,)), device="cpu", cache_dir=shared_cache, results_dir=tmp_path / "out", batch_size=512)
    assert "modality 'x'" in str(info.value) and "split 'val'" in str(info.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_embedding_size_must_not_change(shared_cache):
    with pytest.raises(SubmissionError, match="must not change"):
        evaluate(Bad("drift", dim=None), tiny_suite(seeds=(0,)), device="cpu", cache_dir=shared_cache, batch_size=512)


def test_fit_and_score_embedding_sizes_must_match(shared_cache):
    # One batch per split: size 5 on the fit split, 6 on the score split, each consistent in itself.
    with pytest.raises(SubmissionError, match=r"size 5 on split 'val' but 6 on split 'test' .*modality 'x'"):
        evaluate(Bad("drift", dim=None), tiny_suite(seeds=(0,)), device="cpu", cache_dir=shared_cache, batch_size=4096)


def test_model_without_supported_modality(shared_cache):
    class TextOnly(ConstantEncoder):
        def __init__(self):
            super().__init__()
            self.card = ModelCard(name="img", modalities=("image",))

    with pytest.raises(SubmissionError, match="none of which"):
        evaluate(TextOnly(), tiny_suite(seeds=(0,)), device="cpu", cache_dir=shared_cache)


def test_entry_the_model_cannot_encode_is_not_applicable(shared_cache, tmp_path):
    """clica has modalities x1/x2; a model of x only is scored on joint, and clica is recorded as n/a."""
    class XOnly(ConstantEncoder):
        def __init__(self):
            super().__init__()
            self.card = ModelCard(name="x-only", modalities=("x",))

    res = evaluate(XOnly(), tiny_suite(seeds=(0,)), device="cpu", cache_dir=shared_cache, results_dir=tmp_path)
    joint, clica = res.entry("joint"), res.entry("clica")
    assert joint["status"] == "ok" and joint["modalities"] == ["x"]
    assert clica["status"] == "n/a" and "['x']" in clica["reason"] and "x1" in clica["reason"] and clica["metrics"] == {}
    assert "| clica | n/a |" in res.summary_table()
    with pytest.raises(KeyError, match="not applicable"):
        res.value("clica", "mcc_corr")
    assert RunResult.load(res.path).entry("clica")["status"] == "n/a"


class Counting(ConstantEncoder):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def encode(self, batch, *, modality):
        self.calls += 1
        return super().encode(batch, modality=modality)


@pytest.mark.parametrize("change,pattern", [
    ({"latents": ["z", "zz"]}, r"Suite entry 'clica'.*unknown latent\(s\) \['zz'\]"),
    ({"metrics": ["acc_logistic"]}, r"Suite entry 'clica'.*'acc_logistic' applies to \['categorical', 'discrete'\]"),
    ({"score_split": "tset"}, r"Suite entry 'clica'.*tset"),
    ({"overrides": {"split_sizes": {"val": 10, "test": 10}, "sede": 1}}, r"Suite entry 'clica'.*sede"),
])
def test_every_entry_is_validated_before_any_work(shared_cache, change, pattern):
    suite = tiny_suite(seeds=(0,)).to_dict()
    suite["entries"][1].update(change)  # the *last* entry is bad
    model = Counting()
    with pytest.raises(MMBenchError, match=pattern):  # InvalidConfigError, or NotFoundError for the split
        evaluate(model, Suite.from_dict(suite), device="cpu", cache_dir=shared_cache)
    assert model.calls == 0  # failed before embedding anything of the first entry


def test_each_seed_fits_its_own_subsample(shared_cache):
    """n_fit below the rows embedded: every seed draws its own probe-fit rows, so std > 0."""
    from tests.harness.conftest import SMALL

    suite = Suite.from_dict({"name": "seeds", "version": 1, "seeds": [0, 1, 2], "entries": [
        {"dataset": "numerical/misalignment/joint:1.0.0", "label": "joint", "overrides": SMALL, "latents": ["s1", "s3", "m_x"],
         "metrics": ["r2_linear", {"name": "r2_kernel", "params": {"n_fit": 200}}]}]})
    res = evaluate(LatentOracle("all", transform="mix", noise=0.5), suite, device="cpu", cache_dir=shared_cache)
    metrics = res.entry("joint")["metrics"]
    kernel, linear = metrics["r2_kernel"], metrics["r2_linear"]
    assert kernel["fit_sampling"] == "per_seed_subsample" and kernel["fit_rows"] == 200
    assert linear["fit_sampling"] == "all_rows" and linear["fit_rows"] == 1536
    cell = kernel["values"]["x"]["s3"]
    assert len(set(cell["per_seed"])) == 3 and cell["std"] > 0
    assert kernel["summary"]["mean"]["std"] > 0
    lin = linear["values"]["x"]["s3"]  # deterministic on all rows: one number, std 0
    assert len(set(lin["per_seed"])) == 1 and lin["std"] == 0


def test_argument_errors(shared_cache):
    with pytest.raises(InvalidConfigError, match="backend"):
        evaluate(ConstantEncoder(), tiny_suite(), backend="jax")
    with pytest.raises(InvalidConfigError, match="Did you mean 'sklearn'"):
        evaluate(ConstantEncoder(), tiny_suite(), backend="sklern")
    with pytest.raises(InvalidConfigError, match="Did you mean 'joint'"):
        evaluate(ConstantEncoder(), tiny_suite(), entries=["joitn"], cache_dir=shared_cache)
    with pytest.raises(SubmissionError, match="card"):
        evaluate(object(), tiny_suite())


# ----------------------------------------------------------------------------- classification metrics
@pytest.fixture(scope="module")
def classification_results(shared_cache, fake_mnist):
    from tests.harness.conftest import classification_suite

    kw = {"device": "cpu", "cache_dir": shared_cache, "data_dir": fake_mnist}
    return {name: evaluate(model, classification_suite(), **kw)
            for name, model in (("oracle", LatentOracle()), ("mix", LatentOracle(transform="mix")), ("constant", ConstantEncoder()))}


def test_classification_metrics_oracle_scores_one(classification_results):
    res = classification_results["oracle"]
    e = res.entry("polymnist")
    assert e["expected_identifiable"] == ["digit"] and e["modalities"] == ["m0", "m1"]
    for metric in ("acc_logistic", "acc_mlp", "mcc_matthews"):
        for modality in ("m0", "m1"):
            assert e["metrics"][metric]["values"][modality]["digit"]["mean"] >= 0.97, (metric, modality)
        assert res.value("polymnist", metric) >= 0.97


def test_classification_metrics_constant_scores_chance(classification_results, shared_cache, fake_mnist):
    from tests.harness.conftest import POLYMNIST_TINY

    digits = mmbench.load("polymnist:1.0.1", split="test", cache_dir=shared_cache, data_dir=fake_mnist,
                          **POLYMNIST_TINY).latents(["digit"])["digit"]
    majority = np.bincount(digits).max() / len(digits)  # a constant predictor's best accuracy
    res = classification_results["constant"]
    for metric in ("acc_logistic", "acc_mlp"):
        assert res.value("polymnist", metric) <= majority + 1e-9, metric
        assert res.value("polymnist", metric) <= 0.2, metric
    assert abs(res.value("polymnist", "mcc_matthews")) <= 0.02


def test_acc_mlp_recovers_digit_through_an_invertible_map(classification_results):
    res = classification_results["mix"]
    for modality in ("m0", "m1"):
        assert res.value("polymnist", "acc_mlp", modality, "digit") >= 0.95


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


@pytest.fixture
def toy_kind():
    """A metric kind registered for one test (and removed after it): the row count of the score split."""
    from mmbench.harness.kinds import METRIC_KINDS, MetricKind
    from mmbench.harness.metrics import METRICS

    class RowCount(MetricKind):
        name, order = "toy", 10

        def run(self, ctx, state, specs):
            for m in specs:
                state.metrics[m.name] = {"higher_is_better": True, "main_key": "rows", "type": "toy",
                                         "summary": {"rows": {"mean": float(state.n_score), "std": 0.0}}}

    def rows(data, *, rng=None, backend=None, device=None):  # never called: the kind computes it
        raise AssertionError

    METRIC_KINDS.register("toy", RowCount())
    METRICS.register("toy_rows", rows, type="toy", higher_is_better=True, main_key="rows")
    yield
    for reg, name in ((METRIC_KINDS, "toy"), (METRICS, "toy_rows")):
        reg._targets.pop(name)
        reg._metadata.pop(name)


def test_a_new_metric_kind_is_a_new_step(toy_kind, shared_cache):
    """A metric of a kind evaluate has never heard of runs through its registered step, beside the probes."""
    suite = Suite.from_dict({"name": "toy", "version": 1, "seeds": [0], "entries": [
        {"dataset": "numerical/misalignment/joint:1.0.0", "label": "joint",
         "overrides": {"split_sizes": {"train": 8, "val": 300, "test": 200}}, "metrics": ["r2_linear", "toy_rows"]}]})
    res = evaluate(LatentOracle(), suite, device="cpu", cache_dir=shared_cache)
    assert res.value("joint", "toy_rows") == 200.0
    assert list(res.entry("joint")["metrics"]) == ["r2_linear", "toy_rows"]  # probe step (order 0) first
