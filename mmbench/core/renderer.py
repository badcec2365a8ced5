"""The renderer contract: how one modality sees the latents (DESIGN §3).

A renderer is pure and batched: ``render(latents, *, rng)`` maps a table of latent columns
(``n`` rows each) to the ``n`` observations of **one** modality — an array with ``n`` rows, or a
``list[str]`` of captions — drawing any noise only from ``rng``, with no I/O and no global state.
A builder's ``generate()`` samples the latents of a shard, applies the biases, then composes one
renderer per modality over the whole shard at once (that is what makes builds fast).
Renderers in this package: :class:`mmbench.rendering.mixing.MixingRenderer` (the numerical
simulations' invertible MLPs), the PolyMNIST compositing functions, and the text templates of
:mod:`mmbench.rendering.text`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mmbench.errors import MMBenchError

__all__ = ["Renderer", "render"]


@runtime_checkable
class Renderer(Protocol):
    """One modality's view of the latents: ``render(latents, *, rng) -> array | list[str]``."""

    def render(self, latents: Mapping[str, np.ndarray], *, rng: np.random.Generator) -> Any: ...


def render(renderer: Renderer, latents: Mapping[str, np.ndarray], *, rng: np.random.Generator) -> Any:
    """Call ``renderer`` and check that it returned one observation per row of ``latents``."""
    n = len(next(iter(latents.values()))) if latents else 0
    out = renderer.render(latents, rng=rng)
    got = len(out)
    if got != n:
        raise MMBenchError(f"{type(renderer).__name__}.render returned {got} observations for {n} rows of latents.")
    return out
