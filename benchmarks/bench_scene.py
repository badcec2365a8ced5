"""Scene rendering and caption throughput (issue 11).

* raster images/s at 224×224 and 64×64 (builtin meshes, batches of 64, torch threads 1 and 2);
* captions + tokens of 145,000 Multimodal3DIdent examples (latents → palette names → captions →
  NLTK tokens → vocabulary → ids), target ≤ 5 s;
* worker scaling: the same renders in 1 and in 2 processes (one torch thread each).

The machine is shared: every figure is the best of ``--repeats`` runs (and the median is printed).

Usage:
    python benchmarks/bench_scene.py [--repeats 3] [--images 256] [--only captions]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np


def _scenes(n: int, seed: int = 0):
    from mmbench.rendering.scene.scene import SCENE_FIELDS, SceneBatch

    rng = np.random.default_rng(seed)
    return SceneBatch(shape=rng.integers(0, 7, n), x=rng.integers(0, 3, n), y=rng.integers(0, 3, n),
                      **{f: rng.random(n) for f in SCENE_FIELDS[3:]})


def _render(size: int, n: int, threads: int, seed: int = 0) -> float:
    """Seconds to render ``n`` scenes at ``size`` (backend built and warmed up first)."""
    import torch

    from mmbench.rendering.scene.meshes import load_mesh_set
    from mmbench.rendering.scene.raster import RasterBackend

    torch.set_num_threads(threads)
    backend = RasterBackend(list(load_mesh_set("builtin").values()), size=size, chunk=64)
    backend.render(_scenes(8, seed + 1))
    scenes = _scenes(n, seed)
    t = time.perf_counter()
    backend.render(scenes)
    return time.perf_counter() - t


def bench_raster(repeats: int, images: int) -> None:
    for size in (224, 64):
        for threads in (1, 2):
            n = images if size == 224 else images * 4
            times = [_render(size, n, threads, seed=k) for k in range(repeats)]
            print(f"raster {size}x{size}, {threads} thread(s): best {n / min(times):7.1f} images/s, median {n / statistics.median(times):7.1f}")


def bench_captions(repeats: int) -> None:
    """Captions + tokens of 145k examples, as a build makes them: vocabulary from train, ids of all.

    Each repeat starts with an empty tokenisation memo (NLTK already imported), so no repeat
    reuses another's tokens; wall and CPU (user + sys of this process) time are both printed.
    """
    import mmbench
    from mmbench.rendering import text as text_mod
    from mmbench.rendering.text import Vocabulary

    b = mmbench.builder("multimodal3dident", meshes="tiny")
    n = 145_000
    text_mod.tokenize(["warm up: import NLTK."])
    walls, cpus = [], []
    for k in range(repeats):
        lat = {key: np.asarray(v).astype(b.IMAGE_LATENTS[key]) for key, v in b.sample_scene_latents(n, np.random.default_rng(k)).items()}
        text_mod._tokenizer.cache_clear()  # a fresh memo of tokenised captions
        t, c = time.perf_counter(), time.process_time()
        text = b.text_values(lat, np.random.default_rng([k, 1]))  # not the latents' stream
        captions = b.templates().fill(text["fields"], template=text["latents.phrasing"])
        vocab = Vocabulary.build(captions[:125_000])
        vocab.encode(captions)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    print(f"captions + tokens for {n:,} examples: wall best {min(walls):.2f} s, median {statistics.median(walls):.2f} s; "
          f"CPU best {min(cpus):.2f} s, median {statistics.median(cpus):.2f} s (target ≤ 5 s); load average "
          f"{os.getloadavg()[0]:.1f}; {len(set(captions)):,} distinct captions, vocabulary {len(vocab)} tokens, "
          f"max length {vocab.max_length}")


def bench_workers(repeats: int, images: int) -> None:
    per_worker = images
    for workers in (1, 2):
        times = []
        for _ in range(repeats):
            with ProcessPoolExecutor(workers) as pool:
                list(pool.map(_render, [64] * workers, [16] * workers, [1] * workers))  # warm the workers
                t = time.perf_counter()
                list(pool.map(_render, [64] * 2, [per_worker] * 2, [1] * 2, range(2)))
                times.append(time.perf_counter() - t)
        print(f"workers {workers}: {2 * per_worker} images at 64x64 in best {min(times):.2f} s "
              f"({2 * per_worker / min(times):.0f} images/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--only", choices=("raster", "captions", "workers"), help="run one benchmark only")
    args = parser.parse_args()
    if args.only in (None, "raster"):
        bench_raster(args.repeats, args.images)
    if args.only in (None, "captions"):
        bench_captions(args.repeats)
    if args.only in (None, "workers"):
        bench_workers(args.repeats, args.images * 2)


if __name__ == "__main__":
    main()
