"""Metrics: how much of each ground-truth latent an embedding recovers.

Every metric is a pure function registered in :data:`METRICS` with its semantics
(``higher_is_better``, the latent ``kinds`` it applies to, its ``main_key``, whether it is
``stochastic`` and whether it ``subsamples_fit``). Names are part of the API and are never
overloaded: a different procedure gets a different name.

Probe metrics with ``n_fit`` below the number of fit rows train on a random subsample drawn from
their ``rng`` (:meth:`ProbeData.sample_fit`), so each seed fits on its own sample and the
harness's std over seeds is the spread over probe-fit samples; the score rows (first
``n_score``) are the same for every seed.

Probe metrics take a :class:`ProbeData` (embeddings and latents of the probe-fit split and of the
score split) and return ``{latent name: score}``:

* ``r2_linear``, ``r2_kernel``, ``r2_mlp`` — R² of a linear / RBF kernel-ridge (grid search) /
  MLP probe, one probe per latent, fitted on the fit split and scored on the score split; each
  component's R² is clipped to [0, 1], a vector latent scores the mean over its components.
* ``acc_logistic``, ``acc_mlp``, ``mcc_matthews`` — accuracy of a logistic / MLP classifier and
  the multiclass Matthews correlation of a (pinned) classifier, for categorical/discrete latents.
* ``mcc_corr`` — the cl-ica "MCC": |Pearson| (or Spearman) correlations between ground-truth
  components and embedding dimensions, one-to-one Hungarian matching, mean over matched pairs;
  computed on the score split only (no probe).

Generative metrics (``coherence_conditional``, ``coherence_unconditional``, ``linear_probe_accuracy``,
``log_likelihood``, ``fid``; ``type="generative"``) are registered here too and implemented in
:mod:`mmbench.harness.generative_metrics`: they score a model's generations, not embeddings.

The derived metric ``identifiability_consistency`` compares per-latent recovery (from a probe
metric named by ``source``) with the latents the theory predicts to be identifiable.

Example:
    >>> fn = METRICS.get("r2_linear")
    >>> fn(ProbeData(z_fit, z_test, {"s1": s1_fit}, {"s1": s1_test}), rng=np.random.default_rng(0))
    {'s1': 0.98}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mmbench.errors import InvalidConfigError
from mmbench.harness.probes import Standardizer, make_probe
from mmbench.registry import Registry

__all__ = [
    "METRICS",
    "ProbeData",
    "acc_logistic",
    "acc_mlp",
    "identifiability_consistency",
    "matthews_corrcoef",
    "mcc_corr",
    "mcc_matthews",
    "metric_info",
    "r2_kernel",
    "r2_linear",
    "r2_mlp",
    "r2_per_column",
]

METRICS: Registry[Callable[..., Any]] = Registry("metric")


@dataclasses.dataclass(frozen=True)
class ProbeData:
    """Inputs of a probe metric.

    Args:
        z_fit: ``(n_fit, d)`` embeddings of the probe-fit split.
        z_score: ``(n_score, d)`` embeddings of the split the probe is scored on.
        y_fit, y_score: latent name → values ``(n,)`` or ``(n, k)`` on the same rows.
    """

    z_fit: np.ndarray
    z_score: np.ndarray
    y_fit: Mapping[str, np.ndarray]
    y_score: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        for name, z, ys in (("fit", self.z_fit, self.y_fit), ("score", self.z_score, self.y_score)):
            if np.ndim(z) != 2:
                raise InvalidConfigError(f"z_{name} must be 2-D (n, d), got shape {np.shape(z)}.")
            for lat, y in ys.items():
                if len(y) != len(z):
                    raise InvalidConfigError(f"Latent {lat!r} has {len(y)} rows on the {name} split but z_{name} has {len(z)}.")
        if set(self.y_fit) != set(self.y_score):
            raise InvalidConfigError(f"Fit and score latents differ: {sorted(self.y_fit)} vs {sorted(self.y_score)}.")

    def head(self, n_fit: int | None = None, n_score: int | None = None) -> ProbeData:
        """The first ``n_fit`` / ``n_score`` rows (examples are i.i.d., so a prefix is a sample).

        Metrics cap the *score* rows this way (the same score rows for every seed) and draw the
        *fit* rows with :meth:`sample_fit`, so that seeds vary the probe's training sample.
        """
        def cut(x: Any, k: int | None) -> Any:
            return x if k is None else x[:k]

        return ProbeData(
            cut(self.z_fit, n_fit), cut(self.z_score, n_score),
            {k: cut(v, n_fit) for k, v in self.y_fit.items()}, {k: cut(v, n_score) for k, v in self.y_score.items()},
        )

    def sample_fit(self, n_fit: int | None, rng: np.random.Generator) -> ProbeData:
        """``n_fit`` probe-fit rows drawn without replacement from ``rng`` (kept in row order).

        With ``n_fit`` ``None`` or at least the number of fit rows, every row is used and ``rng``
        is not touched, so a deterministic probe then gives the same number for every seed.
        Drawing the subsample from the seed's generator is what makes mean ± std over seeds
        measure the probe's sensitivity to its training sample.
        """
        rows = len(self.z_fit)
        if n_fit is None or n_fit >= rows:
            return self
        if isinstance(n_fit, bool) or not isinstance(n_fit, int | np.integer) or n_fit < 2:
            raise InvalidConfigError(f"n_fit must be an int >= 2 or None, got {n_fit!r}.")
        idx = np.sort(rng.choice(rows, size=int(n_fit), replace=False))
        return ProbeData(self.z_fit[idx], self.z_score, {k: np.asarray(v)[idx] for k, v in self.y_fit.items()}, self.y_score)

    def standardized(self) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings standardised with the fit split's statistics."""
        sc = Standardizer().fit(self.z_fit)
        return sc.transform(self.z_fit), sc.transform(self.z_score)


def metric_info(name: str) -> dict[str, Any]:
    """Registered semantics of a metric: ``higher_is_better``, ``kinds``, ``type``, ``main_key``."""
    return METRICS.metadata(name)


# ============================================================================ helpers
def _stack(ys: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Latents → (n, total) float matrix, a group id per column, and the names in order."""
    names = list(ys)
    cols, groups = [], []
    for g, name in enumerate(names):
        y = np.asarray(ys[name], dtype=np.float64)
        y = y.reshape(len(y), -1)
        cols.append(y)
        groups.extend([g] * y.shape[1])
    n = len(next(iter(ys.values()))) if ys else 0
    mat = np.concatenate(cols, axis=1) if cols else np.zeros((n, 0))
    return mat, np.asarray(groups, dtype=int), names


def r2_per_column(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """sklearn's ``r2_score(..., multioutput="raw_values")`` (constant column: 1 if perfect else 0)."""
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    pred = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1)
    ss_res = ((y - pred) ** 2).sum(0)
    ss_tot = ((y - y.mean(0)) ** 2).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - ss_res / ss_tot
    return np.where(ss_tot > 0, r2, (ss_res == 0).astype(float))


def _per_latent(values: np.ndarray, groups: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    return {name: float(values[groups == g].mean()) for g, name in enumerate(names)}


def _regression(data: ProbeData, kind: str, *, rng: np.random.Generator, backend: str, device: Any,
                n_fit: int | None, n_score: int | None, **params: Any) -> dict[str, float]:
    if not data.y_fit:
        return {}
    random_state = int(rng.integers(2**31))  # drawn first: the probe's seed does not depend on n_fit
    data = data.sample_fit(n_fit, rng).head(None, n_score)
    zf, zs = data.standardized()
    yf, groups, names = _stack(data.y_fit)
    ys, _, _ = _stack(data.y_score)
    probe = make_probe(kind, backend=backend, device=device, random_state=random_state, **params)
    if kind == "linear":  # one least-squares solve is exactly per-column regression
        probe.fit(zf, yf)
    else:
        probe.fit(zf, yf, groups=groups)
    r2 = np.clip(r2_per_column(ys, probe.predict(zs)), 0.0, 1.0)
    return _per_latent(r2, groups, names)


# ============================================================================ regression metrics
@METRICS.register("r2_linear", higher_is_better=True, subsamples_fit=True, stochastic=False, kinds=("continuous", "discrete"), type="probe", main_key="identifiable", range=(0.0, 1.0))
def r2_linear(data: ProbeData, *, rng: np.random.Generator, backend: str = "torch", device: Any = None,
              n_fit: int | None = None, n_score: int | None = None) -> dict[str, float]:
    """R² per latent of a linear (least-squares, with intercept) probe, clipped to [0, 1].

    Example:
        >>> r2_linear(data, rng=np.random.default_rng(0))
        {'s1': 0.97, 'm_x': 0.02}
    """
    return _regression(data, "linear", rng=rng, backend=backend, device=device, n_fit=n_fit, n_score=n_score)


@METRICS.register("r2_kernel", higher_is_better=True, subsamples_fit=True, stochastic=False, kinds=("continuous", "discrete"), type="probe", main_key="identifiable", range=(0.0, 1.0))
def r2_kernel(data: ProbeData, *, rng: np.random.Generator, backend: str = "torch", device: Any = None,
              n_fit: int | None = None, n_score: int | None = None, alphas: Sequence[float] = (1.0, 0.1, 0.01, 0.001),
              gammas: Sequence[float] | None = None, cv: int = 3) -> dict[str, float]:
    """R² per latent of an RBF kernel-ridge probe with the papers' 3-fold grid search.

    Each latent gets its own grid search (as the reference code's one ``GridSearchCV`` per target);
    ``n_fit`` caps the fit rows (the grid search is O(n³)).
    """
    params: dict[str, Any] = {"alphas": tuple(alphas), "cv": cv}
    if gammas is not None:
        params["gammas"] = tuple(gammas)
    return _regression(data, "kernel_ridge", rng=rng, backend=backend, device=device, n_fit=n_fit, n_score=n_score, **params)


@METRICS.register("r2_mlp", higher_is_better=True, subsamples_fit=True, stochastic=True, kinds=("continuous", "discrete"), type="probe", main_key="identifiable", range=(0.0, 1.0))
def r2_mlp(data: ProbeData, *, rng: np.random.Generator, backend: str = "torch", device: Any = None,
           n_fit: int | None = None, n_score: int | None = None, hidden: int = 100, max_iter: int = 200,
           alpha: float = 1e-4, lr: float = 1e-3, batch_size: int = 200, tol: float = 1e-4,
           n_iter_no_change: int = 10) -> dict[str, float]:
    """R² per latent of a one-hidden-layer MLP probe (sklearn ``MLPRegressor`` defaults), one per latent."""
    return _regression(data, "mlp_regressor", rng=rng, backend=backend, device=device, n_fit=n_fit, n_score=n_score,
                       hidden=hidden, max_iter=max_iter, alpha=alpha, lr=lr, batch_size=batch_size, tol=tol,
                       n_iter_no_change=n_iter_no_change)


# ============================================================================ classification metrics
def matthews_corrcoef(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Multiclass Matthews correlation (Gorodkin's R_K), as ``sklearn.metrics.matthews_corrcoef``."""
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    labels, codes = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    k = len(labels)
    conf = np.bincount(codes[: len(y_true)] * k + codes[len(y_true) :], minlength=k * k).reshape(k, k).astype(np.float64)
    t_sum, p_sum = conf.sum(1), conf.sum(0)
    n, correct = conf.sum(), np.trace(conf)
    cov_ytyp = correct * n - t_sum @ p_sum
    cov_ypyp = n**2 - p_sum @ p_sum
    cov_ytyt = n**2 - t_sum @ t_sum
    denom = np.sqrt(cov_ytyt * cov_ypyp)
    return 0.0 if denom == 0 else float(cov_ytyp / denom)


def _classification(data: ProbeData, kind: str, score: Callable[[np.ndarray, np.ndarray], float], *,
                    rng: np.random.Generator, backend: str, device: Any, n_fit: int | None, n_score: int | None,
                    **params: Any) -> dict[str, float]:
    if not data.y_fit:
        return {}
    random_state = int(rng.integers(2**31))
    data = data.sample_fit(n_fit, rng).head(None, n_score)
    zf, zs = data.standardized()
    names = list(data.y_fit)
    fit_cols = [np.asarray(data.y_fit[n]).reshape(len(zf), -1) for n in names]
    score_cols = [np.asarray(data.y_score[n]).reshape(len(zs), -1) for n in names]
    yf, ys = np.concatenate(fit_cols, axis=1), np.concatenate(score_cols, axis=1)
    groups = np.concatenate([[g] * c.shape[1] for g, c in enumerate(fit_cols)])
    probe = make_probe(kind, backend=backend, device=device, random_state=random_state, **params)
    pred = np.asarray(probe.fit(zf, yf).predict(zs)).reshape(len(zs), -1)
    per_col = np.array([score(ys[:, j], pred[:, j]) for j in range(ys.shape[1])])
    return _per_latent(per_col, groups, names)


def _accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(y == p))


_CLASSIFIERS = {"logistic": "logistic", "mlp": "mlp_classifier"}


@METRICS.register("acc_logistic", higher_is_better=True, subsamples_fit=True, stochastic=False, kinds=("categorical", "discrete"), type="probe", main_key="identifiable", range=(0.0, 1.0))
def acc_logistic(data: ProbeData, *, rng: np.random.Generator, backend: str = "torch", device: Any = None,
                 n_fit: int | None = None, n_score: int | None = None, C: float = 1.0, max_iter: int = 1000) -> dict[str, float]:
    """Accuracy per latent of a multinomial logistic-regression probe (L2, ``C``)."""
    return _classification(data, "logistic", _accuracy, rng=rng, backend=backend, device=device, n_fit=n_fit,
                           n_score=n_score, C=C, max_iter=max_iter)


@METRICS.register("acc_mlp", higher_is_better=True, subsamples_fit=True, stochastic=True, kinds=("categorical", "discrete"), type="probe", main_key="identifiable", range=(0.0, 1.0))
def acc_mlp(data: ProbeData, *, rng: np.random.Generator, backend: str = "torch", device: Any = None,
            n_fit: int | None = None, n_score: int | None = None, hidden: int = 100, max_iter: int = 200) -> dict[str, float]:
    """Accuracy per latent of an MLP classifier probe (sklearn ``MLPClassifier`` defaults)."""
    return _classification(data, "mlp_classifier", _accuracy, rng=rng, backend=backend, device=device, n_fit=n_fit,
                           n_score=n_score, hidden=hidden, max_iter=max_iter)


@METRICS.register("mcc_matthews", higher_is_better=True, subsamples_fit=True, stochastic=True, kinds=("categorical", "discrete"), type="probe", main_key="identifiable", range=(-1.0, 1.0))
def mcc_matthews(data: ProbeData, *, rng: np.random.Generator, backend: str = "torch", device: Any = None,
                 n_fit: int | None = None, n_score: int | None = None, probe: str = "logistic",
                 **probe_params: Any) -> dict[str, float]:
    """Multiclass Matthews correlation per latent of a classifier probe (``probe``: logistic or mlp)."""
    if probe not in _CLASSIFIERS:
        raise InvalidConfigError(f"mcc_matthews: unknown probe {probe!r}; choose one of {list(_CLASSIFIERS)}.")
    return _classification(data, _CLASSIFIERS[probe], matthews_corrcoef, rng=rng, backend=backend, device=device,
                           n_fit=n_fit, n_score=n_score, **probe_params)


# ============================================================================ mcc_corr (cl-ica)
def _rank(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, axis=0)


def _abs_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|Pearson| between the columns of ``a`` (n, p) and ``b`` (n, q); constant columns → 0."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    na, nb = np.sqrt((a * a).sum(0)), np.sqrt((b * b).sum(0))
    with np.errstate(divide="ignore", invalid="ignore"):
        c = (a.T @ b) / np.outer(na, nb)
    return np.nan_to_num(np.abs(c), nan=0.0, posinf=0.0, neginf=0.0)


@METRICS.register("mcc_corr", higher_is_better=True, subsamples_fit=False, stochastic=False, kinds=("continuous", "discrete"), type="probe", main_key="mean", range=(0.0, 1.0))
def mcc_corr(data: ProbeData, *, rng: np.random.Generator, backend: str = "torch", device: Any = None,
             method: str = "pearson", n_fit: int | None = None, n_score: int | None = None) -> dict[str, float]:
    """cl-ica's mean correlation coefficient, per latent, on the score split.

    All ground-truth components of the given latents are matched one-to-one to embedding
    dimensions by the Hungarian algorithm on |corr| (Pearson, or Spearman = Pearson of ranks);
    a latent scores the mean |corr| of its components' matches (0 for a component left unmatched
    when the embedding has fewer dimensions). ``rng``, ``backend``, ``device`` and ``n_fit`` are
    accepted for a uniform signature and unused.
    """
    from scipy.optimize import linear_sum_assignment

    if method not in ("pearson", "spearman"):
        raise InvalidConfigError(f"mcc_corr: method must be 'pearson' or 'spearman', got {method!r}.")
    if not data.y_score:
        return {}
    data = data.head(None, n_score)
    y, groups, names = _stack(data.y_score)
    z = np.asarray(data.z_score, dtype=np.float64)
    if method == "spearman":
        y, z = _rank(y), _rank(z)
    c = _abs_corr(y, z)
    rows, cols = linear_sum_assignment(-c)
    matched = np.zeros(y.shape[1])
    matched[rows] = c[rows, cols]
    return _per_latent(matched, groups, names)


# ============================================================================ derived
@METRICS.register("identifiability_consistency", higher_is_better=True, kinds=(), type="derived", main_key="score", range=(0.0, 1.0))
def identifiability_consistency(
    recovery: Mapping[str, Mapping[str, float]],
    expected: Sequence[str],
    *,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Measured per-latent recovery vs the theory's prediction (``expected_identifiable``).

    Args:
        recovery: modality → latent → recovery score in [0, 1] (e.g. clipped R²).
        expected: the latents theory says are recovered; every other latent should score ≈ 0.
        threshold: a latent counts as "recovered" when its score is at least this.

    Returns:
        ``score``: balanced agreement — the mean of (mean recovery over expected latents) and
        (mean of 1 − recovery over the others), each over all (modality, latent) pairs; 1 means the
        measurement matches the theory exactly. ``accuracy``: fraction of pairs whose thresholded
        recovery equals the prediction. ``table``: one row per (modality, latent).

    Example:
        >>> identifiability_consistency({"x": {"s1": 0.99, "s2": 0.02}}, ["s1"])["score"]
        0.985
    """
    expected_set = set(expected)
    table, agree_pos, agree_neg, hits = [], [], [], []
    for modality, scores in recovery.items():
        for latent, value in scores.items():
            v = float(np.clip(value, 0.0, 1.0))
            pred = latent in expected_set
            (agree_pos if pred else agree_neg).append(v if pred else 1.0 - v)
            hits.append((v >= threshold) == pred)
            table.append({"modality": modality, "latent": latent, "measured": v, "expected": pred,
                          "agrees": bool((v >= threshold) == pred)})
    parts = [float(np.mean(p)) for p in (agree_pos, agree_neg) if p]
    return {
        "score": float(np.mean(parts)) if parts else float("nan"),
        "accuracy": float(np.mean(hits)) if hits else float("nan"),
        "expected": sorted(expected_set),
        "threshold": threshold,
        "table": table,
    }



# ============================================================================ generative metrics
# Scored on generations, not embeddings (type "generative": the step of
# mmbench.harness.generative_metrics, which is imported on first use).
_GENERATIVE = "mmbench.harness.generative_metrics:"
METRICS.register("coherence_conditional", _GENERATIVE + "coherence_conditional_metric", type="generative", kinds=(),
                 higher_is_better=True, main_key="leave_one_out", needs_classifiers=True, stochastic=True, range=(0.0, 1.0))
METRICS.register("coherence_unconditional", _GENERATIVE + "coherence_unconditional_metric", type="generative", kinds=(),
                 higher_is_better=True, main_key="coherence", needs_classifiers=True, stochastic=True, range=(0.0, 1.0))
METRICS.register("linear_probe_accuracy", _GENERATIVE + "linear_probe_accuracy", type="generative", kinds=(),
                 higher_is_better=True, main_key="shared", stochastic=False, range=(0.0, 1.0))
METRICS.register("log_likelihood", _GENERATIVE + "log_likelihood_metric", type="generative", kinds=(),
                 higher_is_better=True, main_key="log_likelihood", stochastic=True, range=None)
METRICS.register("fid", _GENERATIVE + "fid_metric", type="generative", kinds=(), higher_is_better=False, main_key="mean",
                 stochastic=True, optional=True, range=None)
