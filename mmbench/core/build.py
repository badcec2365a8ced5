"""Sharded, resumable writing of one split or one shared store into the cache.

A *part* (a split of a config, or a shared store) is built in ``.partial-<name>`` beside its
final directory. Fixed-shape columns are preallocated ``.npy`` files into which each worker writes
its rows in place; string and ragged columns are written per shard and concatenated at the end.
After writing a shard, the worker records its hashes in ``done/<k>.json``. So a crash or Ctrl-C
loses only the shards in flight: the next build of the same config re-hashes the finished shards
(keeping those that match, regenerating the others) and generates only the rest. When every
shard is done, the variable columns are joined, ``split_info.json`` is written and the partial
directory is renamed into place: readers only ever see a complete part.

Shard ``k`` draws only from its own generator, so the bytes are the same whether a part was built
in one go, resumed, or built by any number of workers.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmbench.core.columns import VarValues
from mmbench.core.info import INFO_FILE, RESOURCES_FILE, SPLIT_INFO_FILE, Feature
from mmbench.core.storage import (
    atomic_path,
    atomic_write,
    clean_stale_tmp,
    column_files,
    shard_hash,
    swap_dir,
    tmp_path,
    write_artifact,
)
from mmbench.errors import CacheError
from mmbench.versioning import canonical_json, sha256_file, to_jsonable

if TYPE_CHECKING:
    from mmbench.core.builder import Builder

__all__ = ["Part", "build", "finish_part", "open_part", "write_info", "write_shard"]

logger = logging.getLogger(__name__)

PARTIAL_FILE = "partial.json"
DONE_DIR = "done"


@dataclasses.dataclass(frozen=True)
class Part:
    """One thing built shard by shard: a split of a config or a shared store.

    Args:
        label: for messages and progress (``"train"``, ``"store mpi3d/images"``).
        final: the directory the finished part is renamed to.
        features: the stored columns.
        bounds: ``[start, stop)`` rows of each shard.
        stamp: what identifies the content (config fingerprint, version, ...); a partial build
            is resumed only when its stamp is the same.
    """

    label: str
    final: Path
    features: Mapping[str, Feature]
    bounds: Sequence[tuple[int, int]]
    stamp: Mapping[str, Any]

    @property
    def partial(self) -> Path:
        return self.final.with_name(f".partial-{self.final.name}")

    @property
    def num_rows(self) -> int:
        return self.bounds[-1][1] if self.bounds else 0

    def _stamp_json(self) -> dict[str, Any]:
        return {
            "stamp": dict(self.stamp),
            "bounds": [list(b) for b in self.bounds],
            "features": {k: f.to_json() for k, f in self.features.items()},
        }


def open_part(part: Part, *, force: bool = False) -> tuple[list[int], dict[int, dict[str, str]]]:
    """Prepare ``part.partial`` and return ``(pending shard ids, hashes of reused shards)``.

    A partial build with the same stamp is resumed: each finished shard is re-hashed from disk
    and kept only if it matches what its worker recorded. ``force`` starts from scratch.
    """
    partial = part.partial
    if force:
        shutil.rmtree(partial, ignore_errors=True)
    if partial.is_dir():
        try:
            same = json.loads((partial / PARTIAL_FILE).read_text()) == part._stamp_json()
        except (OSError, ValueError):
            same = False
        if same:
            done = _reusable_shards(part)
            if done:
                logger.info("%s: resuming a partial build, %d of %d shards reused", part.label, len(done), len(part.bounds))
            return [k for k in range(len(part.bounds)) if k not in done], done
        logger.info("%s: discarding a partial build of another config or version", part.label)
        shutil.rmtree(partial)
    _create_partial(part)
    return list(range(len(part.bounds))), {}


def _create_partial(part: Part) -> None:
    """A fresh partial directory: fixed columns preallocated, the stamp written last."""
    tmp = tmp_path(part.partial)
    try:
        (tmp / DONE_DIR).mkdir(parents=True)
        n = part.num_rows
        for name, feat in part.features.items():
            for stem, (shape, dtype) in column_files(name, feat).items():
                if shape is not None:  # workers write their rows into it in place
                    arr = np.lib.format.open_memmap(tmp / f"{stem}.npy", mode="w+", dtype=dtype, shape=(n, *shape))
                    del arr
        atomic_write(tmp / PARTIAL_FILE, json.dumps(part._stamp_json()))
        os.rename(tmp, part.partial)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _reusable_shards(part: Part) -> dict[int, dict[str, str]]:
    done: dict[int, dict[str, str]] = {}
    for marker in sorted((part.partial / DONE_DIR).glob("*.json")):
        try:
            k = int(marker.stem)
            hashes = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue
        if 0 <= k < len(part.bounds) and _shard_matches(part, k, hashes):
            done[k] = hashes
        else:
            marker.unlink(missing_ok=True)
            logger.warning("%s: shard %d on disk does not match its record; it is generated again", part.label, k)
    return done


def _shard_matches(part: Part, k: int, hashes: Mapping[str, str]) -> bool:
    start, stop = part.bounds[k]
    for name, feat in part.features.items():
        try:
            if feat.layout == "fixed":
                arrays = {stem: np.load(part.partial / f"{stem}.npy", mmap_mode="r") for stem in column_files(name, feat)}
                got = shard_hash(arrays, name, feat, start, stop)
            else:
                got = _load_var_shard(part.partial, name, k).sha256()
        except (OSError, ValueError):
            return False
        if got != hashes.get(name):
            return False
    return True


def _var_paths(partial: Path, name: str, k: int) -> tuple[Path, Path]:
    return partial / f"{name}.{k:06d}.lengths.npy", partial / f"{name}.{k:06d}.values.npy"


def _load_var_shard(partial: Path, name: str, k: int) -> VarValues:
    lengths, values = _var_paths(partial, name, k)
    return VarValues(np.load(values), np.load(lengths))


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with open(tmp_path(path), "wb") as f:
        np.save(f, arr)
        tmp = Path(f.name)
    os.replace(tmp, path)


def write_shard(partial: str | os.PathLike[str], features: Mapping[str, Feature], bounds: tuple[int, int], k: int,
                columns: Mapping[str, Any]) -> dict[str, str]:
    """Worker side: write shard ``k`` (checked columns) into the partial part, record and return its hashes.

    ``columns`` hold arrays for fixed columns (store indices for store-backed ones) and
    :class:`~mmbench.core.columns.VarValues` for string and ragged columns.
    """
    partial = Path(partial)
    start, stop = bounds
    hashes = {}
    for name, feat in features.items():
        value = columns[name]
        if isinstance(value, VarValues):
            lengths_path, values_path = _var_paths(partial, name, k)
            _save_npy(values_path, value.values)
            _save_npy(lengths_path, value.lengths)
            hashes[name] = value.sha256()
            continue
        (stem,) = column_files(name, feat)
        out = np.load(partial / f"{stem}.npy", mmap_mode="r+")
        out[start:stop] = value
        del out  # unmapped; the pages reach the file through the page cache
        hashes[name] = shard_hash({stem: np.asarray(value)}, name, feat, 0, stop - start)
    atomic_write(partial / DONE_DIR / f"{k}.json", json.dumps(hashes))
    return hashes


def check_on_disk(part: Part, hashes: Sequence[Mapping[str, str]]) -> None:
    """Re-hash every shard from disk (after a build on a shared filesystem, e.g. with Ray)."""
    for k, h in enumerate(hashes):
        if not _shard_matches(part, k, h):
            start, stop = part.bounds[k]
            raise CacheError(
                f"Shard [{start}, {stop}) of {part.label} differs on disk from what its worker generated: "
                "the shared filesystem lost or mixed writes. Build with executor='process' on one machine, "
                "or on a filesystem with coherent writes."
            )


def finish_part(part: Part, hashes: Sequence[Mapping[str, str]], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Join the variable columns, write ``split_info.json`` and rename the part into place."""
    partial = part.partial
    for name, feat in part.features.items():
        if feat.layout != "fixed":
            _join_var_column(partial, name, len(part.bounds), feat)
    shards = [
        {"start": start, "stop": stop, "sha256": dict(h)}
        for (start, stop), h in zip(part.bounds, hashes, strict=True)
    ]
    files = {
        stem: (partial / f"{stem}.npy").stat().st_size
        for name, feat in part.features.items()
        for stem in column_files(name, feat)
    }
    info = {
        "num_examples": part.num_rows,
        "shards": shards,
        "fingerprint": hashlib.sha256(canonical_json(shards).encode()).hexdigest()[:16],
        "files": files,
        **dict(part.stamp),
        **dict(extra or {}),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    atomic_write(partial / SPLIT_INFO_FILE, json.dumps(info, indent=1))
    shutil.rmtree(partial / DONE_DIR, ignore_errors=True)
    (partial / PARTIAL_FILE).unlink(missing_ok=True)
    _swap_into_place(partial, part.final)
    return info


def _join_var_column(partial: Path, name: str, n_shards: int, feat: Feature) -> None:
    """Concatenate the per-shard files of a string/ragged column into offsets + values."""
    lengths = [np.load(_var_paths(partial, name, k)[0]) for k in range(n_shards)]
    all_lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    offsets = np.zeros(len(all_lengths) + 1, dtype=np.int64)
    np.cumsum(all_lengths, out=offsets[1:])
    _save_npy(partial / f"{name}.offsets.npy", offsets)
    out = np.lib.format.open_memmap(partial / f"{name}.values.npy", mode="w+", dtype=feat.np_dtype, shape=(int(offsets[-1]),))
    pos = 0
    for k in range(n_shards):
        values = np.load(_var_paths(partial, name, k)[1], mmap_mode="r")
        out[pos : pos + len(values)] = values
        pos += len(values)
    out.flush()
    del out
    for k in range(n_shards):
        for path in _var_paths(partial, name, k):
            path.unlink()


def _swap_into_place(src: Path, final: Path) -> None:
    if final.exists():  # a forced rebuild: move the old one aside, then swap
        swap_dir(src, final)
        return
    try:
        os.rename(src, final)
    except OSError:
        if not (final / SPLIT_INFO_FILE).is_file():
            raise
        shutil.rmtree(src, ignore_errors=True)  # another process finished it first; ours is identical


# ====================================================================== a builder's whole build
def build(builder: Builder, splits: str | Sequence[str] | None, *, num_workers: int, executor: str,
          progress: bool | None, force: bool) -> Path:
    """Build ``splits`` of ``builder`` (see :meth:`Builder.build`) under the config's file lock."""
    from filelock import FileLock, Timeout

    if splits is None:
        splits = builder.split_names()
    elif isinstance(splits, str):
        splits = (splits,)
    # each split once, in the order given (`--split train --split train` builds train once)
    splits = tuple(dict.fromkeys(builder.check_split(split) for split in splits))
    root = builder.dataset_dir()
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logger.warning("Another process is building %s; waiting for it (then reusing what it built).", builder.id)
        lock.acquire()
    try:
        clean_stale_tmp(root)
        run = {"num_workers": num_workers, "executor": executor, "progress": progress}
        _write_resources(builder, root)
        stores = _build_stores(builder, run)
        records = {name: write_artifact(root, name, data) for name, data in builder.artifacts.items()}
        todo = [s for s in splits if force or not builder.is_built(s)]
        if todo:  # the cache is consistent after every split
            parts = [("split", split, _split_part(builder, root, split)) for split in todo]
            _build_parts(builder, parts, run, force=force,
                         after_each=lambda: write_info(builder, root, artifacts=records, stores=stores))
        write_info(builder, root, artifacts=records, stores=stores)
    finally:
        lock.release()
    return root


def _write_resources(builder: Builder, root: Path) -> None:
    if not builder.resources:
        return
    from safetensors.numpy import save_file

    path = root / RESOURCES_FILE
    if not path.exists():
        with atomic_path(path) as tmp:
            save_file(dict(builder.resources), str(tmp))
        return
    tmp = tmp_path(path)
    try:
        save_file(dict(builder.resources), str(tmp))
        if sha256_file(path) != sha256_file(tmp):
            raise CacheError(
                f"The cached resources at {path} differ from the ones this config generates. "
                f"The cache is stale or corrupt: delete {root} and build again."
            )
    finally:
        tmp.unlink(missing_ok=True)


def _run(fn: Any, tasks: list[tuple[Any, ...]], run: Mapping[str, Any], desc: str) -> list[Any]:
    from mmbench.core.executors import run_tasks

    return run_tasks(fn, tasks, desc=desc, **run) if tasks else []


def _build_stores(builder: Builder, run: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Build every store the config declares (each once, under its own lock); return their records."""
    from filelock import FileLock

    records = {}
    for name, spec in builder.stores().items():
        part = Part(f"store {name}", builder.cache_dir / spec.relpath(), dict(spec.features), spec.bounds(),
                    {"store": name, "key": to_jsonable(dict(spec.key))})
        part.final.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(part.final) + ".lock"):
            clean_stale_tmp(part.final.parent)
            if not (part.final / SPLIT_INFO_FILE).is_file():
                _build_parts(builder, [("store", name, part)], run, force=False)
            info = json.loads((part.final / SPLIT_INFO_FILE).read_text())
        records[name] = {"path": spec.relpath(), "num_rows": spec.num_rows,
                         "content_fingerprint": info["content_fingerprint"]}
    return records


def _split_part(builder: Builder, root: Path, split: str) -> Part:
    stamp = {"config_fingerprint": builder.config.fingerprint, "version": builder.VERSION}
    return Part(split, root / split, builder.features(), builder.shard_bounds(split), stamp)


def _build_parts(builder: Builder, parts: Sequence[tuple[str, str, Part]], run: Mapping[str, Any], *,
                 force: bool, after_each: Any = None) -> None:
    """Generate the pending shards of every part with one executor, then finish each part."""
    tasks, done = [], {}
    for kind, name, part in parts:
        pending, reused = open_part(part, force=force)
        done[name] = reused
        tasks.extend((builder, name, k, kind, str(part.partial)) for k in pending)
    total = sum(len(p.bounds) for _, _, p in parts)
    reused_n = total - len(tasks)
    desc = f"{builder.name} {'+'.join(n for _, n, _ in parts)}" + (f" ({reused_n}/{total} shards resumed)" if reused_n else "")
    for task, hashes in zip(tasks, _run(_shard_task, tasks, run, desc), strict=True):
        done[task[1]][task[2]] = hashes
    for _, name, part in parts:
        hashes = [done[name][k] for k in range(len(part.bounds))]
        if run.get("executor") == "ray":
            check_on_disk(part, hashes)
        extra = {}
        if part.label.startswith("store "):
            extra["content_fingerprint"] = hashlib.sha256(canonical_json(hashes).encode()).hexdigest()[:16]
            extra["features"] = {k: f.to_json() for k, f in part.features.items()}
        finish_part(part, hashes, extra)
        if after_each is not None:
            after_each()


def _shard_task(builder: Builder, name: str, k: int, kind: str, partial: str) -> dict[str, str]:
    """Worker entry point: generate shard ``k`` of a split or store, write it, return its hashes."""
    if kind == "store":
        spec = builder.stores()[name]
        columns = builder.generate_store_shard(name, k)
        return write_shard(partial, spec.features, spec.bounds()[k], k, columns)
    columns = builder.generate_shard(name, k)
    return write_shard(partial, builder.features(), builder.shard_bounds(name)[k], k, columns)


def write_info(builder: Builder, root: Path, *, artifacts: Mapping[str, Any] | None = None,
               stores: Mapping[str, Any] | None = None) -> None:
    """Write ``dataset_info.json`` from the builder and the splits built so far (atomically)."""
    info = builder.info()
    info.inputs = dict(builder.inputs)
    previous = _previous_info(root)
    info.artifacts = dict(artifacts if artifacts is not None else previous.get("artifacts", {}))
    info.stores = dict(stores if stores is not None else previous.get("stores", {}))
    if (root / RESOURCES_FILE).exists():
        info.resources_sha256 = sha256_file(root / RESOURCES_FILE)
    for split in builder.split_names():
        path = root / split / SPLIT_INFO_FILE
        if path.is_file():
            split_info = json.loads(path.read_text())
            info.splits[split] = {k: split_info[k] for k in ("num_examples", "fingerprint", "shards", "files")}
    doc = info.to_json()
    doc["content_fingerprint"] = info.content_fingerprint
    atomic_write(root / INFO_FILE, json.dumps(doc, indent=1))


def _previous_info(root: Path) -> dict[str, Any]:
    try:
        return json.loads((root / INFO_FILE).read_text())
    except (OSError, ValueError):
        return {}
