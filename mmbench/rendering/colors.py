"""Colours of the 3D scenes: Python ``colorsys`` hue → RGB (vectorised) and named colour palettes.

Multimodal3DIdent describes an object's hue in text by the name of the nearest colour (Euclidean
distance in RGB) of a palette drawn per sample from matplotlib's Tableau (10), CSS4 (148) and XKCD
(949) colours. The palettes are kept as data in ``mmbench/rendering/data/palettes.json`` (copied
from matplotlib's ``_color_data.py``, in its dict order), so no matplotlib is needed, and the
reference generator's rules are reproduced exactly:

* hue → RGB is ``colorsys.hsv_to_rgb(h, s, v)``, including its behaviour for hues outside
  ``[0, 1]`` (it does not wrap them: the spotlight and background hues ``(u − 0.5)/2`` of the
  reference renderer give components below 0 and above 1 for ``u < 0.5``);
* colours of a palette with the same RGB value (CSS4's ``aqua``/``cyan``) are one entry named by
  the **last** of their names, and a tie in distance goes to the **first** entry in dict order;
* the colour *index* is the rank of the name among all 1,107 names sorted.

Example:
    >>> rgb = hsv_to_rgb(np.array([0.0, 1 / 3]), 1.0, 1.0)
    >>> names = color_names(nearest_color(rgb, "tableau"), "tableau")
    >>> names
    ['tab:red', 'tab:green']
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from mmbench.errors import InvalidConfigError, did_you_mean

__all__ = [
    "PALETTES",
    "Palette",
    "all_color_names",
    "color_index",
    "color_names",
    "hsv_to_rgb",
    "nearest_color",
    "palette",
]

#: The palettes of the reference generator, in its order (the per-sample draw picks one of them).
PALETTES = ("tableau", "css4", "xkcd")


def hsv_to_rgb(h: Any, s: Any = 1.0, v: Any = 1.0) -> np.ndarray:
    """``colorsys.hsv_to_rgb`` over arrays: ``(..., 3)`` float64, bit-for-bit the same values.

    Like ``colorsys`` (and unlike matplotlib), hues outside ``[0, 1)`` are not wrapped: ``int()``
    truncates toward zero, so ``h = −0.25`` with ``s = 0.8`` gives ``(1.0, 0.2, 1.4)``. The
    reference renderer passes such hues for the spotlight and background colours.
    """
    h, s, v = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (h, s, v)))
    i = np.trunc(h * 6.0)
    f = h * 6.0 - i
    p = v * (1.0 - s)
    q = v * (1.0 - s * f)
    t = v * (1.0 - s * (1.0 - f))
    sector = np.mod(i.astype(np.int64), 6)
    r = np.choose(sector, (v, q, p, p, t, v))
    g = np.choose(sector, (t, v, v, q, p, p))
    b = np.choose(sector, (p, p, t, v, v, q))
    out = np.stack([r, g, b], axis=-1)
    grey = s == 0.0  # colorsys returns (v, v, v) before computing anything
    return np.where(grey[..., None], v[..., None], out)


@dataclasses.dataclass(frozen=True, eq=False)
class Palette:
    """A named colour palette as the reference generator sees it.

    Attributes:
        name: ``"tableau"``, ``"css4"`` or ``"xkcd"``.
        names: every colour name, in matplotlib's order (``tab:blue``, ``aliceblue``, ``xkcd:cloudy blue``).
        rgb: ``(len(names), 3)`` float64 in ``[0, 1]``.
        entries: indices into ``names`` of the distinct RGB values, in order of first
            occurrence, each named by its **last** name (the reference's ``{rgb: name}`` dict).
    """

    name: str
    names: tuple[str, ...]
    rgb: np.ndarray
    entries: np.ndarray


def _hex_to_rgb(code: str) -> tuple[float, float, float]:
    code = code.lstrip("#")
    return tuple(int(code[k : k + 2], 16) / 255 for k in (0, 2, 4))  # type: ignore[return-value]


@cache
def _palette_data() -> dict[str, list[list[str]]]:
    text = resources.files("mmbench.rendering").joinpath("data/palettes.json").read_text(encoding="utf-8")
    return json.loads(text)["palettes"]


@cache
def palette(name: str) -> Palette:
    """The palette ``name`` (one of :data:`PALETTES`)."""
    if name not in PALETTES:
        raise InvalidConfigError(f"Unknown colour palette {name!r}.{did_you_mean(str(name), PALETTES)} Palettes: {list(PALETTES)}.")
    pairs = _palette_data()[name]
    names = tuple(n for n, _ in pairs)
    rgb = np.array([_hex_to_rgb(code) for _, code in pairs], dtype=np.float64)
    last: dict[tuple[float, ...], int] = {}
    for i, row in enumerate(map(tuple, rgb)):
        last[row] = i  # dict keeps the first position, the value becomes the last name
    entries = np.fromiter(last.values(), dtype=np.int64, count=len(last))
    rgb.setflags(write=False)
    entries.setflags(write=False)
    return Palette(name, names, rgb, entries)


#: Rows per block of :func:`nearest_color` (a block's distance matrix is ~8 MB for XKCD's 949 colours).
_NEAREST_CHUNK = 1024


def nearest_color(rgb: Any, palette_name: str) -> np.ndarray:
    """Index (into ``palette(palette_name).names``) of the nearest palette colour of each RGB row.

    Euclidean distance in RGB; ties go to the first entry in the palette's order, duplicate RGB
    values to their last name (the reference generator's ``ColorPalette.nearest_neighbor``).
    """
    pal = palette(palette_name)
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim != 2 or rgb.shape[1] != 3:
        raise InvalidConfigError(f"nearest_color needs an (n, 3) array of RGB rows, got shape {rgb.shape}.")
    table = pal.rgb[pal.entries].T.copy()  # (3, k): one row per channel
    out = np.empty(len(rgb), dtype=np.int64)
    for start in range(0, len(rgb), _NEAREST_CHUNK):  # (chunk, k) blocks stay in cache
        block = rgb[start : start + _NEAREST_CHUNK]
        dist = (block[:, 0, None] - table[0]) ** 2  # summed channel by channel, in the same order
        dist += (block[:, 1, None] - table[1]) ** 2  # (and so bit for bit) as ``(d ** 2).sum(-1)``
        dist += (block[:, 2, None] - table[2]) ** 2
        out[start : start + len(block)] = np.argmin(dist, axis=1)  # the first minimum, as the strict '<' scan
    return pal.entries[out]


def color_names(index: Any, palette_name: str) -> list[str]:
    """The names of palette colours ``index``."""
    names = palette(palette_name).names
    return [names[i] for i in np.asarray(index).tolist()]


@cache
def all_color_names() -> tuple[str, ...]:
    """All 1,107 names of the three palettes, sorted: position = the reference's colour index."""
    return tuple(sorted(n for p in PALETTES for n in palette(p).names))


@cache
def _index_of() -> dict[str, int]:
    return {n: i for i, n in enumerate(all_color_names())}


def color_index(names: Any) -> np.ndarray:
    """The reference's ``object_color_index`` of each colour name (rank among all sorted names)."""
    lookup = _index_of()
    try:
        return np.fromiter((lookup[n] for n in names), dtype=np.int64)
    except KeyError as exc:
        raise InvalidConfigError(f"{exc.args[0]!r} is not a colour name of the Tableau, CSS4 or XKCD palettes.") from None
