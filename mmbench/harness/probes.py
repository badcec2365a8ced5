"""Probes: small supervised models fitted on frozen embeddings to read out ground-truth latents.

Two interchangeable back-ends:

* ``"sklearn"`` — the reference: ``LinearRegression``, ``LogisticRegression``,
  ``GridSearchCV(KernelRidge(kernel="rbf"))``, ``MLPRegressor``/``MLPClassifier`` (CPU).
* ``"torch"`` — the same estimators written in torch, running on any ``device`` (a GPU when
  there is one). They follow scikit-learn's estimator conventions (``fit`` returns ``self``,
  learned attributes end in ``_``, ``random_state`` is an argument) and give the same answers as
  the reference within a tolerance that the tests pin.

The kernel-ridge grid search is where the time goes (the papers' probe: α ∈ {1, .1, .01, .001},
γ ∈ logspace(−2, 2, 4), 3-fold CV). :class:`TorchKernelRidgeCV` computes the squared distances of
the fit set once, slices every fold's kernel out of the full kernel per γ, factorises each
``K + αI`` once (Cholesky) and solves all targets with that factor; every target (or group of
target columns, e.g. one vector-valued latent) picks its own (α, γ) from the same solves — so the
"one grid search per latent" of the reference code costs one grid search in total.

Example:
    >>> probe = make_probe("kernel_ridge", backend="torch", device="cpu")
    >>> probe.fit(z_fit, y_fit).predict(z_test)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmbench.devices import resolve_device, torch_threads
from mmbench.errors import InvalidConfigError, did_you_mean

__all__ = [
    "BACKENDS",
    "KERNEL_ALPHAS",
    "KERNEL_GAMMAS",
    "PROBES",
    "Standardizer",
    "TorchKernelRidgeCV",
    "TorchLinearRegression",
    "TorchLogisticRegression",
    "TorchMLPClassifier",
    "TorchMLPRegressor",
    "kfold_indices",
    "make_probe",
]

logger = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("torch", "sklearn")
PROBES: tuple[str, ...] = ("linear", "logistic", "kernel_ridge", "mlp_regressor", "mlp_classifier")
KERNEL_ALPHAS: tuple[float, ...] = (1.0, 0.1, 0.01, 0.001)
KERNEL_GAMMAS: tuple[float, ...] = tuple(float(g) for g in np.logspace(-2, 2, 4))


# ============================================================================ utilities
def _check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise InvalidConfigError(f"Unknown probe backend {backend!r}.{did_you_mean(backend, BACKENDS)} Choose one of {list(BACKENDS)}.")
    return backend


def _as_2d(y: np.ndarray) -> tuple[np.ndarray, bool]:
    y = np.asarray(y)
    return (y[:, None], True) if y.ndim == 1 else (y, False)


def kfold_indices(n: int, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Unshuffled K-fold (train, test) indices, identical to ``sklearn.model_selection.KFold(k)``."""
    if k < 2 or k > n:
        raise InvalidConfigError(f"Cannot make {k} folds of {n} samples: need 2 <= folds <= samples.")
    sizes = np.full(k, n // k)
    sizes[: n % k] += 1
    out, start = [], 0
    idx = np.arange(n)
    for size in sizes:
        test = idx[start : start + size]
        out.append((np.concatenate([idx[:start], idx[start + size :]]), test))
        start += size
    return out


class Standardizer:
    """Per-feature standardisation fitted on the probe-fit split (constant features → scale 1).

    Example:
        >>> sc = Standardizer().fit(z_fit)
        >>> z_fit_s, z_test_s = sc.transform(z_fit), sc.transform(z_test)
    """

    def fit(self, x: np.ndarray) -> Standardizer:
        x = np.asarray(x, dtype=np.float64)
        self.mean_ = x.mean(axis=0)
        scale = x.std(axis=0)
        # Same rule as sklearn's StandardScaler: (near-)constant features are centred, not scaled.
        scale[scale < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(self.mean_), 1.0)] = 1.0
        self.scale_ = scale
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_


# ============================================================================ linear
class TorchLinearRegression:
    """Ordinary least squares with intercept (minimum-norm solution, like ``LinearRegression``)."""

    def __init__(self, *, device: Any = None, dtype: Any = None) -> None:
        self.device = device
        self.dtype = dtype

    def fit(self, x: np.ndarray, y: np.ndarray) -> TorchLinearRegression:
        import torch

        dev = resolve_device(self.device)
        dt = self.dtype or torch.float64
        y2, self._flat = _as_2d(y)
        xt = torch.as_tensor(np.asarray(x), dtype=dt, device=dev)
        yt = torch.as_tensor(np.asarray(y2), dtype=dt, device=dev)
        xm, ym = xt.mean(0), yt.mean(0)
        xc, yc = xt - xm, yt - ym
        # SVD-based pseudo-inverse with LAPACK's default cut-off (eps · max(n, d) · s_max), as
        # scipy.linalg.lstsq does for sklearn; works on rank-deficient inputs and on CUDA.
        u, s, vh = torch.linalg.svd(xc, full_matrices=False)
        cut = torch.finfo(dt).eps * max(xc.shape) * (s.max() if s.numel() else 0)
        inv = torch.where(s > cut, 1.0 / s.clamp_min(torch.finfo(dt).tiny), torch.zeros_like(s))
        coef = vh.T @ (inv[:, None] * (u.T @ yc))
        self.coef_ = coef
        self.intercept_ = ym - xm @ coef
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        import torch

        xt = torch.as_tensor(np.asarray(x), dtype=self.coef_.dtype, device=self.coef_.device)
        out = (xt @ self.coef_ + self.intercept_).cpu().numpy()
        return out[:, 0] if self._flat else out


# ============================================================================ logistic
class TorchLogisticRegression:
    """Multinomial L2-regularised logistic regression fitted by full-batch L-BFGS.

    Same objective as ``sklearn.linear_model.LogisticRegression(C=C)`` (lbfgs):
    ``C · Σ_i CE_i + ½‖W‖²``, intercept unpenalised.
    """

    def __init__(self, *, C: float = 1.0, max_iter: int = 1000, tol: float = 1e-6, device: Any = None) -> None:
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.device = device

    def fit(self, x: np.ndarray, y: np.ndarray) -> TorchLogisticRegression:
        import torch

        y = np.asarray(y)
        if y.ndim == 2:  # one independent classifier per label column
            self._columns = [
                TorchLogisticRegression(C=self.C, max_iter=self.max_iter, tol=self.tol, device=self.device).fit(x, y[:, j])
                for j in range(y.shape[1])
            ]
            return self
        self._columns = None
        dev = resolve_device(self.device)
        self.classes_, codes = np.unique(y, return_inverse=True)
        k = max(len(self.classes_), 2)
        xt = torch.as_tensor(np.asarray(x), dtype=torch.float64, device=dev)
        yt = torch.as_tensor(codes, dtype=torch.long, device=dev)
        w = torch.zeros(xt.shape[1], k, dtype=torch.float64, device=dev, requires_grad=True)
        b = torch.zeros(k, dtype=torch.float64, device=dev, requires_grad=True)
        n = xt.shape[0]
        opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=self.max_iter, tolerance_grad=self.tol,
                                tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            # The objective divided by C·n: same minimiser, better-scaled for the line search.
            loss = torch.nn.functional.cross_entropy(xt @ w + b, yt) + (w * w).sum() / (2 * self.C * n)
            loss.backward()
            return loss

        opt.step(closure)
        self.coef_, self.intercept_ = w.detach(), b.detach()
        return self

    def decision_function(self, x: np.ndarray) -> Any:
        import torch

        xt = torch.as_tensor(np.asarray(x), dtype=torch.float64, device=self.coef_.device)
        return xt @ self.coef_ + self.intercept_

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self._columns is not None:
            return np.stack([c.predict(x) for c in self._columns], axis=1)
        codes = self.decision_function(x).argmax(1).cpu().numpy()
        return self.classes_[np.minimum(codes, len(self.classes_) - 1)]


# ============================================================================ kernel ridge
def _sq_dists(a: Any, b: Any) -> Any:
    """Squared Euclidean distances (the expansion sklearn's ``euclidean_distances`` uses)."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return d.clamp_min_(0.0)


def _r2_columns(y: Any, pred: Any) -> Any:
    """Per-column R² (sklearn's convention for constant columns: 1 if perfect else 0)."""
    import torch

    ss_res = ((y - pred) ** 2).sum(0)
    ss_tot = ((y - y.mean(0)) ** 2).sum(0)
    r2 = 1.0 - ss_res / torch.where(ss_tot > 0, ss_tot, torch.ones_like(ss_tot))
    return torch.where(ss_tot > 0, r2, (ss_res == 0).to(r2.dtype))


class TorchKernelRidgeCV:
    """RBF kernel ridge regression with a grid search over (α, γ) by K-fold CV, in torch.

    Equivalent to ``GridSearchCV(KernelRidge(kernel="rbf"), {"alpha": alphas, "gamma": gammas},
    cv=folds)`` followed by a refit on all data — per *group* of target columns: ``groups`` gives a
    group id per target column (default: one group, which is exactly sklearn's multi-output
    selection by mean R²). Each group keeps the (α, γ) with the best mean fold R².

    Args:
        alphas, gammas: the grid (defaults: the papers' grid).
        cv: number of unshuffled folds (sklearn's ``KFold``).
        device: torch device (``None`` = CUDA when available).
        dtype: float64 by default (α = 0.001 makes ``K + αI`` too ill-conditioned for float32).
        chunk: rows of the test kernel computed at a time when predicting.

    Example:
        >>> kr = TorchKernelRidgeCV(device="cpu").fit(z_fit, y_fit, groups=[0, 0, 1])
        >>> kr.best_params_  # {group: (alpha, gamma)}
    """

    def __init__(
        self,
        *,
        alphas: Sequence[float] = KERNEL_ALPHAS,
        gammas: Sequence[float] = KERNEL_GAMMAS,
        cv: int = 3,
        device: Any = None,
        dtype: Any = None,
        chunk: int = 4096,
    ) -> None:
        self.alphas = tuple(float(a) for a in alphas)
        self.gammas = tuple(float(g) for g in gammas)
        self.cv = cv
        self.device = device
        self.dtype = dtype
        self.chunk = chunk

    def fit(self, x: np.ndarray, y: np.ndarray, groups: Sequence[int] | None = None) -> TorchKernelRidgeCV:
        import torch

        if not self.alphas or not self.gammas or min(self.alphas) <= 0 or min(self.gammas) <= 0:
            raise InvalidConfigError(f"Kernel ridge needs non-empty positive grids; got alphas={self.alphas}, gammas={self.gammas}.")
        dev = resolve_device(self.device)
        dt = self.dtype or torch.float64
        y2, self._flat = _as_2d(y)
        xt = torch.as_tensor(np.asarray(x), dtype=dt, device=dev)
        yt = torch.as_tensor(np.asarray(y2), dtype=dt, device=dev)
        n, t = yt.shape
        gid = np.zeros(t, dtype=int) if groups is None else np.asarray(groups)
        if gid.shape != (t,):
            raise InvalidConfigError(f"groups must give one id per target column ({t}), got shape {gid.shape}.")
        uniq = list(dict.fromkeys(gid.tolist()))
        folds = [(torch.as_tensor(tr, device=dev), torch.as_tensor(te, device=dev)) for tr, te in kfold_indices(n, self.cv)]
        # Small factorisations gain nothing from several threads and lose badly when cores are shared.
        threads = 1 if dev.type == "cpu" and n < 2048 else None
        with torch_threads(threads):
            self._grid(xt, yt, gid, uniq, folds, dev, dt)
        return self

    def _grid(self, xt: Any, yt: Any, gid: np.ndarray, uniq: list[Any], folds: list[Any], dev: Any, dt: Any) -> None:
        import torch

        t = yt.shape[1]
        scores = torch.zeros(len(self.gammas), len(self.alphas), len(folds), t, dtype=dt, device=dev)
        d2 = _sq_dists(xt, xt)
        for gi, gamma in enumerate(self.gammas):
            k_full = torch.exp(-gamma * d2)
            for fi, (tr, te) in enumerate(folds):
                k_tr = k_full[tr][:, tr]
                k_te = k_full[te][:, tr]
                diag = k_tr.diagonal()
                prev = 0.0
                for ai, alpha in enumerate(self.alphas):
                    diag += alpha - prev
                    prev = alpha
                    coef = self._solve(k_tr, yt[tr])
                    scores[gi, ai, fi] = _r2_columns(yt[te], k_te @ coef)
                del k_tr, k_te
            del k_full
        mean_scores = scores.mean(2)  # (gamma, alpha, target): mean over folds, as GridSearchCV
        self.cv_scores_ = mean_scores.cpu().numpy()
        self.best_params_: dict[Any, tuple[float, float]] = {}
        self.best_score_: dict[Any, float] = {}
        for g in uniq:
            cols = torch.as_tensor(np.flatnonzero(gid == g), device=dev)
            grp = mean_scores[:, :, cols].mean(2)  # (gamma, alpha)
            # Ties go to the first candidate in sklearn's ParameterGrid order (alpha outer, gamma inner).
            flat = grp.T.reshape(-1)
            best = int(torch.nonzero(flat == flat.max())[0]) if torch.isfinite(flat).any() else 0
            ai, gi = divmod(best, len(self.gammas))
            self.best_params_[g] = (self.alphas[ai], self.gammas[gi])
            self.best_score_[g] = float(flat[best])
        # Refit once per distinct (alpha, gamma) on all data.
        self.X_fit_ = xt
        self._coef: list[tuple[float, Any, Any]] = []  # (gamma, column index tensor, dual coefs)
        for alpha, gamma in dict.fromkeys(self.best_params_.values()):
            cols = torch.as_tensor(
                np.flatnonzero(np.isin(gid, [g for g, p in self.best_params_.items() if p == (alpha, gamma)])), device=dev
            )
            k = torch.exp(-gamma * d2)
            k.diagonal().add_(alpha)
            self._coef.append((gamma, cols, self._solve(k, yt[:, cols])))
            del k
        self.n_targets_ = t

    @staticmethod
    def _solve(a: Any, b: Any) -> Any:
        import torch

        chol, info = torch.linalg.cholesky_ex(a)
        if int(info) == 0:
            return torch.cholesky_solve(b, chol)
        return torch.linalg.lstsq(a.cpu(), b.cpu()).solution.to(a.device)  # numerically singular: fall back

    def predict(self, x: np.ndarray) -> np.ndarray:
        import torch

        xt = torch.as_tensor(np.asarray(x), dtype=self.X_fit_.dtype, device=self.X_fit_.device)
        out = torch.empty(xt.shape[0], self.n_targets_, dtype=xt.dtype, device=xt.device)
        for start in range(0, xt.shape[0], self.chunk):
            d2 = _sq_dists(xt[start : start + self.chunk], self.X_fit_)
            for gamma, cols, coef in self._coef:
                out[start : start + self.chunk, cols] = torch.exp(-gamma * d2) @ coef
        res = out.cpu().numpy()
        return res[:, 0] if self._flat else res


# ============================================================================ MLP
class _TorchMLPBase:
    """``T`` independent one-hidden-layer MLPs trained in parallel (one per target group).

    Mirrors sklearn's ``MLPRegressor``/``MLPClassifier`` defaults: ReLU, Glorot-uniform init,
    Adam (lr 1e-3), mini-batches of ``min(200, n)`` reshuffled every epoch, L2 penalty
    ``alpha/2 · ‖W‖² / batch`` and stopping when the training loss has not improved by ``tol`` for
    ``n_iter_no_change`` epochs. Independent nets share one set of batched tensor ops, so fitting one
    probe per latent costs about as much as fitting one.
    """

    def __init__(
        self,
        *,
        hidden: int = 100,
        alpha: float = 1e-4,
        lr: float = 1e-3,
        batch_size: int = 200,
        max_iter: int = 200,
        tol: float = 1e-4,
        n_iter_no_change: int = 10,
        random_state: int | np.random.Generator | None = 0,
        device: Any = None,
    ) -> None:
        self.hidden = hidden
        self.alpha = alpha
        self.lr = lr
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.device = device

    def _seed(self) -> int:
        rs = self.random_state
        if isinstance(rs, np.random.Generator):
            return int(rs.integers(2**31))
        return 0 if rs is None else int(rs)

    def _train(self, x: np.ndarray, targets: Any, out_mask: Any, loss_fn: Any) -> None:
        """``targets``: (n, T, o) tensor (float) or (n, T) long; ``out_mask``: (T, o) bool."""
        import torch

        dev = resolve_device(self.device)
        gen = torch.Generator(device="cpu").manual_seed(self._seed())
        xt = torch.as_tensor(np.asarray(x), dtype=torch.float32, device=dev)
        n, d = xt.shape
        t, o = out_mask.shape
        h = self.hidden

        def glorot(fan_in: int, fan_out: int, shape: tuple[int, ...]) -> torch.Tensor:
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            return ((torch.rand(shape, generator=gen) * 2 - 1) * bound).to(dev).requires_grad_()

        # First layers of all nets as one (d, T·h) matmul (they share the input); second layers
        # as one batched matmul over the T nets.
        w1 = torch.stack([glorot(d, h, (d, h)) for _ in range(t)], 1).reshape(d, t * h)
        b1 = torch.stack([glorot(d, h, (h,)) for _ in range(t)]).reshape(t * h)
        self._w1, self._b1 = w1.detach().requires_grad_(), b1.detach().requires_grad_()
        self._w2, self._b2 = glorot(h, o, (t, h, o)), glorot(h, o, (t, 1, o))
        self._t, self._h = t, h
        self._mask = out_mask.to(dev)
        params = [self._w1, self._b1, self._w2, self._b2]
        opt = torch.optim.Adam(params, lr=self.lr, betas=(0.9, 0.999), eps=1e-8)
        bs = max(1, min(self.batch_size, n))
        with torch_threads(1 if dev.type == "cpu" else None):
            self._epochs(xt, targets, loss_fn, opt, gen, bs)
        for p in params:
            p.requires_grad_(False)

    def _epochs(self, xt: Any, targets: Any, loss_fn: Any, opt: Any, gen: Any, bs: int) -> None:
        import torch

        n, t = xt.shape[0], self._t
        best, stall = math.inf, 0
        self.loss_curve_: list[float] = []
        self.n_iter_ = 0
        for _epoch in range(self.max_iter):
            order = torch.randperm(n, generator=gen).to(xt.device)
            total = 0.0
            for start in range(0, n, bs):
                idx = order[start : start + bs]
                opt.zero_grad(set_to_none=True)
                out = self._forward(xt[idx])
                loss = loss_fn(out, targets[idx])
                penalty = (self._w1.square().sum() + self._w2.square().sum()) * (0.5 * self.alpha / len(idx))
                (loss + penalty).backward()
                opt.step()
                total += float(loss.detach()) * len(idx) + float(penalty.detach()) * len(idx)
            epoch_loss = total / n / t
            self.loss_curve_.append(epoch_loss)
            self.n_iter_ += 1
            if epoch_loss > best - self.tol:
                stall += 1
            else:
                stall = 0
            best = min(best, epoch_loss)
            if stall >= self.n_iter_no_change:
                break

    def _forward(self, x: Any) -> Any:
        import torch

        hid = torch.relu(torch.addmm(self._b1, x, self._w1)).view(x.shape[0], self._t, self._h).transpose(0, 1)
        return torch.baddbmm(self._b2, hid, self._w2)  # (T, n, o)

    def _predict_raw(self, x: np.ndarray) -> Any:
        import torch

        xt = torch.as_tensor(np.asarray(x), dtype=torch.float32, device=self._w1.device)
        with torch.no_grad():
            return torch.cat([self._forward(xt[s : s + 8192]) for s in range(0, xt.shape[0], 8192)], dim=1)


class TorchMLPRegressor(_TorchMLPBase):
    """Per-group MLP regressors (see :class:`_TorchMLPBase`); ``groups`` as in kernel ridge.

    Example:
        >>> mlp = TorchMLPRegressor(device="cpu").fit(z_fit, y_fit, groups=[0, 1, 1])
    """

    def fit(self, x: np.ndarray, y: np.ndarray, groups: Sequence[int] | None = None) -> TorchMLPRegressor:
        import torch

        y2, self._flat = _as_2d(y)
        n, cols = y2.shape
        gid = np.zeros(cols, dtype=int) if groups is None else np.asarray(groups)
        if gid.shape != (cols,):
            raise InvalidConfigError(f"groups must give one id per target column ({cols}), got shape {gid.shape}.")
        uniq = list(dict.fromkeys(gid.tolist()))
        self._layout = [np.flatnonzero(gid == g) for g in uniq]
        o = max(len(c) for c in self._layout)
        dev = resolve_device(self.device)
        targets = torch.zeros(n, len(uniq), o, dtype=torch.float32)
        mask = torch.zeros(len(uniq), o, dtype=torch.bool)
        for k, c in enumerate(self._layout):
            targets[:, k, : len(c)] = torch.as_tensor(np.asarray(y2[:, c], dtype=np.float32))
            mask[k, : len(c)] = True
        targets = targets.to(dev)
        counts = mask.sum(1).to(dev, torch.float32)
        maskf = mask.to(dev, torch.float32)

        def loss_fn(out: Any, tgt: Any) -> Any:
            # sklearn's squared loss per net: mean over samples and outputs of (y − ŷ)² / 2.
            err = (out.transpose(0, 1) - tgt) ** 2 * maskf  # (b, T, o)
            return (err.sum((0, 2)) / (counts * tgt.shape[0]) / 2).sum()

        self._train(x, targets, mask, loss_fn)
        self.n_targets_ = cols
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        raw = self._predict_raw(x).cpu().numpy()  # (T, n, o)
        out = np.empty((raw.shape[1], self.n_targets_), dtype=np.float64)
        for k, c in enumerate(self._layout):
            out[:, c] = raw[k, :, : len(c)]
        return out[:, 0] if self._flat else out


class TorchMLPClassifier(_TorchMLPBase):
    """Per-column MLP classifiers: ``y`` is ``(n,)`` labels or ``(n, T)`` for T separate tasks."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> TorchMLPClassifier:
        import torch

        y2, self._flat = _as_2d(y)
        n, t = y2.shape
        self.classes_ = []
        codes = np.empty((n, t), dtype=np.int64)
        for j in range(t):
            cls, codes[:, j] = np.unique(y2[:, j], return_inverse=True)
            self.classes_.append(cls)
        o = max(max(len(c) for c in self.classes_), 2)
        mask = torch.zeros(t, o, dtype=torch.bool)
        for j, c in enumerate(self.classes_):
            mask[j, : max(len(c), 2)] = True
        dev = resolve_device(self.device)
        targets = torch.as_tensor(codes, device=dev)
        neg = torch.where(mask, 0.0, -torch.inf).to(dev)  # padded classes never win

        def loss_fn(out: Any, tgt: Any) -> Any:
            logits = out + neg[:, None, :]  # (T, b, o)
            return torch.nn.functional.cross_entropy(logits.permute(1, 2, 0), tgt, reduction="none").mean(0).sum()

        self._neg = neg
        self._train(x, targets, mask, loss_fn)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        raw = self._predict_raw(x) + self._neg[:, None, :]
        codes = raw.argmax(2).cpu().numpy()  # (T, n)
        out = np.stack([self.classes_[j][np.minimum(codes[j], len(self.classes_[j]) - 1)] for j in range(len(self.classes_))], axis=1)
        return out[:, 0] if self._flat else out


# ============================================================================ factory
class _SklearnGrouped:
    """Wrap a sklearn regressor so that each target group gets its own fitted copy."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory

    def fit(self, x: np.ndarray, y: np.ndarray, groups: Sequence[int] | None = None) -> _SklearnGrouped:
        y2, self._flat = _as_2d(y)
        gid = np.zeros(y2.shape[1], dtype=int) if groups is None else np.asarray(groups)
        self._models = []
        for g in dict.fromkeys(gid.tolist()):
            cols = np.flatnonzero(gid == g)
            target = y2[:, cols[0]] if len(cols) == 1 else y2[:, cols]
            self._models.append((cols, self.factory().fit(x, target)))
        self.n_targets_ = y2.shape[1]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = np.empty((len(x), self.n_targets_))
        for cols, model in self._models:
            out[:, cols] = np.asarray(model.predict(x)).reshape(len(x), -1)
        return out[:, 0] if self._flat else out


class _SklearnPerColumn:
    """Wrap a sklearn classifier: one fitted copy per label column."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory

    def fit(self, x: np.ndarray, y: np.ndarray) -> _SklearnPerColumn:
        y2, self._flat = _as_2d(y)
        self._models = [self.factory().fit(x, y2[:, j]) for j in range(y2.shape[1])]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = np.stack([m.predict(x) for m in self._models], axis=1)
        return out[:, 0] if self._flat else out


def make_probe(
    kind: str,
    *,
    backend: str = "torch",
    device: Any = None,
    random_state: int | None = 0,
    **params: Any,
) -> Any:
    """A probe estimator by name and back-end, with the papers' defaults.

    Args:
        kind: one of :data:`PROBES`.
        backend: ``"torch"`` (any device) or ``"sklearn"`` (the CPU reference).
        device: torch device for the torch back-end (``None`` = CUDA when available).
        random_state: seed for stochastic probes (MLPs).
        **params: probe parameters: ``alphas``/``gammas``/``cv`` (kernel ridge), ``C``/``max_iter``
            (logistic), ``hidden``/``alpha``/``lr``/``batch_size``/``max_iter``/``tol``/
            ``n_iter_no_change`` (MLPs).

    Returns:
        An object with ``fit(x, y[, groups])`` and ``predict(x)``. Regressors accept ``groups``
        (one id per target column: each group gets its own probe / hyper-parameters).

    Example:
        >>> make_probe("kernel_ridge", backend="sklearn").fit(z, y).predict(z2)
    """
    _check_backend(backend)
    if kind not in PROBES:
        raise InvalidConfigError(f"Unknown probe {kind!r}.{did_you_mean(kind, PROBES)} Choose one of {list(PROBES)}.")
    allowed = {
        "linear": set(),
        "logistic": {"C", "max_iter"},
        "kernel_ridge": {"alphas", "gammas", "cv"},
        "mlp_regressor": {"hidden", "alpha", "lr", "batch_size", "max_iter", "tol", "n_iter_no_change"},
        "mlp_classifier": {"hidden", "alpha", "lr", "batch_size", "max_iter", "tol", "n_iter_no_change"},
    }[kind]
    unknown = set(params) - allowed
    if unknown:
        raise InvalidConfigError(
            f"Unknown parameter(s) {sorted(unknown)} for the {kind!r} probe. Valid: {sorted(allowed) or 'none'}."
        )
    if backend == "torch":
        if kind == "linear":
            return TorchLinearRegression(device=device)
        if kind == "logistic":
            return TorchLogisticRegression(device=device, **params)
        if kind == "kernel_ridge":
            return TorchKernelRidgeCV(device=device, **params)
        cls = TorchMLPRegressor if kind == "mlp_regressor" else TorchMLPClassifier
        return cls(device=device, random_state=random_state, **params)
    return _sklearn_probe(kind, random_state, params)


def _sklearn_probe(kind: str, random_state: int | None, params: dict[str, Any]) -> Any:
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    if kind == "linear":
        return LinearRegression()
    if kind == "logistic":
        return _SklearnPerColumn(lambda: LogisticRegression(C=params.get("C", 1.0), max_iter=params.get("max_iter", 1000)))
    if kind == "kernel_ridge":
        grid = {"alpha": list(params.get("alphas", KERNEL_ALPHAS)), "gamma": list(params.get("gammas", KERNEL_GAMMAS))}
        return _SklearnGrouped(lambda: GridSearchCV(KernelRidge(kernel="rbf"), grid, cv=params.get("cv", 3)))
    mlp_kw = {
        "hidden_layer_sizes": (params.get("hidden", 100),),
        "alpha": params.get("alpha", 1e-4),
        "learning_rate_init": params.get("lr", 1e-3),
        "batch_size": params.get("batch_size", 200),
        "max_iter": params.get("max_iter", 200),
        "tol": params.get("tol", 1e-4),
        "n_iter_no_change": params.get("n_iter_no_change", 10),
        "random_state": random_state,
    }
    if kind == "mlp_regressor":
        return _SklearnGrouped(lambda: MLPRegressor(**mlp_kw))
    return _SklearnPerColumn(lambda: MLPClassifier(**mlp_kw))
