"""Time a full suite evaluation of one model (an oracle encoder) on ``identifiability-numerical:v1``.

Datasets are built first (val + test splits at the suite's sizes, 20,480 rows each) and timed
separately, so the figure is the evaluation itself: embedding every split, fitting every probe
for every seed.

Seeds: a probe whose ``n_fit`` is below the rows embedded (the suite's ``r2_kernel``: 4,096 of
20,480 val rows) is fitted once per seed, each seed on its own random subsample, so the kernel
grid searches scale with the number of seeds. Deterministic probes on all the fit rows
(``r2_linear``, ``mcc_corr``) are fitted once. Each metric's ``fit_sampling`` is in the output.

Usage:
    python benchmarks/bench_evaluate.py [--device cpu|cuda] [--seeds 0 1 2] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seeds", type=int, nargs="+", default=None)
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--cache-dir", default=None, help="dataset cache (default: a fresh temporary directory)")
    ap.add_argument("--out", default="benchmarks/_out/bench_evaluate.json")
    args = ap.parse_args()

    import mmbench
    from mmbench.harness.suites import get_suite
    from mmbench.testing.oracles import LatentOracle

    cache = args.cache_dir or tempfile.mkdtemp(prefix="mmbench-bench-")
    suite = get_suite("identifiability-numerical:v1")
    t = time.perf_counter()
    for e in suite.entries:
        for split in (e.fit_split, e.score_split):
            mmbench.load(e.dataset, split=split, cache_dir=cache, **dict(e.overrides))
    build_s = time.perf_counter() - t
    print(f"datasets built in {build_s:.1f} s", flush=True)

    t = time.perf_counter()
    res = mmbench.evaluate(LatentOracle(), suite, device=args.device, seeds=args.seeds, backend=args.backend, cache_dir=cache)
    total = time.perf_counter() - t
    print(res.summary_table())
    per_entry = {e["label"]: {"total_s": e["timings"]["total_s"], "embed_s": e["timings"]["embed_s"],
                              **{k: v["seconds"] for k, v in e["metrics"].items()},
                              "fit_sampling": {k: v["fit_sampling"] for k, v in e["metrics"].items() if "fit_sampling" in v}}
                 for e in res.entries if e.get("status") != "n/a"}
    for label, tm in per_entry.items():
        print(label, tm)
    print(f"evaluate: {total:.1f} s (seeds {res.data['seeds']}, device {res.data['device']}, backend {args.backend})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"build_s": build_s, "evaluate_s": total, "per_entry": per_entry, "seeds": res.data["seeds"],
                               "hardware": res.data["hardware"], "load_avg": os.getloadavg(), "machine": platform.platform(),
                               "date": time.strftime("%Y-%m-%d %H:%M"), "summary": res.summary_table()}, indent=1))


if __name__ == "__main__":
    main()
