"""MoPoE-VAE at CPU scale: train ``mopoe-polymnist-cpu`` with ``mmbench train``'s trainer, then score
leave-one-out coherence by number of inputs on the test split.

Reports wall and CPU time (user + sys of this process) and the load average before and after, so
an idle-2-core estimate can be stated on a shared machine (CPU time / threads used). The run
directory is resumable: rerunning continues the training where it stopped, and ``--eval-only``
scores the checkpoint as it is.

    MMBENCH_CACHE=... python benchmarks/bench_mopoe_cpu.py --out runs/mopoe-cpu --threads 2 --json bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="run directory (resumed when it holds a checkpoint)")
    p.add_argument("--recipe", default="mopoe-polymnist-cpu")
    p.add_argument("--steps", type=int, default=None, help="override the recipe's steps")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--eval-examples", type=int, default=1000, help="test tuples scored (default 1,000; 10,000 = all)")
    p.add_argument("--eval-only", action="store_true", help="score the checkpoint in --out without training")
    p.add_argument("--json", default=None, help="write the figures here")
    args = p.parse_args()

    import torch

    from mmbench.models.train import TrainConfig, load_trained, train
    from mmbench.models.vae.coherence import evaluate_coherence

    torch.set_num_threads(args.threads)
    rec: dict = {"recipe": args.recipe, "threads": args.threads, "load_before": os.getloadavg()}
    if not args.eval_only:
        cfg = TrainConfig.from_recipe(args.recipe, **({"steps": args.steps} if args.steps else {}))
        t0, c0 = time.perf_counter(), _cpu()
        res = train(cfg, out_dir=args.out, device="cpu", progress=False)
        rec.update(train_wall_s=time.perf_counter() - t0, train_cpu_s=_cpu() - c0, steps_run=res.steps,
                   load_after_train=os.getloadavg())
    model = load_trained(args.out)
    t0, c0 = time.perf_counter(), _cpu()
    coh = evaluate_coherence(model, "polymnist", num_examples=args.eval_examples)
    rec.update(step=model.trained_steps, eval_wall_s=time.perf_counter() - t0, eval_cpu_s=_cpu() - c0, load_after=os.getloadavg(),
               leave_one_out=coh["leave_one_out"], by_num_inputs=coh["by_num_inputs"], pairwise=coh["pairwise"],
               num_examples=coh["num_examples"], classifiers=coh["classifiers"])
    print(json.dumps(rec, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rec, f, indent=1)


if __name__ == "__main__":
    main()
