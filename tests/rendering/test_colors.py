"""Colours of the 3D scenes: colorsys hue → RGB and the reference's nearest-colour names."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

from mmbench.errors import InvalidConfigError
from mmbench.rendering.colors import (
    PALETTES,
    all_color_names,
    color_index,
    color_names,
    hsv_to_rgb,
    nearest_color,
    palette,
)


def test_hsv_to_rgb_is_colorsys_including_negative_hues():
    rng = np.random.default_rng(0)
    h = np.concatenate([rng.uniform(-1, 1.5, 3000), [-0.25, -1 / 6, 0.0, 1 / 6, 0.5, 1.0]])
    s = rng.uniform(0, 1, len(h))
    s[:10] = 0.0
    v = rng.uniform(0.2, 1, len(h))
    ref = np.array([colorsys.hsv_to_rgb(a, b, c) for a, b, c in zip(h.tolist(), s.tolist(), v.tolist(), strict=True)])
    assert np.array_equal(hsv_to_rgb(h, s, v), ref)
    # the research note's spotlight values: out-of-range components for u < 0.5
    assert np.allclose(hsv_to_rgb((np.array([0.0, 0.2, 1.0]) - 0.5) / 2, 0.8, 1.0),
                       [[1.0, 0.2, 1.4], [1.0, -0.52, 0.2], [0.6, 1.0, 0.2]])


def _reference_nearest(rgb, pairs):
    """The reference generator's ColorPalette.nearest_neighbor, as written there (a scalar scan)."""
    to_name = {tuple(int(code[k : k + 2], 16) / 255 for k in (1, 3, 5)): name for name, code in pairs}
    best, best_d = None, np.inf
    for key in to_name:
        d = np.linalg.norm(np.array(key) - np.array(rgb))
        if d < best_d:
            best, best_d = key, d
    return to_name[best]


@pytest.mark.parametrize("name", PALETTES)
def test_nearest_color_matches_the_reference_scan(name):
    from mmbench.rendering.colors import _palette_data

    pairs = _palette_data()[name]
    hues = np.random.default_rng(1).random(150)
    rgb = hsv_to_rgb(hues)
    got = color_names(nearest_color(rgb, name), name)
    assert got == [_reference_nearest(row, pairs) for row in rgb.tolist()]


def test_palettes_sizes_duplicates_and_index():
    assert [len(palette(p).names) for p in PALETTES] == [10, 148, 949]
    assert len(palette("css4").entries) == 139  # aliases (aqua/cyan, grey/gray, ...) share one entry
    names = all_color_names()
    assert len(names) == 1107 and list(names) == sorted(names)
    assert color_index(["tab:blue", "xkcd:bright aqua"]).tolist() == [names.index("tab:blue"), names.index("xkcd:bright aqua")]
    # saturated hues reach only a few names: 8 Tableau ones, as the note computes
    tab = set(color_names(nearest_color(hsv_to_rgb(np.linspace(0, 1, 2000, endpoint=False)), "tableau"), "tableau"))
    assert tab == {"tab:red", "tab:orange", "tab:olive", "tab:green", "tab:cyan", "tab:blue", "tab:purple", "tab:pink"}


def test_bad_inputs():
    with pytest.raises(InvalidConfigError, match="Unknown colour palette 'xkdc'.*xkcd"):
        palette("xkdc")
    with pytest.raises(InvalidConfigError, match=r"\(n, 3\)"):
        nearest_color(np.zeros(3), "css4")
    with pytest.raises(InvalidConfigError, match="'not-a-colour' is not a colour name"):
        color_index(["not-a-colour"])
