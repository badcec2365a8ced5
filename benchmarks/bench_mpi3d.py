"""MPI3D-Complex with text (issue 10): conversion, captions, disk, batch and loader throughput.

Run by hand (figures go into benchmarks/RESULTS.md); it needs ~12 GB free in ``--tmp``:

    .venv/bin/python benchmarks/bench_mpi3d.py [--tmp /tmp] [--out benchmarks/_out/mpi3d] [--keep]

1. A full-size synthetic archive of the real shape (``write_fake_mpi3d``, noise, 460,800 ×
   64×64×3, 5.7 GB) is written to ``--tmp``, then converted into the shared image store in a
   child process: wall time and peak RSS (``VmHWM``) of the conversion, which must stay ≤ 1 GB.
2. Captions + tokens of all 460,800 examples (vocabulary from train, then every shard of every
   split: templates, biases, tokenisation, ids), ≤ 15 s.
3. Disk: the image store against the first and a second text config over the same images (each
   config's own files must stay ≤ 5 % of the store).
4. ``batches(256)`` of images + tokens (in order and shuffled), ≥ 50 k examples/s, each timed
   cold (pages from disk) and warm (the same batches again, from the page cache); and
   ``dataloader(256, shuffle=True)`` against a loader written as in the paper's repository (a
   ``Dataset`` whose ``__getitem__`` reads one image, applies ``ToTensor`` + ``Normalize``, looks
   the words up and one-hot encodes them; default collate), in the same run, on the val split.

Everything under ``--tmp`` is deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

NEED_BYTES = 13 << 30  # the archive (5.7 GB), the store (5.7 GB) and the splits


def _peak_rss_mb() -> float:
    """This process's peak resident memory so far (``VmHWM``), in MiB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


_CONVERT = """
import json, sys, time
from mmbench.core import build
import mmbench
data, cache, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
b = mmbench.builder("mpi3d_complex_text/selection-5", data_dir=data, cache_dir=cache, **overrides)
t0 = time.perf_counter()
b.stores()  # resolves and checks the archive (the fake's manifest spares the hashing)
t1, c1 = time.perf_counter(), time.process_time()
build._build_stores(b, {"num_workers": 1, "executor": "serial", "progress": False})
t2, c2 = time.perf_counter(), time.process_time()
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"check_s": t1 - t0, "convert_s": t2 - t1, "convert_cpu_s": c2 - c1, "peak_rss_mb": hwm / 1024}))
"""


OVERRIDES: dict[str, Any] = {}  # split sizes of a smaller archive (--factor-sizes)


def bench_conversion(data: Path, cache: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-c", _CONVERT, str(data), str(cache), json.dumps(OVERRIDES)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    store = next((cache / "_stores").rglob("split_info.json")).parent
    res["store_bytes"] = _du(store)
    res["convert_mb_s"] = res["store_bytes"] / 2**20 / res["convert_s"]
    return res


def bench_captions(data: Path, cache: Path) -> dict[str, Any]:
    import mmbench

    b = mmbench.builder("mpi3d_complex_text/perturbation-3", data_dir=data, cache_dir=cache, **OVERRIDES)
    t0, c0 = time.perf_counter(), time.process_time()
    b._artifacts = b.make_artifacts()  # captions of train + the vocabulary
    t1, c1 = time.perf_counter(), time.process_time()
    n = 0
    for split in b.split_names():
        for k, (start, stop) in enumerate(b.shard_bounds(split)):
            cols = b.generate(split, start, stop, rng=b.shard_rng(split, k))
            n += len(cols["text"])
    t2, c2 = time.perf_counter(), time.process_time()
    return {"examples": n, "vocabulary_s": t1 - t0, "vocabulary_cpu_s": c1 - c0, "captions_tokens_s": t2 - t1,
            "captions_tokens_cpu_s": c2 - c1, "total_s": t2 - t0, "total_cpu_s": c2 - c0, "load_average": os.getloadavg()[0]}


def bench_disk(data: Path, cache: Path) -> dict[str, Any]:
    import mmbench

    out: dict[str, Any] = {}
    for name in ("selection-5", "perturbation-3"):
        t0 = time.perf_counter()
        ds = mmbench.load(f"mpi3d_complex_text/{name}", split=None, data_dir=data, cache_dir=cache, progress=False, **OVERRIDES)["train"]
        out[f"{name}_build_s"] = time.perf_counter() - t0
        out[f"{name}_bytes"] = _du(ds.root)
    store = next((cache / "_stores").rglob("split_info.json")).parent
    out["store_bytes"] = _du(store)
    out["second_config_vs_store"] = out["perturbation-3_bytes"] / out["store_bytes"]
    return out


def _rate(make: Any, n_batches: int, size: Any) -> dict[str, float]:
    """Examples/s of ``n_batches`` batches of a fresh iterator, twice: ``cold`` (the pages come from
    disk) and ``warm`` (the same batches again, from the page cache); ``*_cpu``: examples per second
    of this process's CPU time (all in-process: one torch thread, no loader workers), the rate of
    an idle core on a shared machine."""
    out = {}
    for run in ("cold", "warm"):
        it = make()
        next(it)  # opens the maps, starts the loader
        t0, c0, n = time.perf_counter(), time.process_time(), 0
        for _ in range(n_batches):
            n += size(next(it))
        out[run] = n / (time.perf_counter() - t0)
        out[f"{run}_cpu"] = n / max(time.process_time() - c0, 1e-9)
    return out


class ReferenceStyleDataset:
    """The paper's repository's loader pattern, re-written: per-example image read, ``ToTensor`` +
    ``Normalize``, word lookup, padding and one-hot; captions pre-tokenised at construction.

    (The reference loads the whole archive into memory; this reads rows of the memory-mapped
    archive, which can only make it faster.)
    """

    def __init__(self, archive: np.ndarray, rows: np.ndarray, captions: list[str], w2i: dict[str, int], length: int) -> None:
        import torch
        from nltk.tokenize import NLTKWordTokenizer

        self.archive, self.rows, self.w2i, self.length = archive, rows, w2i, length
        tok = NLTKWordTokenizer().tokenize
        self.words = [tok(c) for c in captions]
        self.mean = torch.tensor([0.5, 0.5, 0.5]).view(3, 1, 1)
        self.std = torch.tensor([0.25, 0.25, 0.25]).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        image = torch.from_numpy(np.array(self.archive[self.rows[i]])).permute(2, 0, 1).float().div(255)  # ToTensor
        image = (image - self.mean) / self.std  # Normalize
        words = [*self.words[i], "{eos}"]
        words += ["{pad}"] * (self.length - len(words))
        ids = torch.tensor([self.w2i.get(w, 2) for w in words])
        return {"image": image, "text": torch.nn.functional.one_hot(ids, len(self.w2i)).float()}


def bench_throughput(data: Path, cache: Path, n_batches: int) -> dict[str, Any]:
    import torch

    import mmbench
    from mmbench.rendering.text import Vocabulary
    from mmbench.sources.reading import npz_member

    torch.set_num_threads(1)
    train = mmbench.load("mpi3d_complex_text/perturbation-3", split="train", data_dir=data, cache_dir=cache, progress=False, **OVERRIDES)
    cols = ["image", "tokens"]

    def size(b: Any) -> int:
        return len(b["image"])

    out = {
        "batches_in_order_per_s": _rate(lambda: train.batches(256, columns=cols), n_batches, size),
        "batches_shuffled_per_s": _rate(lambda: train.batches(256, columns=cols, shuffle=True), n_batches, size),
    }
    val = mmbench.load("mpi3d_complex_text/perturbation-3", split="val", data_dir=data, cache_dir=cache, progress=False, **OVERRIDES)
    vocab = Vocabulary.from_json(val.artifact("vocabulary.json"))
    n = min(n_batches, len(val) // 256 - 1)
    out["dataloader_per_s"] = _rate(lambda: iter(val.dataloader(256, columns=cols, shuffle=True)), n, size)

    def one_hot(b: Any) -> int:  # the same batches made one-hot float, as the reference hands them over
        torch.nn.functional.one_hot(b["tokens"].long(), len(vocab)).float()
        return len(b["image"])

    out["dataloader_one_hot_per_s"] = _rate(lambda: iter(val.dataloader(256, columns=cols, shuffle=True)), n, one_hot)
    t0 = time.perf_counter()
    ref = ReferenceStyleDataset(npz_member(next(Path(data).glob("*.npz")), "images"), np.asarray(val.column("image").index),
                                val.column("text")[:], {t: i for i, t in enumerate(vocab.tokens)}, vocab.max_length)
    out["reference_init_s"] = time.perf_counter() - t0
    def reference() -> Any:  # the same shuffled batches on every call
        gen = torch.Generator().manual_seed(0)
        return iter(torch.utils.data.DataLoader(ref, batch_size=256, shuffle=True, num_workers=0, generator=gen))

    out["reference_loader_per_s"] = _rate(reference, n, size)
    out["dataloader_vs_reference"] = {k: out["dataloader_per_s"][k] / out["reference_loader_per_s"][k] for k in out["dataloader_per_s"]}
    out["load_average"] = os.getloadavg()[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tmp", default=tempfile.gettempdir(), help="where the 5.7 GB archive and the cache go")
    ap.add_argument("--out", default=None, help="write results.json here")
    ap.add_argument("--batches", type=int, default=60, help="batches timed per throughput figure")
    ap.add_argument("--keep", action="store_true", help="keep the archive and the cache")
    ap.add_argument("--factor-sizes", type=int, nargs=7, default=None, help="a smaller archive (a dry run of the script)")
    args = ap.parse_args()
    from mmbench.builders.mpi3d import split_sizes_for
    from mmbench.sources import mpi3d as src
    from mmbench.testing import write_fake_mpi3d

    sizes = tuple(args.factor_sizes or src.FACTOR_SIZES)
    if sizes != src.FACTOR_SIZES:
        OVERRIDES["split_sizes"] = split_sizes_for(int(np.prod(sizes)))
    free = shutil.disk_usage(args.tmp).free
    if free < NEED_BYTES:
        sys.exit(f"{args.tmp} has {free / 2**30:.1f} GiB free; the benchmark needs {NEED_BYTES / 2**30:.0f} GiB (--tmp DIR).")
    root = Path(tempfile.mkdtemp(prefix="mmbench-bench-mpi3d-", dir=args.tmp))
    data, cache = root / "archive", root / "cache"
    os.environ.setdefault("MMBENCH_OFFLINE", "1")
    results: dict[str, Any] = {"machine": f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"}
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        path = write_fake_mpi3d(data, factor_sizes=sizes, image_size=src.IMAGE_SIZE, style="noise", progress=True)
        results["write_archive"] = {"seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                                    "bytes": path.stat().st_size, "peak_rss_mb": _peak_rss_mb()}
        print("archive", results["write_archive"], flush=True)
        results["conversion"] = {**bench_conversion(data, cache), "load_average": os.getloadavg()[0]}
        print("conversion", results["conversion"], flush=True)
        results["captions"] = bench_captions(data, cache)
        print("captions", results["captions"], flush=True)
        results["disk"] = bench_disk(data, cache)
        print("disk", results["disk"], flush=True)
        results["throughput"] = bench_throughput(data, cache, args.batches)
        print("throughput", results["throughput"], flush=True)
        results["load_average_end"] = os.getloadavg()[0]
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=1))
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
