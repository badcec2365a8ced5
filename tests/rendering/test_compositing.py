"""The PolyMNIST compositing primitives, against slow obvious versions and against torch."""

from __future__ import annotations

import numpy as np
import pytest

from mmbench.rendering.compositing import (
    composite,
    crop_windows,
    digit_size,
    downscale_bilinear,
    invert_under_mask,
    place_masks,
)
from mmbench.testing.mnist import fake_digits


@pytest.mark.parametrize(("scale", "size"), [(0.5, 14), (0.7, 19), (0.75, 21), (1.0, 28)])
def test_digit_size_is_torchs_floor(scale: float, size: int) -> None:
    assert digit_size(scale) == size


@pytest.mark.parametrize("scale", [0.5, 0.7, 0.75])
def test_downscale_matches_torch_bilinear(scale: float) -> None:
    torch = pytest.importorskip("torch")
    images, _ = fake_digits(64, seed=2)
    ours = downscale_bilinear(images, scale)
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(images[:, None].astype(np.float32)), scale_factor=scale, mode="bilinear", align_corners=False
    )[:, 0].numpy()
    assert ours.shape == ref.shape == (64, digit_size(scale), digit_size(scale))
    np.testing.assert_allclose(ours, ref, atol=1e-3)


def test_crop_windows_equal_slicing() -> None:
    rng = np.random.default_rng(0)
    bg = rng.integers(0, 256, (40, 57, 3), dtype=np.uint8)
    x = np.array([0, 29, 5, 13])
    y = np.array([0, 12, 7, 3])
    crops = crop_windows(bg, x, y)
    assert crops.shape == (4, 3, 28, 28) and crops.flags.c_contiguous
    for i in range(4):
        assert np.array_equal(crops[i], bg[y[i] : y[i] + 28, x[i] : x[i] + 28].transpose(2, 0, 1))
    with pytest.raises(ValueError, match=r"x ∈ \[0, 29\]"):
        crop_windows(bg, np.array([30]), np.array([0]))


def test_invert_is_255_minus_v_under_the_mask_only() -> None:
    rng = np.random.default_rng(1)
    patches = rng.integers(0, 256, (5, 3, 28, 28), dtype=np.uint8)
    masks = rng.random((5, 28, 28)) < 0.3
    expected = np.where(masks[:, None], 255 - patches.astype(int), patches)
    assert np.array_equal(invert_under_mask(patches.copy(), masks), expected)


def test_place_masks_at_offsets() -> None:
    masks = np.ones((2, 3, 3), bool)
    out = place_masks(masks, np.array([0, 25]), np.array([4, 0]))
    assert out[0, 4:7, 0:3].all() and out[0].sum() == 9
    assert out[1, 0:3, 25:28].all() and out[1].sum() == 9
    with pytest.raises(ValueError, match="Offsets"):
        place_masks(masks, np.array([26, 0]), np.array([0, 0]))


def test_composite_full_and_translated() -> None:
    rng = np.random.default_rng(2)
    bg = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    digits, _ = fake_digits(8, seed=3)
    cx, cy = rng.integers(0, 33, 8), rng.integers(0, 23, 8)
    full = composite(bg, digits, cx, cy)
    for i in range(8):
        crop = bg[cy[i] : cy[i] + 28, cx[i] : cx[i] + 28].transpose(2, 0, 1).astype(int)
        assert np.array_equal(full[i], np.where(digits[i] > 128, 255 - crop, crop))
    dx, dy = np.full(8, 14), np.zeros(8, int)
    moved = composite(bg, digits, cx, cy, scale=0.5, digit_x=dx, digit_y=dy)
    changed = (moved != crop_windows(bg, cx, cy)).any(1)
    assert not changed[:, :, :14].any() and not changed[:, 14:, :].any()  # only the top-right quadrant
    assert changed.any()
    with pytest.raises(ValueError, match="needs digit_x"):
        composite(bg, digits, cx, cy, scale=0.5)
