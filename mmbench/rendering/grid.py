"""Sample grids of image datasets (modalities × examples), written with Pillow only.

Used by ``mmbench show DATASET --grid out.png`` and by the dataset cards.

Example:
    >>> ds = mmbench.load("polymnist", split="test")
    >>> save_grid(ds, "polymnist.png", num=8)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mmbench.errors import InvalidConfigError, MMBenchError

if TYPE_CHECKING:
    from PIL import Image

    from mmbench.core.dataset import Dataset

__all__ = ["grid_image", "save_grid", "to_hwc"]


def to_hwc(image: np.ndarray) -> np.ndarray:
    """One image as ``H × W × 3`` uint8, from CHW/HWC colour or HW grey (floats in [0, 1] scaled)."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = np.moveaxis(img, 0, -1)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[-1] not in (1, 3):
        raise InvalidConfigError(f"Cannot draw an array of shape {np.shape(image)} as an image (expected CHW, HWC or HW).")
    if img.dtype != np.uint8:
        img = np.clip(np.rint(img.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    return np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img


def grid_image(
    rows: Mapping[str, Sequence[np.ndarray] | np.ndarray],
    *,
    zoom: int = 2,
    pad: int = 2,
    labels: bool = True,
    captions: Sequence[str] | None = None,
) -> Image.Image:
    """A PIL image: one row per key of ``rows`` (labelled on the left), one column per example.

    Args:
        rows: row label → sequence of images (CHW, HWC or HW; all the same size).
        zoom: integer nearest-neighbour magnification (28-pixel images are tiny).
        pad: white pixels between cells (before zoom).
        labels: draw the row labels.
        captions: one text per column, drawn (word-wrapped) under it.
    """
    from PIL import Image, ImageDraw, ImageFont

    if not rows:
        raise InvalidConfigError("grid_image needs at least one row.")
    cells = {name: [to_hwc(x) for x in imgs] for name, imgs in rows.items()}
    ncols = max(len(v) for v in cells.values())
    h, w = next(iter(cells.values()))[0].shape[:2]
    height = len(cells) * (h + pad) + pad
    width = ncols * (w + pad) + pad
    canvas = np.full((height, width, 3), 255, np.uint8)
    for r, imgs in enumerate(cells.values()):
        for c, img in enumerate(imgs):
            if img.shape[:2] != (h, w):
                raise InvalidConfigError(f"All grid images must be {h}×{w}; got {img.shape[:2]}.")
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            canvas[y : y + h, x : x + w] = img
    if zoom > 1:
        canvas = canvas.repeat(zoom, axis=0).repeat(zoom, axis=1)
    grid = Image.fromarray(canvas)
    if captions is not None:
        grid = _with_captions(grid, captions, cell=(w + pad) * zoom, offset=pad * zoom)
    if not labels:
        return grid
    font = ImageFont.load_default()
    label_w = 8 + max(int(ImageDraw.Draw(grid).textlength(name, font=font)) for name in cells)
    out = Image.new("RGB", (grid.width + label_w, grid.height), "white")
    out.paste(grid, (label_w, 0))
    draw = ImageDraw.Draw(out)
    for r, name in enumerate(cells):
        y = (pad + r * (h + pad) + h // 2) * zoom
        draw.text((4, y), name, fill="black", font=font, anchor="lm")
    return out


def _with_captions(grid: Image.Image, captions: Sequence[str], *, cell: int, offset: int) -> Image.Image:
    """``grid`` with each caption wrapped to its column's width in a white band below."""
    import textwrap

    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    measure = ImageDraw.Draw(grid)
    char_w = max(1.0, measure.textlength("abcdefghijklmnopqrstuvwxyz", font=font) / 26)
    lines = [textwrap.wrap(str(c), width=max(8, int((cell - 4) / char_w))) for c in captions]
    line_h = 12
    out = Image.new("RGB", (grid.width, grid.height + line_h * max(map(len, lines), default=0) + 4), "white")
    out.paste(grid, (0, 0))
    draw = ImageDraw.Draw(out)
    for col, wrapped in enumerate(lines):
        for k, line in enumerate(wrapped):
            draw.text((offset + col * cell, grid.height + 2 + k * line_h), line, fill="black", font=font)
    return out


def save_grid(ds: Dataset, path: str | os.PathLike[str], *, num: int = 8, zoom: int = 2, start: int = 0) -> Path:
    """Write a modalities × examples PNG of the image modalities of ``ds``; return the path.

    A text modality (captions) is drawn under the images of each example.

    Args:
        ds: a loaded split.
        path: output file (``.png``; parent folders are created).
        num: number of examples (columns), from ``start``.
        zoom: nearest-neighbour magnification.
        start: first example.

    Raises:
        MMBenchError: the dataset has no image modality.
    """
    images = [name for name, mod in ds.info.modalities.items() if mod.kind == "image"]
    if not images:
        raise MMBenchError(
            f"{ds.id} has no image modality ({', '.join(f'{k}: {m.kind}' for k, m in ds.info.modalities.items())}); "
            "a sample grid needs images. Use `mmbench show` without --grid."
        )
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise InvalidConfigError(f"num must be a positive integer, got {num!r}.")
    stop = min(start + num, len(ds))
    if start >= stop:
        raise InvalidConfigError(f"No examples in [{start}, {start + num}) for a split of {len(ds)}.")
    rows = {name: np.asarray(ds.column(name)[start:stop]) for name in images}
    texts = [name for name, mod in ds.info.modalities.items() if mod.kind == "text"]
    captions = list(ds.column(texts[0])[start:stop]) if texts else None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid_image(rows, zoom=zoom, captions=captions).save(path)
    return path
