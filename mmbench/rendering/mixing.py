"""Invertible random MLPs: the "renderer" of the numerical simulations.

The reference construction (Hyvärinen & Morioka; cl-ica; the multimodal identifiability and
misalignment papers): ``L`` bias-free square layers, LeakyReLU(0.2) between them (none after the
last), each weight matrix drawn with i.i.d. U(−1, 1) entries and unit-L2-norm **columns**, and
redrawn until its 2-norm condition number is at most a threshold — the ``ratio`` quantile of the
condition numbers of ``pool`` such random matrices (ratio 1e-3 in the identifiability papers,
0 = the pool's minimum in cl-ica).

Pools and candidate batches are drawn in chunks of at most ``CHUNK_ELEMENTS`` matrix entries
(256 MB of float64), so memory stays bounded for any ``n`` (a 25,000 pool at n = 256 would be
13 GB at once). Chunking changes nothing: the entries come from the generator in the same order,
every matrix's condition number is computed on its own, and a batch is always drawn in full.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

from mmbench.errors import InvalidConfigError

__all__ = ["CHUNK_ELEMENTS", "condition_threshold", "invertible_mlp_weights", "mix", "random_unit_column_matrices"]

#: Most matrix entries drawn at once (2**25 float64 = 256 MB).
CHUNK_ELEMENTS = 1 << 25


def random_unit_column_matrices(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` matrices ``(n, n)`` with U(−1, 1) entries and unit-norm columns."""
    mats = rng.uniform(-1.0, 1.0, size=(count, n, n))
    mats /= np.linalg.norm(mats, axis=1, keepdims=True)
    return mats


def _chunks(n: int, count: int) -> Iterator[int]:
    """Sizes of consecutive chunks of ``count`` matrices ``(n, n)``, each within ``CHUNK_ELEMENTS``."""
    step = max(1, CHUNK_ELEMENTS // (n * n))
    for start in range(0, count, step):
        yield min(step, count - start)


def _conditions(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Condition numbers of ``count`` random unit-column matrices, drawn chunk by chunk."""
    return np.concatenate(
        [np.linalg.cond(random_unit_column_matrices(n, k, rng)) for k in _chunks(n, count)]
    ) if count else np.empty(0)


def condition_threshold(n: int, rng: np.random.Generator, *, ratio: float = 1e-3, pool: int = 25_000) -> float:
    """The ``ratio`` quantile (by rank, as the reference code) of ``pool`` condition numbers."""
    if not 0.0 <= ratio < 1.0:
        raise InvalidConfigError(f"cond_ratio must be in [0, 1), got {ratio!r}.")
    if pool < 1:
        raise InvalidConfigError(f"The condition-number pool needs at least one matrix, got pool={pool!r}.")
    conds = np.sort(_conditions(n, pool, rng))
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
        # One batch of candidates, in chunks; the first acceptable ones in draw order are kept.
        # Chunks after the last needed one are still drawn (and dropped unexamined), so that the
        # generator ends where a whole-batch draw would leave it.
        for k in _chunks(n, batch):
            mats = random_unit_column_matrices(n, k, rng)
            if len(weights) < layers:
                ok = np.flatnonzero(np.linalg.cond(mats) <= threshold)
                weights.extend(mats[i] for i in ok[: layers - len(weights)])
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


class MixingRenderer:
    """A :class:`~mmbench.core.renderer.Renderer`: the simulations' frozen invertible MLP.

    The observation is ``mix(concat(latents[c] for c in inputs), weights)``: the named latent
    blocks (``(n,)`` or ``(n, d)`` arrays) concatenated in order, then mixed. Deterministic (no
    draw from ``rng``).

    Example:
        >>> x = MixingRenderer(("content", "style"), weights).render(latents, rng=rng)
    """

    def __init__(self, inputs: tuple[str, ...], weights: np.ndarray, *, slope: float = 0.2) -> None:
        self.inputs = tuple(inputs)
        self.weights = weights
        self.slope = slope

    def render(self, latents: Mapping[str, np.ndarray], *, rng: np.random.Generator) -> np.ndarray:
        blocks = [np.asarray(latents[name]).reshape(len(latents[name]), -1) for name in self.inputs]
        return mix(np.concatenate(blocks, axis=1), self.weights, slope=self.slope)
