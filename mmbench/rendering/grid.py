"""Sample grids of image datasets (modalities × examples), written with Pillow only.

Used by ``mmbench show DATASET --grid out.png`` and by the dataset cards; datasets of vectors get
heatmaps instead (:func:`heatmap_image`, :func:`sample_image`), and datasets with captions (a
``text`` modality) one row per example: its images, then its caption (:func:`captioned_grid`).

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

__all__ = ["captioned_grid", "grid_image", "heatmap_image", "sample_image", "save_grid", "to_hwc"]


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
    from PIL import Image

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
    return _labelled(grid, list(cells), [(pad + r * (h + pad) + h // 2) * zoom for r in range(len(cells))])


def _diverging(values: np.ndarray) -> np.ndarray:
    """Colours of values in [-1, 1]: blue (−1) → white (0) → red (+1), as uint8 RGB."""
    v = np.clip(values, -1.0, 1.0)[..., None]
    red, blue = np.array([255.0, 64.0, 48.0]), np.array([40.0, 90.0, 255.0])
    white = np.full(3, 255.0)
    rgb = np.where(v >= 0, white + v * (red - white), white - v * (blue - white))
    return np.rint(rgb).astype(np.uint8)


def heatmap_image(
    rows: Mapping[str, np.ndarray], *, cell: int = 10, pad: int = 4, labels: bool = True
) -> Image.Image:
    """Vectors as heatmaps: one block per key of ``rows`` (its dimensions down, examples across).

    Args:
        rows: row label → ``(n, d)`` array (the same ``n`` for every key).
        cell: pixels per value.
        pad: white pixels between blocks.
        labels: draw the row labels.

    Each block is scaled by its own largest absolute value, blue (negative) to red (positive).
    """
    from PIL import Image

    if not rows:
        raise InvalidConfigError("heatmap_image needs at least one row.")
    blocks = {}
    for name, arr in rows.items():
        x = np.asarray(arr, dtype=np.float64)
        x = x.reshape(len(x), -1).T  # (d, n): dimensions down, examples across
        scale = np.abs(x).max() if x.size else 0.0
        blocks[name] = _diverging(x / scale if scale > 0 else x).repeat(cell, axis=0).repeat(cell, axis=1)
    width = max(b.shape[1] for b in blocks.values()) + 2 * pad
    height = sum(b.shape[0] + pad for b in blocks.values()) + pad
    canvas = np.full((height, width, 3), 255, np.uint8)
    centres, y = [], pad
    for block in blocks.values():
        canvas[y : y + block.shape[0], pad : pad + block.shape[1]] = block
        centres.append(y + block.shape[0] // 2)
        y += block.shape[0] + pad
    return _labelled(Image.fromarray(canvas), list(blocks), centres) if labels else Image.fromarray(canvas)


def _labelled(grid: Image.Image, names: Sequence[str], centres: Sequence[int]) -> Image.Image:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    label_w = 8 + max(int(ImageDraw.Draw(grid).textlength(name, font=font)) for name in names)
    out = Image.new("RGB", (grid.width + label_w, grid.height), "white")
    out.paste(grid, (label_w, 0))
    draw = ImageDraw.Draw(out)
    for name, y in zip(names, centres, strict=True):
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


def sample_image(ds: Dataset, *, num: int = 8, start: int = 0, zoom: int = 1, spread: bool = False) -> Image.Image:
    """Examples ``start … start + num`` of ``ds``: an image grid of its image modalities (one row
    per example with its caption when the dataset has a ``text`` modality), or, for a dataset
    without images, heatmaps of its vector modalities.

    ``spread`` takes ``num`` examples evenly spaced over the split instead (splits stored in a
    sorted order, e.g. MPI3D's, vary only in their last factor from one example to the next).

    Raises:
        MMBenchError: the dataset has neither image nor vector modalities.
    """
    images = [name for name, mod in ds.info.modalities.items() if mod.kind == "image"]
    vectors = [name for name, mod in ds.info.modalities.items() if mod.kind == "vector"]
    texts = [name for name, mod in ds.info.modalities.items() if mod.kind == "text"]
    if not images and not vectors:
        raise MMBenchError(f"{ds.id} has no image or vector modality to draw.")
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise InvalidConfigError(f"num must be a positive integer, got {num!r}.")
    stop = min(start + num, len(ds))
    if start >= stop:
        raise InvalidConfigError(f"No examples in [{start}, {start + num}) for a split of {len(ds)}.")
    index: slice | np.ndarray = slice(start, stop)
    if spread:
        index = np.unique(np.linspace(0, len(ds) - 1, min(num, len(ds))).round().astype(np.int64))
    rows = {name: np.asarray(ds.column(name)[index]) for name in (images or vectors)}
    if images and texts:
        captions = [" | ".join(parts) for parts in zip(*(ds.column(t)[index] for t in texts), strict=True)]
        return captioned_grid([[rows[name][i] for name in images] for i in range(len(captions))], captions, zoom=zoom)
    return grid_image(rows, zoom=zoom) if images else heatmap_image(rows)


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
    img = sample_image(ds, num=num, start=start, zoom=zoom, spread=spread)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
