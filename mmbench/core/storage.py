"""Files on disk: atomic writes, temporary names, stale-temp clean-up and content hashes.

Every file mmbench writes (cache columns, dataset info, results, checkpoints, downloads) goes
through :func:`atomic_path`: it is written under a temporary sibling name and renamed into place
only when complete, so a reader never sees half a file. Temporary names all follow one scheme,
``.tmp-<pid>-<host>-<random>-<name>``, which :func:`clean_stale_tmp` recognises: the temps of a
process that died on this machine are removed, those of live processes or of other machines
sharing the directory (a cluster filesystem) are left alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import socket
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.core.info import Feature
from mmbench.errors import CacheError

__all__ = [
    "Store",
    "atomic_path",
    "atomic_write",
    "clean_dead_partials",
    "clean_stale_tmp",
    "pid_alive",
    "sha256_array",
    "staged_dir",
    "swap_dir",
    "tmp_path",
    "tmp_prefix",
]

TMP_MARK = ".tmp-"


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def tmp_prefix() -> str:
    """``.tmp-<pid>-<host>-``: temporary names say which process on which machine owns them."""
    return f"{TMP_MARK}{os.getpid()}-{_host_tag()}-"


def tmp_path(path: str | os.PathLike[str], tag: str = "") -> Path:
    """A fresh temporary sibling of ``path`` in the one scheme :func:`clean_stale_tmp` knows."""
    path = Path(path)
    return path.with_name(f"{tmp_prefix()}{uuid.uuid4().hex}{tag}-{path.name}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on any failure it goes.

    Example:
        >>> with atomic_path(out / "model.safetensors") as tmp:
        ...     save_file(state, str(tmp))
    """
    path = Path(path)
    tmp = tmp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def swap_dir(src: str | os.PathLike[str], final: str | os.PathLike[str]) -> None:
    """Rename the complete directory ``src`` to ``final``; an old ``final`` is removed only once
    the new one is in place (if the swap fails, the old one is put back)."""
    src, final = Path(src), Path(final)
    if not final.exists():
        os.rename(src, final)
        return
    trash = tmp_path(final, "-old")
    os.rename(final, trash)
    try:
        os.rename(src, final)
    except BaseException:
        os.rename(trash, final)  # keep the old directory rather than lose it
        raise
    shutil.rmtree(trash, ignore_errors=True)


@contextlib.contextmanager
def staged_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary directory to fill; on success it replaces the directory ``path``
    (:func:`swap_dir`), on any failure it goes and ``path`` is left as it was.

    Example:
        >>> with staged_dir(dataset_dir / "classifiers") as tmp:
        ...     save_file(state, str(tmp / "m0.safetensors"))
    """
    path = Path(path)
    tmp = tmp_path(path)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        swap_dir(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` atomically; return ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_tmp(root: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries in ``root`` left by dead processes of *this machine*; return them.

    Another machine's build sharing the cache (a cluster filesystem) is never touched, nor is a
    temporary of a live process (a build in progress).
    """
    host = _host_tag()
    removed = []
    root = Path(root)
    if not root.is_dir():
        return removed
    for entry in root.glob(f"{TMP_MARK}*"):
        parts = entry.name.split("-")
        try:
            pid = int(parts[1])
        except (IndexError, ValueError):
            continue
        if len(parts) > 2 and parts[2] == host and pid != os.getpid() and not pid_alive(pid):
            with contextlib.suppress(OSError):
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
                removed.append(entry)
    return removed


def sha256_array(arr: np.ndarray) -> str:
    """sha256 of an array's raw bytes (C order), without copying contiguous arrays."""
    return hashlib.sha256(np.ascontiguousarray(arr).reshape(-1).view(np.uint8)).hexdigest()


# ====================================================================== column files
def column_files(name: str, feat: Feature) -> dict[str, tuple[tuple[int, ...] | None, np.dtype]]:
    """The files (stems, without ``.npy``) a stored column consists of, each with its per-row
    shape (``None``: a flat array whose length is not the row count) and dtype."""
    if feat.store is not None:
        return {f"{name}.index": ((), np.dtype(np.int64))}
    if feat.layout == "fixed":
        return {name: (tuple(feat.shape), feat.np_dtype)}
    return {f"{name}.offsets": (None, np.dtype(np.int64)), f"{name}.values": (None, feat.np_dtype)}


def open_npy(path: Path, *, hint: str) -> np.ndarray:
    """Memory-map one ``.npy`` file read-only; an unreadable file is a :class:`CacheError`."""
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise CacheError(f"Column file {path} is unreadable ({exc}). {hint}") from exc


def check_column_files(directory: Path, name: str, feat: Feature, n: int, sizes: Mapping[str, int], *, hint: str) -> dict[str, np.ndarray]:
    """Open a column's files, checking existence, recorded byte sizes, shapes and dtypes."""
    arrays = {}
    for stem, (shape, dtype) in column_files(name, feat).items():
        path = directory / f"{stem}.npy"
        if not path.is_file():
            raise CacheError(f"Column file {path} is missing: the cache is corrupt or partial. {hint}")
        expected = sizes.get(stem)
        if expected is not None and path.stat().st_size != expected:
            raise CacheError(
                f"Column file {path} has {path.stat().st_size} bytes, expected {expected}: the cache is "
                f"corrupt or was modified. {hint}"
            )
        arr = open_npy(path, hint=hint)
        want = (n, *shape) if shape is not None else arr.shape
        if arr.shape != want or arr.dtype != dtype or arr.ndim != len(want):
            raise CacheError(f"Column file {path} holds {arr.shape} {arr.dtype}, expected {want} {dtype}. {hint}")
        arrays[stem] = arr
    if feat.layout != "fixed":
        offsets, values = arrays[f"{name}.offsets"], arrays[f"{name}.values"]
        if offsets.shape != (n + 1,) or offsets[0] != 0 or offsets[-1] != len(values):
            raise CacheError(f"The offsets of column {name!r} in {directory} do not match its values. {hint}")
    return arrays


def shard_hash(arrays: Mapping[str, np.ndarray], name: str, feat: Feature, start: int, stop: int) -> str:
    """The sha256 of rows ``[start, stop)`` of a stored column (as recorded per shard)."""
    from mmbench.core.columns import VarValues

    if feat.store is not None:
        return sha256_array(arrays[f"{name}.index"][start:stop])
    if feat.layout == "fixed":
        return sha256_array(arrays[name][start:stop])
    offsets = np.asarray(arrays[f"{name}.offsets"][start : stop + 1])
    values = arrays[f"{name}.values"][int(offsets[0]) : int(offsets[-1])]
    return VarValues(values, np.diff(offsets)).sha256()


def verify_shards(directory: Path, features: Mapping[str, Feature], part_info: Mapping[str, Any], *, hint: str) -> None:
    """Re-hash every shard of every column in ``directory`` against ``part_info["shards"]``."""
    n = int(part_info["num_examples"])
    sizes = part_info.get("files", {})
    for name, feat in features.items():
        arrays = check_column_files(directory, name, feat, n, sizes, hint=hint)
        for k, shard in enumerate(part_info["shards"]):
            if shard_hash(arrays, name, feat, shard["start"], shard["stop"]) != shard["sha256"][name]:
                raise CacheError(
                    f"Shard {k} of column {name!r} in {directory} does not match its recorded sha256 "
                    f"(the data was modified or corrupted). {hint}"
                )


# ====================================================================== shared stores
STORES_DIR = "_stores"
STORE_INFO_FILE = "split_info.json"  # a store is built and verified exactly like a split


@dataclasses.dataclass(frozen=True)
class Store:
    """A heavy set of fixed-shape columns kept once in the cache and shared by many configs.

    Configs whose heavy data is the same (MPI3D's images under every text bias; renders of the
    same scenes) declare the same store: its ``key`` (everything that determines its content)
    gives its fingerprint and directory, so it is built once and never duplicated. A split
    column declared with ``Feature(store=name)`` holds int64 row indices into the store's column
    of the same name; readers see an ordinary column.

    Args:
        name: a path-safe name, e.g. ``"mpi3d/images"``.
        key: JSON-able description of the content (source checksums, renderer, seed, sizes).
        num_rows: rows of every column of the store.
        features: the store's columns (fixed layout).
        shard_rows: rows generated per shard (part of the content: each shard has its own generator).
    """

    name: str
    key: Mapping[str, Any]
    num_rows: int
    features: Mapping[str, Feature]
    shard_rows: int

    @property
    def fingerprint(self) -> str:
        from mmbench.versioning import fingerprint

        feats = {k: f.to_json() for k, f in sorted(self.features.items())}
        return fingerprint({"name": self.name, "key": self.key, "num_rows": self.num_rows,
                            "features": feats, "shard_rows": self.shard_rows})

    def relpath(self) -> str:
        """Directory relative to the cache root: ``_stores/<name>/<fingerprint>``."""
        return f"{STORES_DIR}/{self.name.replace('/', '__')}/{self.fingerprint}"

    def bounds(self) -> list[tuple[int, int]]:
        return [(s, min(s + self.shard_rows, self.num_rows)) for s in range(0, self.num_rows, self.shard_rows)]

    def seed(self) -> int:
        """Root seed of the store's shard generators (from its fingerprint: content-addressed)."""
        return int(self.fingerprint[:15], 16)


def open_store_column(cache_root: Path, record: Mapping[str, Any], column: str, *, verify: str, hint: str) -> np.ndarray:
    """Memory-map column ``column`` of the built store recorded as ``record`` in dataset_info."""
    import json

    directory = cache_root / record["path"]
    try:
        info = json.loads((directory / STORE_INFO_FILE).read_text())
        features = {k: Feature.from_json(f) for k, f in info["features"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CacheError(
            f"The shared store {directory} that this dataset reads is missing or unreadable ({exc!r}). {hint}"
        ) from exc
    if info.get("content_fingerprint") != record.get("content_fingerprint"):
        raise CacheError(f"The shared store {directory} is not the one this dataset was built with. {hint}")
    if column not in features:
        raise CacheError(f"The shared store {directory} has no column {column!r}. {hint}")
    if verify == "full":
        verify_shards(directory, {column: features[column]}, info, hint=hint)
    arrays = check_column_files(directory, column, features[column], int(info["num_examples"]),
                                info.get("files", {}) if verify != "none" else {}, hint=hint)
    return arrays[column]


# ====================================================================== artifacts
ARTIFACTS_DIR = "artifacts"


def write_artifact(root: Path, name: str, data: bytes) -> dict[str, Any]:
    """Write artifact ``name`` into the cache entry at ``root``; an existing one must be identical."""
    path = root / ARTIFACTS_DIR / name
    digest = hashlib.sha256(data).hexdigest()
    if path.is_file():
        from mmbench.versioning import sha256_file

        if sha256_file(path) != digest:
            raise CacheError(
                f"The cached artifact {path} differs from the one this config makes: the cache is stale "
                f"or corrupt. Delete {root} and build again."
            )
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
    return {"sha256": digest, "size": len(data)}


def read_artifact(root: Path, name: str, record: Mapping[str, Any], *, hint: str) -> bytes:
    """The bytes of artifact ``name``, checked against its recorded size and sha256."""
    path = root / ARTIFACTS_DIR / name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CacheError(f"The artifact {path} is missing or unreadable ({exc.strerror or exc}). {hint}") from exc
    if len(data) != record["size"] or hashlib.sha256(data).hexdigest() != record["sha256"]:
        raise CacheError(f"The artifact {path} does not match its recorded sha256: it was modified or corrupted. {hint}")
    return data


def clean_dead_partials(root: Path) -> list[Path]:
    """Remove partial builds of splits that are already complete (left by a killed ``--force``
    rebuild, which starts over anyway), unless a build of this entry holds its lock now."""
    from filelock import FileLock, Timeout

    from mmbench.core.info import SPLIT_INFO_FILE

    dead = [p for p in root.glob(".partial-*") if (root / p.name.removeprefix(".partial-") / SPLIT_INFO_FILE).is_file()]
    if not dead:
        return []
    lock = FileLock(str(root) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return []  # a build is running: it owns these
    try:
        for path in dead:
            shutil.rmtree(path, ignore_errors=True)
    finally:
        lock.release()
    return dead
