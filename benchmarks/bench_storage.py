"""Core storage benchmarks (issue "Core, second stage"): shared stores, text columns, resumable builds.

Run by hand (figures go into benchmarks/RESULTS.md):

    .venv/bin/python benchmarks/bench_storage.py [--store-gb 1.0] [--out benchmarks/_out/storage]

1. Two text configs over one synthetic image store of ``--store-gb`` GB: disk use against one
   copy of the images, and ``batches(4096)`` throughput over the store-backed column against the
   same images stored as a plain column (in order and shuffled; every batch materialised as a
   contiguous array, as a training loop needs it).
2. ``batches(4096)`` over a string column and a ragged token column of 1,000,000 captions.
3. Resumable build: a slow fake renderer (40 shards), the builder process killed (SIGKILL) at
   50 %, then rebuilt: the rebuild's time against a full build's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmbench.core.builder import Builder, Modality, split_id
from mmbench.core.columns import Ragged
from mmbench.core.config import BuilderConfig, FrozenDict
from mmbench.core.info import Feature
from mmbench.core.latents import Latent, LatentSpec
from mmbench.core.storage import Store

ROW = (3, 64, 64)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchConfig(BuilderConfig):
    split_sizes: Any = dataclasses.field(default_factory=lambda: FrozenDict(train=1000))
    shard_size: int | None = None
    shared: bool = True  # images in a store (True) or as a plain column (False)
    wording: str = "a"
    sleep: float = 0.0  # seconds per shard (the slow fake renderer)
    with_images: bool = True


class BenchBuilder(Builder):
    name = "bench/storage"
    VERSION = "1.0.0"
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "benchmark"}
    CONFIG_CLASS = BenchConfig

    def modalities(self) -> dict[str, Modality]:
        mods = {
            "image": Modality("image", "image", ROW, "uint8", store="images" if self.config.shared else None),
            "text": Modality("text", "text", (), "str"),
            "tokens": Modality("tokens", "tokens", (), "int32"),
        }
        if not self.config.with_images:
            del mods["image"]
        return mods

    def latent_spec(self) -> LatentSpec:
        return LatentSpec((Latent(name="k", kind="discrete", support=(0, 10**9), role="content"),))

    def stores(self) -> dict[str, Any]:
        if not self.config.shared or not self.config.with_images:
            return {}
        n = _store_rows(self.config.split_sizes["train"])
        return {"images": Store("bench/images", {"n": n}, n, {"image": Feature(ROW, "uint8")}, shard_rows=4096)}

    def generate_store(self, store: str, start: int, stop: int, *, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"image": _images(start, stop)}

    def generate(self, split: str, start: int, stop: int, *, rng: np.random.Generator) -> dict[str, Any]:
        if self.config.sleep:
            time.sleep(self.config.sleep)
        n = stop - start
        rows = _split_rows(self.config.split_sizes[split], self.config.seed, split)[start:stop]
        words = rng.integers(3, 40, size=(n, 12))
        captions = [self.config.wording + " " + " ".join(f"w{w}" for w in row) for row in words.tolist()]
        out = {
            "text": captions,
            "tokens": Ragged(words.astype(np.int32).reshape(-1), np.full(n, 12)),
            "latents.k": rows.astype(np.int64),
        }
        if self.config.with_images:
            out["image"] = rows if self.config.shared else _images_at(rows)
        return out


def _store_rows(n_split: int) -> int:
    return int(np.ceil(n_split / 0.9))


def _split_rows(n_split: int, seed: int, split: str) -> np.ndarray:
    """The split is a random 90 % of the store's rows, kept in store order (like MPI3D's)."""
    rng = np.random.default_rng([seed, split_id(split)])
    return np.sort(rng.choice(_store_rows(n_split), n_split, replace=False))


def _images(start: int, stop: int) -> np.ndarray:
    return _images_at(np.arange(start, stop))


def _images_at(rows: np.ndarray) -> np.ndarray:
    """Row r's image is a deterministic function of r alone (store and plain column agree)."""
    base = (rows.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(251)
    ramp = np.arange(int(np.prod(ROW)), dtype=np.uint64) % np.uint64(7)
    return ((base[:, None] + ramp[None, :]) % np.uint64(256)).astype(np.uint8).reshape(len(rows), *ROW)


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _throughput(ds: Any, column: str, *, shuffle: bool, materialise: bool = True) -> float:
    t0 = time.perf_counter()
    n = 0
    for batch in ds.batches(4096, columns=[column], shuffle=shuffle, seed=0):
        value = batch[column]
        if materialise and isinstance(value, np.ndarray) and (isinstance(value, np.memmap) or not value.flags.owndata):
            value = np.array(value)  # a view of the file: copy it into memory (a gather already did)
        n += len(value)
    return n / (time.perf_counter() - t0)


def bench_stores(cache: Path, gb: float) -> dict[str, Any]:
    n = int(0.9 * gb * 2**30 / np.prod(ROW))
    sizes = {"train": n}
    t0 = time.perf_counter()
    a = BenchBuilder(cache_dir=cache, split_sizes=sizes, wording="a")
    a.build(progress=False)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    b = BenchBuilder(cache_dir=cache, split_sizes=sizes, wording="b")
    b.build(progress=False)
    second = time.perf_counter() - t0
    one_copy = _store_rows(n) * int(np.prod(ROW))
    shared_disk = _du(cache)
    plain = BenchBuilder(cache_dir=cache / "plain", split_sizes=sizes, shared=False)
    plain.build(progress=False)
    ds_store, ds_plain = a.as_dataset("train"), plain.as_dataset("train")
    assert np.array_equal(ds_store["image"][:64], ds_plain["image"][:64])
    out = {"rows": n, "one_copy_bytes": one_copy, "two_configs_bytes": shared_disk,
           "ratio_to_one_copy": shared_disk / one_copy, "first_build_s": first, "second_config_build_s": second}
    for shuffle in (False, True):
        # interleaved, best of 5: the two columns see the same machine load (it is shared)
        runs = [(_throughput(ds_store, "image", shuffle=shuffle), _throughput(ds_plain, "image", shuffle=shuffle))
                for _ in range(5)]
        s, p = max(r[0] for r in runs), max(r[1] for r in runs)
        key = "shuffled" if shuffle else "in_order"
        out[f"{key}_store_rows_per_s"], out[f"{key}_plain_rows_per_s"], out[f"{key}_ratio"] = s, p, s / p
    return out


def bench_text(cache: Path) -> dict[str, Any]:
    b = BenchBuilder(cache_dir=cache, split_sizes={"train": 1_000_000}, with_images=False, shard_size=250_000)
    t0 = time.perf_counter()
    b.build(progress=False, num_workers=2)
    build = time.perf_counter() - t0
    ds = b.as_dataset("train")
    return {"build_1M_captions_s": build,
            "string_per_s": _throughput(ds, "text", shuffle=False),
            "string_shuffled_per_s": _throughput(ds, "text", shuffle=True),
            "tokens_per_s": _throughput(ds, "tokens", shuffle=False),
            "tokens_shuffled_per_s": _throughput(ds, "tokens", shuffle=True)}


_SLOW = """
import sys
sys.path.insert(0, {here!r})
from bench_storage import BenchBuilder
BenchBuilder(cache_dir={cache!r}, split_sizes={{"train": 40 * 512}}, shard_size=512, sleep=0.25,
             with_images=False, wording="slow").build(progress=False)
"""


def bench_resume(cache: Path) -> dict[str, Any]:
    code = _SLOW.format(here=str(Path(__file__).parent), cache=str(cache))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    full = time.perf_counter() - t0
    shutil.rmtree(cache)
    proc = subprocess.Popen([sys.executable, "-c", code])
    done_dir = None
    while proc.poll() is None:
        found = list(cache.glob("*/*/*/.partial-train/done"))
        if found:
            done_dir = found[0]
            if len(list(done_dir.glob("*.json"))) >= 20:
                os.kill(proc.pid, signal.SIGKILL)
                break
        time.sleep(0.02)
    proc.wait()
    kept = len(list(done_dir.glob("*.json"))) if done_dir else 0
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    resumed = time.perf_counter() - t0
    return {"full_build_s": full, "shards_done_when_killed": kept, "resumed_build_s": resumed,
            "resumed_over_full": resumed / full}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store-gb", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/_out/storage.json"))
    parser.add_argument("--only", choices=["stores", "text", "resume"], action="append")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mmbench-bench-") as tmp:
        for name, fn in (("stores", lambda c: bench_stores(c, args.store_gb)), ("text", bench_text), ("resume", bench_resume)):
            if args.only and name not in args.only:
                continue
            results[name] = fn(Path(tmp) / name)
            print(name, json.dumps(results[name], indent=1), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
