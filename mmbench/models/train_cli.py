"""``mmbench train``: the command line of :func:`mmbench.models.train.train`.

Example:
    $ mmbench train numerical/multiview/multimodal-independent --preset quick --out runs/m3di
    $ mmbench train polymnist --recipe mopoe-polymnist-cpu --out runs/mopoe
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from mmbench.errors import InvalidConfigError

__all__ = ["add_train_parser", "cmd_train", "config_from_args", "evaluate_command"]

# flag attribute → TrainConfig field, for the options that set a field directly
_FIELDS = ("encoder", "shared_encoder", "encoding_size", "loss", "batch_size", "steps", "lr", "lr_schedule", "warmup_steps",
           "grad_clip", "seed", "data", "val_every", "checkpoint_every", "compile", "name", "optimizer")
# options that configure a contrastive model only (refused with --recipe)
_CONTRASTIVE_FLAGS = ("encoder", "width_scale", "norm", "shared_encoder", "encoding_size", "loss", "tau", "learn_tau", "similarity", "p")


def add_train_parser(sub: Any) -> None:
    """``mmbench train DATASET --out DIR [--preset quick|paper] [options]``."""
    from mmbench.cli import OVERRIDE_HELP
    from mmbench.devices import DEVICE_HELP
    from mmbench.models.encoders import ENCODERS
    from mmbench.models.losses import LOSSES
    from mmbench.models.train import LR_SCHEDULES, OPTIMIZERS, PRESETS
    from mmbench.models.vae.config import VAE_RECIPES

    p = sub.add_parser("train", help="train a contrastive or multimodal-VAE baseline on a dataset", description=(
        "Train a baseline and write config.json, checkpoint.safetensors and history.json to --out; "
        "the directory is then a --model for `mmbench evaluate` (the command is printed at the end). "
        "Contrastive models: --preset paper (the default) is the simulation papers' schedule (7-layer MLPs, "
        "independent-negative InfoNCE, batch 6144, Adam 1e-4, clip 2, 300k steps: GPU work); --preset quick is the "
        "CPU scale of `mmbench reproduce --quick` (3x256 MLP, batch 512, 2,500 steps with cosine decay, 2-layer "
        "mixing). Multimodal VAEs (MVAE, MMVAE, MoPoE-VAE, MMVAE+): --recipe NAME, e.g. mopoe-polymnist (the paper's "
        "settings, GPU) or mopoe-polymnist-cpu (CPU minutes); --model-set changes its model config. "
        "Options below override the preset or recipe; an interrupted run (Ctrl-C, SIGTERM) resumes from its checkpoint."))
    p.add_argument("dataset", help="dataset id, e.g. numerical/multiview/multimodal-independent or polymnist")
    p.add_argument("--out", required=True, help="output directory (config, checkpoint, history); resumed if it holds a run")
    p.add_argument("--preset", default=None, choices=list(PRESETS),
                   help="contrastive recipe the options below start from: paper (default; the papers' schedule, GPU) or quick (CPU minutes)")
    p.add_argument("--recipe", default=None, metavar="NAME",
                   help=f"train a multimodal VAE with a named recipe: {', '.join(VAE_RECIPES.names())}")
    p.add_argument("--model-set", dest="model_overrides", action="append", metavar="KEY=VALUE",
                   help="with --recipe: set a VAEConfig field (JSON value), e.g. --model-set beta=1.0 --model-set latent_dim=32")
    p.add_argument("-o", "--set", dest="overrides", action="append", metavar="KEY=VALUE", help="dataset config " + OVERRIDE_HELP)
    p.add_argument("--config", default=None, help="a JSON file with TrainConfig fields (or a run's config.json); options override it")
    p.add_argument("--name", default=None, help="run name, shown as the model name on the leaderboard")
    g = p.add_argument_group("model")
    g.add_argument("--encoder", default=None, choices=ENCODERS, help="encoder architecture (default mlp)")
    g.add_argument("--width-scale", type=float, default=None, help="MLP hidden-width multiplier (paper preset: 1.0)")
    g.add_argument("--norm", default=None, help="encoder output normalisation: none, sphere, sphere-fixed or box (default none)")
    g.add_argument("--shared-encoder", action="store_true", default=None, help="one encoder for all modalities (multi-view setting)")
    g.add_argument("--encoding-size", type=int, default=None, help="embedding dimension d (default 5)")
    g = p.add_argument_group("loss")
    g.add_argument("--loss", default=None, choices=list(LOSSES), help="contrastive loss (default independent-infonce)")
    g.add_argument("--tau", type=float, default=None, help="InfoNCE temperature (default 1.0)")
    g.add_argument("--learn-tau", action="store_true", default=None, help="learn the temperature")
    g.add_argument("--similarity", default=None, choices=["cosine", "dot", "lp"], help="similarity of the loss (default: the loss's own)")
    g.add_argument("--p", type=float, default=None, help="L_p distance exponent of the lp similarity")
    g = p.add_argument_group("schedule")
    g.add_argument("--batch-size", type=int, default=None, help="positive pairs per step (paper 6144, quick 512)")
    g.add_argument("--steps", type=int, default=None, help="optimiser steps (paper 300,000, quick 2,500)")
    g.add_argument("--lr", type=float, default=None, help="Adam learning rate (paper 1e-4, quick 2e-3)")
    g.add_argument("--optimizer", default=None, choices=list(OPTIMIZERS), help="adam (default) or amsgrad (the MMVAE/MMVAE+ references')")
    g.add_argument("--lr-schedule", default=None, choices=LR_SCHEDULES, help="constant (paper) or cosine decay to 0 at --steps (quick)")
    g.add_argument("--warmup-steps", type=int, default=None, help="linear learning-rate warm-up steps (paper 0, quick 100)")
    g.add_argument("--grad-clip", type=float, default=None, help="max gradient 2-norm (default 2.0)")
    g.add_argument("--seed", type=int, default=None, help="seed of the initialisation and the data stream (default 0)")
    g.add_argument("--data", choices=["sampler", "dataset"], default=None,
                   help="sampler: fresh samples every step (default); dataset: epochs over the built --split")
    g.add_argument("--val-every", type=int, default=None, help="validation-loss period in steps (0: never)")
    g.add_argument("--checkpoint-every", type=int, default=None, help="checkpoint period in steps (0: only at the end)")
    g = p.add_argument_group("execution")
    g.add_argument("--device", default="auto", help=DEVICE_HELP)
    g.add_argument("--no-resume", action="store_true", help="refuse to continue an existing checkpoint in --out")
    g.add_argument("--no-progress", action="store_true", help="no progress bar (as --quiet)")
    g.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: 1 with --preset quick on a CPU, where the small MLP gains nothing from "
                        "more and extra threads contend on a busy machine; torch's default otherwise)")
    g.add_argument("--compile", action="store_true", default=None, help="torch.compile the encoders (GPU)")
    p.set_defaults(func=cmd_train)


def config_from_args(args: Any) -> Any:
    """The :class:`~mmbench.models.train.TrainConfig` of ``mmbench train`` arguments.

    Precedence, lowest first: the preset (or ``--recipe``), the ``--config`` file, the options;
    ``-o`` dataset overrides combine with the preset's and the file's
    (:func:`mmbench.core.config.combine_overrides`).
    """
    from mmbench.cli import parse_overrides
    from mmbench.core.config import combine_overrides
    from mmbench.models.train import TrainConfig

    base = _base_fields(args)
    if args.config:
        try:
            loaded = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as exc:
            raise InvalidConfigError(f"Cannot read the train config {args.config!r}: {exc}") from exc
        loaded = dict(loaded.get("train_config", loaded))
        overrides = combine_overrides(base.get("dataset_overrides", {}), loaded.pop("dataset_overrides", {}))
        base = {**base, **loaded, "dataset_overrides": overrides}
    base["dataset"] = args.dataset
    cli = parse_overrides(args.overrides)
    if cli:
        base["dataset_overrides"] = combine_overrides(base.get("dataset_overrides", {}), cli)
    base.update({f: getattr(args, f) for f in _FIELDS if getattr(args, f, None) is not None})
    if base.get("model", "contrastive") == "contrastive":
        _contrastive_options(base, args)
    model_set = parse_overrides(getattr(args, "model_overrides", None))  # VAEConfig fields, JSON values
    if model_set:
        if base.get("model", "contrastive") == "contrastive":
            raise InvalidConfigError("--model-set sets a VAE's model config; use it with --recipe (contrastive models take --encoder, --loss, ...).")
        base["model_config"] = {**base.get("model_config", {}), **model_set}
    return TrainConfig.from_dict(base)


def _base_fields(args: Any) -> dict[str, Any]:
    """The fields of ``--recipe`` (a VAE) or ``--preset`` (contrastive; default paper)."""
    from mmbench.models.train import preset_fields, recipe_fields

    recipe = getattr(args, "recipe", None)
    if not recipe:
        return preset_fields(getattr(args, "preset", None) or "paper", args.dataset)
    if getattr(args, "preset", None):
        raise InvalidConfigError(f"--preset {args.preset} is a contrastive recipe and --recipe {recipe} a VAE one; give only one.")
    given = [f"--{f.replace('_', '-')}" for f in _CONTRASTIVE_FLAGS if getattr(args, f, None) is not None]
    if given:
        raise InvalidConfigError(f"{', '.join(given)} configure contrastive models; --recipe {recipe} trains a VAE "
                                 "(change its model with --model-set KEY=VALUE).")
    return recipe_fields(recipe, args.dataset)


def _contrastive_options(base: dict[str, Any], args: Any) -> None:
    """Fold the encoder and loss options into ``base``'s ``encoder_kwargs`` and ``loss_kwargs``."""
    enc_kw = dict(base.get("encoder_kwargs", {}))
    if getattr(args, "width_scale", None) is not None:
        enc_kw["width_scale"] = args.width_scale
        enc_kw.pop("hidden", None)  # explicit widths would override the scale
    if getattr(args, "norm", None) is not None:
        enc_kw["norm"] = args.norm
    base["encoder_kwargs"] = enc_kw
    loss_kw = dict(base.get("loss_kwargs", {}))
    loss_kw.update({k: getattr(args, k) for k in ("tau", "learn_tau", "similarity", "p") if getattr(args, k, None) is not None})
    base["loss_kwargs"] = loss_kw


def evaluate_command(out_dir: str | Path, config: Any) -> tuple[str, str]:
    """The ``mmbench evaluate`` command line for a run in ``out_dir`` and what it scores.

    The suite is one whose entry has the training dataset's config (apart from split sizes); with
    none registered, the full numerical suite, and the note says the data differ.
    """
    from mmbench.harness.suites import suites_for_dataset
    from mmbench.models.train import dataset_builder

    builder = dataset_builder(config.dataset, config.dataset_overrides)
    dataset_id = builder.id
    matches = suites_for_dataset(builder)
    if matches:
        suite, entry = matches[0]
        note = f"suite {suite}: its entry {entry!r} has the data this model was trained on"
    else:
        suite = "identifiability-numerical:v1"
        note = (f"no registered suite has the training data {dataset_id}; the scores measure transfer to the suite's "
                "datasets (write a suite JSON file to score the training config itself)")
    cmd = shlex.join(["mmbench", "evaluate", "--model", str(out_dir), "--suite", suite, "--results-dir", "results"])
    return cmd, note


def cmd_train(args: Any) -> int:
    import torch

    from mmbench.devices import resolve_device
    from mmbench.models.train import train

    config = config_from_args(args)
    device = resolve_device(args.device)
    threads = args.threads or (1 if getattr(args, "preset", None) == "quick" and device.type == "cpu" else None)
    if threads:  # measured: 5 min with 1 thread vs 21 min with 2 for the quick preset on a shared 2-core machine
        torch.set_num_threads(threads)
    quiet = args.no_progress or getattr(args, "quiet", False)
    result = train(config, out_dir=args.out, device=device, resume=not args.no_resume, progress=False if quiet else None)
    last = next((h for h in reversed(result.history) if "loss" in h), {})
    state = "interrupted" if result.interrupted else "done"
    print(f"{state}: {result.steps} steps in {result.seconds:.1f} s ({result.steps_per_second:.2f} steps/s); "
          f"last loss {last.get('loss', float('nan')):.4f}; checkpoint in {args.out}")
    if result.interrupted:
        print(f"Resume with the same command (the run continues from its checkpoint in {args.out}).")
        return 128 + (result.signal or 2)
    cmd, note = evaluate_command(args.out, config)
    print(f"Evaluate it ({note}):\n  {cmd}")
    return 0
