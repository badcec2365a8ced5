"""Raw-input download benchmark (issue 9). Run by hand; it writes and deletes two files of --size-gb:

    .venv/bin/python benchmarks/bench_sources.py [--size-gb 2] [--tmp /tmp]

A synthetic file is served from 127.0.0.1 (``mmbench.testing.http.LocalFileServer``, in this
process) and fetched with ``mmbench.sources.fetch`` in a child process, so that the child's peak
RSS is the fetch's alone (plus the interpreter and numpy). Two runs:
  1. a complete transfer (streamed in 4 MB chunks, hashed while streaming, renamed into place);
  2. the same with the connection dropped at 50 % and resumed with an HTTP Range (the resumed
     part is re-hashed from disk first).
Prints a Markdown table for benchmarks/RESULTS.md: wall time, throughput, the child's peak RSS
(VmHWM) and its peak RSS before the fetch (imports only). Target: peak RSS of the fetch <= 100 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from mmbench.testing.http import LocalFileServer

_CHILD = r"""
import json, sys, time
from mmbench.sources.resource import Resource, locate

def hwm_mb():  # VmHWM: this process image's peak RSS (ru_maxrss would carry the parent's over fork)
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

name, url, sha, size, cache = sys.argv[1:6]
res = Resource(name=f"bench/{name}", sha256=sha, size=int(size), license="synthetic", urls=(url,))
before = hwm_mb()
t0 = time.perf_counter()
got = locate(res, cache_dir=cache, allow_network=True, progress=False)
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "rss_before_mb": before, "rss_peak_mb": hwm_mb(),
                  "source": got.source, "bytes": got.path.stat().st_size}))
"""


def write_synthetic(path: Path, size: int, *, chunk: int = 64 << 20) -> str:
    """``size`` pseudo-random bytes (incompressible, seeded), written in chunks; return the sha256."""
    h = hashlib.sha256()
    rng = np.random.default_rng(0)
    with open(path, "wb") as f:
        left = size
        while left:
            block = rng.integers(0, 256, min(chunk, left), dtype=np.uint8).tobytes()
            f.write(block)
            h.update(block)
            left -= len(block)
    return h.hexdigest()


def fetch_in_child(server: LocalFileServer, name: str, sha: str, size: int, cache: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    env.pop("MMBENCH_OFFLINE", None)
    out = subprocess.run([sys.executable, "-c", _CHILD, name, server.url(name), sha, str(size), str(cache)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=2.0)
    parser.add_argument("--tmp", default=tempfile.gettempdir())
    args = parser.parse_args()
    size = int(args.size_gb * (1 << 30))
    work = Path(tempfile.mkdtemp(prefix="mmbench-bench-sources-", dir=args.tmp))
    rows = []
    try:
        (work / "www").mkdir()
        print(f"writing {size / (1 << 30):.2f} GiB of synthetic data to {work} ...", file=sys.stderr)
        sha = write_synthetic(work / "www" / "big.bin", size)
        with LocalFileServer(work / "www") as server:
            for label, drop in (("complete transfer", None), ("dropped at 50 %, resumed with Range", size // 2)):
                cache = work / "cache"
                if drop is not None:
                    server.drop_after["big.bin"] = drop
                r = fetch_in_child(server, "big.bin", sha, size, cache)
                assert r["bytes"] == size and r["source"] == "download", r
                rows.append((label, r, list(server.requests)))
                server.requests.clear()
                shutil.rmtree(cache)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nDownload of a {size / (1 << 30):.2f} GiB file from 127.0.0.1 "
          f"({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()})\n")
    print("| run | wall (s) | throughput (MB/s) | peak RSS (MB) | RSS before fetch (MB) | requests |")
    print("|---|---|---|---|---|---|")
    for label, r, reqs in rows:
        print(f"| {label} | {r['seconds']:.1f} | {size / 1e6 / r['seconds']:.0f} | {r['rss_peak_mb']:.0f} | "
              f"{r['rss_before_mb']:.0f} | {', '.join(f'{s} {g or chr(8212)}' for _, g, s in reqs)} |")


if __name__ == "__main__":
    main()
