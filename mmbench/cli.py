"""The ``mmbench`` command line.

Each sub-command lives in the module that owns its feature and is imported only when used:
``COMMANDS`` maps a command name to ``"module:function"``, where the function takes the
``argparse`` sub-parsers object and adds its parser (with ``set_defaults(func=...)``), and
``COMMAND_HELP`` gives its one-line help. Only the module of the command being run is imported
(``mmbench list`` never imports torch); every other command is listed by ``mmbench --help`` from
``COMMAND_HELP`` alone.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Collection, Sequence
from typing import Any

from mmbench.errors import MMBenchError

__all__ = ["COMMANDS", "COMMAND_HELP", "build_parser", "main", "parse_overrides"]

# command → "module:add_parser"; features register their commands here.
COMMANDS: dict[str, str] = {
    "list": "mmbench.cli:add_list",
    "info": "mmbench.cli:add_info",
    "build": "mmbench.cli:add_build",
    "show": "mmbench.cli:add_show",
    "cache": "mmbench.core.cache:add_parser",
    "train": "mmbench.models.train:add_train_parser",
    "reproduce": "mmbench.models.reproduce:add_reproduce_parser",
    "train-classifiers": "mmbench.models.classifiers:add_parser",
    "evaluate": "mmbench.harness.cli:add_evaluate",
    "leaderboard": "mmbench.harness.cli:add_leaderboard",
    "export": "mmbench.hub_cli:add_export",
    "publish": "mmbench.hub_cli:add_publish",
    "cards": "mmbench.hub_cli:add_cards",
}
# command → the help its parser declares (a test keeps the two equal), shown without importing it.
COMMAND_HELP: dict[str, str] = {
    "list": "list the datasets and their named configs",
    "info": "describe a dataset: latents, modalities, configs, versions",
    "build": "generate a dataset into the cache",
    "show": "print a few examples (building the split if needed)",
    "cache": "list the cache (datasets, shared stores, partial builds) and prune what nothing uses",
    "train": "train a contrastive baseline on a dataset",
    "reproduce": "train baselines and compare with a paper's table",
    "train-classifiers": "train per-modality digit classifiers (coherence metrics)",
    "evaluate": "score a model on a suite and write a RunResult JSON",
    "leaderboard": "build Markdown + HTML leaderboards and per-latent heatmaps from RunResult JSON files",
    "export": "write dataset configs as Parquet + a dataset card (datasets.load_dataset reads it)",
    "publish": "upload one dataset config to the Hugging Face Hub and tag it with its version",
    "cards": "regenerate the dataset catalogue (cards/: one page and sample grid per dataset)",
}


class _Partial(dict):
    """Keys set one at a time with ``field.key=value``: merged into the field's current mapping."""


def parse_overrides(items: Sequence[str] | None) -> dict[str, Any]:
    """``["seed=3", "split_sizes={\\"train\\": 10}"]`` → ``{"seed": 3, "split_sizes": {...}}``.

    Values are parsed as JSON when they parse, else kept as strings; ``a.b=v`` sets a key of a
    mapping field (``split_sizes.train=1000``).
    """
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise MMBenchError(f"Invalid override {item!r}: expected KEY=VALUE, e.g. seed=1 or split_sizes.train=1000.")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if "." in key:
            field, sub = key.split(".", 1)
            out.setdefault(field, _Partial())[sub] = value
        else:
            out[key] = value
    return out


def _add_dataset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", help="dataset id: name[/config][:x.y.z], e.g. numerical/misalignment/joint")
    p.add_argument("-o", "--set", dest="overrides", action="append", metavar="KEY=VALUE",
                   help="override a config field (JSON values), e.g. -o seed=1 -o split_sizes.train=1000")
    p.add_argument("--cache-dir", default=None, help="cache root (default: $MMBENCH_CACHE or ~/.cache/mmbench)")
    p.add_argument("--data-dir", default=None, help="where raw inputs are looked for")


def _builder(args: argparse.Namespace) -> Any:
    """The builder for ``args.id`` with ``-o`` overrides.

    ``-o field.key=value`` changes one key of a mapping field (the others keep their values);
    ``-o field={...}`` replaces the whole mapping, as the Python API does.
    """
    from collections.abc import Mapping

    import mmbench

    overrides = parse_overrides(args.overrides)
    base = mmbench.builder(args.id, cache_dir=args.cache_dir, data_dir=args.data_dir)
    for key, value in overrides.items():
        current = getattr(base.config, key, None)
        if isinstance(value, _Partial) and isinstance(current, Mapping):
            overrides[key] = {**current, **value}
    if not overrides:
        return base
    return mmbench.builder(args.id, cache_dir=args.cache_dir, data_dir=args.data_dir, **overrides)


# ---------------------------------------------------------------------------- list
def add_list(sub: Any) -> None:
    p = sub.add_parser("list", help="list the datasets and their named configs")
    p.add_argument("--configs", action="store_true", help="also list every named config")
    p.set_defaults(func=cmd_list)


def cmd_list(args: argparse.Namespace) -> int:
    from mmbench.builders import DATASETS

    for name in DATASETS.names():
        cls = DATASETS.get(name)
        print(f"{name}  (v{cls.VERSION}, {len(cls.CONFIGS)} configs, default: {cls.DEFAULT_CONFIG})")
        if args.configs:
            for cfg_name, cfg in cls.CONFIGS.items():
                print(f"  {name}/{cfg_name}  {cfg.description}")
    return 0


# ---------------------------------------------------------------------------- info
def add_info(sub: Any) -> None:
    p = sub.add_parser("info", help="describe a dataset: latents, modalities, configs, versions")
    _add_dataset_args(p)
    p.add_argument("--json", action="store_true", help="print the full DatasetInfo as JSON")
    p.set_defaults(func=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    b = _builder(args)
    info = b.info()
    if args.json:
        print(json.dumps(info.to_json(), indent=1))
        return 0
    print(f"# {b.id}\n\n{info.description}\n")
    if info.citation:
        print(f"Citation: {info.citation}\n")
    print(f"Version {b.VERSION}; release notes:")
    for version, notes in sorted(b.RELEASE_NOTES.items()):
        print(f"  {version}: {notes}")
    print(f"\nConfig {b.config.name or 'custom'} (fingerprint {b.config.fingerprint}):")
    for key, value in b.config.to_dict().items():
        print(f"  {key} = {json.dumps(value, ensure_ascii=False)}")
    print("\nModalities:")
    for m in info.modalities.values():
        print(f"  {m.name}: {m.kind} {m.shape} {m.dtype}  {m.description}")
    print("\nLatents:\n" + info.latents.table())
    extras = [k for k, f in info.features.items() if f.kind == "extra"]
    if extras:
        print("\nExtra columns: " + ", ".join(extras))
    print(f"\nExpected identifiable (theory): {', '.join(info.expected_identifiable) or '-'}")
    print(f"\nSplits: {dict(b.config.split_sizes)}; cache: {b.dataset_dir()}")
    built = [s for s in b.split_names() if b.is_built(s)]
    print(f"Built: {', '.join(built) or 'nothing yet'}")
    print("\nNamed configs: " + ", ".join(type(b).CONFIGS))
    return 0


# ---------------------------------------------------------------------------- build
def add_build(sub: Any) -> None:
    p = sub.add_parser("build", help="generate a dataset into the cache")
    _add_dataset_args(p)
    p.add_argument("--split", action="append", help="split(s) to build (default: all)")
    p.add_argument("--workers", type=int, default=1, help="parallel shard workers (default 1)")
    p.add_argument("--executor", default="process", choices=["process", "serial", "ray"])
    p.add_argument("--force", action="store_true", help="rebuild splits that are already cached")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars (shown when stderr is a terminal)")
    p.set_defaults(func=cmd_build)


def cmd_build(args: argparse.Namespace) -> int:
    import time

    from mmbench.core.executors import check_run_options

    check_run_options(num_workers=args.workers, executor=args.executor, progress=None)  # before any work
    b = _builder(args)
    t0 = time.perf_counter()
    root = b.build(args.split, num_workers=args.workers, executor=args.executor,
                   progress=False if args.no_progress else None, force=args.force)
    elapsed = time.perf_counter() - t0
    info = json.loads((root / "dataset_info.json").read_text())
    print(f"Built {b.id} in {elapsed:.2f} s → {root}")
    for split, s in info["splits"].items():
        print(f"  {split}: {s['num_examples']} examples, {len(s['shards'])} shards, fingerprint {s['fingerprint']}")
    print(f"  content fingerprint: {info['content_fingerprint']}")
    return 0


# ---------------------------------------------------------------------------- show
def add_show(sub: Any) -> None:
    p = sub.add_parser("show", help="print a few examples (building the split if needed)")
    _add_dataset_args(p)
    p.add_argument("--split", default=None, help="split to show (default: the first)")
    p.add_argument("-n", "--num", type=int, default=3, help="number of examples")
    p.add_argument("--grid", default=None, metavar="PNG", help="write a modalities × examples image grid (image datasets)")
    p.set_defaults(func=cmd_show)


def cmd_show(args: argparse.Namespace) -> int:
    import numpy as np

    b = _builder(args)
    split = b.check_split(b.split_names()[0] if args.split is None else args.split)  # --split "" is an error
    if not b.is_built(split):
        b.build(split)
    ds = b.as_dataset(split)
    if args.grid:
        from mmbench.rendering.grid import save_grid

        save_grid(ds, args.grid, num=args.num)
        print(f"Wrote {args.grid}")
        return 0
    print(repr(ds))
    with np.printoptions(precision=3, suppress=True, linewidth=120, threshold=60):
        for i in range(min(args.num, len(ds))):
            print(f"\n--- example {i}")
            for name, value in ds[i].items():
                print(f"  {name}: {value}")
    return 0


# ---------------------------------------------------------------------------- main
def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The ``mmbench`` parser with full sub-parsers for ``commands`` (``None``: all of them).

    The other commands get a placeholder that only carries their help line, so their modules
    (and what they import: torch, scikit-learn) are not loaded.
    """
    import mmbench

    parser = argparse.ArgumentParser(
        prog="mmbench",
        description="Multimodal representation-learning benchmarks with ground-truth latents.",
    )
    parser.add_argument("--version", action="version", version=f"mmbench {mmbench.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, target in COMMANDS.items():
        if commands is None or name in commands:
            module, _, func = target.partition(":")
            getattr(importlib.import_module(module), func)(sub)
        else:
            sub.add_parser(name, help=COMMAND_HELP.get(name, ""), add_help=False)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv``: the first word that is not an option (the top-level
    options take no values)."""
    for i, token in enumerate(argv):
        if token == "--":
            return argv[i + 1] if i + 1 < len(argv) else None
        if not token.startswith("-"):
            return token
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_in(argv)
    parser = build_parser({command} if command in COMMANDS else set())
    args = parser.parse_args(argv)
    if args.verbose:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MMBenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
