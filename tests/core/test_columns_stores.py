"""String and ragged columns, artifacts, shared stores, resumable builds, locks and `mmbench cache`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mmbench.core.cache import prune, scan
from mmbench.core.columns import Ragged, RaggedColumn, StoreColumn, StringColumn, to_var_values
from mmbench.core.dataset import Dataset
from mmbench.core.info import Feature
from mmbench.errors import CacheError, ColumnNotFoundError, InvalidConfigError, MMBenchError
from mmbench.testing.toy import SHAPES, ToyTextBuilder


def _build(tmp_path: Path, workers: int = 1, **kw) -> ToyTextBuilder:  # type: ignore[no-untyped-def]
    b = ToyTextBuilder(cache_dir=tmp_path, **kw)
    b.build(num_workers=workers, progress=False)
    return b


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.npy"))}


# ---------------------------------------------------------------- column values
def test_string_and_ragged_columns_load_as_str_and_padded_ids(tmp_path: Path) -> None:
    b = _build(tmp_path)
    ds = b.as_dataset("train")
    vocab = json.loads(ds.artifact("vocabulary.json"))
    assert vocab[:3] == ["{pad}", "{eos}", "{unk}"]
    first = ds[0]
    assert isinstance(first["text"], str) and first["text"].startswith("a ")
    assert [vocab[i] for i in first["tokens"][:-1]] == first["text"].split() and first["tokens"][-1] == 1
    assert SHAPES[first["latents.shape"]] in first["text"]
    batch = next(ds.batches(5, shuffle=True, seed=3))
    assert isinstance(batch["text"], list) and all(isinstance(t, str) for t in batch["text"])
    padded, lengths = batch["tokens"], batch["tokens.lengths"]
    assert padded.shape == (5, lengths.max()) and padded.dtype == np.int32
    for row, n, text in zip(padded, lengths, batch["text"], strict=True):
        assert [vocab[i] for i in row[: n - 1]] == text.split() and (row[n:] == 0).all()
    everything = ds[:]
    assert everything["text"] == [ds[i]["text"] for i in range(len(ds))]


def test_text_configs_share_one_image_store(tmp_path: Path) -> None:
    short = _build(tmp_path, wording="short")
    long = _build(tmp_path, workers=2, wording="long")
    report = scan(tmp_path)
    assert len(report.stores) == 1 and len(report.stores[0]["used_by"]) == 2
    a, b = short.as_dataset("test"), long.as_dataset("test")
    assert np.array_equal(a["image"][:], b["image"][:])
    assert a[0]["text"] != b[0]["text"] and isinstance(a.column("image"), StoreColumn)
    # the split holds only an int64 index; the pixels are on disk once
    assert not (short.dataset_dir() / "test" / "image.npy").exists()
    assert (short.dataset_dir() / "test" / "image.index.npy").is_file()
    assert prune(tmp_path, dry_run=True) == []  # both configs use the store


def test_store_backed_column_is_an_ordinary_column_everywhere(tmp_path: Path) -> None:
    ds = _build(tmp_path).as_dataset("val")
    col = ds.column("image")
    assert col.shape == (16, 3, 8, 8) and col.dtype == np.uint8 and len(col) == 16
    gathered = col[np.array([5, 1, 9])]
    assert np.array_equal(gathered, np.stack([col[5], col[1], col[9]]))
    hf = ds.hf()
    assert np.array_equal(np.asarray(hf[3]["image"], dtype=np.uint8), col[3])
    tds = ds.torch()
    assert tuple(tds[[0, 2]]["image"].shape) == (2, 3, 8, 8)


def test_hf_parquet_round_trip_is_exact(tmp_path: Path) -> None:
    import datasets

    ds = _build(tmp_path).as_dataset("train")
    hf = ds.hf()
    assert hf.features["text"] == datasets.Value("string")
    assert hf.features["tokens"].feature == datasets.Value("int32")
    hf.to_parquet(str(tmp_path / "train.parquet"))
    back = datasets.load_dataset("parquet", data_files=str(tmp_path / "train.parquet"), split="train",
                                 cache_dir=str(tmp_path / "hf"))
    assert back["text"] == ds["text"][:]
    assert [list(t) for t in back["tokens"]] == [list(t) for t in ds["tokens"][:]]
    assert np.array_equal(np.asarray(back["image"], dtype=np.uint8), ds["image"][:])


def test_builds_are_identical_with_any_worker_count(tmp_path: Path) -> None:
    one = _build(tmp_path / "a", workers=1)
    two = _build(tmp_path / "b", workers=2)
    assert one.as_dataset("train").fingerprint == two.as_dataset("train").fingerprint
    assert _files(one.dataset_dir()) == _files(two.dataset_dir())
    assert _files(tmp_path / "a" / "_stores") == _files(tmp_path / "b" / "_stores")


# ---------------------------------------------------------------- resumable builds
def _fail_once_at(monkeypatch: pytest.MonkeyPatch, calls: list[tuple[str, int]], fail_at: int) -> None:
    original = ToyTextBuilder.generate
    failed: list[bool] = []

    def flaky(self, split, start, stop, *, rng):  # type: ignore[no-untyped-def]
        calls.append((split, start))
        if len(calls) == fail_at and not failed:
            failed.append(True)
            raise KeyboardInterrupt  # Ctrl-C in the middle of the build
        return original(self, split, start, stop, rng=rng)

    monkeypatch.setattr(ToyTextBuilder, "generate", flaky)


def test_interrupted_build_resumes_and_ends_byte_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = _build(tmp_path / "ref")
    calls: list[tuple[str, int]] = []
    _fail_once_at(monkeypatch, calls, fail_at=3)  # train has 4 shards of 16
    b = ToyTextBuilder(cache_dir=tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        b.build("train", progress=False)
    partial = b.dataset_dir() / ".partial-train"
    assert partial.is_dir() and len(list((partial / "done").glob("*.json"))) == 2
    assert not (b.dataset_dir() / "train").exists()
    calls.clear()
    b.build("train", progress=False)
    assert calls == [("train", 32), ("train", 48)]  # only the shards that were not finished
    assert not partial.exists()
    assert _files(b.dataset_dir() / "train") == _files(reference.dataset_dir() / "train")
    assert b.as_dataset("train").fingerprint == reference.as_dataset("train").fingerprint


def test_resumed_shard_whose_bytes_changed_is_generated_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = _build(tmp_path / "ref")
    calls: list[tuple[str, int]] = []
    _fail_once_at(monkeypatch, calls, fail_at=4)
    b = ToyTextBuilder(cache_dir=tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        b.build("train", progress=False)
    partial = b.dataset_dir() / ".partial-train"
    sizes = np.load(partial / "latents.size.npy", mmap_mode="r+")
    sizes[20] += 1  # shard 1 (rows 16-31) damaged on disk
    del sizes
    values = sorted(partial.glob("text.000000.values.npy"))[0]
    arr = np.load(values)
    arr[0] ^= 1  # shard 0's caption bytes damaged
    np.save(values, arr)
    calls.clear()
    b.build("train", progress=False)
    assert sorted(calls) == [("train", 0), ("train", 16), ("train", 48)]
    assert _files(b.dataset_dir() / "train") == _files(reference.dataset_dir() / "train")


def test_partial_build_of_another_config_is_not_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int]] = []
    _fail_once_at(monkeypatch, calls, fail_at=3)
    b = ToyTextBuilder(cache_dir=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        b.build("train", progress=False)
    stamp = b.dataset_dir() / ".partial-train" / "partial.json"
    doc = json.loads(stamp.read_text())
    doc["stamp"]["version"] = "0.9.0"
    stamp.write_text(json.dumps(doc))
    calls.clear()
    b.build("train", progress=False)
    assert len(calls) == 4


def test_force_starts_over(tmp_path: Path) -> None:
    b = _build(tmp_path)
    before = _files(b.dataset_dir())
    b.build(force=True, progress=False)
    assert _files(b.dataset_dir()) == before and not list(b.dataset_dir().glob(".partial-*"))


def test_shard_size_none_sizes_shards_by_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ToyTextBuilder, "MAX_SHARD_BYTES", 1000)
    b = ToyTextBuilder(cache_dir=tmp_path, shard_size=None)
    row = sum(f.bytes_per_example for f in b.features().values())
    assert b.shard_rows() == 1000 // row
    assert b.shard_bounds("val")[0] == (0, 1000 // row)
    with pytest.raises(InvalidConfigError, match="shard_size"):
        ToyTextBuilder(shard_size=0)


# ---------------------------------------------------------------- integrity
def test_changed_or_missing_artifact_is_a_cache_error(tmp_path: Path) -> None:
    b = _build(tmp_path)
    path = b.dataset_dir() / "artifacts" / "vocabulary.json"
    path.write_bytes(path.read_bytes().replace(b"red", b"rot"))
    with pytest.raises(CacheError, match="vocabulary.json.*sha256"):
        b.as_dataset("train").artifact("vocabulary.json")
    with pytest.raises(CacheError, match="vocabulary.json"):
        b.as_dataset("train", verify="full")
    with pytest.raises(ColumnNotFoundError, match="Did you mean.*vocabulary.json"):
        b.as_dataset("train").artifact("vocabulary.jsn")
    path.unlink()
    with pytest.raises(CacheError, match="missing"):
        b.as_dataset("train")


def test_missing_or_replaced_store_is_a_cache_error(tmp_path: Path) -> None:
    b = _build(tmp_path)
    store = tmp_path / scan(tmp_path).stores[0]["path"]
    images = np.load(store / "image.npy", mmap_mode="r+")
    images[3, 0, 0, 0] ^= 0xFF
    del images
    b.as_dataset("train")  # basic: sizes and headers only
    with pytest.raises(CacheError, match="Shard 0 of column 'image'"):
        b.as_dataset("train", verify="full")
    (store / "split_info.json").unlink()
    with pytest.raises(CacheError, match="shared store .* missing or unreadable"):
        b.as_dataset("train")


def test_damaged_string_column_is_detected(tmp_path: Path) -> None:
    b = _build(tmp_path)
    path = b.dataset_dir() / "train" / "text.values.npy"
    arr = np.load(path)
    arr[5] = ord("#")
    np.save(path, arr)
    b.as_dataset("train")
    with pytest.raises(CacheError, match="column 'text'"):
        b.as_dataset("train", verify="full")
    offsets = b.dataset_dir() / "train" / "text.offsets.npy"
    np.save(offsets, np.load(offsets)[:-1])
    with pytest.raises(CacheError, match="text.offsets"):
        b.as_dataset("train")


def test_bad_generated_values_name_the_column(tmp_path: Path) -> None:
    feat = Feature.string("modality")
    with pytest.raises(MMBenchError, match=r"only str values, got 3 \(int\)"):
        to_var_values(["a", 3], feat, 2, where="gen")
    with pytest.raises(MMBenchError, match="has 1 values, expected 2"):
        to_var_values(["a"], feat, 2, where="gen")
    ids = Feature.ragged("int8")
    with pytest.raises(MMBenchError, match="do not fit dtype int8"):
        to_var_values([np.array([1, 300])], ids, 1, where="gen")
    with pytest.raises(MMBenchError, match="1-D integer"):
        to_var_values([np.array([0.5])], ids, 1, where="gen")
    with pytest.raises(InvalidConfigError, match="offsets must start at 0"):
        Ragged(np.arange(2), np.array([0, 3]))
    with pytest.raises(MMBenchError, match=r"ragged lengths must be 2 non-negative"):
        to_var_values(Ragged.from_sequences([[1, 2]]), ids, 2, where="gen")
    with pytest.raises(InvalidConfigError, match="ragged column holds integers"):
        Feature.ragged("float32")


def test_readers_index_like_arrays() -> None:
    offsets = np.array([0, 2, 2, 5])
    col = StringColumn(offsets, np.frombuffer(b"hiabc", dtype=np.uint8))
    assert col[0] == "hi" and col[1] == "" and col[-1] == "abc" and col[1:] == ["", "abc"]
    assert col[np.array([2, 0])] == ["abc", "hi"] and col[::2] == ["hi", "abc"]
    with pytest.raises(IndexError):
        col[3]
    rag = RaggedColumn(offsets, np.array([7, 8, 1, 2, 3]))
    padded, lengths = rag.padded(np.array([2, 1, 0]))
    assert padded.tolist() == [[1, 2, 3], [0, 0, 0], [7, 8, 0]] and lengths.tolist() == [3, 0, 2]
    assert rag.padded(slice(0, 2))[0].tolist() == [[7, 8], [0, 0]]
    store = StoreColumn(np.arange(10) * 10, np.array([4, 5, 6, 1]))
    assert store[:3].tolist() == [40, 50, 60] and store[np.array([3, 0])].tolist() == [10, 40]


def test_opening_removes_a_dead_processes_temporaries(tmp_path: Path) -> None:
    from mmbench.core.storage import tmp_prefix

    b = _build(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    host = tmp_prefix().split("-")[2]
    leftover = b.dataset_dir() / f".tmp-{pid}-{host}-abc-old-train"
    leftover.mkdir()
    (leftover / "x.npy").write_bytes(b"0" * 100)
    Dataset.open(b.dataset_dir(), "train")
    assert not leftover.exists()


# ---------------------------------------------------------------- cache report and prune
def test_prune_removes_only_what_nothing_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kept = _build(tmp_path)
    other = ToyTextBuilder(cache_dir=tmp_path, seed=1)
    other.build(progress=False)
    import shutil

    shutil.rmtree(other.dataset_dir())  # its store is now unreferenced
    calls: list[tuple[str, int]] = []
    _fail_once_at(monkeypatch, calls, fail_at=2)
    third = ToyTextBuilder(cache_dir=tmp_path, wording="long")
    with pytest.raises(KeyboardInterrupt):
        third.build("train", progress=False)
    report = scan(tmp_path)
    assert len(report.stores) == 2 and len(report.unreferenced_stores()) == 1 and len(report.partial) == 1
    text = report.to_text()
    assert "UNUSED" in text and "partial builds" in text and kept.id in text
    removed = prune(tmp_path)
    assert len(removed) == 2
    after = scan(tmp_path)
    assert len(after.stores) == 1 and not after.partial
    kept.as_dataset("train", verify="full")


# ---------------------------------------------------------------- two processes, one build
_CONCURRENT = textwrap.dedent("""
    import sys, time
    from mmbench.testing.toy import ToyTextBuilder
    original = ToyTextBuilder.generate
    def slow(self, split, start, stop, *, rng):
        with open(sys.argv[2], "a") as f:
            f.write(f"{split} {start}\\n")
        time.sleep(0.05)
        return original(self, split, start, stop, rng=rng)
    ToyTextBuilder.generate = slow
    ToyTextBuilder(cache_dir=sys.argv[1]).build(progress=False)
    print(ToyTextBuilder(cache_dir=sys.argv[1]).as_dataset("train").fingerprint)
""")


def test_two_processes_building_one_config_build_it_once(tmp_path: Path) -> None:
    log = tmp_path / "calls.txt"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [subprocess.Popen([sys.executable, "-c", _CONCURRENT, str(tmp_path / "cache"), str(log)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert outs[0][0] == outs[1][0]
    shards = log.read_text().splitlines()
    assert len(shards) == len(set(shards)) == 6  # 4 train + 1 val + 1 test shards, each generated once


def test_a_killed_force_rebuild_leaves_no_full_copy_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = _build(tmp_path)
    calls: list[tuple[str, int]] = []
    _fail_once_at(monkeypatch, calls, fail_at=2)
    with pytest.raises(KeyboardInterrupt):
        b.build("train", force=True, progress=False)
    assert (b.dataset_dir() / ".partial-train").is_dir()
    b.as_dataset("train", verify="full")  # the old split is intact, and opening it cleans up
    assert not (b.dataset_dir() / ".partial-train").exists()


def test_cache_command_lists_and_prunes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mmbench.cli import main

    b = _build(tmp_path)
    orphan = ToyTextBuilder(cache_dir=tmp_path, seed=5)
    orphan.build(progress=False)
    import shutil

    shutil.rmtree(orphan.dataset_dir())
    assert main(["cache", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert b.id in out and "used by 1" in out and "UNUSED" in out
    assert main(["cache", "--cache-dir", str(tmp_path), "--prune", "--dry-run"]) == 0
    assert "would remove 1 item(s)" in capsys.readouterr().out and len(scan(tmp_path).stores) == 2
    assert main(["cache", "--cache-dir", str(tmp_path), "--prune"]) == 0
    assert "removed 1 item(s)" in capsys.readouterr().out and len(scan(tmp_path).stores) == 1
    b.as_dataset("test", verify="full")
