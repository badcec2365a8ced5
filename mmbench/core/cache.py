"""What the cache holds, and pruning what nothing uses (``mmbench cache``).

The cache has dataset entries (``<dataset>/<config>/<version>/``), shared stores
(``_stores/<store>/<fingerprint>/``), partial builds (``.partial-*``, kept so that an interrupted
build resumes) and temporaries. A store is referenced by the ``dataset_info.json`` of every entry
that reads it and is never pruned while one does; nothing is pruned while a process holds its
build lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmbench.core.info import INFO_FILE, SPLIT_INFO_FILE
from mmbench.core.storage import STORES_DIR, TMP_MARK, clean_stale_tmp

__all__ = ["CacheReport", "prune", "scan"]


@dataclasses.dataclass
class CacheReport:
    """Entries, stores and leftovers found in a cache directory, with their sizes in bytes."""

    root: Path
    entries: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    stores: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    partial: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(x["bytes"] for group in (self.entries, self.stores, self.partial) for x in group)

    def unreferenced_stores(self) -> list[dict[str, Any]]:
        return [s for s in self.stores if not s["used_by"]]

    def to_text(self) -> str:
        """A plain-text table of everything in the cache (what ``mmbench cache`` prints)."""
        lines = [f"cache: {self.root}  ({_human(self.total_bytes)})", "", "datasets:"]
        for e in self.entries:
            stores = f"  stores: {', '.join(e['stores'])}" if e["stores"] else ""
            lines.append(f"  {e['id']:<60} {_human(e['bytes']):>9}  splits: {', '.join(e['splits']) or '-'}{stores}")
        lines += ["", "shared stores:"]
        for s in self.stores:
            used = f"used by {len(s['used_by'])}" if s["used_by"] else "UNUSED (pruned by --prune)"
            lines.append(f"  {s['path']:<60} {_human(s['bytes']):>9}  {used}")
        if self.partial:
            lines += ["", "partial builds (resumed by the next build; removed by --prune):"]
            lines += [f"  {p['path']:<60} {_human(p['bytes']):>9}" for p in self.partial]
        return "\n".join(lines)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(dirpath) / name).stat().st_size
    return total


def _entry_dirs(root: Path) -> Iterator[Path]:
    for info in root.glob(f"*/*/*/{INFO_FILE}"):
        if not info.parent.parts[-3].startswith(STORES_DIR):
            yield info.parent


def scan(cache_dir: str | os.PathLike[str]) -> CacheReport:
    """List the dataset entries, shared stores and partial builds under ``cache_dir``."""
    root = Path(cache_dir).expanduser()
    report = CacheReport(root)
    used: dict[str, list[str]] = {}
    for entry in sorted(_entry_dirs(root)):
        try:
            info = json.loads((entry / INFO_FILE).read_text())
        except (OSError, ValueError):
            info = {}
        stores = [s["path"] for s in info.get("stores", {}).values() if isinstance(s, dict) and "path" in s]
        ident = info.get("id") or str(entry.relative_to(root))
        for path in stores:
            used.setdefault(path, []).append(ident)
        splits = sorted(p.name for p in entry.iterdir() if (p / SPLIT_INFO_FILE).is_file())
        report.entries.append({"id": ident, "path": str(entry.relative_to(root)), "bytes": _size(entry),
                               "splits": splits, "stores": stores})
    for part in sorted(root.glob("*/*/*/.partial-*")):  # an entry's first split may still be partial
        if part.parts[-4] != STORES_DIR:
            report.partial.append({"path": str(part.relative_to(root)), "bytes": _size(part), "lock": str(part.parent) + ".lock"})
    for store in sorted(root.glob(f"{STORES_DIR}/*/*")):
        if not store.is_dir():
            continue
        rel = str(store.relative_to(root))
        if store.name.startswith(".partial-"):
            final = store.with_name(store.name.removeprefix(".partial-"))
            report.partial.append({"path": rel, "bytes": _size(store), "lock": str(final) + ".lock"})
        elif not store.name.startswith(TMP_MARK):
            report.stores.append({"path": rel, "bytes": _size(store), "used_by": used.get(rel, []),
                                  "complete": (store / SPLIT_INFO_FILE).is_file()})
    return report


def _unlocked(lock_path: str) -> Any:
    """The build lock at ``lock_path`` if no process holds it (then the caller holds it), else ``None``."""
    from filelock import FileLock, Timeout

    lock = FileLock(lock_path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return None
    return lock


def prune(cache_dir: str | os.PathLike[str], *, dry_run: bool = False) -> list[str]:
    """Remove what nothing uses: unreferenced stores, partial builds and dead processes' temporaries.

    Entries and stores in use, and anything a running build holds the lock of, are kept.
    Returns the removed paths (relative to ``cache_dir``); ``dry_run`` removes nothing.
    """
    report = scan(cache_dir)
    removed = []
    for item in report.unreferenced_stores() + report.partial:
        path = report.root / item["path"]
        lock_path = item.get("lock") or str(path) + ".lock"
        lock = _unlocked(lock_path)
        if lock is None:
            continue  # a build is using it right now
        try:
            if not dry_run:
                shutil.rmtree(path, ignore_errors=True)
            removed.append(item["path"])
        finally:
            lock.release()
    if not dry_run:
        for entry in [report.root / e["path"] for e in report.entries]:
            removed += [str(p.relative_to(report.root)) for p in clean_stale_tmp(entry)]
    return removed


# ---------------------------------------------------------------------------- CLI
def add_parser(sub: Any) -> None:
    p = sub.add_parser("cache", help="list the cache (datasets, shared stores, partial builds) and prune what nothing uses")
    p.add_argument("--cache-dir", default=None, help="cache root (default: $MMBENCH_CACHE or ~/.cache/mmbench)")
    p.add_argument("--prune", action="store_true",
                   help="remove shared stores no dataset uses, partial builds and dead processes' temporaries")
    p.add_argument("--dry-run", action="store_true", help="with --prune: list what would be removed, remove nothing")
    p.set_defaults(func=cmd_cache)


def cmd_cache(args: Any) -> int:
    from mmbench.core.builder import default_cache_dir

    root = Path(args.cache_dir).expanduser() if args.cache_dir else default_cache_dir()
    if not root.is_dir():
        print(f"cache: {root} (empty: nothing built yet)")
        return 0
    if args.prune:
        removed = prune(root, dry_run=args.dry_run)
        verb = "would remove" if args.dry_run else "removed"
        print(f"{verb} {len(removed)} item(s)" + "".join(f"\n  {p}" for p in removed))
        return 0
    print(scan(root).to_text())
    return 0
