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
import signal
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
    "blender": "mmbench.rendering.scene.blender:add_parser",
    "suites": "mmbench.cli:add_suites",
    "train": "mmbench.models.train_cli:add_train_parser",
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
    "blender": "set up and check the Blender interpreter of the cycles backend",
    "suites": "list the benchmark suites: entries, seeds and expected cost",
    "train": "train a contrastive or multimodal-VAE baseline on a dataset",
    "reproduce": "train baselines and compare with a paper's table",
    "train-classifiers": "train per-modality digit classifiers (coherence metrics)",
    "evaluate": "score a model on a suite and write a RunResult JSON",
    "leaderboard": "build Markdown + HTML leaderboards and per-latent heatmaps from RunResult JSON files",
    "export": "write dataset configs as Parquet + a dataset card (datasets.load_dataset reads it)",
    "publish": "upload one dataset config to the Hugging Face Hub and tag it with its version",
    "cards": "regenerate the dataset catalogue (cards/: one page and sample grid per dataset)",
}


OVERRIDE_HELP = (
    "override a config field, KEY=VALUE with a JSON value (repeatable): -o seed=1; a mapping merges key by key: "
    "-o split_sizes.train=1000 or -o 'split_sizes={\"train\": 1000}' (val and test keep their sizes); "
    "KEY:=VALUE replaces a mapping whole: -o 'split_sizes:={\"train\": 1000}'; lists are JSON: -o 'selection=[\"s1\",\"s2\"]'"
)


def parse_overrides(items: Sequence[str] | None) -> dict[str, Any]:
    """``-o`` arguments → an overrides dict with the semantics of :mod:`mmbench.core.config`.

    ``KEY=VALUE`` sets a field (VALUE parsed as JSON when it parses, else kept as a string); a
    mapping value merges into the field's mapping, as ``a.b=v`` (one key of a mapping field) does;
    ``KEY:=VALUE`` replaces a mapping whole (:class:`~mmbench.core.config.Replace`).

    Example:
        >>> parse_overrides(["seed=3", "split_sizes.train=10"])
        {'seed': 3, 'split_sizes': {'train': 10}}
    """
    from mmbench.core.config import Replace, combine_overrides

    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key or key in (":",):
            raise MMBenchError(
                f"Invalid override {item!r}: expected KEY=VALUE, e.g. seed=1, split_sizes.train=1000 or "
                "'split_sizes:={\"train\": 1000}'."
            )
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        replace = key.endswith(":")
        key = key.rstrip(":")
        if replace:
            if not isinstance(value, dict):
                raise MMBenchError(f"Invalid override {item!r}: KEY:=VALUE replaces a mapping, so VALUE must be a JSON object.")
            value = Replace(value)
        for part in reversed(key.split(".")[1:]):
            value = {part: value}
        out = combine_overrides(out, {key.split(".")[0]: value})
    return out


def _add_dataset_args(p: argparse.ArgumentParser, *, example: str = "numerical/misalignment/joint") -> None:
    p.add_argument("id", help=f"dataset id: name[/config][:x.y.z], e.g. {example}")
    p.add_argument("-o", "--set", dest="overrides", action="append", metavar="KEY=VALUE", help=OVERRIDE_HELP)
    p.add_argument("--cache-dir", default=None, help="cache root (default: $MMBENCH_CACHE or ~/.cache/mmbench)")
    p.add_argument("--data-dir", default=None, help="where raw inputs are looked for")


def _builder(args: argparse.Namespace) -> Any:
    """The builder for ``args.id`` with the ``-o`` overrides (:func:`parse_overrides`)."""
    import mmbench

    overrides = parse_overrides(args.overrides)
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
    p.add_argument("--executor", default="process", choices=["process", "serial", "ray"],
                   help="process: a local process pool (default); serial: in this process; ray: a Ray cluster")
    p.add_argument("--force", action="store_true", help="rebuild splits that are already cached")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars (as --quiet)")
    p.set_defaults(func=cmd_build)


def cmd_build(args: argparse.Namespace) -> int:
    import time

    from mmbench.core.executors import check_run_options

    check_run_options(num_workers=args.workers, executor=args.executor, progress=None)  # before any work
    b = _builder(args)
    t0 = time.perf_counter()
    root = b.build(args.split, num_workers=args.workers, executor=args.executor,
                   progress=False if args.no_progress or args.quiet else None, force=args.force)
    elapsed = time.perf_counter() - t0
    info = json.loads((root / "dataset_info.json").read_text())
    print(f"Built {b.id} in {elapsed:.2f} s → {root}")
    for split, s in info["splits"].items():
        print(f"  {split}: {s['num_examples']} examples, {len(s['shards'])} shards, fingerprint {s['fingerprint']}")
    print(f"  content fingerprint: {info['content_fingerprint']}")
    return 0


# ---------------------------------------------------------------------------- show
def add_show(sub: Any) -> None:
    p = sub.add_parser("show", help="print a few examples (building the split if needed)",
                       description="Print a few examples: every latent's value and a summary of each modality "
                                   "(shape, dtype, range; a caption's text). --grid writes the images as a PNG instead.")
    _add_dataset_args(p)
    p.add_argument("--split", default=None, help="split to show (default: the first)")
    p.add_argument("-n", "--num", type=int, default=3, help="number of examples (default 3)")
    p.add_argument("--grid", default=None, metavar="PNG", help="write a modalities × examples image grid (image datasets)")
    p.add_argument("--full", action="store_true", help="print whole arrays instead of a summary")
    p.set_defaults(func=cmd_show)


def describe_value(value: Any, *, full: bool = False) -> str:
    """One line for an example's field: small values as they are, arrays as shape/dtype/range."""
    import numpy as np

    arr = np.asarray(value)
    if full or arr.size <= 16 or arr.dtype.kind in "USO":
        with np.printoptions(precision=3, suppress=True, linewidth=120, threshold=10**9 if full else 60):
            text = str(value)
        return text if full or len(text) <= 200 else text[:197] + "..."
    if arr.dtype.kind == "b" or not np.issubdtype(arr.dtype, np.number):
        return f"{arr.dtype} array {arr.shape}"
    return (f"{arr.dtype} array {arr.shape}, min {arr.min():.4g}, max {arr.max():.4g}, mean {arr.mean():.4g} "
            "(--full prints it, --grid draws images)")


def cmd_show(args: argparse.Namespace) -> int:
    b = _builder(args)
    split = b.check_split(b.split_names()[0] if args.split is None else args.split)  # --split "" is an error
    if not b.is_built(split):
        b.build(split, progress=False if getattr(args, "quiet", False) else None)
    ds = b.as_dataset(split)
    if args.grid:
        from mmbench.rendering.grid import save_grid

        save_grid(ds, args.grid, num=args.num)
        print(f"Wrote {args.grid}")
        return 0
    print(repr(ds))
    for i in range(min(args.num, len(ds))):
        print(f"\n--- example {i}")
        for name, value in ds[i].items():
            print(f"  {name}: {describe_value(value, full=args.full)}")
    return 0


# ---------------------------------------------------------------------------- suites
def add_suites(sub: Any) -> None:
    p = sub.add_parser("suites", help="list the benchmark suites: entries, seeds and expected cost",
                       description="List the registered suites (ids for `mmbench evaluate --suite`) with their entries, "
                                   "metrics, seeds, probe fits and measured cost.")
    p.add_argument("suite", nargs="?", default=None, help="show only this suite (an id or a suite JSON file)")
    p.set_defaults(func=cmd_suites)


def cmd_suites(args: argparse.Namespace) -> int:
    from mmbench.harness.suites import describe_suite, get_suite, list_suites

    ids = [args.suite] if args.suite else list_suites()
    print("\n\n".join(describe_suite(get_suite(i)) for i in ids))
    return 0


# ---------------------------------------------------------------------------- main
def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The ``mmbench`` parser with full sub-parsers for ``commands`` (``None``: all of them).

    The other commands get a placeholder that only carries their help line, so their modules
    (and what they import: torch, scikit-learn) are not loaded. ``-v`` and ``-q`` are accepted
    before and after the command.
    """
    import mmbench

    parser = argparse.ArgumentParser(
        prog="mmbench",
        description="Multimodal representation-learning benchmarks with ground-truth latents.",
    )
    parser.add_argument("--version", action="version", version=f"mmbench {mmbench.__version__}")
    _add_common_flags(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, target in COMMANDS.items():
        if commands is None or name in commands:
            module, _, func = target.partition(":")
            getattr(importlib.import_module(module), func)(sub)
            _add_common_flags(sub.choices[name], default=argparse.SUPPRESS)
        else:
            sub.add_parser(name, help=COMMAND_HELP.get(name, ""), add_help=False)
    return parser


def _add_common_flags(p: argparse.ArgumentParser, *, default: Any) -> None:
    # On a sub-command the defaults are SUPPRESS, so `mmbench -v build ...` is not undone by it.
    p.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="log details at INFO level and show the full traceback of an error")
    p.add_argument("-q", "--quiet", action="store_true", default=default,
                   help="no progress bars (one line per finished entry or run is still printed)")


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
    _configure_logging(verbose=args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from mmbench.core.executors import interrupt_on_signals

    with interrupt_on_signals() as caught:
        try:
            return int(args.func(args) or 0)
        except MMBenchError as exc:
            _print_error(exc, verbose=args.verbose)
            return 1
        except KeyboardInterrupt as exc:
            signum = getattr(exc, "signum", caught.get("signal", signal.SIGINT))
            print(f"interrupted (signal {signum}); stopped cleanly", file=sys.stderr)
            return 128 + signum


def _configure_logging(*, verbose: bool) -> None:
    """``-v``: every mmbench logger at INFO; always: progress lines (finished entries, runs) on stderr."""
    import logging

    from mmbench.progress import LOGGER_NAME, line_handler

    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    progress = logging.getLogger(LOGGER_NAME)
    progress.setLevel(logging.INFO)
    if not any(getattr(h, "_mmbench_cli", False) for h in progress.handlers):
        handler = line_handler()
        handler._mmbench_cli = True  # type: ignore[attr-defined]
        progress.addHandler(handler)
    progress.propagate = False  # shown once, without the -v prefix


def _print_error(exc: BaseException, *, verbose: bool) -> None:
    """``error: message``; with ``-v`` the full traceback first (a model's own exception included)."""
    if verbose:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    print(f"error: {exc}", file=sys.stderr)
    if not verbose and exc.__cause__ is not None and not isinstance(exc.__cause__, MMBenchError):
        print("(run with -v to see the traceback of the underlying "
              f"{type(exc.__cause__).__name__})", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
