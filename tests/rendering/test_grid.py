"""Sample grids (modalities × examples) with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmbench
from mmbench.errors import InvalidConfigError, MMBenchError
from mmbench.rendering.grid import grid_image, save_grid, to_hwc
from mmbench.testing.mnist import write_fake_mnist


def test_to_hwc_layouts() -> None:
    chw = np.zeros((3, 5, 7), np.uint8)
    assert to_hwc(chw).shape == (5, 7, 3)
    assert to_hwc(np.zeros((5, 7), np.uint8)).shape == (5, 7, 3)
    assert to_hwc(np.ones((5, 7, 3), np.float32)).max() == 255


def test_grid_size_and_cells() -> None:
    rows = {"a": np.full((4, 3, 10, 10), 7, np.uint8), "b": np.full((4, 3, 10, 10), 200, np.uint8)}
    img = grid_image(rows, zoom=1, pad=2, labels=False)
    assert img.size == (4 * 12 + 2, 2 * 12 + 2)
    arr = np.asarray(img)
    assert (arr[2:12, 2:12] == 7).all() and (arr[14:24, 2:12] == 200).all()


def test_save_grid_of_polymnist_and_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMBENCH_OFFLINE", "1")
    d = write_fake_mnist(tmp_path / "mnist", n_train=200, n_test=60)
    kw = {"val_size": 50, "split_sizes": {"test": 40}, "shard_size": 40}
    ds = mmbench.load("polymnist", split="test", data_dir=d, cache_dir=tmp_path / "c", **kw)
    path = save_grid(ds, tmp_path / "out" / "grid.png", num=6, zoom=1)
    with Image.open(path) as img:
        assert img.height == 5 * 30 + 2 and img.width > 6 * 30
    from mmbench.cli import main

    out = tmp_path / "cli.png"
    args = ["show", "polymnist", "--data-dir", str(d), "--cache-dir", str(tmp_path / "c"), "--grid", str(out), "-n", "4"]
    for override in ("val_size=50", "shard_size=40", "split_sizes.train=100", "split_sizes.val=40", "split_sizes.test=40"):
        args += ["-o", override]  # the CLI merges split_sizes into the defaults: set every split
    assert main(args) == 0 and out.is_file()


def test_grid_needs_image_modalities(tmp_path: Path) -> None:
    ds = mmbench.load("numerical/clica", split="test", cache_dir=tmp_path, split_sizes={"train": 10, "test": 10})
    with pytest.raises(MMBenchError, match="no image modality"):
        save_grid(ds, tmp_path / "x.png")


def test_heatmap_blocks_and_colours() -> None:
    from mmbench.rendering.grid import heatmap_image

    rows = {"a": np.array([[1.0, -1.0], [0.0, 0.5]]), "b": np.zeros((2, 3))}
    img = np.asarray(heatmap_image(rows, cell=2, pad=1, labels=False))
    assert img.shape == (1 + (2 * 2 + 1) + (3 * 2 + 1), 1 + 2 * 2 + 1, 3)
    # block a: dimension 0 down the first rows, example 0 (value 1) red, example 1 (value 0) white
    assert tuple(img[1, 1]) == (255, 64, 48) and tuple(img[1, 3]) == (255, 255, 255)
    assert tuple(img[3, 1]) == (40, 90, 255)  # dimension 1 of example 0: −1, blue
    assert (img[6:12, 1:5] == 255).all()  # block b is all zeros: white


def test_sample_image_of_vectors_and_images(tmp_path: Path) -> None:
    from mmbench.rendering.grid import sample_image

    ds = mmbench.load("numerical/clica", split="test", cache_dir=tmp_path, split_sizes={"train": 10, "test": 10})
    img = sample_image(ds, num=4)
    assert img.height > 2 * 10 * 10  # two 10-dimensional modalities, 10 pixels per value
    with pytest.raises(InvalidConfigError, match="positive integer"):
        sample_image(ds, num=0)
