"""Cache atomicity and verification, and the loaded Dataset's views (batches, torch, HF)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

import mmbench
from mmbench import Replace
from mmbench.core.storage import clean_stale_tmp, tmp_prefix
from mmbench.errors import CacheError, ExecutorError, InvalidConfigError, MMBenchError

ID = "numerical/misalignment/joint"
SMALL = {"split_sizes": Replace({"train": 500, "test": 100}), "shard_size": 128}  # exactly these splits


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
    clean_stale_tmp(tmp_path)
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


# ----------------------------------------------------------------------------- review fixes (issue 2)
def test_duplicate_splits_are_built_once(tmp_path: Path) -> None:
    b = mmbench.builder(ID, cache_dir=tmp_path, **SMALL)
    root = b.build(["test", "test"], progress=False)
    assert not list(root.glob(".tmp-*"))
    assert len(b.as_dataset("test", verify="full")) == 100


def test_failed_resources_write_leaves_no_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import safetensors.numpy

    def half_written(tensors, filename):  # type: ignore[no-untyped-def]
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(safetensors.numpy, "save_file", half_written)
    b = mmbench.builder(ID, cache_dir=tmp_path, **SMALL)
    with pytest.raises(OSError, match="simulated"):
        b.build("test", progress=False)
    assert not list(b.dataset_dir().glob(".tmp-*"))


def test_overridden_build_reports_and_reloads_its_own_id(tmp_path: Path) -> None:
    from mmbench.errors import DatasetNotFoundError

    b = mmbench.builder(ID, cache_dir=tmp_path, **SMALL)
    root = b.build("test", progress=False)
    ds = b.as_dataset("test")
    assert ds.id == b.id == f"numerical/misalignment/joint~{b.config.fingerprint[:8]}:1.0.0"
    assert json.loads((root / "dataset_info.json").read_text())["id"] == b.id
    again = mmbench.load(ds.id, split="test", cache_dir=tmp_path)
    assert again.root == ds.root and again.fingerprint == ds.fingerprint and again.id == ds.id
    # a split not built yet is built with the pinned config, not with the named one
    train = mmbench.load(ds.id, split="train", cache_dir=tmp_path)
    assert len(train) == 500 and train.root == ds.root
    assert mmbench.builder(ds.id, cache_dir=tmp_path, seed=0).config == b.config  # a no-op override is fine
    with pytest.raises(InvalidConfigError, match=r"pins its config .*mmbench.load\('numerical/misalignment/joint'"):
        mmbench.builder(ds.id, cache_dir=tmp_path, seed=5)
    with pytest.raises(DatasetNotFoundError, match=r"no build of it is in the cache .*same overrides"):
        mmbench.load(ds.id, split="test", cache_dir=tmp_path / "elsewhere")


def test_verify_none_reports_a_damaged_column_as_cache_error(tmp_path: Path) -> None:
    b = mmbench.builder(ID, cache_dir=tmp_path, **SMALL)
    root = b.build("test", progress=False)
    with open(root / "test" / "x.npy", "r+b") as f:
        f.truncate(200)
    ds = b.as_dataset("test", verify="none")  # trusted without checks...
    with pytest.raises(CacheError, match=r"x\.npy is unreadable .*force_rebuild=True"):
        ds["x"]  # ...so the damage shows on first read, as a CacheError with the way out


def test_unknown_column_is_an_mmbench_key_error(ds) -> None:  # type: ignore[no-untyped-def]
    from mmbench.errors import ColumnNotFoundError

    with pytest.raises(ColumnNotFoundError, match="Did you mean one of 'latents.s1'") as err:
        ds.column("latent.s1")
    assert isinstance(err.value, KeyError) and isinstance(err.value, MMBenchError)
    with pytest.raises(ColumnNotFoundError):
        next(ds.batches(10, columns=["nope"]))


def test_verify_full_checks_the_resources(tmp_path: Path) -> None:
    b = mmbench.builder(ID, cache_dir=tmp_path, **SMALL)
    root = b.build("test", progress=False)
    path = root / "resources.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # a changed mixing weight: same size, so only the re-hash sees it
    path.write_bytes(bytes(data))
    b.as_dataset("test", verify="basic")
    with pytest.raises(CacheError, match="resources.safetensors does not match its recorded sha256"):
        b.as_dataset("test", verify="full")
    path.unlink()
    with pytest.raises(CacheError, match="resources file .* is missing"):
        b.as_dataset("test", verify="basic")


def test_not_built_hint_gives_a_command_that_builds_it(tmp_path: Path) -> None:
    import re
    import shlex

    from mmbench.cli import main

    sizes = {"split_sizes": {"train": 500, "val": 50, "test": 100}, "shard_size": 128}  # merged into the defaults
    b = mmbench.builder("numerical/misalignment/perturbation-3", cache_dir=tmp_path, seed=2, **sizes)
    with pytest.raises(CacheError, match="not built") as err:
        b.as_dataset("test")
    command = re.search(r"`(mmbench build [^`]*)`", str(err.value)).group(1)
    assert "-o seed=2" in command and "shard_size=128" in command and "--split test" in command
    assert main([*shlex.split(command)[1:], "--no-progress"]) == 0
    assert len(b.as_dataset("test")) == 100


def test_not_built_hint_for_a_config_that_dropped_a_split(tmp_path: Path) -> None:
    import re
    import shlex

    from mmbench.cli import main

    b = mmbench.builder("numerical/misalignment/perturbation-3", cache_dir=tmp_path, seed=2, **SMALL)
    with pytest.raises(CacheError, match="not built") as err:
        b.as_dataset("test")
    command = re.search(r"`(mmbench build [^`]*)`", str(err.value)).group(1)
    assert "split_sizes:=" in command  # the mapping passed whole: val stays dropped
    assert main([*shlex.split(command)[1:], "--no-progress"]) == 0
    assert len(b.as_dataset("test")) == 100 and not b.is_built("val")


def test_sampler_checks_its_arguments_when_called() -> None:
    from mmbench.errors import DatasetNotFoundError

    b = mmbench.builder(ID, split_sizes={"train": 64, "val": 64})
    with pytest.raises(InvalidConfigError, match="seed must be in"):
        b.sampler(8, seed=-1)
    with pytest.raises(DatasetNotFoundError, match="Did you mean 'train'"):
        b.sampler(8, split="trian")
    with pytest.raises(InvalidConfigError, match="steps must be"):
        b.sampler(8, steps=-1)
    assert len(list(b.sampler(8, split="val", steps=2))) == 2


def _fake_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in for Ray that runs tasks in-process and reports failures as Ray does."""
    import sys
    import types

    class RayError(Exception):
        pass

    class RayTaskError(RayError):
        def __init__(self, cause: BaseException) -> None:
            super().__init__(f"ray task failed: {cause!r}")
            self.cause = cause

    class Ref:
        def __init__(self, fn, args) -> None:  # type: ignore[no-untyped-def]
            try:
                self.value, self.error = fn(*args), None
            except Exception as exc:
                self.value, self.error = None, RayTaskError(exc)

    def get(ref: Ref):  # type: ignore[no-untyped-def]
        if ref.error is not None:
            raise ref.error
        return ref.value

    ray = types.ModuleType("ray")
    ray.exceptions = types.SimpleNamespace(RayError=RayError, RayTaskError=RayTaskError)  # type: ignore[attr-defined]
    ray.is_initialized = lambda: True  # type: ignore[attr-defined]
    ray.remote = lambda fn: types.SimpleNamespace(remote=lambda *args: Ref(fn, args))  # type: ignore[attr-defined]
    ray.wait = lambda refs, num_returns=1: (refs[:num_returns], refs[num_returns:])  # type: ignore[attr-defined]
    ray.get = get  # type: ignore[attr-defined]
    ray.cancel = lambda ref: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ray", ray)


def _flaky_generate(monkeypatch: pytest.MonkeyPatch, builder, fail_at: int) -> None:  # type: ignore[no-untyped-def]
    calls = {"n": 0}
    original = type(builder).generate

    def flaky(self, split, start, stop, *, rng):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise RuntimeError("disk full (simulated)")
        return original(self, split, start, stop, rng=rng)

    monkeypatch.setattr(type(builder), "generate", flaky)


def test_ray_task_failure_is_an_executor_error_naming_the_shard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_ray(monkeypatch)
    b = mmbench.builder(ID, cache_dir=tmp_path, **SMALL)
    _flaky_generate(monkeypatch, b, fail_at=2)
    with pytest.raises(ExecutorError, match=r"Task 1 \('train' shard 1\) failed on a Ray worker: RuntimeError\('disk full"):
        b.build("train", executor="ray", progress=False)
    assert not list(b.dataset_dir().glob(".tmp-*")) and not (b.dataset_dir() / "train").exists()


def test_ray_failure_with_real_ray(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is optional: pip install 'mmbench[ray]'")
    b = mmbench.builder(ID, cache_dir=tmp_path, **SMALL)
    b._resources = {}  # workers receive no mixing weights, so every shard fails there with a KeyError
    with pytest.raises(ExecutorError, match=r"\('test' shard 0\) failed on a Ray worker: KeyError\('chol.s'\)"):
        b.build("test", executor="ray", num_workers=2, progress=False)
    assert not list(b.dataset_dir().glob(".tmp-*"))
