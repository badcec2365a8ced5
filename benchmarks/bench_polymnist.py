"""PolyMNIST benchmarks (issue 5). Run by hand, with real MNIST resolvable (see README):

    .venv/bin/python benchmarks/bench_polymnist.py [--png-tuples 10000] [--batches 40]

Measures, on ``polymnist`` (default config: 55k train / 5k val / 10k test, 5 modalities):
  1. the full build (70,000 tuples) at 1 and 2 workers, into a fresh temporary cache;
  2. loader throughput at batch 256 over the train split, side by side in one run:
     ``Dataset.batches()`` (in order and shuffled), ``ds.dataloader()`` (0 and 2 workers), and a
     loader written the way the MoPoE reference does it — one PNG file per image, opened and
     decoded with PIL and ``ToTensor()`` per sample, five per tuple, batched by a ``DataLoader``
     with 2 workers (PNG files written for the first ``--png-tuples`` test tuples);
and prints a Markdown table (with the ratios) for benchmarks/RESULTS.md.
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

import numpy as np

import mmbench
from mmbench.core.builder import default_cache_dir
from mmbench.sources.mnist import resolve_mnist

ID = "polymnist"
BATCH = 256


def timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


class PngTuples:
    """The reference loader: ``m{k}/{i}.{digit}.png`` files, decoded one by one per sample."""

    def __init__(self, root: Path, num_modalities: int) -> None:
        from torchvision import transforms

        self.dirs = [root / f"m{k}" for k in range(num_modalities)]
        self.files = [sorted(d.glob("*.png"), key=lambda p: int(p.name.split(".")[0])) for d in self.dirs]
        self.to_tensor = transforms.ToTensor()

    def __len__(self) -> int:
        return len(self.files[0])

    def __getitem__(self, i: int) -> tuple[list[Any], int]:
        from PIL import Image

        images = [self.to_tensor(Image.open(files[i])) for files in self.files]
        return images, int(self.files[0][i].name.split(".")[-2])


def write_pngs(ds: Any, root: Path, n: int) -> float:
    from PIL import Image

    t0 = time.perf_counter()
    digits = np.asarray(ds.column("latents.digit")[:n])
    for k, m in enumerate(ds.modalities):
        (root / f"m{k}").mkdir(parents=True)
        col = np.asarray(ds.column(m)[:n]).transpose(0, 2, 3, 1)
        for i in range(n):
            Image.fromarray(col[i]).save(root / f"m{k}" / f"{i}.{digits[i]}.png")
    return time.perf_counter() - t0


def throughput(iterable: Any, *, max_batches: int | None = None, touch: bool = True) -> float:
    """Tuples per second over an iterable of batches (dicts of arrays/tensors or (images, y))."""
    n = 0
    t0 = time.perf_counter()
    for b, batch in enumerate(iterable):
        if isinstance(batch, dict):
            first = batch["m0"]
            if touch:  # batches() hands out zero-copy views: copy them, as feeding a model would
                for v in batch.values():
                    if isinstance(v, np.ndarray):
                        np.array(v)
        else:
            first = batch[0][0]
        n += len(first)
        if max_batches is not None and b + 1 >= max_batches:
            break
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--png-tuples", type=int, default=10_000, help="tuples written as PNG files for the reference loader")
    ap.add_argument("--batches", type=int, default=40, help="batches timed for the reference loader")
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()
    mnist = resolve_mnist(None, default_cache_dir())  # real MNIST, from wherever it is available
    data_dir = Path(mnist["files"]["train-images-idx3-ubyte"]["path"]).parent
    rows: list[tuple[str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="mmbench-bench-polymnist-"))
    try:
        cache = tmp / "cache"
        if not args.skip_build:
            for workers in (1, 2):
                b = mmbench.builder(ID, cache_dir=cache, data_dir=data_dir)
                dt, _ = timed(lambda b=b, w=workers: b.build(num_workers=w, progress=False, force=True))
                n = sum(b.config.split_sizes.values())
                rows.append((f"full build, {n:,} tuples × 5 modalities, {workers} worker(s)", f"{dt:.2f} s ({n / dt:,.0f} tuples/s)"))
                print(rows[-1], flush=True)
        ds = mmbench.load(ID, split="train", cache_dir=cache, data_dir=data_dir)
        test = mmbench.load(ID, split="test", cache_dir=cache, data_dir=data_dir)
        results: dict[str, float] = {}
        results["batches() in order"] = throughput(ds.batches(BATCH))
        results["batches() shuffled"] = throughput(ds.batches(BATCH, shuffle=True, seed=0))
        results["dataloader(), 0 workers, shuffled"] = throughput(ds.dataloader(BATCH, shuffle=True, num_workers=0))
        results["dataloader(), 2 workers, shuffled"] = throughput(ds.dataloader(BATCH, shuffle=True, num_workers=2))
        png_root = tmp / "png"
        dt_png = write_pngs(test, png_root, min(args.png_tuples, len(test)))
        n_png = min(args.png_tuples, len(test)) * len(test.modalities)
        rows.append((f"reference generator side: writing {n_png:,} PNG files with PIL", f"{dt_png:.1f} s ({n_png / dt_png:,.0f} images/s)"))
        from torch.utils.data import DataLoader

        ref = DataLoader(PngTuples(png_root, len(test.modalities)), batch_size=BATCH, shuffle=True, num_workers=2)
        results["reference: one PNG per image, PIL + ToTensor, DataLoader 2 workers"] = throughput(ref, max_batches=args.batches)
        base = results["reference: one PNG per image, PIL + ToTensor, DataLoader 2 workers"]
        for name, value in results.items():
            rows.append((f"load at batch {BATCH}: {name}", f"{value:,.0f} tuples/s ({value / base:,.1f}× reference)"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nmachine: {platform.platform()}, {os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.1f}; MNIST from {mnist['source']}\n")
    print("| measurement | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
