"""Metrics against oracles (true latents ≈ 1, constant ≈ 0, invertible maps) and reference computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.stats import spearmanr
from sklearn.linear_model import LinearRegression
from sklearn.metrics import matthews_corrcoef as sk_mcc
from sklearn.metrics import r2_score

from mmbench.errors import InvalidConfigError
from mmbench.harness.metrics import (
    METRICS,
    ProbeData,
    identifiability_consistency,
    matthews_corrcoef,
    mcc_corr,
    r2_per_column,
)
from mmbench.testing.oracles import random_invertible_map

N_FIT, N_SCORE = 600, 400
RNG = np.random.default_rng


def _latents(seed: int = 0) -> dict[str, np.ndarray]:
    rng = RNG(seed)
    n = N_FIT + N_SCORE
    return {"a": rng.standard_normal(n), "b": rng.standard_normal((n, 2))}


def _data(z: np.ndarray, lat: dict[str, np.ndarray]) -> ProbeData:
    return ProbeData(z[:N_FIT], z[N_FIT:], {k: v[:N_FIT] for k, v in lat.items()}, {k: v[N_FIT:] for k, v in lat.items()})


def _truth(lat: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([v.reshape(len(v), -1) for v in lat.values()], axis=1)


FAST = {"r2_mlp": {"max_iter": 80}}


def _run(name: str, data: ProbeData, **kw) -> dict[str, float]:
    return METRICS.get(name)(data, rng=RNG(0), device="cpu", **{**FAST.get(name, {}), **kw})


def test_registry_semantics():
    for name in ("r2_linear", "r2_kernel", "r2_mlp", "acc_logistic", "acc_mlp", "mcc_matthews", "mcc_corr", "identifiability_consistency"):
        meta = METRICS.metadata(name)
        assert meta["higher_is_better"] is True
        assert "main_key" in meta and "type" in meta


@pytest.mark.parametrize("name", ["r2_linear", "r2_kernel", "r2_mlp"])
def test_r2_true_latents_score_one(name):
    lat = _latents()
    scores = _run(name, _data(_truth(lat), lat))
    assert set(scores) == {"a", "b"}
    assert all(0.95 <= v <= 1.0 for v in scores.values()), scores


@pytest.mark.parametrize("name", ["r2_linear", "r2_kernel", "r2_mlp"])
def test_r2_constant_scores_zero(name):
    lat = _latents()
    scores = _run(name, _data(np.ones((N_FIT + N_SCORE, 4)), lat))
    assert all(v <= 0.02 for v in scores.values()), scores


@pytest.mark.parametrize("name", ["r2_linear", "r2_kernel"])
def test_r2_noise_scores_zero(name):
    lat = _latents()
    scores = _run(name, _data(RNG(9).standard_normal((N_FIT + N_SCORE, 3)), lat))
    assert all(v <= 0.05 for v in scores.values()), scores


def test_invertible_map_nonlinear_probes_recover_linear_does_not():
    lat = _latents(1)
    z = random_invertible_map(_truth(lat), seed=3)
    kernel, mlp, linear = (_run(n, _data(z, lat)) for n in ("r2_kernel", "r2_mlp", "r2_linear"))
    assert min(kernel.values()) >= 0.95, kernel
    assert min(mlp.values()) >= 0.9, mlp
    assert np.mean(list(linear.values())) < np.mean(list(kernel.values())) - 0.02, (linear, kernel)


def test_r2_linear_matches_sklearn_reference_on_random_data():
    rng = RNG(2)
    z = rng.standard_normal((N_FIT + N_SCORE, 5))
    lat = {"a": z[:, 0] * 0.5 + rng.standard_normal(len(z)), "b": z[:, 1:3] @ rng.standard_normal((2, 2)) + rng.standard_normal((len(z), 2))}
    got = _run("r2_linear", _data(z, lat))
    y = _truth(lat)
    sc_mean, sc_std = z[:N_FIT].mean(0), z[:N_FIT].std(0)
    pred = LinearRegression().fit((z[:N_FIT] - sc_mean) / sc_std, y[:N_FIT]).predict((z[N_FIT:] - sc_mean) / sc_std)
    ref = np.clip(r2_score(y[N_FIT:], pred, multioutput="raw_values"), 0, 1)
    assert got["a"] == pytest.approx(ref[0], abs=1e-9)
    assert got["b"] == pytest.approx(ref[1:].mean(), abs=1e-9)


def test_r2_kernel_backends_agree():
    lat = _latents(3)
    z = np.tanh(_truth(lat)) + 0.3 * RNG(4).standard_normal((N_FIT + N_SCORE, 3))
    data = _data(z, lat).head(240, 200)
    a = _run("r2_kernel", data, backend="torch")
    b = _run("r2_kernel", data, backend="sklearn")
    for k in a:
        assert a[k] == pytest.approx(b[k], abs=1e-6)


def test_r2_per_column_matches_sklearn_and_clipping():
    rng = RNG(5)
    y, p = rng.standard_normal((50, 3)), rng.standard_normal((50, 3))
    np.testing.assert_allclose(r2_per_column(y, p), r2_score(y, p, multioutput="raw_values"))
    lat = {"a": rng.standard_normal(N_FIT + N_SCORE)}
    bad = _run("r2_linear", _data(rng.standard_normal((N_FIT + N_SCORE, 40)), lat).head(60, None))  # over-fits → R² < 0
    assert bad["a"] == 0.0


# ----------------------------------------------------------------------------- mcc_corr
def _clica_reference(z: np.ndarray, hz: np.ndarray) -> float:
    """cl-ica's permutation_disentanglement (pearson, munkres), re-derived with numpy/scipy."""
    n = z.shape[1]
    c = np.corrcoef(z.T, hz.T)[:n, n:]
    rows, cols = linear_sum_assignment(-np.abs(c))
    return float(np.abs(c[rows, cols]).mean())


def test_mcc_corr_permuted_sign_flipped_is_one():
    lat = _latents()
    z = _truth(lat)
    rng = RNG(6)
    hz = z[:, rng.permutation(3)] * np.array([-1.0, 2.5, -0.3])
    scores = mcc_corr(_data(hz, lat), rng=rng)
    assert all(v == pytest.approx(1.0, abs=1e-9) for v in scores.values())
    scores = mcc_corr(_data(hz**3, lat), rng=rng, method="spearman")  # monotone map: Spearman still 1
    assert all(v == pytest.approx(1.0, abs=1e-9) for v in scores.values())


def test_mcc_corr_matches_reference_on_random_data():
    rng = RNG(7)
    z = rng.standard_normal((500, 4))
    hz = z @ rng.standard_normal((4, 4)) + 0.5 * rng.standard_normal((500, 4))
    lat = {"z": z}
    data = ProbeData(hz[:10], hz, {"z": z[:10]}, lat)
    assert mcc_corr(data, rng=rng)["z"] == pytest.approx(_clica_reference(z, hz), abs=1e-12)
    rho = np.abs(spearmanr(z, hz).statistic[:4, 4:])
    rows, cols = linear_sum_assignment(-rho)
    assert mcc_corr(data, rng=rng, method="spearman")["z"] == pytest.approx(rho[rows, cols].mean(), abs=1e-12)


def test_mcc_corr_constant_and_fewer_dims():
    lat = _latents()
    assert all(v == 0.0 for v in mcc_corr(_data(np.ones((N_FIT + N_SCORE, 3)), lat), rng=RNG(0)).values())
    z = _truth(lat)[:, :1]  # only "a" present: "b"'s two components are unmatched → 0
    scores = mcc_corr(_data(z, lat), rng=RNG(0))
    assert scores["a"] == pytest.approx(1.0) and scores["b"] < 0.1
    with pytest.raises(InvalidConfigError, match="spearman"):
        mcc_corr(_data(z, lat), rng=RNG(0), method="kendall")


# ----------------------------------------------------------------------------- classification
def _labels(seed: int = 0):
    rng = RNG(seed)
    n = N_FIT + N_SCORE
    u = rng.standard_normal((n, 2))
    lat = {"c": np.digitize(u[:, 0], [-0.6, 0.6]), "d": (u[:, 1] > 0).astype(np.int64)}
    return u, lat


@pytest.mark.parametrize("name", ["acc_logistic", "acc_mlp", "mcc_matthews"])
def test_classification_oracle_and_constant(name):
    u, lat = _labels()
    onehot = np.concatenate([np.eye(3)[lat["c"]], np.eye(2)[lat["d"]]], axis=1)
    kw = {"max_iter": 80} if name == "acc_mlp" else {}
    good = _run(name, _data(onehot, lat), **kw)
    assert all(v >= 0.97 for v in good.values()), good
    const = _run(name, _data(np.zeros((len(u), 2)), lat), **kw)
    if name == "mcc_matthews":
        assert all(abs(v) <= 0.02 for v in const.values()), const
    else:  # a constant embedding predicts the fit split's majority class
        for k, y in lat.items():
            majority = np.bincount(y[:N_FIT]).argmax()
            assert const[k] == pytest.approx(np.mean(y[N_FIT:] == majority), abs=0.01)


def test_mcc_matthews_mlp_probe_and_bad_probe():
    _, lat = _labels(1)
    onehot = np.concatenate([np.eye(3)[lat["c"]], np.eye(2)[lat["d"]]], axis=1)
    got = _run("mcc_matthews", _data(onehot, lat), probe="mlp", max_iter=60)
    assert min(got.values()) >= 0.95
    with pytest.raises(InvalidConfigError, match="logistic"):
        _run("mcc_matthews", _data(onehot, lat), probe="svm")


@pytest.mark.parametrize("k", [2, 3, 5])
def test_matthews_matches_sklearn(k):
    rng = RNG(k)
    y = rng.integers(0, k, 300)
    p = np.where(rng.random(300) < 0.6, y, rng.integers(0, k, 300))
    assert matthews_corrcoef(y, p) == pytest.approx(sk_mcc(y, p), abs=1e-12)
    assert matthews_corrcoef(y, np.zeros_like(y)) == pytest.approx(sk_mcc(y, np.zeros_like(y)))


# ----------------------------------------------------------------------------- identifiability consistency
def test_identifiability_consistency():
    perfect = {"x": {"s1": 1.0, "s2": 0.0, "m": 0.0}, "t": {"s1": 0.98, "s2": 0.01, "m": 0.0}}
    out = identifiability_consistency(perfect, ["s1"])
    assert out["score"] == pytest.approx(np.mean([0.99, (1 + 0.99 + 1 + 1) / 4]))
    assert out["accuracy"] == 1.0 and len(out["table"]) == 6
    everything = {"x": {"s1": 1.0, "s2": 1.0, "m": 1.0}}
    assert identifiability_consistency(everything, ["s1"])["score"] == pytest.approx(0.5)
    assert identifiability_consistency(everything, ["s1"])["accuracy"] == pytest.approx(1 / 3)
    nothing = {"x": {"s1": 0.0, "s2": 0.0}}
    assert identifiability_consistency(nothing, ["s1"])["score"] == pytest.approx(0.5)
    assert identifiability_consistency(nothing, [])["score"] == pytest.approx(1.0)


def test_probe_data_validation():
    z = np.zeros((10, 2))
    with pytest.raises(InvalidConfigError, match="rows"):
        ProbeData(z, z, {"a": np.zeros(9)}, {"a": np.zeros(10)})
    with pytest.raises(InvalidConfigError, match="2-D"):
        ProbeData(np.zeros(10), z, {}, {})
    with pytest.raises(InvalidConfigError, match="differ"):
        ProbeData(z, z, {"a": np.zeros(10)}, {"b": np.zeros(10)})


def test_probe_fit_subsample_is_drawn_from_the_seed():
    """n_fit below the fit rows: each rng draws its own rows; all rows: the rng is not touched."""
    lat = _latents(3)
    z = _truth(lat) + 0.8 * RNG(4).standard_normal((N_FIT + N_SCORE, 3))
    data = _data(z, lat)
    sub = data.sample_fit(100, RNG(0))
    assert len(sub.z_fit) == 100 and len(sub.y_fit["b"]) == 100 and len(sub.z_score) == N_SCORE
    rows = [int(np.flatnonzero((data.z_fit == r).all(1))[0]) for r in sub.z_fit]
    assert rows == sorted(rows) and len(set(rows)) == 100  # without replacement, in row order
    np.testing.assert_array_equal(sub.y_fit["a"], data.y_fit["a"][rows])
    rng = RNG(0)
    assert data.sample_fit(None, rng) is data and data.sample_fit(N_FIT, rng) is data
    assert rng.integers(1 << 30) == RNG(0).integers(1 << 30)  # untouched
    with pytest.raises(InvalidConfigError, match="n_fit"):
        data.sample_fit(1, RNG(0))
    fn = METRICS.get("r2_linear")
    a, b = (fn(data, rng=RNG(s), backend="sklearn", n_fit=60) for s in (0, 1))
    assert a["a"] != b["a"]
    full = [fn(data, rng=RNG(s), backend="sklearn") for s in (0, 1)]
    assert full[0] == full[1]
    assert all(METRICS.metadata(n)["subsamples_fit"] for n in ("r2_linear", "r2_kernel", "r2_mlp", "acc_logistic", "acc_mlp", "mcc_matthews"))
    assert METRICS.metadata("mcc_corr")["subsamples_fit"] is False
