"""The generative step of ``evaluate``: tiny VAEs and oracle generators on tiny fake PolyMNIST, scored
by cheap digit classifiers (one epoch) trained for that config; records, n/a paths and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mmbench
from mmbench.errors import MMBenchError, SubmissionError
from mmbench.harness import generative_metrics as gm
from mmbench.harness.evaluate import evaluate
from mmbench.harness.generative import DigitClassifiers
from mmbench.harness.protocols import ModelCard
from mmbench.harness.suites import SUITE_DATA, Suite, get_suite
from mmbench.models.vae import VAE_RECIPES, build_vae

MODS = ("m0", "m1", "m2")
TINY = {"num_modalities": 3, "val_size": 64, "split_sizes": {"train": 128, "val": 64, "test": 48}, "shard_size": 128}
#: The quick suite's metrics with test-sized parameters (no metric is left out).
METRICS = [{"name": "acc_logistic"}, {"name": "coherence_conditional", "params": {"subsets": "all"}},
           {"name": "coherence_unconditional", "params": {"num_samples": 40}},
           {"name": "linear_probe_accuracy", "params": {"n_fit": 40}},
           {"name": "log_likelihood", "params": {"num_samples": 3}}, {"name": "fid", "params": {"num_samples": 40}}]


def tiny_generative_suite(metrics: list | None = None, overrides: dict | None = None, **kw) -> Suite:
    return Suite.from_dict({"name": "tiny-generative", "version": 1, "seeds": kw.pop("seeds", [0]),
                            "main_metric": kw.pop("main_metric", None),
                            "entries": [{"dataset": "polymnist:1.0.1", "label": "polymnist", "overrides": overrides or TINY,
                                         "latents": ["digit"], "metrics": metrics or METRICS}]})


@pytest.fixture(scope="module")
def polymnist(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Tiny 3-modality PolyMNIST from fake MNIST, with digit classifiers trained for one epoch."""
    from mmbench.models.classifiers import train_classifiers
    from mmbench.testing.mnist import write_fake_mnist

    root = tmp_path_factory.mktemp("gen-eval")
    kw = {"cache_dir": root / "cache", "data_dir": write_fake_mnist(root / "mnist", n_train=300, n_test=100)}
    b = mmbench.builder("polymnist", **kw, **TINY)
    with pytest.warns(UserWarning, match="below the expected"):  # cheap classifiers, knowingly
        report = train_classifiers(b, device="cpu", epochs=3, lr=5e-3, threads=1)
    test = mmbench.load("polymnist", split="test", **kw, **TINY)
    return {"kw": kw, "report": report, "modalities": b.modalities(), "builder": b,
            "test": {c: np.array(test.column(c)) for c in (*MODS, "latents.digit")}}


def _vae(recipe: str, modalities) -> torch.nn.Module:
    return build_vae(VAE_RECIPES.get(recipe).model, modalities, dataset_id="polymnist-fake", seed=0)


class TruthGenerator:
    """Returns the true target image for every subset: coherence = the classifiers' accuracy."""

    card = ModelCard(name="truth-generator", revision="1", modalities=MODS, embedding_dim=3)

    def encode(self, batch, *, modality):
        return batch[modality].float().mean(dim=(2, 3))

    def generate_subsets(self, batch, *, subsets, targets, generator=None):
        return {t: batch[t][None].expand(len(subsets), *batch[t].shape) for t in targets}


class PlainEncoder:
    card = ModelCard(name="plain-encoder", revision="1", modalities=MODS, embedding_dim=3)

    def encode(self, batch, *, modality):
        return batch[modality].float().mean(dim=(2, 3))


# ============================================================================ records
def test_mmvaeplus_gets_every_generative_metric_with_its_inputs(polymnist, monkeypatch) -> None:
    monkeypatch.setattr(gm, "inception_features", _no_inception)
    model = _vae("mmvaeplus-tiny", polymnist["modalities"])
    r = evaluate(model, tiny_generative_suite(), device="cpu", **polymnist["kw"])
    e = r.entry("polymnist")
    assert e["status"] == "ok" and e["modalities"] == list(MODS) and e["timings"]["generate_s"] > 0
    m = e["metrics"]
    assert m["acc_logistic"]["type"] == "probe" and 0 <= r.value("polymnist", "acc_logistic") <= 1
    coh = m["coherence_conditional"]
    assert coh["type"] == "generative" and coh["main_key"] == "leave_one_out"
    assert set(coh["summary"]) == {"leave_one_out", "pairwise", "inputs_1", "inputs_2"}  # 3 modalities: 1 or 2 inputs
    assert all(0 <= s["mean"] <= 1 for s in coh["summary"].values())
    assert len(coh["inputs"]["subsets"]) == 7 and coh["inputs"]["rows"] == 48 and coh["inputs"]["split"] == "test"
    assert len(coh["matrix"]) == 7 * 3 and coh["chance"] == pytest.approx(0.1)
    report = polymnist["report"]
    assert coh["classifiers"]["sha256"] == {k: f["sha256"] for k, f in report["files"].items()}
    assert report["architecture"] in coh["classifiers"]["id"]
    unc = m["coherence_unconditional"]
    assert unc["inputs"]["num_samples"] == 40 and 0 <= unc["summary"]["coherence"]["mean"] <= 1
    assert unc["classifiers"] == coh["classifiers"] and unc["chance"] == pytest.approx(0.01)
    probe = m["linear_probe_accuracy"]
    assert set(probe["summary"]) == {"shared", "private"} and probe["parts"] == {"shared": 8, "private": 4}
    assert set(probe["values"]) == set(MODS) and probe["inputs"]["fit_rows"] == 40
    ll = m["log_likelihood"]
    assert np.isfinite(ll["summary"]["log_likelihood"]["mean"]) and ll["inputs"]["num_samples"] == 3
    assert m["fid"]["status"] == "skipped" and "never downloads" in m["fid"]["reason"]
    assert m["fid"]["summary"] == {} and not m["fid"]["higher_is_better"]


def test_generations_are_seeded_by_the_run_seed(polymnist) -> None:
    model = _vae("mopoe-tiny", polymnist["modalities"])
    suite = tiny_generative_suite([{"name": "coherence_conditional", "params": {"subsets": "leave_one_out_pairwise"}}], seeds=[0, 1])
    a, b = (evaluate(model, suite, device="cpu", **polymnist["kw"]).entry("polymnist")["metrics"]["coherence_conditional"]
            for _ in range(2))
    assert a["summary"] == b["summary"] and a["matrix"] == b["matrix"]
    assert len(a["inputs"]["subsets"]) == 6 and len(a["summary"]["leave_one_out"]["per_seed"]) == 2


def test_a_generator_returning_the_truth_scores_the_classifiers_accuracy(polymnist) -> None:
    suite = tiny_generative_suite([{"name": "coherence_conditional"}, {"name": "coherence_unconditional", "params": {"num_samples": 8}},
                                   {"name": "log_likelihood"}, {"name": "linear_probe_accuracy"}])
    r = evaluate(TruthGenerator(), suite, device="cpu", **polymnist["kw"])
    clf = DigitClassifiers.load(polymnist["builder"])
    test = polymnist["test"]
    acc = {m: float((clf.predict(m, test[m]) == test["latents.digit"]).mean()) for m in MODS}
    coh = r.entry("polymnist")["metrics"]["coherence_conditional"]
    assert coh["summary"]["leave_one_out"]["mean"] == pytest.approx(np.mean(list(acc.values())))
    assert {m: v["leave_one_out"]["mean"] for m, v in coh["values"].items()} == pytest.approx(acc)
    metrics = r.entry("polymnist")["metrics"]
    # What the oracle lacks is n/a, with the reason; the probe uses its one representation.
    assert metrics["coherence_unconditional"]["status"] == "n/a" and "sample()" in metrics["coherence_unconditional"]["reason"]
    assert metrics["log_likelihood"]["status"] == "n/a" and "log_importance_weights()" in metrics["log_likelihood"]["reason"]
    assert set(metrics["linear_probe_accuracy"]["summary"]) == {"shared"}


# ============================================================================ not applicable, errors
def test_a_plain_encoder_gets_the_probes_and_generative_metrics_na(polymnist) -> None:
    r = evaluate(PlainEncoder(), tiny_generative_suite(), device="cpu", **polymnist["kw"])
    m = r.entry("polymnist")["metrics"]
    assert m["acc_logistic"]["type"] == "probe" and "mean" in m["acc_logistic"]["summary"]
    for name in ("coherence_conditional", "coherence_unconditional", "linear_probe_accuracy", "log_likelihood", "fid"):
        assert m[name]["status"] == "n/a" and "not a Generator" in m[name]["reason"]
    generative_only = tiny_generative_suite([{"name": "coherence_conditional"}])
    with pytest.raises(SubmissionError, match="not a Generator"):
        evaluate(PlainEncoder(), generative_only, device="cpu", **polymnist["kw"])


def test_coherence_without_classifiers_fails_before_generating(polymnist) -> None:
    other = {**TINY, "split_sizes": {"train": 128, "val": 64, "test": 32}}  # another config: no classifiers
    calls = []

    class Spy(TruthGenerator):
        def generate_subsets(self, *a, **k):
            calls.append(1)
            return super().generate_subsets(*a, **k)

    with pytest.raises(MMBenchError) as info:
        evaluate(Spy(), tiny_generative_suite([{"name": "coherence_conditional"}], overrides=other), device="cpu", **polymnist["kw"])
    msg = str(info.value)
    assert "mmbench train-classifiers polymnist" in msg and "split_sizes" in msg
    assert polymnist["builder"].id in msg  # the config that has them is named
    assert not calls


def test_coherence_on_a_dataset_without_digits_is_refused(polymnist) -> None:
    suite = Suite.from_dict({"name": "bad-generative", "version": 1, "entries": [
        {"dataset": "numerical/misalignment/joint:1.0.0", "label": "joint", "metrics": ["coherence_conditional"]}]})

    class Numeric(TruthGenerator):
        card = ModelCard(name="numeric", revision="1")

    with pytest.raises(MMBenchError, match="PolyMNIST-type datasets"):
        evaluate(Numeric(), suite, device="cpu", **polymnist["kw"])


def test_bad_subsets_parameter_is_named(polymnist) -> None:
    with pytest.raises(MMBenchError, match="'all' or 'leave_one_out_pairwise', got 'some'"):
        evaluate(TruthGenerator(), tiny_generative_suite([{"name": "coherence_conditional", "params": {"subsets": "some"}}]),
                 device="cpu", **polymnist["kw"])


# ============================================================================ FID
def _no_inception(device):
    raise gm.MetricSkipped("FID needs pytorch-fid's Inception weights locally; mmbench never downloads them")


def test_fid_with_local_features(polymnist, monkeypatch) -> None:
    """With a feature network available (here a fixed random projection), FID is computed per modality."""
    proj = np.random.default_rng(0).normal(size=(3 * 28 * 28, 6))
    monkeypatch.setattr(gm, "inception_features", lambda device: (lambda x: x.reshape(len(x), -1) / 255.0 @ proj, "projection"))
    model = _vae("mopoe-tiny", polymnist["modalities"])
    fid = evaluate(model, tiny_generative_suite([{"name": "fid", "params": {"num_samples": 48}}]), device="cpu",
                   **polymnist["kw"]).entry("polymnist")["metrics"]["fid"]
    assert fid["features"] == "projection" and set(fid["values"]) == set(MODS)
    assert fid["summary"]["mean"]["mean"] == pytest.approx(np.mean([v["fid"]["mean"] for v in fid["values"].values()]))
    assert fid["summary"]["mean"]["mean"] > 0


def test_frechet_distance_matches_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.0, 1.0, size=(4000, 3)), rng.normal(1.0, 2.0, size=(4000, 3))
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    mu = ((a.mean(0) - b.mean(0)) ** 2).sum()
    # nearly diagonal covariances: tr(sqrt(S1 S2)) ≈ Σ sqrt(s1_ii s2_ii)
    approx = mu + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.diag(s1) * np.diag(s2)).sum()
    assert gm.frechet_distance(a, b) == pytest.approx(approx, rel=2e-2)
    assert gm.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


# ============================================================================ the suites
def test_generative_suites_are_registered_with_their_quick_tier() -> None:
    full, quick = get_suite("polymnist-generative:v1"), get_suite("polymnist-generative-quick:v1")
    names = [m.name for m in full.entries[0].metrics]
    assert names == ["acc_logistic", "coherence_conditional", "coherence_unconditional", "linear_probe_accuracy",
                     "log_likelihood", "fid"]
    assert [m.name for m in quick.entries[0].metrics] == names and quick.entries[0].n_score == 1000
    assert full.main_score_metric == "coherence_conditional" and "NOT comparable" in SUITE_DATA["polymnist-generative-quick:v1"]["description"]


# ============================================================================ leaderboard
@pytest.fixture(scope="module")
def generative_results(polymnist, tmp_path_factory) -> tuple:
    out = tmp_path_factory.mktemp("gen-results")
    suite = tiny_generative_suite(main_metric="coherence_conditional")
    gm_skip = pytest.MonkeyPatch()
    gm_skip.setattr(gm, "inception_features", _no_inception)
    try:
        vae = evaluate(_vae("mmvaeplus-tiny", polymnist["modalities"]), suite, device="cpu", results_dir=out, **polymnist["kw"])
        evaluate(PlainEncoder(), suite, device="cpu", results_dir=out, **polymnist["kw"])
    finally:
        gm_skip.undo()
    return out, vae


def test_a_sample_of_conditional_generations_is_recorded(generative_results) -> None:
    import base64
    import io

    from PIL import Image

    sample = generative_results[1].entry("polymnist")["generations"]
    assert sample["tuples"] == 8 and sample["split"] == "test" and len(sample["rows"]) == 3 * len(MODS)
    assert sample["rows"][:3] == ["m0: data", "m0 | m1+m2", "m0 | m1"]
    img = Image.open(io.BytesIO(base64.b64decode(sample["png_base64"])))
    assert img.height == 9 * 30 + 2 and img.width > 8 * 30  # 28-pixel cells with 2-pixel gaps, plus the labels


def test_leaderboard_shows_generative_metrics_beside_probes(generative_results, tmp_path) -> None:
    from mmbench.harness.leaderboard import Leaderboard

    lb = Leaderboard.from_dir(generative_results[0])
    md = lb.to_markdown()
    header = next(line for line in md.splitlines() if line.startswith("| # |"))
    for name in ("acc_logistic ↑", "coherence_conditional ↑", "coherence_unconditional ↑", "linear_probe_accuracy ↑",
                 "log_likelihood ↑", "fid ↓"):
        assert f"polymnist · {name}" in header
    vae_row = next(line for line in md.splitlines() if line.startswith("| 1 | mmvaeplus"))
    enc_row = next(line for line in md.splitlines() if "plain-encoder" in line)
    assert vae_row.count("skipped") == 1 and "n/a" not in vae_row  # FID without Inception weights
    assert enc_row.count("n/a") == 5 and enc_row.split("|")[4].strip()[0].isdigit()  # acc_logistic: a number
    paths = lb.write(tmp_path / "lb")
    assert [p.name for p in paths["generations"]] == ["mmvaeplus-resnet-d8_4@seed0-step0__tiny-generative_v1__polymnist__generations.png"]


def test_generative_leaderboard_in_chromium(generative_results, tmp_path, chromium_page) -> None:
    """The page in headless Chromium: generative columns sort, the generations PNG decodes, n/a and
    skipped cells explain themselves on hover."""
    from mmbench.harness.leaderboard import Leaderboard

    paths = Leaderboard.from_dir(generative_results[0]).write(tmp_path / "lb")
    page, errors = chromium_page(paths["html"])
    models = lambda: page.eval_on_selector_all("#t0 tbody tr.r td:nth-child(2)", "els => els.map(e => e.textContent)")  # noqa: E731
    assert models()[0].startswith("mmvaeplus")  # ranked by coherence; the encoder has none
    page.locator("#t0 th", has_text="polymnist · acc_logistic").click()  # a probe column sorts both rows
    assert len(models()) == 2
    col = page.eval_on_selector_all("#t0 thead th", "els => els.map(e => e.textContent)")
    fid = next(i for i, h in enumerate(col) if "polymnist · fid" in h) + 1
    cell = page.locator(f"#t0 tbody tr.r:has-text('mmvaeplus') td:nth-child({fid})")
    assert cell.inner_text() == "skipped" and "never downloads" in cell.get_attribute("title")
    coh = next(i for i, h in enumerate(col) if "polymnist · coherence_conditional" in h) + 1
    na = page.locator(f"#t0 tbody tr.r:has-text('plain-encoder') td:nth-child({coh})")
    assert na.inner_text() == "n/a" and "not a Generator" in na.get_attribute("title")
    tip = page.locator(f"#t0 tbody tr.r:has-text('mmvaeplus') td:nth-child({coh})").get_attribute("title")
    assert "pairwise" in tip and "classifiers digit-cnn-v2" in tip
    gens = page.eval_on_selector_all("div.gens img", "els => els.map(i => [i.complete, i.naturalWidth, i.width])")
    assert len(gens) == 1 and gens[0][0] and gens[0][1] > 200 and gens[0][2] == 2 * gens[0][1]
    assert errors == []


def test_evaluate_coherence_of_reproduce_scores_like_the_harness(polymnist) -> None:
    """``vae.coherence.evaluate_coherence`` (what ``reproduce`` uses) goes through the harness's
    generation step: a generator returning the true images scores each classifier's test accuracy."""
    from mmbench.models.vae.coherence import evaluate_coherence

    class Truth(TruthGenerator):
        modalities, device = MODS, "cpu"

    out = evaluate_coherence(Truth(), "polymnist", batch_size=20, **polymnist["kw"], **TINY)
    clf = DigitClassifiers.load("polymnist", **polymnist["kw"], **TINY)
    labels = polymnist["test"]["latents.digit"]
    acc = {t: float(np.mean(clf.predict(t, polymnist["test"][t]) == labels)) for t in MODS}
    assert out["leave_one_out"] == pytest.approx(np.mean(list(acc.values())))
    assert out["split"] == "test" and len(out["by_num_inputs"]) == 2
    vae = _vae("mopoe-tiny", polymnist["modalities"])
    got = evaluate_coherence(vae, "polymnist", num_examples=30, **polymnist["kw"], **TINY)
    assert 0.0 <= got["leave_one_out"] <= 1.0 and got["seed"] == 0
