"""Training throughput of the simulation MLPs: mmbench's trainer vs a straightforward eager loop.

Both train the multimodal identifiability paper's setting (two 7-layer MLP encoders
15 → 150 → 750 ×4 → 150 → 5, the independent-negative squared-L2 InfoNCE, Adam 1e-4, gradient
clipping at 2, fresh batches from the sampler every step). The eager loop is written the way the
reference code is: four encoder calls per step (x₁, x₂ and an independent batch x₁′, x₂′) and
the loss built from ``torch.norm(a[:, None] − b[None], dim=-1) ** 2`` (a ``B × B × d`` temporary).

Usage::

    python benchmarks/bench_training.py                 # batch 1024 and 6144, CPU (or CUDA)
    python benchmarks/bench_training.py --batch 1024 --steps 10 --device cpu --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

import mmbench
from mmbench.models.encoders import MLPEncoder
from mmbench.models.train import TrainConfig, train

DATASET = "numerical/multiview/multimodal-independent"


def _ref_loss(z1: torch.Tensor, z2: torch.Tensor, z3: torch.Tensor, p: float = 2.0, tau: float = 1.0) -> torch.Tensor:
    neg = torch.norm(z1[:, None] - z3[None], p=p, dim=-1) ** p
    pos = torch.norm(z1 - z2, p=p, dim=-1) ** p
    both = torch.cat([neg, pos[:, None]], dim=1)
    return (pos / tau + torch.logsumexp(-both / tau, dim=1)).mean()


def eager_loop(batch: int, steps: int, warmup: int, device: torch.device) -> list[float]:
    """Per-step seconds of the reference-style eager loop (data generation included)."""
    torch.manual_seed(0)
    b = mmbench.builder(DATASET)
    pos_stream, neg_stream = b.sampler(batch, seed=0), b.sampler(batch, seed=1)
    g1, g2 = MLPEncoder(15, 5).to(device), MLPEncoder(15, 5).to(device)
    params = list(g1.parameters()) + list(g2.parameters())
    opt = torch.optim.Adam(params, lr=1e-4)
    times = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        pb, nb = next(pos_stream), next(neg_stream)
        x1, x2 = torch.from_numpy(pb["x1"]).to(device), torch.from_numpy(pb["x2"]).to(device)
        x1n, x2n = torch.from_numpy(nb["x1"]).to(device), torch.from_numpy(nb["x2"]).to(device)
        h1, h2, h1n, h2n = g1(x1), g2(x2), g1(x1n), g2(x2n)
        loss = 0.5 * (_ref_loss(h1, h2, h1n) + _ref_loss(h2, h1, h2n))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 2.0)
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return times


def mmbench_trainer(batch: int, steps: int, warmup: int, device: torch.device) -> float:
    """Seconds per step of :func:`mmbench.models.train.train` (warm-up steps excluded)."""
    cfg = TrainConfig(dataset=DATASET, batch_size=batch, steps=warmup, val_every=0, checkpoint_every=0, log_every=1)
    first = train(cfg, device=device, progress=False)
    longer = train(cfg.replace(steps=warmup + steps), device=device, progress=False)
    # The difference of two runs removes the warm-up steps (and the per-run set-up) from the figure.
    return (longer.seconds - first.seconds) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1024, 6144])
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default: 8 at batch ≤ 1024, else 3)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()
    device = torch.device(args.device)
    rows = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, {platform.processor() or platform.machine()}")
    for batch in args.batch:
        steps = args.steps or (8 if batch <= 1024 else 3)
        eager = statistics.median(eager_loop(batch, steps, args.warmup, device))
        ours = mmbench_trainer(batch, steps, args.warmup, device)
        row = {"batch": batch, "timed_steps": steps, "eager_steps_per_s": 1 / eager, "mmbench_steps_per_s": 1 / ours,
               "speedup": eager / ours, "device": str(device), "threads": torch.get_num_threads()}
        rows.append(row)
        print(f"batch {batch:5d}: eager {1 / eager:6.2f} steps/s   mmbench {1 / ours:6.2f} steps/s   speed-up ×{eager / ours:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
