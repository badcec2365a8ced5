"""MPI3D-Complex with text, on fake archives in the real format (never the real file or the network)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import mmbench
from mmbench import Replace
from mmbench.builders.mpi3d import (
    SEMANTIC,
    WORDS,
    MPI3DComplexTextBuilder,
    split_pools,
    split_sizes_for,
)
from mmbench.errors import ChecksumError, InputsNotFoundError, InvalidConfigError, MMBenchError
from mmbench.rendering.text import Vocabulary, tokenize
from mmbench.sources import mpi3d as src
from mmbench.testing import BuilderTestCase, write_fake_mpi3d

TINY_SIZES = (2, 2, 2, 2, 2, 3, 3)  # 288 images
TINY: dict[str, Any] = {"split_sizes": split_sizes_for(288), "shard_size": 64}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMBENCH_OFFLINE", "1")
    monkeypatch.delenv(src.ENV_VAR, raising=False)


def fake_dir(tmp_path: Path, *, style: str = "noise", sizes: tuple[int, ...] = TINY_SIZES, image_size: int = 8) -> Path:
    directory = tmp_path / f"mpi3d-{style}-{'x'.join(map(str, sizes))}-{image_size}"
    if not directory.exists():
        write_fake_mpi3d(directory, factor_sizes=sizes, image_size=image_size, style=style)
    return directory


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_dir(tmp_path_factory.mktemp("fake"))


class TestMPI3DComplexText(BuilderTestCase):
    DATASET = "mpi3d_complex_text/perturbation-3"
    OVERRIDES: ClassVar[dict[str, Any]] = TINY
    REQUIRES_INPUTS = True
    GOLDEN: ClassVar[dict[str, str]] = {"train": "f8e8b7a25f5cf9df", "val": "1d5d13c9918c9000", "test": "44a5d33f1f7a5fc9"}

    def builder_kwargs(self, tmp_path: Path) -> dict[str, Any]:
        return {"data_dir": fake_dir(tmp_path)}

    def missing_inputs_kwargs(self, tmp_path: Path) -> dict[str, Any]:
        (tmp_path / "empty").mkdir(exist_ok=True)
        return {"data_dir": tmp_path / "empty"}

    def test_images_are_the_archive_rows_channels_first(self, built: dict[str, Any]) -> None:
        for ds in built.values():
            path = Path(ds.info.inputs["mpi3d"]["path"])
            archive = np.load(path)["images"]
            rows = np.asarray(ds.column("image").index)
            assert np.all(np.diff(rows) > 0), "a split's store rows must be ascending"
            np.testing.assert_array_equal(np.asarray(ds.column("image")), archive[rows].transpose(0, 3, 1, 2))
            factors = src.factor_values(rows, TINY_SIZES)
            for name, values in factors.items():
                np.testing.assert_array_equal(ds.column(f"latents.{name}"), values)

    def test_tokens_are_the_captions_under_the_train_vocabulary(self, built: dict[str, Any]) -> None:
        vocab = Vocabulary.from_json(built["train"].artifact("vocabulary.json"))
        assert vocab.tokens == Vocabulary.build(built["train"].column("text")[:], order="sorted").tokens
        for ds in built.values():
            captions = ds.column("text")[:]
            for caption, ids in zip(captions, ds.column("tokens")[:], strict=True):
                assert vocab.decode(ids) == tokenize([caption]).lists[0] and ids[-1] == vocab.eos_id


# ----------------------------------------------------------------------------- the done-when checks
def _load_all(name: str, data_dir: Path, cache: Path, **kw: Any) -> dict[str, Any]:
    return mmbench.load(f"mpi3d_complex_text/{name}", split=None, data_dir=data_dir, cache_dir=cache,
                        progress=False, **{**TINY, **kw})


def test_every_named_config_builds_and_all_share_one_image_store(tiny: Path, tmp_path: Path) -> None:
    paths = set()
    for name in MPI3DComplexTextBuilder.CONFIGS:
        built = _load_all(name, tiny, tmp_path / "cache")
        for ds in built.values():
            paths.add(ds.info.stores["images"]["path"])
            assert len(ds) == TINY["split_sizes"][ds.split]
    assert len(paths) == 1
    stores = list((tmp_path / "cache" / "_stores").rglob("split_info.json"))
    assert len(stores) == 1, stores
    store_bytes = sum(f.stat().st_size for f in stores[0].parent.iterdir())
    entry = next((tmp_path / "cache" / "mpi3d_complex_text").glob("selection-1-*/1.0.0"))
    text_bytes = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
    assert store_bytes > 0 and text_bytes > 0


@pytest.mark.parametrize("k", range(1, 6))
def test_selection_k_captions_mention_exactly_the_first_k_factors(tiny: Path, tmp_path: Path, k: int) -> None:
    words = {f: WORDS["paper"][f] for f in SEMANTIC}
    for ds in _load_all(f"selection-{k}", tiny, tmp_path / "cache").values():
        latents = {f: np.asarray(ds.column(f"latents.{f}")) for f in SEMANTIC}
        for i, tokens in enumerate(tokenize(ds.column("text")[:]).tolist()):
            for j, f in enumerate(SEMANTIC):
                present = {w for w in words[f] if w in tokens}
                if j < k:  # mentioned, and truly (nothing is perturbed in selection-k)
                    assert present == {words[f][latents[f][i]]}, (f, tokens)
                else:
                    assert not present, (f, tokens)
        assert set(ds.info.expected_identifiable) == set(SEMANTIC[:k])
        assert not [c for c in ds.column_names if c.startswith("perturbed.")]


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 14,400 captions: the measured rate has a standard error of 0.0025 around 0.9
    return fake_dir(tmp_path_factory.mktemp("medium"), sizes=(4, 4, 2, 3, 3, 10, 10), image_size=4)


def _rates(built: dict[str, Any]) -> dict[str, float]:
    out = {}
    for f in SEMANTIC:
        if f"text.{f}" in built["train"].column_names:
            shown = np.concatenate([np.asarray(ds.column(f"text.{f}")) for ds in built.values()])
            truth = np.concatenate([np.asarray(ds.column(f"latents.{f}")) for ds in built.values()])
            out[f] = float(np.mean(shown != truth))
    return out


@pytest.mark.parametrize("k", range(1, 6))
def test_perturbation_k_misreports_its_factors_at_the_rate_of_table_7(medium: Path, tmp_path: Path, k: int) -> None:
    sizes = split_sizes_for(medium)
    built = mmbench.load(f"mpi3d_complex_text/perturbation-{k}", split=None, data_dir=medium, cache_dir=tmp_path,
                         split_sizes=sizes, progress=False)
    perturbed = built["train"].info.extra["misalignment"]["perturbation"]
    assert len(perturbed) == k - 1
    rates = _rates(built)
    assert set(rates) == set(SEMANTIC)
    for f, rate in rates.items():
        if f in perturbed:
            assert abs(rate - 0.9) <= 0.01, (f, rate)
        else:
            assert rate == 0.0, (f, rate)
    recorded = built["train"].info.extra["misalignment"]["effective_rate"]
    assert recorded == {f: (0.9 if f in perturbed else 0.0) for f in SEMANTIC}
    assert set(built["train"].info.expected_identifiable) == set(SEMANTIC) - set(perturbed)


def test_replacement_any_is_the_reference_codes_rule(medium: Path, tmp_path: Path) -> None:
    built = mmbench.load("mpi3d_complex_text/perturbation-5", split=None, data_dir=medium, cache_dir=tmp_path,
                         split_sizes=split_sizes_for(medium), replacement="any", progress=False)
    recorded = built["train"].info.extra["misalignment"]["effective_rate"]
    k = dict(zip(src.FACTORS, (4, 4, 2, 3, 3), strict=False))
    for f, rate in _rates(built).items():
        expected = 0.9 * (1 - 1 / k[f]) if f != "color" else 0.0
        assert recorded[f] == pytest.approx(expected)
        assert abs(rate - expected) < 0.02, (f, rate, expected)
        flags = np.asarray(built["train"].column(f"perturbed.{f}")) if f != "color" else None
        if flags is not None:  # "any" may redraw the true value: flagged yet unchanged
            shown, truth = (np.asarray(built["train"].column(c)) for c in (f"text.{f}", f"latents.{f}"))
            assert abs(flags.mean() - 0.9) < 0.02 and np.any(flags & (shown == truth))


def test_per_factor_probabilities_and_omitted_factors_in_the_recorded_rates(tiny: Path, tmp_path: Path) -> None:
    b = mmbench.builder("mpi3d_complex_text", data_dir=tiny, cache_dir=tmp_path, selection=["color", "size", "camera"],
                        perturbation=["camera", "size"], perturb_prob={"size": 0.5, "camera": 0.25}, **TINY)
    extra = b.info().extra["misalignment"]
    assert extra["selection"] == ["color", "size", "camera"] and extra["perturbation"] == ["size", "camera"]
    assert extra["effective_rate"] == {"color": 0.0, "shape": None, "size": 0.5, "camera": 0.25, "background": None}
    assert b.expected_identifiable() == ("color",)
    assert b.templates.templates[0] == "An object with color {color}, size {size} and camera {camera}."
    cols = b.text_columns("train", 0, 8, rng=np.random.default_rng(0))
    assert "text.shape" not in cols and all("color yellow, size " in c and "shape" not in c for c in cols["text"])


def test_reference_wording_uses_the_codes_phrases(tiny: Path, tmp_path: Path) -> None:
    ds = mmbench.load("mpi3d_complex_text/selection-5", split="test", data_dir=tiny, cache_dir=tmp_path,
                      wording="reference", progress=False, **TINY)
    captions = " ".join(ds.column("text")[:])
    assert re.search(r"(small|large) size", captions) and re.search(r"(top|center|bottom) view", captions)
    assert re.search(r"in a (purple|sea-green|salmon) background", captions)
    paper = mmbench.load("mpi3d_complex_text/selection-5", split="test", data_dir=tiny, cache_dir=tmp_path,
                         progress=False, **TINY)
    assert paper.info.stores == ds.info.stores  # same images, other words
    assert not re.search(r"(top|center|bottom) view", " ".join(paper.column("text")[:]))


def test_the_image_split_is_the_reference_codes_and_the_same_for_every_text_config(tiny: Path, tmp_path: Path) -> None:
    pools = split_pools(460_800)
    assert {k: len(v) for k, v in pools.items()} == {"train": 414_720, "val": 23_040, "test": 23_040}
    order = np.arange(460_800)
    np.random.RandomState(42).shuffle(order)  # what the reference code does
    np.testing.assert_array_equal(np.concatenate([pools["train"], pools["val"], pools["test"]]), order)
    assert dict(MPI3DComplexTextBuilder.CONFIGS["selection-1"].split_sizes) == {"train": 414_720, "val": 23_040, "test": 23_040}
    rows = {}
    for name in ("selection-1", "perturbation-4"):
        for split, ds in _load_all(name, tiny, tmp_path / "c").items():
            rows.setdefault(split, []).append(np.asarray(ds.column("image").index))
    for a, b in rows.values():
        np.testing.assert_array_equal(a, b)
    assert not set(rows["train"][0]) & (set(rows["val"][0]) | set(rows["test"][0]))


def test_a_fake_archive_builds_into_a_cache_entry_of_its_own(tiny: Path, tmp_path: Path) -> None:
    fake = mmbench.builder("mpi3d_complex_text/selection-2", data_dir=tiny, cache_dir=tmp_path, **TINY)
    real = mmbench.builder("mpi3d_complex_text/selection-2", cache_dir=tmp_path, **TINY)
    assert fake.config.fingerprint == real.config.fingerprint and fake.dataset_dir() != real.dataset_dir()
    assert real.modalities()["image"].shape == (3, 64, 64) and fake.modalities()["image"].shape == (3, 8, 8)
    ds = mmbench.load("mpi3d_complex_text/selection-2", split="val", data_dir=tiny, cache_dir=tmp_path, progress=False, **TINY)
    assert ds.info.inputs["mpi3d"]["source"] == src.FAKE_SOURCE


def test_batches_and_dataloader_give_images_and_padded_tokens(tiny: Path, tmp_path: Path) -> None:
    ds = mmbench.load("mpi3d_complex_text/selection-3", split="train", data_dir=tiny, cache_dir=tmp_path, progress=False, **TINY)
    batch = next(ds.batches(32, columns=["image", "tokens"], shuffle=True, seed=1))
    assert batch["image"].shape == (32, 3, 8, 8) and batch["tokens"].shape[0] == 32
    assert batch["tokens.lengths"].max() == batch["tokens"].shape[1]
    tb = next(iter(ds.dataloader(16, columns=["image", "text", "tokens", "latents.color"])))
    assert tb["image"].shape == (16, 3, 8, 8) and len(tb["text"]) == 16 and tb["tokens"].ndim == 2
    with pytest.raises(MMBenchError, match="no generative sampler"):
        mmbench.builder("mpi3d_complex_text", data_dir=tiny, cache_dir=tmp_path, **TINY).sampler(8)


# ----------------------------------------------------------------------------- bad input
def test_missing_archive_offline_names_the_url_the_checksum_and_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(InputsNotFoundError) as err:
        mmbench.load("mpi3d_complex_text/selection-1", split="train", cache_dir=tmp_path, **TINY)
    msg = str(err.value)
    assert src.PAGE_URL in msg and "sha256" in msg and str(tmp_path / "downloads" / "mpi3d" / src.FILENAME) in msg
    assert src.ENV_VAR in msg and "--data-dir" in msg
    assert not (tmp_path / "_stores").exists()


def test_missing_archive_names_the_pinned_checksum_once_one_is_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(src, "SHA256", "ab" * 32)
    monkeypatch.setattr(src, "SIZE", 5_662_310_656)
    with pytest.raises(InputsNotFoundError) as err:
        mmbench.load("mpi3d_complex_text/selection-1", split="train", cache_dir=tmp_path, **TINY)
    msg = str(err.value)
    assert f"sha256 {'ab' * 32}, 5662310656 bytes" in msg and src.PAGE_URL in msg
    assert "offline" in msg and str(tmp_path / "downloads" / "mpi3d" / src.FILENAME) in msg


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    np.savez(path / src.FILENAME, **arrays)
    return path


@pytest.mark.parametrize(
    ("arrays", "error", "match"),
    [
        ({"pixels": np.zeros((4, 8, 8, 3), np.uint8)}, InputsNotFoundError, r"no array 'images'; its arrays are \['pixels'\]"),
        ({"images": np.zeros((4, 64, 64, 3), np.uint8)}, ChecksumError, r"shape \(4, 64, 64, 3\) \(expected \(460800, 64, 64, 3\)"),
        ({"images": np.zeros((2, 2), np.float32)}, ChecksumError, "dtype float32 .expected uint8"),
    ],
)
def test_a_wrong_archive_is_refused_before_any_conversion(tmp_path: Path, arrays: dict, error: type, match: str) -> None:
    d = _npz(tmp_path / "data", **arrays)
    with pytest.raises(error, match=match):
        mmbench.load("mpi3d_complex_text/selection-1", split="train", data_dir=d, cache_dir=tmp_path / "c", **TINY)
    assert not (tmp_path / "c" / "_stores").exists()


def test_a_truncated_archive_is_refused_by_load_before_any_conversion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = _npz(tmp_path / "data", images=np.zeros((288, 8, 8, 3), np.uint8))
    data = (d / src.FILENAME).read_bytes()
    (d / src.FILENAME).write_bytes(data[: len(data) * 2 // 3])  # a download cut short
    monkeypatch.setattr(src, "archive_spec", lambda data_dir: src.ArchiveSpec(TINY_SIZES, 8))
    with pytest.raises(ChecksumError, match="truncated"):
        mmbench.load("mpi3d_complex_text/selection-1", split="train", data_dir=d, cache_dir=tmp_path / "c", **TINY)
    assert not (tmp_path / "c" / "_stores").exists()
    assert not [f for f in (tmp_path / "c").rglob("*") if f.is_file() and f.suffix != ".lock"]  # nothing converted


def test_a_truncated_or_altered_fake_is_refused(tiny: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    data = (tiny / src.FILENAME).read_bytes()
    (copy / src.FAKE_MANIFEST).write_text((tiny / src.FAKE_MANIFEST).read_text())
    (copy / src.FILENAME).write_bytes(data[: len(data) // 2])
    with pytest.raises(ChecksumError, match="not a valid .npz .zip. archive .*truncated"):
        src.resolve_archive(copy, tmp_path / "c")
    altered = bytearray(data)
    altered[400] ^= 0xFF  # a pixel: the structure is intact, the bytes are not
    (copy / src.FILENAME).write_bytes(bytes(altered))
    with pytest.raises(ChecksumError, match="sha256 .* fake-MPI3D manifest's file must have"):
        src.resolve_archive(copy, tmp_path / "c")
    assert not (tmp_path / "c" / "_stores").exists()


def test_a_pinned_checksum_refuses_another_file_and_allows_the_download(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmbench.sources import download as dl
    from mmbench.testing.http import LocalFileServer

    # Pretend the tiny fake is the official archive (its sizes, its hash pinned), with no manifest.
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / src.FILENAME).write_bytes((tiny / src.FILENAME).read_bytes())
    monkeypatch.setattr(src, "archive_spec", lambda data_dir: src.ArchiveSpec(TINY_SIZES, 8))
    sha = json.loads((tiny / src.FAKE_MANIFEST).read_text())["sha256"]
    monkeypatch.setattr(src, "SHA256", "0" * 64)
    with pytest.raises(ChecksumError, match="official MPI3D-Complex file must have 0{64}"):
        src.resolve_archive(plain, tmp_path / "c")
    monkeypatch.setattr(src, "SHA256", sha)
    assert src.resolve_archive(plain, tmp_path / "c")["sha256_pinned"] is True
    monkeypatch.setattr(dl, "RETRY_BACKOFF_S", 0.0)
    with LocalFileServer(plain) as server:
        monkeypatch.setattr(src, "URLS", (server.url(src.FILENAME),))
        record = src.resolve_archive(None, tmp_path / "c", allow_network=True)
    assert record["source"] == "download" and Path(record["path"]) == tmp_path / "c" / "downloads" / "mpi3d" / src.FILENAME
    assert src.resolve_archive(None, tmp_path / "c")["source"] == "cache"


def test_the_checksum_is_computed_once_per_file(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = _npz(tmp_path / "p", images=np.zeros((288, 8, 8, 3), np.uint8))
    monkeypatch.setattr(src, "archive_spec", lambda data_dir: src.ArchiveSpec(TINY_SIZES, 8))
    calls = []
    real = src.file_sha256
    monkeypatch.setattr(src, "file_sha256", lambda *a, **k: calls.append(a) or real(*a, **k))
    first = src.resolve_archive(plain, tmp_path / "c")
    assert src.resolve_archive(plain, tmp_path / "c")["sha256"] == first["sha256"] and len(calls) == 1
    os.utime(plain / src.FILENAME, ns=(1, 1))  # touched: hashed again
    src.resolve_archive(plain, tmp_path / "c")
    assert len(calls) == 2 and not first["sha256_pinned"]


FACTOR_CASES = [
    ({"selection": ["color", "shape"], "perturbation": ["size"]}, r"Perturbation latents \['size'\] are not in the selection"),
    ({"perturbation": ["size"], "selection": 6}, r"not in the selection \['color', 'shape'\]"),  # θ = 6: the paper's index
    ({"selection": ["colour"]}, r"Unknown latent 'colour'.*Did you mean 'color'"),
    ({"perturbation": ["backgruond"]}, r"Unknown latent 'backgruond' in the perturbation.*Did you mean 'background'"),
    ({"selection": ["color", "horizontal"]}, "image-specific"),
    ({"selection": 99}, r"index 99 is out of range.*1 … 31"),
    ({"perturbation": ["background"], "perturb_prob": 1.5}, r"perturb_prob must be <= 1.0, got 1.5.*in \[0, 1\]"),
    ({"perturbation": ["background"], "perturb_prob": -0.1}, r"perturb_prob must be >= 0.0.*\['background'\]"),
    ({"perturbation": ["camera", "background"], "perturb_prob": {"camera": 0.5, "background": 2}},
     r"perturb_prob\['background'\] must be <= 1.0, got 2.0"),
    ({"perturbation": ["background"], "perturb_prob": {"camera": 0.5}}, r"'camera'\] are not perturbed"),
    ({"perturbation": list(SEMANTIC)}, "proper subset"),
]


@pytest.mark.parametrize(("overrides", "match"), FACTOR_CASES)
def test_bad_factor_sets_and_probabilities_name_the_valid_factors(overrides: dict, match: str) -> None:
    with pytest.raises(InvalidConfigError, match=match) as err:
        mmbench.builder("mpi3d_complex_text", **overrides)
    assert str(list(SEMANTIC)) in str(err.value)  # the valid factors, whatever was wrong


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"replacement": "some"}, r"replacement must be one of \['other', 'any'\]"),
        ({"wording": "papers"}, r"wording must be one of \['paper', 'reference'\].*Did you mean 'paper'"),
        ({"split_sizes": Replace({"val": 10})}, "'train' is needed"),
    ],
)
def test_bad_options_name_the_valid_choices(overrides: dict, match: str) -> None:
    with pytest.raises(InvalidConfigError, match=match):
        mmbench.builder("mpi3d_complex_text", **overrides)


def test_split_sizes_beyond_the_archive_name_the_pools(tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigError, match=r"exceed the pools .* 288 images.*'train': 259, 'val': 14, 'test': 15"):
        mmbench.load("mpi3d_complex_text/selection-1", split="train", data_dir=tiny, cache_dir=tmp_path)
    assert not (tmp_path / "_stores").exists()


# ----------------------------------------------------------------------------- the fake writer
def test_fake_archives_have_the_real_format(tmp_path: Path) -> None:
    sizes = (2, 3, 2, 2, 3, 4, 5)
    path = write_fake_mpi3d(tmp_path / "a", factor_sizes=sizes, image_size=24, pixel_noise=0)
    images = np.load(path)["images"]
    assert images.shape == (int(np.prod(sizes)), 24, 24, 3) and images.dtype == np.uint8
    manifest = json.loads((path.parent / src.FAKE_MANIFEST).read_text())
    assert manifest["factor_sizes"] == list(sizes) and manifest["image_size"] == 24 and manifest["style"] == "procedural"
    grid = images.reshape(*sizes, 24, 24, 3)
    # every factor changes the drawing (no pixel noise here to hide a factor that does not)
    for axis in range(7):
        a, b = np.take(grid, 0, axis=axis), np.take(grid, 1, axis=axis)
        assert np.all(np.any(a != b, axis=(-3, -2, -1))), src.FACTORS[axis]
    same = write_fake_mpi3d(tmp_path / "b" / "x.npz", factor_sizes=sizes, image_size=24, seed=5, pixel_noise=0)
    np.testing.assert_array_equal(np.load(same)["images"], images)  # the drawing depends on the factors only
    noisy = np.load(write_fake_mpi3d(tmp_path / "c", factor_sizes=sizes, image_size=24))["images"].astype(int)
    assert 0 < np.abs(noisy - images).max() <= 12 and np.abs(noisy - images).mean() > 3
    noise = np.load(write_fake_mpi3d(tmp_path / "n", style="noise"))["images"]
    assert noise.std() > 60 and len({row.tobytes() for row in noise}) == len(noise)


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"factor_sizes": (5, 2, 2, 2, 2, 2, 2)}, "color has 5 values; it must have 2 … 4"),
     ({"factor_sizes": (2, 2)}, "must be 7 integers"),
     ({"image_size": 2}, r"image_size must be an integer in \[4, 256\]"),
     ({"style": "photo"}, "style must be one of")],
)
def test_fake_writer_refuses_bad_arguments(tmp_path: Path, kw: dict, match: str) -> None:
    with pytest.raises(InvalidConfigError, match=match):
        write_fake_mpi3d(tmp_path, **kw)
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- the suite
@pytest.fixture(scope="module")
def suite_fake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # every semantic factor at its real size, 3 × 3 arm positions: 2,592 images, 129 / 130 val / test rows
    return fake_dir(tmp_path_factory.mktemp("suite"), sizes=(4, 4, 2, 3, 3, 3, 3), image_size=4)


def _mcc(entry: dict[str, Any]) -> dict[str, dict[str, float]]:
    values = entry["metrics"]["mcc_matthews"]["values"]
    return {m: {f: v["mean"] for f, v in per.items()} for m, per in values.items()}


SUITE_ENTRIES = {"mpi3d-selection-2": ("color", "shape"), "mpi3d-perturbation-3": ("color", "shape", "size")}


def test_the_suite_records_per_factor_mcc_of_both_modalities_and_the_theorys_set(
    suite_fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmbench.harness.evaluate import evaluate
    from mmbench.harness.suites import get_suite
    from mmbench.testing.oracles import LatentOracle

    suite = get_suite("misalignment-mpi3d:v1")
    assert len(suite.entries) == 9 and all(e.fit_split == "val" and e.score_split == "test" for e in suite.entries)
    for entry in suite.entries:  # each entry's theory: the mentioned, never-misreported factors
        b = mmbench.builder(entry.dataset)
        assert b.expected_identifiable() == b.config.unbiased and entry.label == f"mpi3d-{b.config.name}"
    monkeypatch.setenv(src.ENV_VAR, str(suite_fake))  # the archive found through $MMBENCH_MPI3D_PATH
    sizes = {"split_sizes": split_sizes_for(suite_fake)}
    res = evaluate(LatentOracle(which="identifiable"), "misalignment-mpi3d:v1", entries=list(SUITE_ENTRIES), seeds=[0],
                   device="cpu", cache_dir=tmp_path, dataset_overrides=sizes, results_dir=tmp_path / "results")
    assert res.suite_id == "misalignment-mpi3d:v1"
    factors = {*src.FACTORS, "template"}
    for label, identifiable in SUITE_ENTRIES.items():
        entry = res.entry(label)
        assert entry["expected_identifiable"] == list(identifiable)
        assert entry["metrics"]["identifiability_consistency"]["expected"] == list(identifiable)
        assert entry["splits"]["fit"]["name"] == "val" and entry["splits"]["score"]["name"] == "test"
        mcc = _mcc(entry)
        assert set(mcc) == {"image", "text", "tokens"}  # the image and both forms of the caption
        for modality, per in mcc.items():
            assert set(per) == factors, (modality, sorted(per))
            assert all(per[f] > 0.95 for f in identifiable), (label, modality, per)
            assert all(abs(per[f]) < 0.35 for f in factors - set(identifiable)), (label, modality, per)
        assert res.value(label, "identifiability_consistency") > 0.9
    saved = json.loads(next((tmp_path / "results").glob("*.json")).read_text())
    assert saved["entries"][0]["expected_identifiable"] == list(SUITE_ENTRIES["mpi3d-selection-2"])
    # A model that also encodes the misreported factors is scored as inconsistent with the theory.
    leaky = evaluate(LatentOracle(which="all"), "misalignment-mpi3d:v1", entries=["mpi3d-perturbation-3"], seeds=[0],
                     device="cpu", cache_dir=tmp_path, dataset_overrides=sizes)
    per = _mcc(leaky.entry("mpi3d-perturbation-3"))["image"]
    assert per["camera"] > 0.95 and per["background"] > 0.95
    assert leaky.value("mpi3d-perturbation-3", "identifiability_consistency") < 0.9


def test_sample_grids_show_images_with_their_captions(tiny: Path, tmp_path: Path) -> None:
    from PIL import Image

    from mmbench.builders.mpi3d import sample_grids

    paths = sample_grids(tmp_path / "grids", configs=["selection-1", "perturbation-5"], num=4, data_dir=tiny,
                         cache_dir=tmp_path / "c", progress=False, **TINY)
    assert [p.name for p in paths] == ["selection-1.png", "perturbation-5.png"]
    for path in paths:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"))
        assert rgb.shape[0] >= 4 * 16 and rgb.shape[1] > 100  # four rows, each an image then its caption
        assert (rgb[:, 30:] < 100).any()  # text drawn right of the images


def test_show_grid_writes_a_png_per_config_from_the_command_line(tiny: Path, tmp_path: Path) -> None:
    from PIL import Image

    from mmbench.cli import main

    sizes = json.dumps(TINY["split_sizes"])
    for name in ("selection-3", "perturbation-4"):
        out = tmp_path / f"{name}.png"
        args = ["show", f"mpi3d_complex_text/{name}", "--data-dir", str(tiny), "--cache-dir", str(tmp_path / "c"),
                "--split", "test", "-n", "3", "--grid", str(out), "-o", f"split_sizes:={sizes}", "-o", "shard_size=64"]
        assert main(args) == 0
        with Image.open(out) as img:
            assert img.width > img.height / 3 > 8  # three rows: an image, then its caption to the right
