"""The PolyMNIST compositing primitives, against slow obvious versions and against torch."""

from __future__ import annotations

import math
from fractions import Fraction

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


def exact_bilinear(images: np.ndarray, scale: float) -> tuple[np.ndarray, int]:
    """The bilinear downscale in exact rational arithmetic: integer numerators over one denominator.

    Same sampling grid (``src = (i + ½)/scale − ½``, clamped), but no floating point at all, so it
    says which pixels are *exactly* 128 (ties that float rounding may put on either side).
    """
    s = Fraction(str(scale))
    size = int(28 * s)
    srcs = [max((Fraction(2 * i + 1, 2)) / s - Fraction(1, 2), Fraction(0)) for i in range(size)]
    den = math.lcm(*(f.denominator for f in srcs))
    i0 = np.array([min(math.floor(f), 27) for f in srcs])
    i1 = np.minimum(i0 + 1, 27)
    w1 = np.array([int((f - math.floor(f)) * den) for f in srcs], dtype=np.int64)
    w0 = den - w1
    x = images.astype(np.int64)
    x = x[:, :, i0] * w0 + x[:, :, i1] * w1
    return x[:, i0, :] * w0[:, None] + x[:, i1, :] * w1[:, None], den * den


@pytest.mark.parametrize("scale", [0.5, 0.7, 0.75])
def test_downscale_threshold_exact_except_at_ties(scale: float) -> None:
    """``> 128`` after the float32 downscale equals exact arithmetic everywhere but at exact ties."""
    images, _ = fake_digits(2000, seed=7)
    num, den = exact_bilinear(images, scale)
    ours = downscale_bilinear(images, scale)
    np.testing.assert_allclose(ours, num / den, atol=1e-3)
    tie = num == 128 * den
    assert np.array_equal((ours > 128)[~tie], (num > 128 * den)[~tie])
    assert tie.sum() < 1e-4 * tie.size  # ties are rare: the tolerance hides nothing else


@pytest.mark.parametrize("scale", [0.5, 0.7])
def test_threshold_matches_torch_except_at_exact_ties(scale: float) -> None:
    """The reference generator's torch ``interpolate`` (no antialias) gives the same masks, ties aside."""
    torch = pytest.importorskip("torch")
    images, _ = fake_digits(2000, seed=11)
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(images[:, None].astype(np.float32)), scale_factor=scale, mode="bilinear",
        align_corners=False, antialias=False,
    )[:, 0].numpy()
    num, den = exact_bilinear(images, scale)
    tie = num == 128 * den
    ours = downscale_bilinear(images, scale) > 128
    assert np.array_equal(ours[~tie], (ref > 128)[~tie])


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
