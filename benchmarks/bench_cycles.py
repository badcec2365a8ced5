"""Cycles throughput: mmbench's worker protocol against bare bpy, and worker scaling.

Needs a Blender interpreter (``mmbench blender setup``, or ``MMBENCH_BLENDER``). Renders the same
scenes at 224×224 three ways and prints images/s with wall and CPU time (user+sys) and the load:

1. **bare bpy**: one process of the Blender interpreter builds the scene with the worker's own
   code (:class:`~mmbench.rendering.scene.cycles_worker.CyclesScene`) and renders the scenes in
   a loop, no protocol (start-up excluded);
2. **mmbench, 1 worker**: :class:`~mmbench.rendering.scene.cycles.CyclesBackend` (pipes, framing,
   pixels copied back), warm (start-up excluded), threads as (1);
3. **scaling**: 1 worker with 1 thread vs 2 workers with 1 thread each, rendering halves at once.

Run::

    MMBENCH_BLENDER=~/.local/share/mmbench/bpy-5.0.1/bin/python python benchmarks/bench_cycles.py --n 8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from mmbench.rendering.scene import SceneBatch, load_mesh_set
from mmbench.rendering.scene import cycles_worker as proto
from mmbench.rendering.scene.blender import find_interpreter, worker_env
from mmbench.rendering.scene.cycles import CyclesBackend, scene_params

BARE = r"""
import importlib.util, json, resource, sys, time
import numpy as np
spec = importlib.util.spec_from_file_location("cw", sys.argv[1]); cw = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cw)
data = np.load(sys.argv[2]); init = json.loads(sys.argv[3])
meshes = [(data[f"v{k}"], data[f"f{k}"]) for k in range(7)]
scene = cw.CyclesScene(init, meshes)
params, seeds = data["params"], data["seeds"].tolist()
scene.render(params[:1], seeds[:1])  # warm
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
scene.render(params, seeds)
r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
print("RESULT", json.dumps({"wall": t1 - t0, "cpu": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)}))
"""


def _scenes(n: int) -> SceneBatch:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, n)
    return SceneBatch(shape=rng.integers(0, 7, n), x=x.astype(float), y=rng.integers(0, 3, n).astype(float),
                      alpha=rng.random(n), beta=rng.random(n), gamma=rng.random(n), object_hue=(x + rng.random(n)) / 3,
                      spot_pos=rng.random(n), spot_hue=rng.random(n), background_hue=rng.random(n))


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bare(meshes, scenes: SceneBatch, init: dict) -> dict:
    params, seeds = scene_params(scenes, np.array([m.scene_size() for m in meshes]))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.npz"
        arrays = {f"v{k}": m.scene_vertices() for k, m in enumerate(meshes)}
        arrays.update({f"f{k}": m.faces for k, m in enumerate(meshes)})
        np.savez(path, params=params, seeds=np.array(seeds), **arrays)
        interp = find_interpreter()
        script = Path(tmp) / "bare.py"
        script.write_text(BARE)
        cmd = interp.command(str(script), [proto.__file__, str(path), json.dumps(init)])
        out = subprocess.run(cmd, capture_output=True, text=True, env=worker_env(), cwd=tmp, check=True).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("RESULT"))[7:])


def workers(meshes, scenes: SceneBatch, init: dict, k: int, threads: int) -> dict:
    backends = [CyclesBackend(meshes, size=init["size"], samples=init["samples"], denoise=init["denoise"], device="cpu", threads=threads)
                for _ in range(k)]
    for i, b in enumerate(backends):
        if k > 1:  # what the build's executor tells its k workers: which share of the cores is theirs
            os.environ["MMBENCH_WORKER_INDEX"] = str(i)
        b.render(scenes.take(slice(0, 1)))  # warm: start-up excluded, as for bare bpy
    os.environ.pop("MMBENCH_WORKER_INDEX", None)
    parts = np.array_split(np.arange(len(scenes)), k)
    cpu0 = sum(_proc_cpu(b._proc.pid) for b in backends)
    t0 = time.perf_counter()
    threads_ = [threading.Thread(target=b.render, args=(scenes.take(p),)) for b, p in zip(backends, parts, strict=True)]
    for t in threads_:
        t.start()
    for t in threads_:
        t.join()
    wall = time.perf_counter() - t0
    cpu = sum(_proc_cpu(b._proc.pid) for b in backends) - cpu0
    for b in backends:
        b.close()
    return {"wall": wall, "cpu": cpu}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=8, help="images per measurement")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--samples", type=int, nargs="+", default=[16, 64])
    p.add_argument("--no-denoise", action="store_true",
                   help="render without the denoiser (OpenImageDenoise runs its own threads, so '× 1 thread' is not one core with it)")
    args = p.parse_args()
    meshes = list(load_mesh_set("builtin").values())
    scenes = _scenes(args.n)
    print(f"interpreter: {find_interpreter().path}; {args.n} images of {args.size}², {os.cpu_count()} cores")
    for samples in args.samples:
        init = {"op": "init", "size": args.size, "samples": samples, "denoise": not args.no_denoise, "device": "cpu", "threads": 0,
                "ground": -3.0}
        rows = {
            "bare bpy, 1 process (auto threads)": bare(meshes, scenes, init),
            "mmbench, 1 worker (auto threads)": workers(meshes, scenes, init, 1, 0),
            "mmbench, 1 worker × 1 thread": workers(meshes, scenes, init, 1, 1),
            "mmbench, 2 workers × 1 thread": workers(meshes, scenes, init, 2, 1),
        }
        print(f"\n{samples} samples, {'not ' if args.no_denoise else ''}denoised{'' if args.no_denoise else '    '}        images/s   wall s   cpu s   load(1 min)")
        for name, r in rows.items():
            print(f"  {name:36s} {args.n / r['wall']:7.2f}  {r['wall']:7.1f}  {r['cpu']:6.1f}   {os.getloadavg()[0]:.1f}")
        base = rows["bare bpy, 1 process (auto threads)"]["wall"]
        one = rows["mmbench, 1 worker × 1 thread"]["wall"]
        print(f"  mmbench / bare: {base / rows['mmbench, 1 worker (auto threads)']['wall']:.2f}×;  "
              f"1 → 2 workers: {one / rows['mmbench, 2 workers × 1 thread']['wall']:.2f}×")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
