"""Epoch time of ``Dataset.dataloader`` with 0 and 2 worker processes (the README's advice).

Batches are whole memory-mapped slices gathered in one call, so a worker process only adds
start-up (spawning, importing torch) and inter-process copies.

    python benchmarks/bench_dataloader_workers.py [--rows 100000] [--batch 4096] [--epochs 3]
"""

from __future__ import annotations

import argparse
import time

import mmbench


def epoch_seconds(ds, *, batch: int, workers: int, epochs: int) -> list[float]:
    times = []
    loader = ds.dataloader(batch, shuffle=True, num_workers=workers, persistent_workers=workers > 0)
    for _ in range(epochs):
        t0 = time.perf_counter()
        for b in loader:
            _ = b["x"].sum()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    ds = mmbench.load("numerical/misalignment/joint", split="train", split_sizes={"train": args.rows})
    for workers in (0, 2):
        t0 = time.perf_counter()
        times = epoch_seconds(ds, batch=args.batch, workers=workers, epochs=args.epochs)
        print(f"num_workers={workers}: first epoch {times[0]:.3f} s (incl. start-up), later epochs "
              f"{min(times[1:]) if len(times) > 1 else float('nan'):.3f} s, total {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
