"""Invertible random MLPs: the "renderer" of the numerical simulations.

The reference construction (Hyvärinen & Morioka; cl-ica; the multimodal identifiability and
misalignment papers): ``L`` bias-free square layers, LeakyReLU(0.2) between them (none after the
last), each weight matrix drawn with i.i.d. U(−1, 1) entries and unit-L2-norm **columns**, and
redrawn until its 2-norm condition number is at most a threshold — the ``ratio`` quantile of the
condition numbers of ``pool`` such random matrices (ratio 1e-3 in the identifiability papers,
0 = the pool's minimum in cl-ica).
"""

from __future__ import annotations

import numpy as np

from mmbench.errors import InvalidConfigError

__all__ = ["condition_threshold", "invertible_mlp_weights", "mix", "random_unit_column_matrices"]


def random_unit_column_matrices(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` matrices ``(n, n)`` with U(−1, 1) entries and unit-norm columns."""
    mats = rng.uniform(-1.0, 1.0, size=(count, n, n))
    mats /= np.linalg.norm(mats, axis=1, keepdims=True)
    return mats


def condition_threshold(n: int, rng: np.random.Generator, *, ratio: float = 1e-3, pool: int = 25_000) -> float:
    """The ``ratio`` quantile (by rank, as the reference code) of ``pool`` condition numbers."""
    if not 0.0 <= ratio < 1.0:
        raise InvalidConfigError(f"cond_ratio must be in [0, 1), got {ratio!r}.")
    conds = np.sort(np.linalg.cond(random_unit_column_matrices(n, pool, rng)))
    return float(conds[int(pool * ratio)])


def invertible_mlp_weights(
    n: int,
    rng: np.random.Generator,
    *,
    layers: int = 3,
    ratio: float = 1e-3,
    pool: int = 25_000,
    batch: int = 4096,
    max_draws: int = 10_000_000,
) -> np.ndarray:
    """Weights ``(layers, n, n)`` of one invertible mixing MLP (applied as ``x ↦ W x``)."""
    if n < 1 or layers < 1:
        raise InvalidConfigError(f"An invertible MLP needs n >= 1 and layers >= 1 (got n={n}, layers={layers}).")
    threshold = condition_threshold(n, rng, ratio=ratio, pool=pool)
    weights = []
    draws = 0
    while len(weights) < layers:
        mats = random_unit_column_matrices(n, batch, rng)
        ok = np.flatnonzero(np.linalg.cond(mats) <= threshold)
        take = ok[: layers - len(weights)]
        weights.extend(mats[i] for i in take)
        draws += batch
        if draws > max_draws:
            raise InvalidConfigError(f"Could not draw a matrix with condition number <= {threshold:.4g} in {max_draws} draws.")
    return np.stack(weights)


def mix(z: np.ndarray, weights: np.ndarray, *, slope: float = 0.2) -> np.ndarray:
    """Apply the MLP to rows of ``z``: ``W_L · σ(… σ(W_1 z))`` with LeakyReLU(slope) σ."""
    if not 0.0 <= slope <= 1.0:
        raise InvalidConfigError(f"LeakyReLU slope must be in [0, 1], got {slope!r}.")
    h = np.asarray(z, dtype=np.float64)
    for i, w in enumerate(weights):
        h = h @ w.T
        if i < len(weights) - 1:
            np.maximum(h, slope * h, out=h)  # LeakyReLU for 0 <= slope <= 1, in place
    return h
