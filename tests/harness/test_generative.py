"""Generative metrics against oracles: a generator that returns the true image scores 1, a random
one scores chance; exact aggregates on coded images; importance sampling on a tractable model."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import mmbench
from mmbench.errors import CacheError, InvalidConfigError, MMBenchError
from mmbench.harness.generative import (
    GENERATIVE_METRICS,
    DigitClassifiers,
    coherence_conditional,
    coherence_from_predictions,
    coherence_unconditional,
    log_likelihood,
    log_mean_exp,
)
from mmbench.models.trainable import step_generator
from mmbench.models.vae import VAE_RECIPES, build_vae
from mmbench.models.vae.distributions import enumerate_subsets
from mmbench.testing.mnist import write_fake_mnist

MODS = ("m0", "m1", "m2")
SUBSETS = enumerate_subsets(MODS)


class CodeClassifier(torch.nn.Module):
    """Reads the digit a coded image carries: intensity 25·d + 5 everywhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        digit = (x.float().mean(dim=(1, 2, 3)) / 25).floor().long().clamp(0, 9)
        return torch.nn.functional.one_hot(digit, 10).float()


class NearestNeighbour(torch.nn.Module):
    """1-NN over a modality's reference images: a memorising digit classifier for real layouts."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        super().__init__()
        self.ref = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32))
        self.labels = torch.from_numpy(labels.astype(np.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nearest = torch.cdist(x.reshape(len(x), -1).float(), self.ref).argmin(1)
        return torch.nn.functional.one_hot(self.labels[nearest], 10).float()


def coded(digits: np.ndarray) -> np.ndarray:
    return np.broadcast_to((25 * np.asarray(digits) + 5).astype(np.uint8)[..., None, None, None], (*np.shape(digits), 3, 4, 4)).copy()


@pytest.fixture
def code_clf() -> DigitClassifiers:
    return DigitClassifiers(models={m: CodeClassifier() for m in MODS}, id="code-test")


@pytest.fixture(scope="module")
def polymnist(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("gen-polymnist")
    kw = {"data_dir": write_fake_mnist(root / "mnist", n_train=300, n_test=120), "cache_dir": root / "cache",
          "num_modalities": 3, "val_size": 50, "split_sizes": {"train": 128, "val": 16, "test": 120}, "shard_size": 128}
    out = {"kwargs": kw}
    for split in ("train", "test"):
        ds = mmbench.load("polymnist", split=split, **kw)
        out[split] = {c: np.array(ds.column(c)) for c in (*MODS, "latents.digit")}
    out["modalities"] = mmbench.builder("polymnist", **kw).modalities()
    test = out["test"]
    out["clf"] = DigitClassifiers(models={m: NearestNeighbour(test[m], test["latents.digit"]) for m in MODS}, id="1nn-test")
    return out


# ============================================================================ conditional coherence
def test_exact_aggregates_on_coded_images(code_clf: DigitClassifiers) -> None:
    y = np.random.default_rng(0).integers(0, 10, 50)
    right, wrong = coded(y), coded((y + 1) % 10)
    # Correct from every subset of two or more inputs, always wrong from a single input.
    gens = {t: np.stack([right if len(s) > 1 else wrong for s in SUBSETS]) for t in MODS}
    res = coherence_conditional(gens, y, code_clf, subsets=SUBSETS, modalities=MODS)
    assert res["leave_one_out"] == 1.0 and res["pairwise"] == 0.0
    assert res["by_num_inputs"] == {1: 0.0, 2: 1.0}  # the full set leaves no target out
    assert res["leave_one_out_per_target"] == {"m0": 1.0, "m1": 1.0, "m2": 1.0}
    assert len(res["matrix"]) == 7 * 3 and {"source": ["m0"], "target": "m1", "coherence": 0.0} in res["matrix"]
    assert res["chance"] == 0.1 and res["num_examples"] == 50 and res["classifiers"]["id"] == "code-test"
    # Floats in [0, 1] are read as intensities: the same score.
    floats = {t: g.astype(np.float32) / 255 for t, g in gens.items()}
    assert coherence_conditional(floats, y, code_clf, subsets=SUBSETS, modalities=MODS)["by_num_inputs"] == {1: 0.0, 2: 1.0}


def test_aggregates_missing_when_their_subsets_were_not_generated(code_clf: DigitClassifiers) -> None:
    y = np.arange(10)
    res = coherence_conditional({"m2": coded(y)[None]}, y, code_clf, subsets=[("m0", "m1")], modalities=MODS)
    assert res["leave_one_out_per_target"] == {"m0": None, "m1": None, "m2": 1.0}
    assert res["leave_one_out"] is None and res["pairwise"] is None and res["by_num_inputs"] == {2: 1.0}


def test_bad_inputs_are_refused(code_clf: DigitClassifiers) -> None:
    y = np.arange(10)
    with pytest.raises(InvalidConfigError, match=r"unknown modalities \['m7'\].*Did you mean"):
        coherence_conditional({"m1": coded(y)[None]}, y, code_clf, subsets=[("m7",)], modalities=MODS)
    with pytest.raises(InvalidConfigError, match=r"shape \(1, 10, 3, 4, 4\); expected \(2 subsets, 10 examples"):
        coherence_conditional({"m1": coded(y)[None]}, y, code_clf, subsets=[("m0",), ("m2",)], modalities=MODS)
    with pytest.raises(MMBenchError, match="No digit classifier for modality 'm5'"):
        coherence_conditional({"m5": coded(y)[None]}, y, code_clf, subsets=[("m0",)], modalities=(*MODS, "m5"))
    with pytest.raises(InvalidConfigError, match="uint8 or floats"):
        code_clf.predict("m0", np.zeros((2, 3, 4, 4), np.int32))


def test_oracle_generators_on_polymnist(polymnist: dict) -> None:
    """The true image of the conditioning tuple scores 1; the image of a random tuple ≈ 0.1."""
    test, clf = polymnist["test"], polymnist["clf"]
    y = test["latents.digit"]
    truth = {t: np.stack([test[t]] * len(SUBSETS)) for t in MODS}
    res = coherence_conditional(truth, y, clf, subsets=SUBSETS, modalities=MODS)
    assert res["leave_one_out"] == res["pairwise"] == 1.0 and set(res["by_num_inputs"].values()) == {1.0}
    rng = np.random.default_rng(0)
    shuffled = {t: np.stack([test[t][rng.permutation(len(y))] for _ in SUBSETS]) for t in MODS}
    rand = coherence_conditional(shuffled, y, clf, subsets=SUBSETS, modalities=MODS)
    for key in ("leave_one_out", "pairwise"):
        assert abs(rand[key] - 0.1) < 0.06, (key, rand[key])


def test_streamed_predictions_score_as_the_one_shot_call(polymnist: dict) -> None:
    test, clf = polymnist["test"], polymnist["clf"]
    model = build_vae(VAE_RECIPES.get("mopoe-tiny").model, polymnist["modalities"], seed=0)
    gen = torch.Generator().manual_seed(0)
    parts = [model.generate_subsets({m: test[m][i : i + 50] for m in MODS}, generator=gen, batch_size=16) for i in (0, 50, 100)]
    assert parts[0]["m0"].shape == (7, 50, 3, 28, 28) and parts[2]["m0"].shape == (7, 20, 3, 28, 28)
    whole = {t: torch.cat([p[t] for p in parts], dim=1) for t in MODS}
    preds = {t: np.concatenate([clf.predict(t, p[t]) for p in parts], axis=1) for t in MODS}
    streamed = coherence_from_predictions(preds, test["latents.digit"], clf, subsets=SUBSETS, modalities=MODS)
    assert streamed == coherence_conditional(whole, test["latents.digit"], clf, subsets=SUBSETS, modalities=MODS)


# ============================================================================ unconditional coherence
def test_unconditional_coherence_oracles(polymnist: dict) -> None:
    test, clf = polymnist["test"], polymnist["clf"]
    tuples = coherence_unconditional({m: test[m] for m in MODS}, clf)
    assert tuples["coherence"] == 1.0 and tuples["chance"] == pytest.approx(0.01)
    counts = np.bincount(test["latents.digit"], minlength=10) / len(test["latents.digit"])
    assert np.allclose(tuples["digit_distribution"], counts, atol=1e-6)
    rng = np.random.default_rng(1)
    indep = coherence_unconditional({m: test[m][rng.permutation(len(test[m]))] for m in MODS}, clf)
    assert indep["coherence"] < 0.06 and indep["num_samples"] == 120
    with pytest.raises(InvalidConfigError, match="at least 2 modalities"):
        coherence_unconditional({"m0": test["m0"]}, clf)


# ============================================================================ classifiers
def test_digit_classifiers_record_id_and_sha256(polymnist: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmbench.models import classifiers

    kw = {**polymnist["kwargs"], "cache_dir": tmp_path / "c"}
    with pytest.raises(CacheError, match="mmbench train-classifiers polymnist"):
        DigitClassifiers.load("polymnist", **kw)
    monkeypatch.setattr(classifiers, "EXPECTED_ACCURACY", 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = classifiers.train_classifiers("polymnist", epochs=1, batch_size=128, threads=1, **kw)
    clf = DigitClassifiers.load("polymnist", **kw)
    saved = json.loads(next((tmp_path / "c").rglob("classifiers.json")).read_text())
    assert clf.id == f"{classifiers.ARCHITECTURE}@{report['dataset']}~{report['config_fingerprint']}"
    assert clf.sha256 == {m: saved["files"][m]["sha256"] for m in MODS} and all(len(h) == 64 for h in clf.sha256.values())
    pred = clf.predict("m1", polymnist["test"]["m1"][:7])
    assert pred.shape == (7,) and pred.dtype == np.int64
    assert clf.provenance()["accuracy"] == report["accuracy"]


# ============================================================================ log-likelihood
class GaussianModel:
    """p(z) = N(0, 1), p(x|z) = N(z, 1): log p(x) = log N(x; 0, 2). Proposal: prior or exact posterior."""

    def __init__(self, exact: bool) -> None:
        self.exact = exact

    def log_importance_weights(self, batch, *, num_samples, generator):
        x = torch.as_tensor(batch["x"], dtype=torch.float64)
        loc, scale = (x / 2, math.sqrt(0.5)) if self.exact else (torch.zeros_like(x), 1.0)
        z = loc + scale * torch.randn(num_samples, len(x), generator=generator, dtype=torch.float64)
        normal = lambda v, m, s: -0.5 * ((v - m) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)  # noqa: E731
        return normal(x, z, 1.0) + normal(z, 0.0, 1.0) - normal(z, loc, scale)


def test_importance_sampling_estimator_on_a_tractable_model() -> None:
    x = np.array([-1.5, 0.0, 0.7, 2.0])
    truth = float(np.mean(-0.25 * x**2 - 0.5 * math.log(2 * math.pi * 2)))
    exact = log_likelihood(GaussianModel(exact=True), [{"x": x}], num_samples=3)
    assert exact["log_likelihood"] == pytest.approx(truth, abs=1e-9)  # the true posterior: zero variance
    prior = log_likelihood(GaussianModel(exact=False), [{"x": x[:2]}, {"x": x[2:]}], num_samples=50_000)
    assert prior["log_likelihood"] == pytest.approx(truth, abs=0.02) and prior["num_examples"] == 4
    assert log_mean_exp(np.array([[1e4, 1e4 + math.log(3)]]), axis=1)[0] == pytest.approx(1e4 + math.log(2))
    with pytest.raises(InvalidConfigError, match="num_samples"):
        log_likelihood(GaussianModel(exact=True), [{"x": x}], num_samples=0)


def test_registry_names_the_generative_metrics() -> None:
    assert GENERATIVE_METRICS.names() == ["coherence_conditional", "coherence_unconditional", "log_likelihood"]
    assert GENERATIVE_METRICS.metadata("coherence_conditional")["main_key"] == "leave_one_out"


# ============================================================================ the VAEs end to end
@pytest.mark.parametrize("name", ["mvae-tiny", "mmvae-tiny", "mopoe-tiny", "mmvaeplus-tiny"])
def test_each_vae_reports_coherence_and_likelihood(name: str, polymnist: dict) -> None:
    model = build_vae(VAE_RECIPES.get(name).model, polymnist["modalities"], dataset_id="polymnist-fake", seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    train = polymnist["train"]
    for step in range(1, 4):
        batch = {m: torch.from_numpy(train[m][32 * step : 32 * step + 32]) for m in MODS}
        loss, _ = model.training_loss(batch, step=step, generator=step_generator(0, step))
        opt.zero_grad()
        loss.backward()
        opt.step()
    test = polymnist["test"]
    gens = model.generate_subsets({m: test[m] for m in MODS}, subsets=SUBSETS, generator=torch.Generator().manual_seed(0))
    res = coherence_conditional(gens, test["latents.digit"], polymnist["clf"], subsets=SUBSETS, modalities=MODS)
    assert 0.0 <= res["leave_one_out"] <= 1.0 and 0.0 <= res["pairwise"] <= 1.0 and set(res["by_num_inputs"]) == {1, 2}
    prior = coherence_unconditional(model.sample(64, generator=torch.Generator().manual_seed(1)), polymnist["clf"])
    assert 0.0 <= prior["coherence"] <= 1.0
    batches = [{m: test[m][i : i + 40] for m in MODS} for i in range(0, 120, 40)]
    one, many = (log_likelihood(model, batches, num_samples=k, seed=0)["log_likelihood"] for k in (1, 24))
    assert math.isfinite(one) and many >= one - 1.0  # the IWAE bound tightens with K (in expectation)
