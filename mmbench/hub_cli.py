"""``mmbench export``, ``mmbench publish`` and ``mmbench cards``: the command-line side of
:mod:`mmbench.hub` and :mod:`mmbench.cards` (registered lazily in :mod:`mmbench.cli`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_cards", "add_export", "add_publish"]


def _dataset_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--set", dest="overrides", action="append", metavar="KEY=VALUE",
                   help="override a config field (JSON values); an overridden config needs --name")
    p.add_argument("--name", default=None, help="the config's name in the export, required for an overridden config")
    p.add_argument("--workers", type=int, default=1, help="processes encoding PNGs and writing Parquet (default 1)")
    p.add_argument("--cache-dir", default=None, help="cache root (default: $MMBENCH_CACHE or ~/.cache/mmbench)")
    p.add_argument("--data-dir", default=None, help="where raw inputs are looked for")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars (shown when stderr is a terminal)")


def _builder_for(args: argparse.Namespace, dataset_id: str) -> Any:
    from mmbench.cli import _builder

    return _builder(argparse.Namespace(id=dataset_id, overrides=args.overrides, cache_dir=args.cache_dir,
                                       data_dir=args.data_dir))


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


# ---------------------------------------------------------------------------- export
def add_export(sub: Any) -> None:
    p = sub.add_parser("export", help="write dataset configs as Parquet + a dataset card (datasets.load_dataset reads it)")
    p.add_argument("ids", nargs="+", metavar="ID", help="dataset id(s) of one dataset, e.g. polymnist/reference polymnist/distinct")
    p.add_argument("--out", required=True, help="export directory (README.md + <config>/<split>-*.parquet)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export in --out")
    p.add_argument("--split", action="append", help="split(s) to export (default: all)")
    p.add_argument("--repo", default=None, help="the Hub repository named in the card's loading instructions")
    _dataset_options(p)
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    import time

    from mmbench.cards import read_card_metadata
    from mmbench.hub import export

    builders = [_builder_for(args, i) for i in args.ids]
    t0 = time.perf_counter()
    out = export(builders, args.out, name=args.name, overwrite=args.overwrite, splits=args.split,
                 num_workers=args.workers, progress=False if args.no_progress else None, repo=args.repo)
    meta = read_card_metadata((out / "README.md").read_text(encoding="utf-8"))
    print(f"Exported to {out} in {time.perf_counter() - t0:.1f} s")
    for info in meta["dataset_info"]:
        splits = ", ".join(f"{s['name']} {s['num_examples']:,}" for s in info["splits"])
        print(f"  {info['config_name']}: {splits}; {_size(info['download_size'])} of Parquet")
    first = meta["configs"][0]["config_name"]
    print(f'Load it with datasets.load_dataset("{out}", "{first}")')
    return 0


# ---------------------------------------------------------------------------- publish
def add_publish(sub: Any) -> None:
    p = sub.add_parser("publish", help="upload one dataset config to the Hugging Face Hub and tag it with its version")
    p.add_argument("id", help="dataset id, e.g. polymnist/reference")
    p.add_argument("--repo", required=True, help="Hub dataset repository ORG/NAME")
    p.add_argument("--revision", default=None, help="branch to commit to (default: main)")
    p.add_argument("--create", action="store_true", help="create the repository if it does not exist")
    p.add_argument("--private", action="store_true", help="with --create: make the new repository private")
    _dataset_options(p)
    p.set_defaults(func=cmd_publish)


def cmd_publish(args: argparse.Namespace) -> int:
    from mmbench.hub import publish

    b = _builder_for(args, args.id)
    result = publish(b, args.repo, revision=args.revision, name=args.name, create=args.create, private=args.private,
                     num_workers=args.workers, progress=False if args.no_progress else None)
    what = "Published" if result.uploaded else "Already published (nothing uploaded)"
    print(f"{what}: {b.id} as config {result.config!r} of {result.repo}, commit {result.commit}, tag {result.tag}")
    print(f"  {result.url}")
    print(f'  mmbench.load("{b.name}/{result.config}:{b.VERSION}", source="hub", repo="{result.repo}")')
    return 0


# ---------------------------------------------------------------------------- cards
def add_cards(sub: Any) -> None:
    p = sub.add_parser("cards", help="regenerate the dataset catalogue (cards/: one page and sample grid per dataset)")
    p.add_argument("--out", default="cards", help="catalogue folder (default: cards, at the repository root)")
    p.add_argument("--check", action="store_true", help="only report what is out of date (exit 1 if anything is)")
    p.add_argument("--images", default="stale", choices=["stale", "all", "none"],
                   help="redraw sample PNGs that are out of date (default), all of them, or none")
    p.add_argument("--dataset", action="append", help="only this dataset (repeatable)")
    p.add_argument("--cache-dir", default=None, help="cache root for the sample builds")
    p.add_argument("--data-dir", default=None, help="where raw inputs are looked for")
    p.set_defaults(func=cmd_cards)


def cmd_cards(args: argparse.Namespace) -> int:
    from mmbench.cards import stale_catalogue, write_catalogue

    if args.check:
        problems = stale_catalogue(args.out)
        for problem in problems:
            print(problem)
        print("The catalogue is current." if not problems else "Run `mmbench cards` to regenerate it.")
        return 1 if problems else 0
    written = write_catalogue(args.out, datasets=args.dataset, images=args.images,
                              cache_dir=args.cache_dir, data_dir=args.data_dir)
    print(f"Wrote {len(written)} files to {Path(args.out)}")
    for path in written:
        print(f"  {path}")
    return 0
