"""``mmbench evaluate`` and ``mmbench leaderboard``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_evaluate", "add_leaderboard", "cmd_evaluate", "cmd_leaderboard"]


def add_evaluate(sub: Any) -> None:
    from mmbench.cli import OVERRIDE_HELP
    from mmbench.devices import DEVICE_HELP

    p = sub.add_parser(
        "evaluate",
        help="score a model on a suite and write a RunResult JSON",
        description=(
            "Score a submission on every entry of a suite and write the RunResult JSON (with full "
            "provenance) atomically into the results directory. Nothing is written if the run fails. "
            "Progress (entries, embeddings, probe fits, ETA) is shown on a terminal; one line per finished "
            "entry is printed in any case. `mmbench suites` lists the suites and what they cost."
        ),
    )
    p.add_argument("--model", required=True,
                   help="package.module:object (an encoder, or a class/factory returning one), a checkpoint directory "
                        "(mmbench_model.json + model.safetensors), or a training run directory (mmbench train --out DIR)")
    p.add_argument("--trust-factory", action="store_true",
                   help="let a checkpoint directory name a factory outside mmbench's own model classes; this runs the "
                        "code its mmbench_model.json names, so use it only for checkpoints you trust")
    p.add_argument("--suite", required=True,
                   help="suite id (e.g. identifiability-numerical-quick:v1; see `mmbench suites`) or a suite JSON file")
    p.add_argument("--results-dir", default="results", help="where the RunResult JSON goes (default: ./results)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="probe seeds (default: the suite's)")
    p.add_argument("--backend", default="torch", choices=["torch", "sklearn"], help="probe implementation (default torch)")
    p.add_argument("--batch-size", type=int, default=4096, help="examples per encode() call (default 4096)")
    p.add_argument("--entry", action="append", default=None, metavar="LABEL", help="evaluate only this suite entry (repeatable)")
    p.add_argument("-o", "--set", dest="overrides", action="append", metavar="KEY=VALUE",
                   help="dataset config override for every entry, on top of the entry's own (changes fingerprints); "
                        + OVERRIDE_HELP)
    p.add_argument("--cache-dir", default=None, help="dataset cache root (default: $MMBENCH_CACHE or ~/.cache/mmbench)")
    p.add_argument("--data-dir", default=None, help="where raw inputs (MNIST, archives) are looked for when a dataset is built")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mmbench.cli import parse_overrides
    from mmbench.devices import resolve_device
    from mmbench.harness.evaluate import evaluate
    from mmbench.harness.protocols import load_model

    device = resolve_device(args.device)  # an unavailable device fails before the model is loaded
    overrides = parse_overrides(args.overrides)
    model = load_model(args.model, trust_factory=args.trust_factory)
    if hasattr(model, "to") and hasattr(model, "parameters"):  # a torch module loaded for this run
        moved = model.to(device)
        # nn.Module.to moves in place and returns the module; keep the object that has the card.
        if getattr(moved, "card", None) is not None:
            model = moved
    result = evaluate(model, args.suite, device=device, seeds=args.seeds, backend=args.backend,
                      results_dir=args.results_dir, batch_size=args.batch_size, cache_dir=args.cache_dir,
                      data_dir=args.data_dir, dataset_overrides=overrides, entries=args.entry,
                      progress=False if args.quiet else None)
    print(result.summary_table())
    print(f"\nWrote {result.path} ({result.data['timings']['total_s']:.1f} s)")
    return 0


def add_leaderboard(sub: Any) -> None:
    p = sub.add_parser(
        "leaderboard",
        help="build Markdown + HTML leaderboards and per-latent heatmaps from RunResult JSON files",
        description=("Read every RunResult JSON under RESULTS_DIR (unreadable files are reported and skipped) and write "
                     "leaderboard.md, a self-contained sortable leaderboard.html (rows ranked by each suite's main score, "
                     "heatmaps embedded) and heatmaps/*.png."),
    )
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="directory searched (recursively) for RunResult JSON files")
    p.add_argument("--out", default=None, help="output directory (default: RESULTS_DIR/leaderboard)")
    p.add_argument("--no-heatmaps", action="store_true", help="skip the PNG heatmaps")
    p.set_defaults(func=cmd_leaderboard)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mmbench.harness.leaderboard import Leaderboard

    lb = Leaderboard.from_dir(args.results_dir)
    for path, why in lb.skipped:
        print(f"warning: skipped {path}: {why}", file=sys.stderr)
    out = Path(args.out) if args.out else Path(args.results_dir) / "leaderboard"
    paths = lb.write(out, heatmaps=not args.no_heatmaps)
    print(lb.to_markdown())
    print(f"\nWrote {paths['markdown']}, {paths['html']} (open it in a browser; heatmaps embedded) and "
          f"{len(paths['heatmaps'])} heatmap PNG(s) in {out / 'heatmaps'}")
    return 0
