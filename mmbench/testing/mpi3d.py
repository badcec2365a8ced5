"""Fake MPI3D-Complex archives in the real format, for tests and CPU-sized experiments.

:func:`write_fake_mpi3d` writes ``real3d_complicated_shapes_ordered.npz`` as the official file
is laid out — one uncompressed ``.npy`` member ``images``, uint8 ``(N, H, W, 3)``, rows in C order
over the seven factors — at any factor sizes and image size, streaming (memory stays at one chunk
of rows, whatever the archive's size: the benchmark writes a full-size 5.7 GB one). Beside it, a
manifest (``mmbench-fake-mpi3d.json``) records the sha256, factor sizes and image size, which marks
the folder as fake: builders check the file against it, record ``source: "fake
(mmbench.testing.mpi3d)"`` and build into a cache entry of their own.

Two styles:

* ``"noise"`` — uniform random pixels: for format, conversion and speed tests;
* ``"procedural"`` — every factor visibly changes a simple drawing, so that a model can learn
  the factors: object colour (yellow, green, olive, red), shape (square, ring, cross, upright
  bar), size (small, large), camera height (the whole scene shifted up/none/down), background
  colour (purple, sea-green, salmon) and the arm position (horizontal, vertical: the object's
  position on a grid), plus a little pixel noise, as a camera adds.

Example:
    >>> from mmbench.testing import write_fake_mpi3d
    >>> path = write_fake_mpi3d(tmp_path / "mpi3d", factor_sizes=(2, 2, 2, 2, 2, 3, 3), image_size=8)
    >>> from mmbench.builders.mpi3d import split_sizes_for
    >>> ds = mmbench.load("mpi3d_complex_text/selection-2", split="train", data_dir=path.parent,
    ...                   split_sizes=split_sizes_for(path))
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mmbench.core.storage import atomic_path, atomic_write
from mmbench.errors import InvalidConfigError
from mmbench.sources import mpi3d as src
from mmbench.versioning import sha256_file

__all__ = ["STYLES", "fake_images", "write_fake_mpi3d"]

STYLES = ("noise", "procedural")
_COLORS = np.array([(230, 210, 30), (40, 170, 40), (128, 128, 0), (215, 35, 35)], np.float32)
_BACKGROUNDS = np.array([(110, 40, 130), (30, 120, 110), (250, 128, 114)], np.float32)
#: the most values a fake may give each semantic factor (the number of content words)
MAX_SIZES = (4, 4, 2, 3, 3)
_CHUNK_BYTES = 32 << 20
_NOISE_BLOCK = 1024


def _check(factor_sizes: Sequence[int], image_size: int, style: str) -> tuple[int, ...]:
    sizes = tuple(factor_sizes)
    if len(sizes) != len(src.FACTORS) or not all(isinstance(s, int | np.integer) and not isinstance(s, bool) for s in sizes):
        raise InvalidConfigError(f"factor_sizes must be {len(src.FACTORS)} integers ({', '.join(src.FACTORS)}), got {factor_sizes!r}.")
    for name, size, most in zip(src.FACTORS, sizes, (*MAX_SIZES, None, None), strict=True):
        if size < 2 or (most is not None and size > most):
            bound = f"2 … {most}" if most is not None else ">= 2"
            raise InvalidConfigError(f"factor_sizes: {name} has {size} values; it must have {bound} (the real archive: "
                                     f"{dict(zip(src.FACTORS, src.FACTOR_SIZES, strict=True))}).")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or not 4 <= image_size <= 256:
        raise InvalidConfigError(f"image_size must be an integer in [4, 256], got {image_size!r}.")
    if style not in STYLES:
        raise InvalidConfigError(f"style must be one of {list(STYLES)}, got {style!r}.")
    return tuple(int(s) for s in sizes)


def fake_images(rows: np.ndarray, factor_sizes: Sequence[int], image_size: int, *, style: str = "procedural",
                seed: int = 0, pixel_noise: float = 12.0) -> np.ndarray:
    """The fake images ``(n, H, W, 3)`` uint8 of archive rows ``rows`` (vectorised over rows).

    ``procedural`` images are a drawing of the factors plus uniform pixel noise of ± ``pixel_noise``
    (a camera's noise: without it, a model's tiniest systematic response to a factor would stay
    decodable); ``noise`` images are random bytes. Both depend only on ``(seed, row)``.
    """
    sizes = _check(factor_sizes, image_size, style)
    rows = np.asarray(rows, dtype=np.int64)
    if style == "noise":
        return _noise(rows, image_size, seed)
    f = src.factor_values(rows, sizes)
    s = float(image_size)
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float32) + 0.5
    # arm position: the object's centre on a grid; camera: the whole scene moves up / down
    margin = 0.27 * s
    cx = margin + f["horizontal"] / max(sizes[5] - 1, 1) * (s - 2 * margin)
    shift = (f["camera"] - (sizes[3] - 1) / 2) * 0.12 * s
    cy = margin + f["vertical"] / max(sizes[6] - 1, 1) * (s - 2 * margin) + shift
    r = np.where(f["size"] == 0, 0.16, 0.27) * s
    dx = (xx[None] - cx[:, None, None]) / r[:, None, None]
    dy = (yy[None] - cy[:, None, None]) / r[:, None, None]
    box = np.maximum(np.abs(dx), np.abs(dy))
    d2 = dx * dx + dy * dy
    shapes = np.stack([
        box <= 1,                                                   # square
        (d2 <= 1) & (d2 >= 0.3),                                    # ring
        (box <= 1) & ((np.abs(dx) <= 0.33) | (np.abs(dy) <= 0.33)),  # cross
        (np.abs(dx) <= 0.4) & (np.abs(dy) <= 1.3),                  # upright bar
    ])
    mask = shapes[f["shape"], np.arange(len(rows))]
    horizon = (yy[None] > s * 0.7 + shift[:, None, None])  # a darker floor: the camera shift shows
    bg = _BACKGROUNDS[f["background"]][:, None, None, :] * np.where(horizon, 0.6, 1.0)[..., None]
    img = np.where(mask[..., None], _COLORS[f["color"]][:, None, None, :], bg)
    if pixel_noise:
        img = img + (_noise(rows, image_size, seed).astype(np.float32) / 255.0 - 0.5) * (2.0 * pixel_noise)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _noise(rows: np.ndarray, image_size: int, seed: int) -> np.ndarray:
    """Random pixels of each row, drawn per block of rows (so any chunking gives the same bytes)."""
    per = image_size * image_size * 3
    out = np.empty((len(rows), per), np.uint8)
    blocks = rows // _NOISE_BLOCK
    for b in np.unique(blocks).tolist():
        data = np.frombuffer(np.random.default_rng([seed, 0x4E53, b]).bytes(_NOISE_BLOCK * per), np.uint8)
        sel = blocks == b
        out[sel] = data.reshape(_NOISE_BLOCK, per)[rows[sel] - b * _NOISE_BLOCK]
    return out.reshape(len(rows), image_size, image_size, 3)


def write_fake_mpi3d(
    path: str | os.PathLike[str],
    *,
    factor_sizes: Sequence[int] = (2, 2, 2, 2, 2, 3, 3),
    image_size: int = 8,
    style: str = "procedural",
    seed: int = 0,
    pixel_noise: float = 12.0,
    progress: bool = False,
) -> Path:
    """Write a fake archive (and its manifest); return the archive's path.

    Args:
        path: a directory (the archive gets the official file name inside it) or a ``.npz`` path.
        factor_sizes: values of color, shape, size, camera, background (at most 4, 4, 2, 3, 3: the
            content words) and horizontal, vertical (any number ≥ 2). The real archive's are
            ``mmbench.sources.mpi3d.FACTOR_SIZES``.
        image_size: side of the square images (the real archive: 64).
        style: ``"procedural"`` (learnable drawings) or ``"noise"`` (random pixels).
        seed: seed of the noise.
        pixel_noise: amplitude of the uniform pixel noise of ``procedural`` images (0: none).
        progress: a progress bar (for full-size archives).

    Raises:
        InvalidConfigError: bad sizes or style.
    """
    sizes = _check(factor_sizes, image_size, style)
    path = Path(path)
    if path.suffix != ".npz":
        path = path / src.FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(np.prod(sizes, dtype=np.int64))
    shape = (n, image_size, image_size, 3)
    chunk = max(1, _CHUNK_BYTES // (image_size * image_size * 3))
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf, \
                zf.open(f"{src.KEY}.npy", "w", force_zip64=True) as member:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_1_0(member, header)
            for start in _progress(range(0, n, chunk), progress, n, chunk):
                rows = np.arange(start, min(start + chunk, n))
                member.write(fake_images(rows, sizes, image_size, style=style, seed=seed, pixel_noise=pixel_noise).tobytes())
        sha = sha256_file(tmp)
    st = path.stat()  # the manifest doubles as a hash stamp: an unchanged file is not hashed again
    manifest = {"format": src.FAKE_FORMAT, "file": path.name, "sha256": sha, "bytes": st.st_size,
                "mtime_ns": st.st_mtime_ns, "factor_sizes": list(sizes), "image_size": image_size, "style": style,
                "seed": seed, "pixel_noise": pixel_noise if style == "procedural" else None}
    atomic_write(path.parent / src.FAKE_MANIFEST, json.dumps(manifest, indent=1))
    return path


def _progress(it: range, show: bool, n: int, chunk: int) -> range:
    if not show:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc="fake MPI3D", unit="chunk", total=-(-n // chunk))
