"""MoPoE-VAE training throughput on PolyMNIST-shaped data: mmbench's batched objective vs a
reference-style eager loop over the 2^M − 1 subsets.

Both train the same model with the same weights: the ``mopoe-polymnist`` recipe (5 modalities of
3×28×28 uint8, the MoPoE reference conv networks, latent 512, β = 2.5, Laplace likelihood with
scale 0.75, Adam 5e-4, batch 256). The eager loop is written the way the reference code
(thomassutter/MoPoE ``BaseMMVae``) works: for each of the 31 subsets it grows the experts'
``mu``/``logvar`` with ``torch.cat``, appends the prior expert for the full set, and fuses them
with its own ``poe``; ``mixture_component_selection`` slices one chunk of the batch per subset; the
KL is a Python sum over the subsets; likelihoods come from ``torch.distributions.Laplace``.
mmbench computes all subset posteriors in one masked ``einsum`` and every KL in one call.

Steps of the two loops are interleaved (A, B, A, B, ...) so that a shared, loaded machine slows
both alike; the figure is the median seconds per step. ``--part objective`` times only what
differs (the posterior fusion, KL and sampling, forward + backward) on random encoder outputs.
``--part coherence`` times the coherence evaluation (every subset → every target, generated and
classified): ``generate_subsets`` + one classifier pass per target against the reference's loop
(decode and classify each subset and target separately); untrained weights, same work.

Usage::

    python benchmarks/bench_vae.py                          # CPU (or CUDA), 6 timed steps each
    python benchmarks/bench_vae.py --steps 10 --threads 2 --channels-last --json out.json
    python benchmarks/bench_vae.py --part coherence --coherence-n 1024
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch

from mmbench.models.trainable import step_generator
from mmbench.models.vae import VAE_RECIPES, build_vae
from mmbench.models.vae.distributions import kl_to_prior, product_of_experts, rsample
from mmbench.models.vae.objectives import balanced_assignment

MODS = tuple(f"m{i}" for i in range(5))


# ============================================================================ reference-style loop
def _poe(mu: torch.Tensor, logvar: torch.Tensor, eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    var = torch.exp(logvar) + eps
    t = 1.0 / var
    pd_mu = torch.sum(mu * t, dim=0) / torch.sum(t, dim=0)
    pd_var = 1.0 / torch.sum(t, dim=0)
    return pd_mu, torch.log(pd_var + eps)


def _subset_fusion(mus: dict, logvars: dict, subsets: list, batch: int, dim: int, device: torch.device) -> tuple:
    s_mus, s_logvars = torch.Tensor().to(device), torch.Tensor().to(device)
    for subset in subsets:
        mu_s, lv_s = torch.Tensor().to(device), torch.Tensor().to(device)
        for m in subset:
            mu_s = torch.cat((mu_s, mus[m].unsqueeze(0)), dim=0)
            lv_s = torch.cat((lv_s, logvars[m].unsqueeze(0)), dim=0)
        if len(subset) == len(MODS):  # the prior expert, for the full set only
            mu_s = torch.cat((mu_s, torch.zeros(1, batch, dim, device=device)), dim=0)
            lv_s = torch.cat((lv_s, torch.zeros(1, batch, dim, device=device)), dim=0)
        mu, lv = _poe(mu_s, lv_s)
        s_mus = torch.cat((s_mus, mu.unsqueeze(0)), dim=0)
        s_logvars = torch.cat((s_logvars, lv.unsqueeze(0)), dim=0)
    return s_mus, s_logvars


def _mixture_selection(s_mus: torch.Tensor, s_logvars: torch.Tensor, batch: int) -> tuple:
    n = len(s_mus)
    per = batch // n
    mus, lvs = [], []
    for k in range(n):
        i0, i1 = k * per, (batch if k == n - 1 else (k + 1) * per)
        mus.append(s_mus[k, i0:i1])
        lvs.append(s_logvars[k, i0:i1])
    return torch.cat(mus), torch.cat(lvs)


def _group_kl(s_mus: torch.Tensor, s_logvars: torch.Tensor, batch: int) -> torch.Tensor:
    weights = torch.ones(len(s_mus), device=s_mus.device) / len(s_mus)
    kl = torch.zeros((), device=s_mus.device)
    for k in range(len(s_mus)):
        kld = -0.5 * torch.sum(1 - s_logvars[k].exp() - s_mus[k].pow(2) + s_logvars[k]) / batch
        kl = kl + weights[k] * kld
    return kl


def reference_step(model, x: dict, opt: torch.optim.Optimizer, beta: float) -> torch.Tensor:
    """One training step written the way the MoPoE reference code computes it."""
    batch, dim = x[MODS[0]].shape[0], model.config.latent_dim
    dev = x[MODS[0]].device
    mus, logvars = {}, {}
    for m in MODS:
        h = model.encoders[m].trunk(x[m].float() / 255.0)
        mus[m], logvars[m] = model.encoders[m].head(h).chunk(2, dim=-1)
    subsets = [s for k in range(1, len(MODS) + 1) for s in itertools.combinations(MODS, k)]
    s_mus, s_logvars = _subset_fusion(mus, logvars, subsets, batch, dim, dev)
    mu, lv = _mixture_selection(s_mus, s_logvars, batch)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * lv)
    rec = torch.zeros((), device=dev)
    for m in MODS:
        mean = model.decoders[m](z)
        rec = rec - torch.distributions.Laplace(mean, torch.tensor(0.75, device=dev)).log_prob(x[m].float() / 255.0).sum() / batch
    loss = rec + beta * _group_kl(s_mus, s_logvars, batch)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.detach()


def mmbench_step(model, x: dict, opt: torch.optim.Optimizer, step: int) -> torch.Tensor:
    loss, _ = model.training_loss(x, step=step, generator=step_generator(0, step, x[MODS[0]].device))
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.detach()


# ============================================================================ objective only
def objective_only(kind: str, mu: torch.Tensor, lv: torch.Tensor, mask: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    batch, dim = mu.shape[1:]
    if kind == "reference":
        mus, lvs = dict(zip(MODS, mu.unbind(0), strict=True)), dict(zip(MODS, lv.unbind(0), strict=True))
        subsets = [s for k in range(1, 6) for s in itertools.combinations(MODS, k)]
        s_mus, s_lvs = _subset_fusion(mus, lvs, subsets, batch, dim, mu.device)
        m, v = _mixture_selection(s_mus, s_lvs, batch)
        return _group_kl(s_mus, s_lvs, batch) + (m + torch.randn_like(m) * torch.exp(0.5 * v)).sum()
    loc, scale = product_of_experts(mask, mu, torch.exp(0.5 * lv), prior_expert=prior)
    kl = kl_to_prior("gaussian", loc, scale).sum(-1).mean()
    assign = balanced_assignment(batch, len(mask), mu.device)
    b = torch.arange(batch, device=mu.device)
    return kl + rsample("gaussian", loc[assign, b], scale[assign, b]).sum()


# ============================================================================ coherence evaluation
@torch.no_grad()
def reference_coherence(model, x: dict, classifiers) -> dict:
    """Predicted digits of every (subset, target), the way the MoPoE reference evaluates: fuse the
    subsets in a Python loop, then decode and classify each subset and target separately."""
    batch, dim = x[MODS[0]].shape[0], model.config.latent_dim
    mus, logvars = {}, {}
    for m in MODS:
        mus[m], logvars[m] = model.encoders[m].head(model.encoders[m].trunk(x[m].float() / 255.0)).chunk(2, dim=-1)
    subsets = [s for k in range(1, len(MODS) + 1) for s in itertools.combinations(MODS, k)]
    s_mus, s_logvars = _subset_fusion(mus, logvars, subsets, batch, dim, x[MODS[0]].device)
    preds: dict = {t: [] for t in MODS}
    for k in range(len(subsets)):
        z = s_mus[k] + torch.randn_like(s_mus[k]) * torch.exp(0.5 * s_logvars[k])
        for t in MODS:
            img = model.decoders[t](z).clamp(0, 1).mul(255).round().to(torch.uint8)
            preds[t].append(classifiers.models[t](img).argmax(-1))
    return {t: torch.stack(p) for t, p in preds.items()}


@torch.no_grad()
def mmbench_coherence(model, x: dict, classifiers) -> dict:
    gens = model.generate_subsets(x, batch_size=len(x[MODS[0]]))
    return {t: classifiers.predict(t, gens[t]) for t in MODS}


@torch.no_grad()
def harness_coherence(model, x: dict, classifiers, generator: torch.Generator) -> dict:
    """What ``evaluate``'s generative step runs per batch of ``coherence_conditional`` (subsets "all")."""
    from mmbench.harness.generative_metrics import _subsets, generate_from_subsets

    gens = generate_from_subsets(model, x, _subsets("all", MODS), MODS, generator)
    return {t: classifiers.predict(t, gens[t]) for t in MODS}


def run_coherence(args: argparse.Namespace, dev: torch.device, sync: Callable[[], None]) -> dict:
    from mmbench.harness.generative import DigitClassifiers
    from mmbench.models.classifiers import build_classifier

    torch.manual_seed(0)
    specs = {m: {"shape": (3, 28, 28), "dtype": "uint8"} for m in MODS}
    model = build_vae(VAE_RECIPES.get("mopoe-polymnist").model, specs, seed=0, device=dev).eval()
    clf = DigitClassifiers(models={m: build_classifier().to(dev).eval() for m in MODS}, id="untrained-digit-cnn-v1", device=str(dev))
    g = torch.Generator().manual_seed(1)
    data = {m: torch.randint(0, 256, (args.coherence_n, 3, 28, 28), dtype=torch.uint8, generator=g).to(dev) for m in MODS}
    starts = range(0, args.coherence_n, args.eval_batch)
    gen = torch.Generator(device=dev).manual_seed(2)
    batch_at = lambda i: {m: v[starts[i] : starts[i] + args.eval_batch] for m, v in data.items()}  # noqa: E731
    small = lambda x: [harness_coherence(model, {m: v[i : i + 64] for m, v in x.items()}, clf, gen)  # noqa: E731
                       for i in range(0, len(x[MODS[0]]), 64)]
    cpu: dict[str, float] = {}
    times = _interleaved({"reference_loop": lambda s: reference_coherence(model, batch_at(s - 1), clf),
                          "mmbench": lambda s: mmbench_coherence(model, batch_at(s - 1), clf),
                          "mmbench_harness_step": lambda s: harness_coherence(model, batch_at(s - 1), clf, gen),
                          "mmbench_harness_step_64": lambda s: small(batch_at(s - 1))}, len(starts), 0, sync, cpu)
    total = {k: sum(v) for k, v in times.items()}
    return {"tuples": args.coherence_n, "eval_batch": args.eval_batch, "subsets": 31, "targets": 5,
            "wall_seconds": {k: round(v, 2) for k, v in total.items()},
            "seconds_per_10k_tuples": {k: round(v * 10_000 / args.coherence_n, 1) for k, v in total.items()},
            "speedup": round(total["reference_loop"] / total["mmbench"], 2),
            "speedup_harness_step": round(total["reference_loop"] / total["mmbench_harness_step"], 2),
            "cpu_seconds": {k: round(v, 1) for k, v in cpu.items()},
            "cpu_seconds_per_10k_tuples": {k: round(v * 10_000 / args.coherence_n, 1) for k, v in cpu.items()}}


# ============================================================================ runner
def _interleaved(fns: dict[str, Callable[[int], object]], steps: int, warmup: int, sync: Callable[[], None],
                 cpu: dict[str, float] | None = None) -> dict[str, list[float]]:
    """Wall seconds of each timed call; ``cpu`` (if given) accumulates each function's process CPU seconds."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(warmup + steps):
        for name, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            fn(i + 1)
            sync()
            if i >= warmup:
                times[name].append(time.perf_counter() - t)
                if cpu is not None:
                    cpu[name] = cpu.get(name, 0.0) + time.process_time() - c
    return times


def run(args: argparse.Namespace) -> dict:
    dev = torch.device(args.device)
    torch.manual_seed(0)
    recipe = VAE_RECIPES.get("mopoe-polymnist")
    specs = {m: {"shape": (3, 28, 28), "dtype": "uint8"} for m in MODS}
    g = torch.Generator().manual_seed(0)
    x = {m: torch.randint(0, 256, (args.batch, 3, 28, 28), dtype=torch.uint8, generator=g).to(dev) for m in MODS}
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    out: dict = {}
    if args.part in ("step", "both"):
        ref_model = build_vae(recipe.model, specs, seed=0, device=dev)
        ours = build_vae(recipe.model, specs, seed=0, device=dev)
        xs = x
        if args.channels_last:
            ours = ours.to(memory_format=torch.channels_last)
            xs = {m: v.contiguous(memory_format=torch.channels_last) for m, v in x.items()}
        opt_ref = torch.optim.Adam(ref_model.parameters(), lr=recipe.lr)
        opt_ours = torch.optim.Adam(ours.parameters(), lr=recipe.lr)
        times = _interleaved({
            "reference_loop": lambda s: reference_step(ref_model, x, opt_ref, recipe.model.beta),
            "mmbench": lambda s: mmbench_step(ours, xs, opt_ours, s),
        }, args.steps, args.warmup, sync)
        out["train_step"] = _summary(times, "mmbench", "reference_loop")
    if args.part == "coherence":
        out["coherence_eval"] = run_coherence(args, dev, sync)
    if args.part in ("objective", "both"):
        mu = torch.randn(5, args.batch, recipe.model.latent_dim, device=dev, requires_grad=True)
        lv = (0.1 * torch.randn(5, args.batch, recipe.model.latent_dim, device=dev)).requires_grad_()
        from mmbench.models.vae.distributions import enumerate_subsets, subset_mask

        subsets = enumerate_subsets(MODS)
        mask = subset_mask(subsets, MODS, device=dev)
        prior = torch.tensor([float(len(s) == 5) for s in subsets], device=dev)

        def fwd_bwd(kind: str) -> None:
            objective_only(kind, mu, lv, mask, prior).backward()

        times = _interleaved({"reference_loop": lambda s: fwd_bwd("reference"), "mmbench": lambda s: fwd_bwd("mmbench")},
                             args.steps * 3, args.warmup, sync)
        out["objective_only"] = _summary(times, "mmbench", "reference_loop")
    return out


def _summary(times: dict[str, list[float]], ours: str, ref: str) -> dict:
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "median_seconds_per_step": {k: round(v, 4) for k, v in med.items()},
        "steps_per_second": {k: round(1.0 / v, 3) for k, v in med.items()},
        "speedup": round(med[ref] / med[ours], 2),
        "timed_steps": len(times[ours]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=6, help="timed steps per loop (interleaved)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--part", choices=["step", "objective", "both", "coherence"], default="both",
                    help="train step and objective (both), or the coherence evaluation of all subsets")
    ap.add_argument("--coherence-n", type=int, default=1024, help="tuples generated and classified (--part coherence)")
    ap.add_argument("--eval-batch", type=int, default=256, help="tuples per evaluation batch (--part coherence)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--channels-last", action="store_true", help="mmbench's model in channels_last memory format")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    res = run(args)
    report = {
        "benchmark": "bench_vae", "recipe": "mopoe-polymnist", "batch": args.batch, "device": args.device,
        "channels_last": args.channels_last, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "loadavg_before": [round(v, 2) for v in load_before], "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "wall_seconds": round(time.perf_counter() - t0, 1), **res,
    }
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
