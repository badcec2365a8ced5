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
import hashlib
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

__all__ = [
    "atomic_path",
    "atomic_write",
    "clean_stale_tmp",
    "pid_alive",
    "sha256_array",
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
