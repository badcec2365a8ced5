"""Export benchmarks (issue 13). Run by hand, with real MNIST resolvable (see README):

    .venv/bin/python benchmarks/bench_export.py [--workers 1 2] [--keep DIR]

Measures, on ``polymnist`` (default config: 55k train / 5k val / 10k test = 70,000 tuples,
350,000 images), built first into a fresh temporary cache:
  1. ``mmbench.hub.export`` of all splits (PNG encoding and Parquet writing spread over
     ``--workers`` processes), per worker count;
  2. size on disk: the Parquet export against the memory-mapped cache entry;
  3. ``datasets.load_dataset(EXPORT, "reference")``: first load (Parquet → Arrow cache) and
     cached load, then one pass over the test split with images decoded;
  4. the way back to mmbench: Parquet → memory-mapped columns with every shard's sha256 checked
     (what ``mmbench.load(..., source="hub")`` does once per revision, after the download);
and prints a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import mmbench
from mmbench import hub
from mmbench.core.builder import default_cache_dir
from mmbench.hub.loading import materialise
from mmbench.sources.mnist import resolve_mnist

ID = "polymnist/reference"


def timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the export's worker processes)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def du(path: Path, pattern: str = "*") -> int:
    return sum(p.stat().st_size for p in path.rglob(pattern) if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, nargs="+", default=[2], help="worker counts to time the export with")
    ap.add_argument("--keep", default=None, help="keep the last export in this directory")
    args = ap.parse_args()
    mnist = resolve_mnist(None, default_cache_dir())
    data_dir = Path(mnist["files"]["train-images-idx3-ubyte"]["path"]).parent
    rows: list[tuple[str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="mmbench-bench-export-"))
    try:
        cache = tmp / "cache"
        b = mmbench.builder(ID, cache_dir=cache, data_dir=data_dir)
        dt, root = timed(lambda: b.build(num_workers=2, progress=False))
        n = sum(b.config.split_sizes.values())
        rows.append((f"build (for reference), {n:,} tuples, 2 workers", f"{dt:.1f} s"))
        out = tmp / "export"
        for workers in args.workers:
            cpu = cpu_seconds()
            dt, _ = timed(lambda w=workers: hub.export(b, out, num_workers=w, overwrite=True, progress=False))
            cpu = cpu_seconds() - cpu
            images = n * b.config.num_modalities
            rows.append((f"export all splits ({n:,} tuples, {images:,} PNG images), {workers} worker(s)",
                         f"**{dt:.1f} s** wall ({images / dt:,.0f} images/s), {cpu:.1f} s CPU in all processes"))
            print(rows[-1], flush=True)
        parquet, cache_bytes = du(out, "*.parquet"), du(root, "*.npy")
        rows.append(("size: memory-mapped cache (.npy columns)", f"{cache_bytes / 1e6:,.1f} MB"))
        rows.append(("size: Parquet export (PNG images)", f"{parquet / 1e6:,.1f} MB ({parquet / cache_bytes:.0%} of the cache); "
                     f"whole export folder {du(out) / 1e6:,.1f} MB"))
        import datasets

        hf_cache = tmp / "hf-cache"
        dt, d = timed(lambda: datasets.load_dataset(str(out), "reference", cache_dir=str(hf_cache)))
        rows.append(("`datasets.load_dataset(EXPORT, 'reference')`, first load (Parquet → Arrow cache)", f"{dt:.1f} s"))
        dt, d = timed(lambda: datasets.load_dataset(str(out), "reference", cache_dir=str(hf_cache)))
        rows.append(("`datasets.load_dataset(EXPORT, 'reference')`, cached", f"{dt:.2f} s"))
        test = d["test"].with_format("numpy")
        dt, _ = timed(lambda: [batch for batch in test.iter(batch_size=256)])
        rows.append(("one pass over `test` with `datasets` (batch 256, 5 images decoded per tuple)",
                     f"{dt:.1f} s ({len(test) / dt:,.0f} tuples/s)"))
        back = tmp / "back" / "reference"
        dt, _ = timed(lambda: materialise(out / "reference", back, source={"repo": "local", "config": "reference"}))
        rows.append(("back to mmbench: Parquet → memory-mapped columns, every shard's sha256 checked",
                     f"{dt:.1f} s ({n / dt:,.0f} tuples/s)"))
        if args.keep:
            shutil.copytree(out, args.keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()
    print(f"\nmachine: {platform.platform()}, {os.cpu_count()} CPUs, load avg {load[0]:.1f} / {load[1]:.1f}; "
          f"MNIST from {mnist['source']}\n")
    print("| measurement | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
