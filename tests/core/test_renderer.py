"""The renderer contract (DESIGN §3) and the numerical simulations' mixing renderer."""

from __future__ import annotations

import numpy as np
import pytest

from mmbench.core.renderer import Renderer, render
from mmbench.errors import MMBenchError
from mmbench.rendering.mixing import MixingRenderer, mix


def test_mixing_renderer_concatenates_its_inputs_in_order() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(2, 3, 3))
    latents = {"a": rng.normal(size=(5, 2)), "b": rng.normal(size=5)}
    r = MixingRenderer(("a", "b"), w)
    assert isinstance(r, Renderer)
    expected = mix(np.concatenate([latents["a"], latents["b"][:, None]], axis=1), w)
    assert np.array_equal(render(r, latents, rng=rng), expected)
    swapped = MixingRenderer(("b", "a"), w).render(latents, rng=rng)
    assert not np.allclose(swapped, expected)


def test_render_checks_one_observation_per_row() -> None:
    class Short:
        def render(self, latents, *, rng):  # type: ignore[no-untyped-def]
            return ["only one caption"]

    with pytest.raises(MMBenchError, match=r"Short.render returned 1 observations for 3 rows"):
        render(Short(), {"z": np.zeros(3)}, rng=np.random.default_rng(0))
