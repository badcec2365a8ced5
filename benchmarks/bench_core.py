"""Core platform benchmarks (issue: core platform). Run by hand:

    .venv/bin/python benchmarks/bench_core.py [--n 1000000] [--quick]

Measures, on numerical/misalignment (joint bias):
  1. build time with N samples per split (train/val/test) at 1 and 2 workers;
  2. load throughput through ``Dataset.batches()`` (zero-copy, and with a copy that touches
     every byte), shuffled and in order;
  3. ``DataLoader`` throughput at batch 4096: the batch-sampler path (``ds.dataloader``) with 0
     and 2 workers, next to the plain per-example ``DataLoader(ds.torch(), batch_size=4096)``;
  4. the storage decision: memory-mapped .npy columns vs the same data as Arrow through
     ``datasets`` (``ds.hf().with_format("numpy")``).
Prints a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

import mmbench

ID = "numerical/misalignment/joint"


def timed(fn, repeat: int = 1):  # type: ignore[no-untyped-def]
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000, help="samples per split")
    ap.add_argument("--quick", action="store_true", help="skip the slow per-example DataLoader and Arrow rows")
    args = ap.parse_args()
    n = args.n
    sizes = {"train": n, "val": n, "test": n}
    rows: list[tuple[str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="mmbench-bench-"))
    try:
        # 1. build
        for workers in (1, 2):
            cache = tmp / f"w{workers}"
            b = mmbench.builder(ID, cache_dir=cache, split_sizes=sizes)
            _ = b.resources  # mixing MLPs are drawn once per config (≈1 s), report them separately
            t, _ = timed(lambda b=b, w=workers: b.build(num_workers=w, progress=False))
            rows.append((f"build 3 × {n:,} samples, {workers} worker(s)", f"{t:.2f} s ({3 * n / t / 1e6:.2f} M samples/s)"))
        t_res, _ = timed(lambda: mmbench.builder(ID, split_sizes=sizes).resources)
        rows.append(("draw the two mixing MLPs (once per config)", f"{t_res:.2f} s"))
        fps = [mmbench.builder(ID, cache_dir=tmp / f"w{w}", split_sizes=sizes).as_dataset("train").fingerprint for w in (1, 2)]
        rows.append(("same fingerprint at 1 and 2 workers", str(fps[0] == fps[1])))

        ds = mmbench.load(ID, split="train", cache_dir=tmp / "w1", split_sizes=sizes)
        nbytes = sum(ds.column(c).nbytes for c in ds.column_names)
        # 2. batches()
        for bs in (4096, 65536):
            t, _ = timed(lambda bs=bs: sum(len(b["x"]) for b in ds.batches(bs)), repeat=3)
            rows.append((f"batches({bs}) in order, zero-copy", f"{n / t / 1e6:.1f} M samples/s"))
            t, _ = timed(lambda bs=bs: sum(np.array(b["x"]).size + sum(np.array(v).size for v in b.values()) for b in ds.batches(bs)), repeat=3)
            rows.append((f"batches({bs}) in order, copying every column", f"{n / t / 1e6:.1f} M samples/s ({nbytes / t / 1e9:.2f} GB/s)"))
        t, _ = timed(lambda: sum(len(b["x"]) for b in ds.batches(4096, shuffle=True, seed=0)), repeat=2)
        rows.append(("batches(4096) shuffled (gather per column)", f"{n / t / 1e6:.2f} M samples/s"))
        # 3. DataLoader
        for workers in (0, 2):
            t, _ = timed(lambda w=workers: sum(len(b["x"]) for b in ds.dataloader(4096, shuffle=True, num_workers=w)), repeat=2)
            rows.append((f"ds.dataloader(4096, shuffle, num_workers={workers}), best of 2 epochs", f"{n / t / 1e3:.0f} k samples/s"))
        if not args.quick:
            from torch.utils.data import DataLoader

            m = min(n, 100_000)
            loader = DataLoader(ds.torch(), batch_size=4096, shuffle=True)
            t0 = time.perf_counter()
            seen = 0
            for batch in loader:
                seen += len(batch["x"])
                if seen >= m:
                    break
            t = time.perf_counter() - t0
            rows.append(("plain DataLoader(ds.torch(), 4096), per-example fetch + collate", f"{seen / t / 1e3:.0f} k samples/s"))
            # 4. storage decision: Arrow via datasets
            t_conv, hf = timed(lambda: ds.hf())
            hfn = hf.with_format("numpy")
            t, _ = timed(lambda: sum(len(b["x"]) for b in hfn.iter(batch_size=4096)))
            rows.append((f"(storage check) Arrow via datasets .iter(4096), numpy format (one-off conversion {t_conv:.1f} s)", f"{n / t / 1e6:.2f} M samples/s"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}; n = {n:,} per split; load average {os.getloadavg()[0]:.2f}\n")
    print("| measurement | result |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
