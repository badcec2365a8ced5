"""PolyMNIST and Translated-PolyMNIST builders, on fake MNIST digits (never the real files or the network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import mmbench
from mmbench.builders.polymnist import PolyMNISTConfig, make_tuples, split_pools
from mmbench.errors import InvalidConfigError
from mmbench.rendering.compositing import digit_size, downscale_bilinear
from mmbench.sources.backgrounds import load_backgrounds
from mmbench.sources.mnist import load_split
from mmbench.testing import BuilderTestCase
from mmbench.testing.mnist import FAKE_BACKGROUND_SIZES, write_fake_backgrounds, write_fake_mnist

N_TRAIN_IMAGES, N_TEST_IMAGES = 400, 150
TINY: dict[str, Any] = {
    "split_sizes": {"train": 200, "val": 60, "test": 100},
    "val_size": 100,
    "shard_size": 64,
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMBENCH_OFFLINE", "1")  # belt and braces: no test may reach the network


def fake_backgrounds_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "backgrounds"
    if not directory.exists():
        write_fake_backgrounds(directory)
    return directory


def fake_mnist_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "mnist"
    if not directory.exists():
        write_fake_mnist(directory, n_train=N_TRAIN_IMAGES, n_test=N_TEST_IMAGES)
    return directory


class TestPolyMNIST(BuilderTestCase):
    DATASET = "polymnist"
    OVERRIDES: ClassVar[dict[str, Any]] = TINY
    REQUIRES_INPUTS = True
    GOLDEN_COLUMNS = "all"
    GOLDEN: ClassVar[dict[str, str]] = {"train": "da89c733b99e2244", "val": "895304ba55aed3fd", "test": "a87c0cc94356c270"}

    def builder_kwargs(self, tmp_path: Path) -> dict[str, Any]:
        # Lossless PNG backgrounds: the pixel goldens do not depend on a JPEG decoder's version.
        return {"data_dir": fake_mnist_dir(tmp_path), "backgrounds": fake_backgrounds_dir(tmp_path)}

    def missing_inputs_kwargs(self, tmp_path: Path) -> dict[str, Any]:
        (tmp_path / "empty").mkdir(exist_ok=True)
        return {"data_dir": tmp_path / "empty"}

    def test_pixels_inverted_exactly_under_the_digit(self, built: dict[str, mmbench.core.dataset.Dataset]) -> None:
        for split, ds in built.items():
            assert_pixel_exact(ds, mnist_split="test" if split == "test" else "train")

    def test_tuples_share_the_digit_and_use_each_image_once(self, built: dict[str, Any]) -> None:
        for split, ds in built.items():
            _, labels = load_split(ds.info.inputs["mnist"], "test" if split == "test" else "train")
            digit = np.asarray(ds.column("latents.digit"))
            for m in ds.modalities:
                idx = np.asarray(ds.column(f"latents.{m}.mnist_index"))
                assert np.array_equal(labels[idx], digit)
                assert len(np.unique(idx)) == len(idx), "an MNIST image repeats within a modality"

    def test_val_and_train_handwriting_disjoint(self, built: dict[str, Any]) -> None:
        train = {int(i) for m in built["train"].modalities for i in built["train"].column(f"latents.{m}.mnist_index")}
        val = {int(i) for m in built["val"].modalities for i in built["val"].column(f"latents.{m}.mnist_index")}
        assert train and val and not train & val

    def test_inputs_recorded(self, built: dict[str, Any]) -> None:
        inputs = built["test"].info.inputs
        assert inputs["mnist"]["source"].startswith("fake")
        assert set(inputs["mnist"]["files"]) == {
            "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
        }
        assert Path(inputs["backgrounds"]["set"]).name == "backgrounds"
        assert [img["name"] for img in inputs["backgrounds"]["images"].values()] == [f"bg{k}" for k in range(5)]

    def test_crop_latents_cover_the_background(self, built: dict[str, Any]) -> None:
        ds = built["train"]
        for lat in ds.latent_spec.select(scope="m0"):
            assert lat.role == "specific"
        for m in range(5):  # the full valid range: 0 … W − 28 and 0 … H − 28
            height, width = FAKE_BACKGROUND_SIZES[m]
            assert ds.latent_spec[f"m{m}.crop_x"].support == (0, width - 28)
            assert ds.latent_spec[f"m{m}.crop_y"].support == (0, height - 28)
        xs = np.concatenate([np.asarray(built[s].column("latents.m1.crop_x")) for s in built])
        assert xs.min() == 0 and xs.max() == 36 - 28  # both ends are drawn


class TestTranslatedPolyMNIST(BuilderTestCase):
    DATASET = "translated_polymnist/paper"
    OVERRIDES: ClassVar[dict[str, Any]] = TINY
    REQUIRES_INPUTS = True
    GOLDEN_COLUMNS = "all"
    GOLDEN: ClassVar[dict[str, str]] = {"train": "9e829bc0a5ae550c", "val": "dc37772382dde4ee", "test": "525bfc83479dffe4"}

    def builder_kwargs(self, tmp_path: Path) -> dict[str, Any]:
        # Lossless PNG backgrounds: the pixel goldens do not depend on a JPEG decoder's version.
        return {"data_dir": fake_mnist_dir(tmp_path), "backgrounds": fake_backgrounds_dir(tmp_path)}

    def missing_inputs_kwargs(self, tmp_path: Path) -> dict[str, Any]:
        (tmp_path / "empty").mkdir(exist_ok=True)
        return {"data_dir": tmp_path / "empty"}

    def test_pixels_inverted_exactly_under_the_placed_digit(self, built: dict[str, Any]) -> None:
        for split, ds in built.items():
            assert_pixel_exact(ds, mnist_split="test" if split == "test" else "train")

    def test_offsets_use_the_full_range(self, built: dict[str, Any]) -> None:
        ds = built["train"]
        size = digit_size(0.5)
        assert size == 14
        values = np.concatenate([np.asarray(ds.column(f"latents.{m}.digit_{a}")) for m in ds.modalities for a in "xy"])
        assert values.min() == 0 and values.max() == 28 - size  # the reference never draws 14
        assert ds.latent_spec["m0.digit_x"].support == (0, 14)


def test_translated_default_scale_matches_an_independent_torch_reference(tmp_path: Path) -> None:
    """At the default scale 0.7, against the reference generator's recipe written with torch.

    ``assert_pixel_exact`` reuses mmbench's own downscale; this test does not: it downscales with
    ``torch.nn.functional.interpolate(scale_factor=0.7, mode="bilinear")`` (no antialias, as MoPoE /
    Daunhawer et al.), pastes, thresholds and inverts independently. Only pixels whose bilinear
    value is an exact-128 tie may differ (float rounding decides them; see compositing.py).
    """
    torch = pytest.importorskip("torch")
    ds = mmbench.load(
        "translated_polymnist", split="test", data_dir=fake_mnist_dir(tmp_path),
        backgrounds=fake_backgrounds_dir(tmp_path), cache_dir=tmp_path / "c", **TINY,
    )
    assert ds.info.config["scale"] == 0.7 and ds.info.config["name"] == "thesis"
    images, _ = load_split(ds.info.inputs["mnist"], "test")
    backgrounds = load_backgrounds(ds.info.config["backgrounds"], len(ds.modalities))
    n, compared, tolerated = len(ds), 0, 0
    for m, key in enumerate(ds.modalities):
        col = {a: np.asarray(ds.column(f"latents.{key}.{a}")) for a in ("mnist_index", "crop_x", "crop_y", "digit_x", "digit_y")}
        digits = torch.from_numpy(np.asarray(images[col["mnist_index"]], dtype=np.float32)[:, None])
        small = torch.nn.functional.interpolate(
            digits, scale_factor=0.7, mode="bilinear", align_corners=False, antialias=False
        )[:, 0].numpy()
        assert small.shape == (n, 19, 19)
        canvas = np.zeros((n, 28, 28), np.float32)
        crops = np.empty((n, 3, 28, 28), np.int64)
        for i in range(n):
            dx, dy, cx, cy = (int(col[a][i]) for a in ("digit_x", "digit_y", "crop_x", "crop_y"))
            canvas[i, dy : dy + 19, dx : dx + 19] = small[i]
            crops[i] = backgrounds[m].pixels[cy : cy + 28, cx : cx + 28].transpose(2, 0, 1)
        expected = np.where((canvas > 128)[:, None], 255 - crops, crops)
        differs = (np.asarray(ds.column(key)) != expected).any(axis=1)
        tie = np.abs(canvas - 128) < 1e-3
        assert not (differs & ~tie).any(), f"{key}: pixels differ from the torch reference away from 128-ties"
        compared += differs.size
        tolerated += int(differs.sum())
    assert tolerated <= 1e-4 * compared


def assert_pixel_exact(ds: Any, *, mnist_split: str) -> None:
    """Recompute every image the slow, obvious way and compare bytes."""
    info = ds.info
    images, _ = load_split(info.inputs["mnist"], mnist_split)
    backgrounds = load_backgrounds(info.config["backgrounds"], len(ds.modalities))
    scale = info.config.get("scale")
    for m, key in enumerate(ds.modalities):
        bg = backgrounds[m].pixels
        for i in range(len(ds)):
            ex_x, ex_y = int(ds.column(f"latents.{key}.crop_x")[i]), int(ds.column(f"latents.{key}.crop_y")[i])
            crop = bg[ex_y : ex_y + 28, ex_x : ex_x + 28].transpose(2, 0, 1).astype(int)
            digit = images[int(ds.column(f"latents.{key}.mnist_index")[i])]
            if scale is None:
                mask = digit > 128
            else:
                s = digit_size(scale)
                dx, dy = int(ds.column(f"latents.{key}.digit_x")[i]), int(ds.column(f"latents.{key}.digit_y")[i])
                mask = np.zeros((28, 28), bool)
                mask[dy : dy + s, dx : dx + s] = downscale_bilinear(digit[None], scale)[0] > 128
            expected = np.where(mask, 255 - crop, crop)
            got = ds.column(key)[i]
            assert np.array_equal(got, expected), f"{key} example {i}"
            assert np.array_equal((got != crop).any(0), mask)  # changed pixels are exactly the digit


# ---------------------------------------------------------------------------- tuples & splits
def test_reference_pairing_is_per_class_permutations() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 500)
    pool = np.arange(500)
    idx, digits = make_tuples(pool, labels, 5, "reference", np.random.default_rng(1))
    assert idx.shape == (500, 5)
    assert np.array_equal(labels[idx], np.repeat(digits[:, None], 5, axis=1))
    for m in range(5):
        assert np.array_equal(np.sort(idx[:, m]), pool)  # each image exactly once per modality


def test_distinct_pairing_never_repeats_a_handwriting() -> None:
    labels = np.repeat(np.arange(10), 6)  # 6 images per class for 5 modalities: collisions certain
    idx, _ = make_tuples(np.arange(60), labels, 5, "distinct", np.random.default_rng(3))
    assert all(len(set(row)) == 5 for row in idx.tolist())
    for m in range(5):
        assert np.array_equal(np.sort(idx[:, m]), np.arange(60))
    with pytest.raises(InvalidConfigError, match="at least 5 images"):
        make_tuples(np.arange(30), np.repeat(np.arange(10), 3), 5, "distinct", np.random.default_rng(0))


def test_distinct_build_and_fewer_modalities(tmp_path: Path) -> None:
    ds = mmbench.load(
        "polymnist", split="train", data_dir=fake_mnist_dir(tmp_path), cache_dir=tmp_path / "c",
        **{**TINY, "pairing": "distinct", "num_modalities": 3},
    )
    assert ds.modalities == ["m0", "m1", "m2"]
    idx = np.stack([np.asarray(ds.column(f"latents.m{m}.mnist_index")) for m in range(3)], axis=1)
    assert all(len(set(row)) == 3 for row in idx.tolist())


def test_tuple_structure_independent_of_shard_size(tmp_path: Path) -> None:
    kw = {"data_dir": fake_mnist_dir(tmp_path), "cache_dir": tmp_path / "c", **TINY}
    a = mmbench.load("polymnist", split="test", **{**kw, "shard_size": 64})
    b = mmbench.load("polymnist", split="test", **{**kw, "shard_size": 100})
    for m in a.modalities:
        assert np.array_equal(a.column(f"latents.{m}.mnist_index"), b.column(f"latents.{m}.mnist_index"))


def test_split_pools_disjoint_and_complete() -> None:
    pools = split_pools(1000, 100, seed=0)
    assert len(pools["val"]) == 100 and len(pools["train"]) == 900
    assert np.array_equal(np.sort(np.concatenate([pools["val"], pools["train"]])), np.arange(1000))


# ---------------------------------------------------------------------------- config errors
@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"split_sizes": {"train": 10, "dev": 5}}, "unknown split"),
        ({"split_sizes": {"train": 59_000}, "val_size": 5_000}, "pool has only 55000"),
        ({"split_sizes": {"val": 10}, "val_size": 0}, "Lower the size or raise val_size"),
        ({"num_modalities": 6}, "num_modalities"),
        ({"pairing": "derangement"}, "pairing must be one of"),
    ],
)
def test_invalid_configs(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidConfigError, match=match):
        PolyMNISTConfig(**overrides)


def test_translated_scale_validated() -> None:
    with pytest.raises(InvalidConfigError, match="scale"):
        mmbench.builder("translated_polymnist", scale=1.5)
    assert mmbench.builder("translated_polymnist").size == 19  # floor(28 * 0.7)


def test_mnist_index_support_is_documented_per_split() -> None:
    """One LatentSpec serves every split, so the test split's narrower range must be stated."""
    for name in ("polymnist", "translated_polymnist"):
        lat = mmbench.builder(name).latent_spec()["m3.mnist_index"]
        assert lat.support == (0, 59_999)
        for needle in ("train and val index the official train file (0 … 59,999)", "test indexes the t10k file (0 … 9,999)"):
            assert needle in lat.description, needle


def test_named_configs_and_defaults() -> None:
    b = mmbench.builder("polymnist")
    assert b.config.name == "reference" and dict(b.config.split_sizes) == {"train": 55_000, "val": 5_000, "test": 10_000}
    full = mmbench.builder("polymnist/full-train")
    assert dict(full.config.split_sizes) == {"train": 60_000, "test": 10_000}
    assert mmbench.builder("translated_polymnist").config.scale == 0.7
    assert mmbench.builder("translated_polymnist/paper").config.scale == 0.5
