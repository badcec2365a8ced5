"""Torch probes against their scikit-learn references (on CPU), and the probe factory."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.preprocessing import StandardScaler

from mmbench.devices import resolve_device
from mmbench.errors import InvalidConfigError
from mmbench.harness.probes import (
    KERNEL_ALPHAS,
    KERNEL_GAMMAS,
    Standardizer,
    TorchKernelRidgeCV,
    TorchLinearRegression,
    TorchLogisticRegression,
    TorchMLPClassifier,
    TorchMLPRegressor,
    kfold_indices,
    make_probe,
)


def _regression_data(n: int = 360, d: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = np.stack([np.sin(x[:, 0]) + 0.1 * rng.standard_normal(n), x[:, 1] ** 2, x[:, 2] * x[:, 3], rng.standard_normal(n)], axis=1)
    return x, y


def test_papers_grid():
    assert KERNEL_ALPHAS == (1.0, 0.1, 0.01, 0.001)
    np.testing.assert_allclose(KERNEL_GAMMAS, np.logspace(-2, 2, 4))


@pytest.mark.parametrize("n,k", [(10, 3), (11, 3), (12, 3), (7, 2)])
def test_kfold_matches_sklearn(n, k):
    ours = kfold_indices(n, k)
    ref = list(KFold(k).split(np.zeros(n)))
    for (a, b), (c, d) in zip(ours, ref, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_standardizer_matches_standard_scaler():
    x = np.random.default_rng(0).standard_normal((50, 3)) * [1, 10, 0] + [0, 5, 3]
    ours = Standardizer().fit(x).transform(x)
    np.testing.assert_allclose(ours, StandardScaler().fit(x).transform(x), atol=1e-12)


def test_linear_matches_sklearn_including_rank_deficient():
    x, y = _regression_data()
    x = np.concatenate([x, x[:, :1] * 2.0, np.ones((len(x), 1))], axis=1)  # collinear + constant columns
    ours = TorchLinearRegression(device="cpu").fit(x, y).predict(x)
    ref = LinearRegression().fit(x, y).predict(x)
    np.testing.assert_allclose(ours, ref, atol=1e-8)
    flat = TorchLinearRegression(device="cpu").fit(x, y[:, 0]).predict(x)
    assert flat.shape == (len(x),)


def test_kernel_ridge_joint_matches_gridsearchcv():
    x, y = _regression_data(n=300)
    xs, xt = x[:200], x[200:]
    ref = GridSearchCV(KernelRidge(kernel="rbf"), {"alpha": list(KERNEL_ALPHAS), "gamma": list(KERNEL_GAMMAS)}, cv=3).fit(xs, y[:200])
    ours = TorchKernelRidgeCV(device="cpu").fit(xs, y[:200])
    assert ours.best_params_[0] == (ref.best_params_["alpha"], ref.best_params_["gamma"])
    assert ours.best_score_[0] == pytest.approx(ref.best_score_, abs=1e-8)
    np.testing.assert_allclose(ours.predict(xt), ref.predict(xt), atol=1e-6)


def test_kernel_ridge_per_group_matches_one_gridsearch_per_group():
    x, y = _regression_data(n=300, seed=1)
    groups = [0, 1, 1, 2]
    ours = TorchKernelRidgeCV(device="cpu").fit(x[:210], y[:210], groups=groups)
    pred = ours.predict(x[210:])
    for g, cols in ((0, [0]), (1, [1, 2]), (2, [3])):
        target = y[:210, cols[0]] if len(cols) == 1 else y[:210, cols]
        ref = GridSearchCV(KernelRidge(kernel="rbf"), {"alpha": list(KERNEL_ALPHAS), "gamma": list(KERNEL_GAMMAS)}, cv=3).fit(x[:210], target)
        assert ours.best_params_[g] == (ref.best_params_["alpha"], ref.best_params_["gamma"])
        np.testing.assert_allclose(pred[:, cols], ref.predict(x[210:]).reshape(-1, len(cols)), atol=1e-6)


def test_kernel_ridge_sklearn_backend_wrapper_agrees():
    x, y = _regression_data(n=240, seed=2)
    a = make_probe("kernel_ridge", backend="torch", device="cpu").fit(x[:180], y[:180], groups=[0, 1, 2, 3]).predict(x[180:])
    b = make_probe("kernel_ridge", backend="sklearn").fit(x[:180], y[:180], groups=[0, 1, 2, 3]).predict(x[180:])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_logistic_matches_sklearn():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 3))
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.3).astype(int)
    ref = LogisticRegression(C=1.0, max_iter=1000).fit(x, y)
    ours = TorchLogisticRegression(device="cpu").fit(x, y)
    np.testing.assert_allclose(ours.coef_.numpy().T, ref.coef_ - ref.coef_.mean(0), atol=2e-3)
    assert np.mean(ours.predict(x) == ref.predict(x)) > 0.99
    two = TorchLogisticRegression(device="cpu").fit(x, np.stack([y, y % 2], 1)).predict(x)
    assert two.shape == (400, 2)


def test_mlp_regressor_close_to_sklearn():
    from sklearn.neural_network import MLPRegressor

    x, y = _regression_data(n=900, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = np.mean([r2_score(y[600:, j], MLPRegressor(max_iter=60, random_state=0).fit(x[:600], y[:600, j]).predict(x[600:])) for j in range(3)])
    ours = TorchMLPRegressor(max_iter=60, device="cpu", random_state=0).fit(x[:600], y[:600, :3], groups=[0, 1, 2])
    got = r2_score(y[600:, :3], ours.predict(x[600:]))
    assert got == pytest.approx(ref, abs=0.05)
    assert ours.n_iter_ <= 60 and len(ours.loss_curve_) == ours.n_iter_


def test_mlp_classifier_close_to_sklearn():
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(5)
    x = rng.standard_normal((700, 3))
    y = np.stack([(x[:, 0] * x[:, 1] > 0).astype(int), np.digitize(x[:, 2], [-0.5, 0.5])], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = np.mean([(MLPClassifier(max_iter=60, random_state=0).fit(x[:500], y[:500, j]).predict(x[500:]) == y[500:, j]).mean() for j in range(2)])
    pred = TorchMLPClassifier(max_iter=60, device="cpu").fit(x[:500], y[:500]).predict(x[500:])
    assert pred.shape == (200, 2)
    assert np.mean(pred == y[500:]) == pytest.approx(ref, abs=0.05)


def test_mlp_is_deterministic_given_seed():
    x, y = _regression_data(n=200)
    a = TorchMLPRegressor(max_iter=3, random_state=7, device="cpu").fit(x, y).predict(x)
    b = TorchMLPRegressor(max_iter=3, random_state=7, device="cpu").fit(x, y).predict(x)
    np.testing.assert_array_equal(a, b)


def test_factory_errors_name_the_bad_value():
    with pytest.raises(InvalidConfigError, match="kernel_ridge"):
        make_probe("kernel_rige")
    with pytest.raises(InvalidConfigError, match="sklearn"):
        make_probe("linear", backend="skleran")
    with pytest.raises(InvalidConfigError, match="gamma"):
        make_probe("kernel_ridge", gamma=1.0)
    with pytest.raises(InvalidConfigError, match="device"):
        resolve_device("gpu-please")
    with pytest.raises(InvalidConfigError, match="groups"):
        TorchKernelRidgeCV(device="cpu").fit(np.zeros((9, 2)), np.zeros((9, 2)), groups=[0])


@pytest.mark.gpu
def test_torch_probes_on_cuda_match_cpu():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x, y = _regression_data(n=600)
    cpu = TorchKernelRidgeCV(device="cpu").fit(x[:400], y[:400], groups=[0, 1, 2, 3])
    gpu = TorchKernelRidgeCV(device="cuda").fit(x[:400], y[:400], groups=[0, 1, 2, 3])
    assert cpu.best_params_ == gpu.best_params_
    np.testing.assert_allclose(cpu.predict(x[400:]), gpu.predict(x[400:]), atol=1e-6)
    np.testing.assert_allclose(TorchLinearRegression(device="cuda").fit(x, y).predict(x),
                               TorchLinearRegression(device="cpu").fit(x, y).predict(x), atol=1e-8)
