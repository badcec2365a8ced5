"""Sample grids of image datasets (modalities × examples), written with Pillow only.

Datasets with captions (a ``text`` modality) get one row per example instead: its images, then
its caption. Used by ``mmbench show DATASET --grid out.png`` and by the dataset cards.

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

__all__ = ["captioned_grid", "grid_image", "save_grid", "to_hwc"]


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
    rows: Mapping[str, Sequence[np.ndarray] | np.ndarray], *, zoom: int = 2, pad: int = 2, labels: bool = True
) -> Image.Image:
    """A PIL image: one row per key of ``rows`` (labelled on the left), one column per example.

    Args:
        rows: row label → sequence of images (CHW, HWC or HW; all the same size).
        zoom: integer nearest-neighbour magnification (28-pixel images are tiny).
        pad: white pixels between cells (before zoom).
        labels: draw the row labels.
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


def captioned_grid(
    images: Sequence[Sequence[np.ndarray]], captions: Sequence[str], *, zoom: int = 2, pad: int = 4, width: int = 64
) -> Image.Image:
    """A PIL image: one row per example, its images side by side and then its caption (wrapped).

    Args:
        images: per example, its images (CHW, HWC or HW; all the same size).
        captions: per example, its text.
        zoom: integer nearest-neighbour magnification of the images.
        pad: white pixels between cells.
        width: characters per caption line.
    """
    import textwrap

    from PIL import Image, ImageDraw, ImageFont

    if not images or len(images) != len(captions):
        raise InvalidConfigError(f"captioned_grid needs one caption per example, got {len(images)} examples and {len(captions)} captions.")
    strips = [grid_image({"": list(imgs)}, zoom=zoom, pad=pad // 2 or 1, labels=False) for imgs in images]
    font = ImageFont.load_default()
    lines = [textwrap.wrap(c, width) or [""] for c in captions]
    probe = ImageDraw.Draw(strips[0])
    line_h = int(probe.textbbox((0, 0), "Ag", font=font)[3]) + 2
    text_w = max(int(probe.textlength(line, font=font)) for wrapped in lines for line in wrapped) + 2 * pad
    row_h = [max(strip.height, len(w) * line_h + pad) for strip, w in zip(strips, lines, strict=True)]
    out = Image.new("RGB", (max(s.width for s in strips) + text_w, sum(row_h) + pad), "white")
    draw = ImageDraw.Draw(out)
    y = 0
    for strip, wrapped, h in zip(strips, lines, row_h, strict=True):
        out.paste(strip, (0, y))
        for k, line in enumerate(wrapped):
            draw.text((strip.width + pad, y + pad + k * line_h), line, fill="black", font=font)
        y += h
    return out


def save_grid(ds: Dataset, path: str | os.PathLike[str], *, num: int = 8, zoom: int = 2, start: int = 0,
              spread: bool = False) -> Path:
    """Write a modalities × examples PNG of the image modalities of ``ds``; return the path.

    A dataset with captions (a ``text`` modality) is drawn one example per row, its images then
    its caption (:func:`captioned_grid`).

    Args:
        ds: a loaded split.
        path: output file (``.png``; parent folders are created).
        num: number of examples (columns), from ``start``.
        zoom: nearest-neighbour magnification.
        start: first example.
        spread: take ``num`` examples evenly spaced over the split instead of ``num`` in a row
            (splits stored in a sorted order, e.g. MPI3D's, vary only in their last factor locally).

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
    index: slice | np.ndarray = slice(start, stop)
    if spread:
        index = np.unique(np.linspace(0, len(ds) - 1, min(num, len(ds))).round().astype(np.int64))
    rows = {name: np.asarray(ds.column(name)[index]) for name in images}
    texts = [name for name, mod in ds.info.modalities.items() if mod.kind == "text"]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if texts:
        captions = [" | ".join(parts) for parts in zip(*(ds.column(t)[index] for t in texts), strict=True)]
        examples = [[rows[name][i] for name in images] for i in range(len(captions))]
        captioned_grid(examples, captions, zoom=zoom).save(path)
    else:
        grid_image(rows, zoom=zoom).save(path)
    return path
