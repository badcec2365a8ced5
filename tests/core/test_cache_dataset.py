"""Cache atomicity and verification, and the loaded Dataset's views (batches, torch, HF)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

import mmbench
from mmbench.core.builder import _clean_stale_tmp, tmp_prefix
from mmbench.errors import CacheError, ExecutorError, InvalidConfigError, MMBenchError

ID = "numerical/misalignment/joint"
SMALL = {"split_sizes": {"train": 500, "test": 100}, "shard_size": 128}


def _cols(root: Path, split: str) -> list[Path]:
    return sorted((root / split).glob("*.npy"))


def test_build_writes_info_and_loads_from_cache(tmp_path: Path) -> None:
    b = mmbench.builder(ID, cache_dir=tmp_path, **SMALL)
    root = b.build(progress=False)
    info = json.loads((root / "dataset_info.json").read_text())
    assert info["config"]["selection"] == [f"s{i}" for i in range(1, 9)]
    assert info["version"] == "1.0.0" and info["config_fingerprint"] == b.config.fingerprint
    assert set(info["splits"]) == {"train", "test"}
    assert len(info["splits"]["train"]["shards"]) == 4
    assert set(info["splits"]["train"]["shards"][0]["sha256"]) == set(b.features())
    assert info["resources_sha256"] and (root / "resources.safetensors").is_file()
    assert not list(root.glob(".tmp-*"))
    mtime = (root / "train" / "x.npy").stat().st_mtime_ns
    ds = mmbench.load(ID, split="train", cache_dir=tmp_path, **SMALL)  # no rebuild
    assert (root / "train" / "x.npy").stat().st_mtime_ns == mtime
    assert ds.fingerprint == info["splits"]["train"]["fingerprint"]
    both = mmbench.load(ID, cache_dir=tmp_path, **SMALL)
    assert set(both) == {"train", "test"}


def test_failed_build_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = mmbench.builder(ID, cache_dir=tmp_path, **SMALL)
    calls = {"n": 0}
    original = type(b).generate

    def flaky(self, split, start, stop, *, rng):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full (simulated)")
        return original(self, split, start, stop, rng=rng)

    monkeypatch.setattr(type(b), "generate", flaky)
    with pytest.raises(RuntimeError, match="simulated"):
        b.build("train", num_workers=1, progress=False)
    root = b.dataset_dir()
    assert not (root / "train").exists()
    assert not list(root.glob(".tmp-*"))
    with pytest.raises(CacheError, match="not built"):
        b.as_dataset("train")


def test_stale_tmp_from_dead_process_is_cleaned(tmp_path: Path) -> None:
    host = tmp_prefix().split("-")[2]
    stale = tmp_path / f".tmp-999999999-{host}-abc-train"
    stale.mkdir()
    mine = tmp_path / f"{tmp_prefix()}abc-train"
    mine.mkdir()
    other_machine = tmp_path / ".tmp-999999999-0000beef-abc-train"
    other_machine.mkdir()
    _clean_stale_tmp(tmp_path)
    assert not stale.exists() and mine.exists() and other_machine.exists()


def test_corruption_is_detected(tmp_path: Path) -> None:
    b = mmbench.builder(ID, cache_dir=tmp_path, **SMALL)
    root = b.build(progress=False)
    # a flipped byte: same size and header, so only the full re-hash sees it
    path = root / "train" / "latents.s3.npy"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    b.as_dataset("train", verify="basic")
    with pytest.raises(CacheError, match="does not match its recorded sha256"):
        b.as_dataset("train", verify="full")
    # a truncated file: caught by the cheap check
    with open(path, "r+b") as f:
        f.truncate(100)
    with pytest.raises(CacheError, match="bytes, expected"):
        mmbench.load(ID, split="train", cache_dir=tmp_path, **SMALL)
    # force_rebuild repairs it
    ds = mmbench.load(ID, split="train", cache_dir=tmp_path, force_rebuild=True, verify="full", **SMALL)
    assert len(ds) == 500
    (root / "test" / "t.npy").unlink()
    with pytest.raises(CacheError, match="missing"):
        b.as_dataset("test")
    (root / "dataset_info.json").write_text("{not json")
    with pytest.raises(CacheError, match="unreadable"):
        b.as_dataset("train")
    with pytest.raises(InvalidConfigError, match="Unknown verify mode"):
        b.as_dataset("train", verify="paranoid")


def test_force_rebuild_gives_identical_bytes(tmp_path: Path) -> None:
    b = mmbench.builder(ID, cache_dir=tmp_path, **SMALL)
    b.build("test", progress=False)
    before = b.as_dataset("test")["x"].copy()
    b.build("test", progress=False, force=True)
    np.testing.assert_array_equal(b.as_dataset("test")["x"], before)


def test_executor_errors(tmp_path: Path) -> None:
    b = mmbench.builder(ID, cache_dir=tmp_path, **SMALL)
    with pytest.raises(ExecutorError, match="Did you mean 'serial'"):
        b.build(executor="serail", progress=False)
    with pytest.raises(ExecutorError, match="positive integer"):
        b.build(num_workers=0, progress=False)


def test_ray_executor_matches_local(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is optional: pip install 'mmbench[ray]'")
    local = mmbench.builder(ID, cache_dir=tmp_path / "a", **SMALL)
    ray_b = mmbench.builder(ID, cache_dir=tmp_path / "b", **SMALL)
    local.build(progress=False)
    ray_b.build(executor="ray", num_workers=2, progress=False)
    for split in ("train", "test"):
        assert local.as_dataset(split).fingerprint == ray_b.as_dataset(split).fingerprint


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory):
    return mmbench.load(ID, split="train", cache_dir=tmp_path_factory.mktemp("ds"), **SMALL)


def test_random_access_and_batches(ds) -> None:  # type: ignore[no-untyped-def]
    assert len(ds) == 500 and "latents.s1" in ds.column_names and ds.modalities == ["x", "t"]
    row = ds[3]
    assert row["x"].shape == (15,) and np.ndim(row["latents.s1"]) == 0
    np.testing.assert_array_equal(ds[-1]["x"], ds["x"][499])
    with pytest.raises(IndexError):
        ds[500]
    with pytest.raises(KeyError, match="Did you mean 'x'"):
        ds["xx"]
    assert ds[[0, 2]]["x"].shape == (2, 15) and ds[10:20]["t"].shape == (10, 13)
    batches = list(ds.batches(128))
    assert [len(b["x"]) for b in batches] == [128, 128, 128, 116]
    np.testing.assert_array_equal(np.concatenate([b["x"] for b in batches]), ds["x"])
    assert [len(b["x"]) for b in ds.batches(128, drop_last=True)] == [128] * 3
    shuffled = np.concatenate([b["latents.s1"] for b in ds.batches(100, shuffle=True, seed=0, columns=["latents.s1"])])
    assert not np.array_equal(shuffled, ds["latents.s1"])
    np.testing.assert_array_equal(np.sort(shuffled), np.sort(ds["latents.s1"]))
    with pytest.raises(InvalidConfigError):
        next(ds.batches(0))
    assert ds.latents().num_rows == 500
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone["x"], ds["x"])


def test_torch_views(ds) -> None:  # type: ignore[no-untyped-def]
    import torch
    from torch.utils.data import DataLoader

    tds = ds.torch()
    assert isinstance(tds, torch.utils.data.Dataset) and len(tds) == 500
    one = tds[0]
    assert one["x"].dtype == torch.float32 and one["perturbed.s1"].dtype == torch.bool
    plain = next(iter(DataLoader(tds, batch_size=8)))  # the standard per-example path works too
    assert plain["x"].shape == (8, 15)
    for workers in (0, 2):
        loader = ds.dataloader(128, num_workers=workers)
        got = torch.cat([b["x"] for b in loader])
        np.testing.assert_array_equal(got.numpy(), ds["x"])
    seen = torch.cat([b["latents.s1"] for b in ds.dataloader(100, shuffle=True, seed=1, columns=["latents.s1"])])
    assert sorted(seen.tolist()) == sorted(ds["latents.s1"].tolist())


def test_hf_view(ds) -> None:  # type: ignore[no-untyped-def]
    import datasets

    hf = ds.hf()
    assert isinstance(hf, datasets.Dataset) and hf.num_rows == 500
    assert hf.features["x"].length == 15 and hf.features["latents.s1"].dtype == "float32"
    assert hf.features["perturbed.s1"].dtype == "bool"
    np.testing.assert_allclose(np.array(hf.with_format("numpy")[0:4]["x"]), ds["x"][:4])
    assert ds.hf().num_rows == 500  # second call reuses the Arrow file


def test_hf_classlabel_for_categorical() -> None:
    from mmbench.core.hf import hf_features
    from mmbench.core.latents import Latent, LatentSpec

    b = mmbench.builder(ID)
    info = b.info()
    info.latents = LatentSpec((Latent(name="digit", kind="categorical", support=tuple("0123456789"), role="content"),))
    info.features = {"latents.digit": info.features["latents.s1"].__class__((), "int64", "latent")}
    feats = hf_features(info)
    assert feats["latents.digit"].names == list("0123456789")


def test_generate_contract_is_enforced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = mmbench.builder(ID, cache_dir=tmp_path, **SMALL)
    original = type(b).generate

    def wrong(self, split, start, stop, *, rng):  # type: ignore[no-untyped-def]
        cols = original(self, split, start, stop, rng=rng)
        cols["x"] = cols["x"].astype(np.float64)
        return cols

    monkeypatch.setattr(type(b), "generate", wrong)
    with pytest.raises(MMBenchError, match="column 'x' has shape"):
        b.generate_shard("train", 0)


def test_interrupted_build_before_info_write_still_loads(tmp_path: Path) -> None:
    b = mmbench.builder(ID, cache_dir=tmp_path, **SMALL)
    root = b.build("test", progress=False)
    (root / "dataset_info.json").unlink()  # as if stopped between the split rename and the info write
    assert len(mmbench.load(ID, split="test", cache_dir=tmp_path, **SMALL)) == 100
    assert (root / "dataset_info.json").is_file()


def test_verify_mode_checked_before_building(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigError, match="Did you mean 'full'"):
        mmbench.load(ID, split="test", cache_dir=tmp_path, verify="ful", **SMALL)
    assert not list(tmp_path.iterdir())
