"""Fake PolyMNIST inputs: MNIST in the real IDX layout and background photos, for tests.

Tests must never touch the real files or the network; these are made from a seed in milliseconds.

Digits are drawn from a 5×7 bitmap font, upscaled, jittered in position, stroke width and
intensity and softened at the edges, so that they have MNIST's statistics where it matters to
the builders: 28×28 uint8, a dark background, strokes above and below the 128 threshold, ten
balanced classes that a small CNN can tell apart.

Example:
    >>> from mmbench.testing.mnist import write_fake_mnist
    >>> d = write_fake_mnist(tmp_path / "mnist", n_train=600, n_test=200)
    >>> ds = mmbench.load("polymnist", split="test", data_dir=d, split_sizes={"test": 200}, val_size=100)
    >>> ds.info.inputs["mnist"]["source"]
    'fake (mmbench.testing.mnist)'
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from mmbench.sources.mnist import FAKE_MANIFEST, MNIST_FILES, idx_bytes, write_idx

__all__ = ["fake_digits", "write_fake_backgrounds", "write_fake_mnist"]

_FONT = {  # 5 columns × 7 rows per digit
    0: ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    1: ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    2: ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    3: ("11111", "00010", "00100", "00010", "00001", "10001", "01110"),
    4: ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    5: ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    6: ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    7: ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    8: ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    9: ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
}
_GLYPHS = np.array([[[c == "1" for c in row] for row in _FONT[d]] for d in range(10)], dtype=np.float32)


def fake_digits(n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` fake digits ``(n, 28, 28)`` uint8 and balanced labels ``(n,)`` uint8 (vectorised)."""
    rng = np.random.default_rng([seed, 0x4D4E])
    labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
    glyphs = np.kron(_GLYPHS[labels], np.ones((1, 3, 3), np.float32))  # (n, 21, 15)
    # Thicken some strokes by one pixel to the right/bottom, per image.
    thick = rng.random(n) < 0.5
    grown = glyphs.copy()
    grown[:, 1:, :] = np.maximum(grown[:, 1:, :], glyphs[:, :-1, :])
    grown[:, :, 1:] = np.maximum(grown[:, :, 1:], glyphs[:, :, :-1])
    glyphs = np.where(thick[:, None, None], grown, glyphs)
    canvas = np.zeros((n, 28, 28), np.float32)
    dy = rng.integers(1, 28 - 21, n)
    dx = rng.integers(3, 28 - 15 - 2, n)
    ar_y, ar_x = np.arange(21), np.arange(15)
    canvas[np.arange(n)[:, None, None], (dy[:, None] + ar_y)[:, :, None], (dx[:, None] + ar_x)[:, None, :]] = glyphs
    # Soft edges: a 3×3 box blur mixed with the sharp strokes, then a per-image intensity.
    padded = np.pad(canvas, ((0, 0), (1, 1), (1, 1)))
    blur = sum(padded[:, i : i + 28, j : j + 28] for i in range(3) for j in range(3)) / 9.0
    soft = np.maximum(canvas, blur * 1.3)
    peak = rng.uniform(200, 255, n).astype(np.float32)
    images = np.clip(soft * peak[:, None, None] + rng.normal(0, 4, canvas.shape), 0, 255)
    images[soft == 0] = 0
    return np.rint(images).astype(np.uint8), labels


def write_fake_mnist(
    directory: str | os.PathLike[str], *, n_train: int = 600, n_test: int = 200, seed: int = 0, gz: bool = False
) -> Path:
    """Write fake ``train``/``t10k`` IDX files (and their hash manifest) into ``directory``.

    The manifest (``mmbench-fake-mnist.json``, the four files' sha256) marks the directory as fake
    MNIST: builders given it as ``data_dir`` check the files against the manifest, record
    ``source: "fake (mmbench.testing.mnist)"`` and build into a cache entry of their own. Without
    the manifest the files are refused for their hashes, like any non-official file.

    Args:
        directory: created if needed.
        n_train, n_test: number of images in the two files.
        seed: seed of the drawing.
        gz: write ``.gz`` files (as distributed) instead of raw IDX.

    Returns:
        ``directory`` as a :class:`~pathlib.Path`.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    train_x, train_y = fake_digits(n_train, seed=seed)
    test_x, test_y = fake_digits(n_test, seed=seed + 1)
    arrays = {
        "train-images-idx3-ubyte": train_x,
        "train-labels-idx1-ubyte": train_y,
        "t10k-images-idx3-ubyte": test_x,
        "t10k-labels-idx1-ubyte": test_y,
    }
    manifest = {}
    for name in MNIST_FILES:
        write_idx(directory / (f"{name}.gz" if gz else name), arrays[name])
        manifest[name] = hashlib.sha256(idx_bytes(arrays[name])).hexdigest()
    (directory / FAKE_MANIFEST).write_text(json.dumps({"sha256": manifest, "n_train": n_train, "n_test": n_test}, indent=1))
    return directory


#: (height, width) of the fake backgrounds: different sizes, so crop ranges differ per modality.
FAKE_BACKGROUND_SIZES = ((40, 52), (36, 36), (64, 48), (30, 90), (45, 45), (50, 60))


def write_fake_backgrounds(directory: str | os.PathLike[str], *, num: int = 5, seed: int = 0) -> Path:
    """Write ``num`` PNG backgrounds (smooth colour gradients plus noise) into ``directory``.

    PNG is lossless, so the decoded pixels (and every golden fingerprint built on them) are the
    same with any image library version — unlike JPEG photos.
    """
    from PIL import Image

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 0x4247])
    for k in range(num):
        h, w = FAKE_BACKGROUND_SIZES[k % len(FAKE_BACKGROUND_SIZES)]
        yy, xx = np.mgrid[0:h, 0:w]
        base = rng.uniform(0, 255, 3)
        slope = rng.uniform(-3, 3, (3, 2))
        img = base[:, None, None] + slope[:, 0, None, None] * yy + slope[:, 1, None, None] * xx
        img = np.moveaxis(img, 0, -1) + rng.normal(0, 12, (h, w, 3))
        Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8)).save(directory / f"bg{k}.png")
    return directory
