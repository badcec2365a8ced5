"""Numerical simulations: shared builder checks plus the science each one must get right."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

import mmbench
from mmbench import Replace
from mmbench.errors import InvalidConfigError
from mmbench.rendering.mixing import condition_threshold, mix
from mmbench.testing import BuilderTestCase

TINY = {"split_sizes": Replace({"train": 600, "test": 200}), "shard_size": 256}  # exactly these two splits
# Observations come out of float64 matrix products whose last bits may differ between BLAS
# builds: they are checked rounded (GOLDEN_ROUNDED), everything else byte for byte.
EXACT = "non-modality"


class TestMisalignmentBuilder(BuilderTestCase):
    DATASET = "numerical/misalignment/joint"
    OVERRIDES = TINY
    GOLDEN_COLUMNS = EXACT
    GOLDEN_ROUNDED: ClassVar[dict[str, str]] = {"train": "7a3be9a6432b07a3", "test": "cc3b9ccd4b5a6dde"}
    GOLDEN = {"train": "2cfa17e00c42fc07", "test": "b25a565039680c6f"}


class TestMultiviewBuilder(BuilderTestCase):
    DATASET = "numerical/multiview/multimodal-causal"
    OVERRIDES = TINY
    GOLDEN_COLUMNS = EXACT
    GOLDEN_ROUNDED: ClassVar[dict[str, str]] = {"train": "122d3227548001e2", "test": "371362dd3e50f664"}
    GOLDEN = {"train": "9856ac6bdc68c3f3", "test": "75f5220d7dc87442"}


class TestClicaBuilder(BuilderTestCase):
    DATASET = "numerical/clica/box-uniform-laplace"
    OVERRIDES = TINY
    GOLDEN_COLUMNS = EXACT
    GOLDEN_ROUNDED: ClassVar[dict[str, str]] = {"train": "bef86569da04c46e", "test": "38da29b964db2fe2"}
    GOLDEN = {"train": "2f5ced4d2458d66c", "test": "91fd9ad710d2fa5c"}


def _load(dataset_id: str, n: int = 4000, **kw):
    return mmbench.load(dataset_id, split="test", split_sizes={"test": n}, shard_size=1024, **kw)


# ----------------------------------------------------------------------------- misalignment
def test_misalignment_renders_image_and_text_from_the_right_latents() -> None:
    b = mmbench.builder("numerical/misalignment/joint", split_sizes={"test": 500}, shard_size=128)
    cols = b.generate_shard("test", 0)
    s = np.stack([cols[f"latents.s{i}"] for i in range(1, 11)], axis=1)
    x = mix(np.concatenate([s, cols["latents.m_x"]], axis=1), b.resources["mixing.x"])
    np.testing.assert_allclose(cols["x"], x, rtol=1e-5, atol=1e-5)
    shown = np.stack([cols[f"text.s{i}"] for i in range(1, 9)], axis=1)
    t = mix(np.concatenate([shown, cols["latents.m_t"]], axis=1), b.resources["mixing.t"])
    np.testing.assert_allclose(cols["t"], t, rtol=1e-5, atol=1e-5)
    assert cols["t"].shape == (128, 8 + 5)


def test_misalignment_perturbation_rate_and_scope() -> None:
    ds = _load("numerical/misalignment/joint", 20_000)
    assert set(c for c in ds.column_names if c.startswith("perturbed.")) == {"perturbed.s1", "perturbed.s2"}
    assert not any(c in ds.column_names for c in ("text.s9", "text.s10"))
    for name in ("s1", "s2"):
        assert abs(ds[f"perturbed.{name}"].mean() - 0.75) < 0.02
    assert ds.info.expected_identifiable == ("s3", "s4", "s5", "s6", "s7", "s8")
    roles = {lat.name: (lat.role, lat.scope) for lat in ds.latent_spec}
    assert roles["s1"] == ("style", "shared") and roles["s3"] == ("content", "shared")
    assert roles["s9"] == ("specific", "x") and roles["m_t"] == ("specific", "t")


def test_misalignment_powerset_indices_equal_names() -> None:
    by_index = mmbench.builder("numerical/misalignment", selection=968, perturbation=12)
    by_name = mmbench.builder(
        "numerical/misalignment", selection=[f"s{i}" for i in range(1, 9)], perturbation=["s1", "s2"]
    )
    assert by_index.config.selection == by_name.config.selection
    assert by_index.config.fingerprint == by_name.config.fingerprint


def test_misalignment_dependent_latents_are_correlated() -> None:
    ind = _load("numerical/misalignment/unbiased").latents().matrix([f"s{i}" for i in range(1, 11)])
    dep = _load("numerical/misalignment/unbiased-dependent").latents().matrix([f"s{i}" for i in range(1, 11)])
    off = ~np.eye(10, dtype=bool)
    assert np.abs(np.corrcoef(ind.T)[off]).max() < 0.1
    assert np.abs(np.corrcoef(dep.T)[off]).max() > 0.3


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"selection": ["s1", "s2"], "perturbation": ["s1", "s2"]}, "proper subset"),
        ({"selection": ["s1"], "perturbation": ["s2"]}, "not in the selection"),
        ({"selection": ["s11"]}, "Unknown latent 's11'"),
        ({"perturb_prob": 1.5}, r"perturb_prob must be <= 1.0, got 1.5"),
        ({"perturb_prob": -0.1}, "perturb_prob must be >= 0.0"),
        ({"selection": 1024}, "out of range"),
        ({"split_sizes": {"train": -5}}, "must be in"),
        ({"dependence": "causal"}, "dependence must be one of"),
    ],
)
def test_misalignment_bad_config(overrides: dict, match: str) -> None:
    with pytest.raises(InvalidConfigError, match=match):
        mmbench.builder("numerical/misalignment", **overrides)


# ----------------------------------------------------------------------------- multiview
def test_multiview_style_change_and_content_invariance() -> None:
    ds = _load("numerical/multiview/multimodal-independent", 20_000)
    style, style2, changed = ds["latents.style"], ds["latents.style_x2"], ds["perturbed.style"]
    assert abs(changed.mean() - 0.75) < 0.01
    np.testing.assert_array_equal(style[~changed], style2[~changed])
    assert np.all(style[changed] != style2[changed])
    assert ds.info.expected_identifiable == ("content",)


def test_multiview_causal_style_depends_on_content() -> None:
    def r2(ds):
        c, s = ds.latents().matrix(["content"]), ds.latents().matrix(["style"])
        design = np.c_[c, np.ones(len(c))]
        resid = s - design @ np.linalg.lstsq(design, s, rcond=None)[0]
        return 1 - resid.var(0).sum() / s.var(0).sum()

    assert r2(_load("numerical/multiview/multimodal-independent")) < 0.02
    assert r2(_load("numerical/multiview/multimodal-causal")) > 0.5


def test_multiview_shared_mixing_gives_identical_views_without_change() -> None:
    ds = _load("numerical/multiview/multiview-independent", 500, style_change_prob=0.0)
    np.testing.assert_array_equal(ds["x1"], ds["x2"])
    assert "latents.m1" not in ds.column_names


def test_multiview_statistical_blocks_share_covariance() -> None:
    b = mmbench.builder("numerical/multiview/multimodal-statistical")
    r = b.resources
    np.testing.assert_array_equal(r["chol.content"], r["chol.style"])
    assert not np.allclose(r["chol.content"], np.eye(5))
    assert not np.allclose(r["mixing.x1"], r["mixing.x2"])


# ----------------------------------------------------------------------------- cl-ica
def test_clica_sphere_and_vmf_concentration() -> None:
    ds = _load("numerical/clica/sphere-uniform-vmf10", 20_000)
    z, zt = ds["latents.z"], ds["latents.z_tilde"]
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(zt, axis=1), 1.0, atol=1e-5)
    # E[zᵀz~] = I_{d/2}(κ)/I_{d/2−1}(κ) ≈ 0.634 for d = 10, κ = 10
    assert abs(np.sum(z * zt, axis=1).mean() - 0.634) < 0.01


def test_clica_box_conditional_stays_inside() -> None:
    ds = _load("numerical/clica/box-uniform-laplace", 20_000)
    zt = ds["latents.z_tilde"]
    assert zt.min() >= 0.0 and zt.max() <= 1.0
    diff = (zt - ds["latents.z"]).ravel()
    assert 0.03 < np.median(np.abs(diff)) < 0.05  # Laplace(0.05): median |x| = 0.05·ln 2 ≈ 0.035


def test_clica_mixing_layers_are_well_conditioned() -> None:
    b = mmbench.builder("numerical/clica/sphere-uniform-vmf1")
    w = b.resources["mixing"]
    assert w.shape == (3, 10, 10)
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0)  # unit-norm columns
    # cond ratio 0 → at most the minimum of a 25,000 pool; such a pool's minimum is below ~5
    assert np.linalg.cond(w).max() < 5.0
    assert condition_threshold(10, np.random.default_rng(0), ratio=0.5, pool=200) > np.linalg.cond(w).max()


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"space": "box", "conditional": "vmf"}, "lives on the sphere"),
        ({"space": "unbounded", "marginal": "uniform", "conditional": "normal"}, "no uniform distribution"),
        ({"space": "sphre"}, "Did you mean .sphere."),
        ({"conditional_param": 0}, "must be > 0.0"),
        ({"box_low": 1.0, "box_high": 0.0, "space": "box", "conditional": "normal"}, "must be greater"),
    ],
)
def test_clica_bad_config(overrides: dict, match: str) -> None:
    with pytest.raises(InvalidConfigError, match=match):
        mmbench.builder("numerical/clica", **overrides)


# ----------------------------------------------------------------------------- sampler
def test_sampler_is_deterministic_fresh_and_disjoint_from_shards() -> None:
    b = mmbench.builder("numerical/misalignment/joint", split_sizes={"train": 64}, shard_size=64)
    first = list(b.sampler(64, steps=3))
    again = list(b.sampler(64, steps=3))
    assert len(first) == 3
    for a, c in zip(first, again, strict=True):
        np.testing.assert_array_equal(a["x"], c["x"])
    assert not np.array_equal(first[0]["x"], first[1]["x"])
    shard = b.generate_shard("train", 0)
    assert not np.isin(first[0]["latents.s3"], shard["latents.s3"]).any()
    resumed = list(b.sampler(64, start=1, steps=2))
    np.testing.assert_array_equal(resumed[0]["x"], first[1]["x"])
    np.testing.assert_array_equal(resumed[1]["x"], first[2]["x"])
    other_seed = next(b.sampler(64, seed=1))
    assert not np.array_equal(other_seed["x"], first[0]["x"])


# ----------------------------------------------------------------------------- review fixes (issue 2)
def test_misalignment_n_semantic_can_be_overridden() -> None:
    b = mmbench.builder("numerical/misalignment/unbiased", n_semantic=5)
    assert b.config.selection is None and b.config.selected == ("s1", "s2", "s3", "s4", "s5")
    assert b.modalities()["t"].shape == (10,) and b.expected_identifiable() == b.config.selected
    assert b.config.to_dict()["selection"] == ["s1", "s2", "s3", "s4", "s5"]
    p3 = mmbench.builder("numerical/misalignment/perturbation-3", n_semantic=5)
    assert p3.expected_identifiable() == ("s4", "s5")
    # "every latent" has one fingerprint however it is spelled, and the named configs keep theirs
    assert mmbench.builder("numerical/misalignment/unbiased").config.fingerprint == "cc2da0d603fddeda"
    assert mmbench.builder("numerical/misalignment/selection-10").config.fingerprint == "cc2da0d603fddeda"
    assert mmbench.builder("numerical/misalignment/perturbation-3").config.fingerprint == "b7b94fda36f8b9a9"
    explicit = mmbench.builder("numerical/misalignment/unbiased", n_semantic=5, selection=[f"s{i}" for i in range(1, 6)])
    assert explicit.config == b.config.replace(name="unbiased") and explicit.config.fingerprint == b.config.fingerprint
    cols = b.generate_shard("test", 0)
    assert cols["t"].shape[1] == 10 and "text.s5" in cols and "latents.s6" not in cols


def test_misalignment_named_sets_beyond_n_semantic_say_how_to_override() -> None:
    with pytest.raises(InvalidConfigError) as err:
        mmbench.builder("numerical/misalignment/joint", n_semantic=5)
    assert "Unknown latent 's6'" in str(err.value) and "come from the config 'joint'" in str(err.value)
    assert """-o n_semantic=5 -o 'selection=["s1", "s2", "s3", "s4", "s5"]' -o 'perturbation=["s1", "s2"]'""" in str(err.value)
    fixed = mmbench.builder("numerical/misalignment/joint", n_semantic=5, selection=["s1", "s2", "s3", "s4", "s5"], perturbation=["s1", "s2"])
    assert fixed.expected_identifiable() == ("s3", "s4", "s5")


@pytest.mark.parametrize(("overrides", "match"), [
    ({"selection": 1.5}, "selection must be a list of latent names"),
    ({"perturbation": None}, "perturbation must be a list of latent names"),
])
def test_misalignment_bad_bias_types(overrides: dict, match: str) -> None:
    with pytest.raises(InvalidConfigError, match=match):
        mmbench.builder("numerical/misalignment", **overrides)


def test_expected_identifiable_follows_the_probabilities() -> None:
    joint = mmbench.builder("numerical/misalignment/joint")
    assert joint.expected_identifiable() == ("s3", "s4", "s5", "s6", "s7", "s8")
    never = mmbench.builder("numerical/misalignment/joint", perturb_prob=0.0)  # I_ρ is never perturbed
    assert never.expected_identifiable() == tuple(f"s{i}" for i in range(1, 9))
    assert mmbench.builder("numerical/multiview/multimodal-independent").expected_identifiable() == ("content",)
    still = mmbench.builder("numerical/multiview/multimodal-independent", style_change_prob=0.0)
    assert still.expected_identifiable() == ("content", "style", "style_x2")
    cols = still.generate_shard("test", 0)
    np.testing.assert_array_equal(cols["latents.style"], cols["latents.style_x2"])  # invariant style


def test_mixing_pool_is_drawn_in_chunks_with_the_same_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    from mmbench.rendering import mixing

    def reference(n, rng, *, layers, ratio, pool, batch):  # type: ignore[no-untyped-def]  # the unchunked original
        def mats(count):  # type: ignore[no-untyped-def]
            m = rng.uniform(-1.0, 1.0, size=(count, n, n))
            return m / np.linalg.norm(m, axis=1, keepdims=True)
        threshold = np.sort(np.linalg.cond(mats(pool)))[int(pool * ratio)]
        weights: list = []
        while len(weights) < layers:
            m = mats(batch)
            weights.extend(m[i] for i in np.flatnonzero(np.linalg.cond(m) <= threshold)[: layers - len(weights)])
        return np.stack(weights)

    sizes = []
    original = mixing.random_unit_column_matrices
    monkeypatch.setattr(mixing, "random_unit_column_matrices", lambda n, count, rng: sizes.append(count) or original(n, count, rng))
    monkeypatch.setattr(mixing, "CHUNK_ELEMENTS", 7 * 6 * 6)  # 7 matrices of 6×6 per chunk
    kw = dict(layers=3, ratio=0.02, pool=500, batch=60)
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    got = mixing.invertible_mlp_weights(6, rng_a, **kw)
    np.testing.assert_array_equal(got, reference(6, rng_b, **kw))
    assert rng_a.bit_generator.state == rng_b.bit_generator.state  # later draws are unchanged too
    assert max(sizes) == 7 and (sum(sizes) - 500) % 60 == 0  # the pool, then whole batches


def test_numerical_latent_specs_sample() -> None:
    for dataset in ("numerical/misalignment/joint", "numerical/multiview/multimodal-causal", "numerical/clica/sphere-uniform-vmf1"):
        b = mmbench.builder(dataset)
        spec = b.latent_spec()
        table = spec.sample(50, rng=np.random.default_rng(1))
        assert tuple(table) == spec.names and table.num_rows == 50
        shard = b.generate(b.split_names()[0], 0, 50, rng=np.random.default_rng(1))
        for name in spec.names:  # the same generative process as the stored data
            np.testing.assert_array_equal(table[name], shard[f"latents.{name}"])
