"""Probe fitting time: scikit-learn vs the torch probes, measured in one run.

Data: n × d embeddings that are a random invertible map of d latents; the targets are the d
latents (continuous). Kernel ridge is the papers' grid (α ∈ {1, .1, .01, .001},
γ ∈ logspace(−2, 2, 4), 3-fold CV) with sklearn's multi-output selection (one (α, γ) for all
targets, GridSearchCV's behaviour) so both sides do the same work and must reach the same R²;
the torch per-target selection (one grid search per latent, as the reference evaluation code
does) is timed too.

Usage:
    python benchmarks/bench_probes.py                    # 4096×5 both back-ends, 10k×10 torch
    python benchmarks/bench_probes.py --sklearn-large    # also sklearn at 10k×10 (≈ 7 min)
    python benchmarks/bench_probes.py --device cuda      # torch probes on a GPU
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np


def data(n: int, d: int, n_test: int = 2000, seed: int = 0):
    from mmbench.testing.oracles import random_invertible_map

    rng = np.random.default_rng(seed)
    s = rng.standard_normal((n + n_test, d))
    z = random_invertible_map(s, seed=seed)
    mu, sd = z[:n].mean(0), z[:n].std(0)
    z = (z - mu) / sd
    return z[:n], s[:n], z[n:], s[n:]


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def r2(y, p):
    from sklearn.metrics import r2_score

    return float(r2_score(y, p))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sklearn-large", action="store_true", help="also run sklearn's grid search at 10k × 10")
    ap.add_argument("--out", default="benchmarks/_out/bench_probes.json")
    args = ap.parse_args()

    import sklearn
    import torch
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.neural_network import MLPRegressor

    from mmbench.harness.probes import (
        KERNEL_ALPHAS,
        KERNEL_GAMMAS,
        TorchKernelRidgeCV,
        TorchLinearRegression,
        TorchMLPRegressor,
    )

    warnings.simplefilter("ignore", ConvergenceWarning)
    rows = []

    def record(size, probe, backend, seconds, score, note=""):
        rows.append({"size": size, "probe": probe, "backend": backend, "seconds": round(seconds, 3), "r2": round(score, 4), "note": note})
        print(f"{size:>10} {probe:<22} {backend:<14} {seconds:9.2f} s   R² {score:.4f}  {note}", flush=True)

    grid = {"alpha": list(KERNEL_ALPHAS), "gamma": list(KERNEL_GAMMAS)}
    for n, d in ((4096, 5), (10_000, 10)):
        size = f"{n}×{d}"
        xf, yf, xt, yt = data(n, d)
        m, s = timed(LinearRegression().fit, xf, yf)
        record(size, "linear", "sklearn", s, r2(yt, m.predict(xt)))
        m, s = timed(TorchLinearRegression(device=args.device).fit, xf, yf)
        record(size, "linear", f"torch/{args.device}", s, r2(yt, m.predict(xt)))
        if n <= 4096 or args.sklearn_large:
            m, s = timed(GridSearchCV(KernelRidge(kernel="rbf"), grid, cv=3).fit, xf, yf)
            record(size, "kernel_ridge (joint)", "sklearn", s, r2(yt, m.predict(xt)), f"best {m.best_params_}")
        m, s = timed(TorchKernelRidgeCV(device=args.device).fit, xf, yf)
        record(size, "kernel_ridge (joint)", f"torch/{args.device}", s, r2(yt, m.predict(xt)), f"best {m.best_params_[0]}")
        m, s = timed(TorchKernelRidgeCV(device=args.device).fit, xf, yf, groups=list(range(d)))
        record(size, "kernel_ridge (per target)", f"torch/{args.device}", s, r2(yt, m.predict(xt)),
               f"{len(set(m.best_params_.values()))} distinct (α, γ)")
        m, s = timed(MLPRegressor(max_iter=10_000, random_state=0).fit, xf, yf)
        record(size, "mlp (multi-output)", "sklearn", s, r2(yt, m.predict(xt)), f"{m.n_iter_} epochs")
        m, s = timed(TorchMLPRegressor(max_iter=10_000, device=args.device).fit, xf, yf)
        record(size, "mlp (multi-output)", f"torch/{args.device}", s, r2(yt, m.predict(xt)), f"{m.n_iter_} epochs")
        m, s = timed(TorchMLPRegressor(max_iter=10_000, device=args.device).fit, xf, yf, groups=list(range(d)))
        record(size, "mlp (one per target)", f"torch/{args.device}", s, r2(yt, m.predict(xt)), f"{m.n_iter_} epochs")

    meta = {"machine": platform.platform(), "cpu_count": __import__("os").cpu_count(), "torch": torch.__version__,
            "sklearn": sklearn.__version__, "torch_threads": torch.get_num_threads(), "load_avg": __import__("os").getloadavg(),
            "date": time.strftime("%Y-%m-%d %H:%M")}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
