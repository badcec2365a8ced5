"""``mmbench reproduce mopoe-polymnist`` and ``mmvaeplus-polymnist``: VAE coherence against published values.

Each table trains one VAE recipe on PolyMNIST with :func:`mmbench.models.train.train` and scores
its conditional coherence on the test split (:func:`~mmbench.models.vae.coherence.evaluate_coherence`,
the dataset's versioned digit classifiers) by number of input modalities, next to the published
figures (:data:`mmbench.models.reproduce.PAPER`):

* ``mopoe-polymnist`` — MultiVae's reproduction of MoPoE-VAE: leave-one-out coherence
  0.67 / 0.79 / 0.84 / 0.85 with 1–4 inputs (paper: 0.66 / 0.77 / 0.81 / 0.83).
* ``mmvaeplus-polymnist`` — MMVAE+: 0.869 in the paper, 0.886 ± 0.008 in MultiVae's
  reproduction (conditional coherence from one input, compared with mmbench's 1-input figure).

Scales: ``full`` is the papers' recipe (``mopoe-polymnist``: 300 epochs; ``mmvaeplus-polymnist``:
250 epochs; GPU work); ``quick`` is the CPU recipe (``mopoe-polymnist-cpu``, ``mmvaeplus-polymnist-cpu``:
smaller networks, 15,000 steps, 1,000 test tuples): the bar is 0.5 (chance 0.10), not the
published decimals, though the MoPoE CPU recipe lands near them (0.61 / 0.78 / 0.84 / 0.87).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mmbench.models.reproduce import PAPER, Check, EvalSpec, RunSpec, TableSpec
from mmbench.models.train import TrainConfig, train

__all__ = ["COLUMNS", "TABLES", "run", "table"]

COLUMNS = ("1 input", "2 inputs", "3 inputs", "4 inputs")
#: table → (title, row, full recipe, quick recipe, check column, full threshold)
TABLES: dict[str, tuple[str, str, str, str, str, float]] = {
    "mopoe-polymnist": ("MoPoE-VAE on PolyMNIST (Sutter et al. 2021; MultiVae's reproduction): leave-one-out coherence by inputs",
                        "MoPoE-VAE", "mopoe-polymnist", "mopoe-polymnist-cpu", "4 inputs", 0.80),
    "mmvaeplus-polymnist": ("MMVAE+ on PolyMNIST (Palumbo et al. 2023; MultiVae's reproduction): conditional coherence by inputs",
                            "MMVAE+", "mmvaeplus-polymnist", "mmvaeplus-polymnist-cpu", "1 input", 0.82),
}
#: the quick scale's acceptance bar: clearly above chance (0.1), not the published figure
QUICK_THRESHOLD = 0.5
EVAL_EXAMPLES = {"quick": 1000, "full": 10_000}


def table(name: str, scale: str) -> TableSpec:
    """The one run and the check of VAE table ``name`` at ``scale``."""
    title, row, full, quick, column, threshold = TABLES[name]
    recipe = quick if scale == "quick" else full
    cfg = TrainConfig.from_recipe(recipe, name=f"{recipe}")
    low = QUICK_THRESHOLD if scale == "quick" else threshold
    what = "leave-one-out" if name.startswith("mopoe") else "conditional"
    checks = (Check(f"{what} coherence with {column} ≥ {low:.2f} (chance 0.10)", ((row, column),), low=low),)
    note = None
    if scale == "quick":
        from mmbench.models.vae.config import VAE_RECIPES

        note = f"Quick scale (CPU): recipe {recipe}, coherence on the first {EVAL_EXAMPLES['quick']} test tuples. " + VAE_RECIPES.get(recipe).description
    # the published columns, scored on the digit; the runner reports every number of inputs
    evals = (EvalSpec(row, "coherence_conditional", "all", {c: "digit" for c in COLUMNS if c in PAPER[name][row]}),)
    return TableSpec(name, title, (RunSpec(row, cfg, evals),), (0,), EVAL_EXAMPLES[scale], checks, runner=run, quick_note=note)


def run(spec: TableSpec, index: int, seed: int, *, scale: str, device: str, steps: int | None, out_dir: str | None,
        progress: bool | None, data_dir: str | None = None, cache_dir: str | None = None) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """Train the table's recipe (seed ``seed``) and score its coherence: (cells, record)."""
    from mmbench.models.reproduce import run_config
    from mmbench.models.vae.coherence import evaluate_coherence

    del data_dir  # PolyMNIST builds from the MNIST source chain (no archive to point to)
    spec_run = spec.runs[index]
    cfg = run_config(spec_run.config, seed, steps)
    rdir = Path(out_dir) / f"{cfg.name}-seed{seed}" if out_dir is not None else None
    t0 = time.perf_counter()
    result = train(cfg, out_dir=rdir, device=device, progress=progress)
    if result.interrupted:
        raise KeyboardInterrupt
    t_train = time.perf_counter() - t0
    kw = {"cache_dir": cache_dir} if cache_dir else {}
    coh = evaluate_coherence(result.model, cfg.dataset, num_examples=spec.eval_samples, seed=seed, **dict(cfg.dataset_overrides), **kw)
    by_k = coh["by_num_inputs"]
    cells = {spec_run.name: {c: float(by_k[k]) for k, c in enumerate(COLUMNS, start=1) if k in by_k}}
    info = {"run": spec_run.name, "seed": seed, "steps": result.steps, "train_seconds": t_train,
            "eval_seconds": time.perf_counter() - t0 - t_train, "config": cfg.to_dict(), "coherence": coh,
            "final_loss": next((h["loss"] for h in reversed(result.history) if "loss" in h), None)}
    return cells, info
