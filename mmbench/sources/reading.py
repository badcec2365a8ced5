"""Reading raw inputs without holding them in memory: chunks, streamed gunzip, npz members.

Raw inputs reach several GB (the MPI3D archive), so nothing here reads a file whole: files are
read in chunks, ``.gz`` files are decompressed as a stream into the cache, and an array stored
in an ``.npz`` archive is memory-mapped in place (or, if the archive compresses it, unpacked
once into a ``.npy`` file that is then memory-mapped).

Example:
    >>> path = fetch(MPI3D_COMPLEX, data_dir=data_dir, cache_dir=cache_dir)
    >>> images = npz_member(path, "images")        # np.memmap: pages are read on access
    >>> first = np.asarray(images[:1000])
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.core.storage import atomic_path, clean_stale_tmp
from mmbench.errors import CacheError, ChecksumError, InputsNotFoundError

__all__ = [
    "CHUNK", "check_git_blob", "git_blob_id", "gunzip_file", "iter_chunks", "npz_header", "npz_member", "unreadable",
    "unwritable",
]

#: bytes per read: large enough for full disk and hash speed, small against any memory budget
CHUNK = 1 << 22
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # zip local file header (30 bytes)

_UNREADABLE_FIX = (
    "Make it readable by this user (check its permissions, owner and disk), or move it away so "
    "that mmbench uses another source."
)


def _cause(exc: OSError) -> str:
    return f"{type(exc).__name__}: {exc.strerror}" if exc.strerror else repr(exc)


def unreadable(
    path: str | os.PathLike[str], exc: OSError, *, what: str = "input", fix: str | None = None
) -> InputsNotFoundError:
    """The error for a raw input (file or folder) that exists but cannot be read: file, cause, fix."""
    return InputsNotFoundError(f"The {what} {path} cannot be read ({_cause(exc)}). {fix or _UNREADABLE_FIX}")


def unwritable(path: str | os.PathLike[str], exc: OSError, *, what: str = "verified copy") -> CacheError:
    """The error for a cache file that cannot be written: file, cause, and where to write instead."""
    parent = Path(path).parent
    return CacheError(
        f"Cannot write the {what} {path} ({_cause(exc)}). Make {parent} writable (and check the "
        "free space), or point the cache elsewhere (cache_dir=, CLI --cache-dir, or $MMBENCH_CACHE)."
    )


def iter_chunks(
    path: str | os.PathLike[str], chunk_size: int = CHUNK, *, what: str = "input"
) -> Iterator[bytes]:
    """The bytes of ``path`` in chunks of ``chunk_size`` (the last may be shorter).

    Raises:
        InputsNotFoundError: the file cannot be opened or read (names the file and the cause).
    """
    try:
        with open(path, "rb") as f:
            while block := f.read(chunk_size):
                yield block
    except OSError as exc:
        raise unreadable(path, exc, what=what) from exc


def gunzip_file(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    label: str = "expected",
    what: str = "verified copy",
) -> str:
    """Decompress ``src`` (gzip) into ``dest`` as a stream, hashing the output; return its sha256.

    ``dest`` appears only complete and, when ``sha256`` is given, only with that hash.

    Raises:
        ChecksumError: ``src`` is not a valid gzip file, or the output has the wrong sha256.
        InputsNotFoundError: ``src`` cannot be read.
        CacheError: ``dest`` cannot be written.
    """
    src, dest = Path(src), Path(dest)
    h = hashlib.sha256()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_tmp(dest.parent)  # what a killed process left half-written
        with atomic_path(dest) as tmp:
            _stream_gunzip(src, tmp, h)
            if sha256 is not None:
                check_sha256(h.hexdigest(), sha256, src, label=label)
    except (InputsNotFoundError, CacheError):
        raise
    except OSError as exc:
        raise unwritable(dest, exc, what=what) from exc
    return h.hexdigest()


def _stream_gunzip(src: Path, out_path: Path, h: Any) -> None:
    try:
        source = gzip.open(src, "rb")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise unreadable(src, exc) from exc
    with source, open(out_path, "wb") as out:
        while True:
            try:
                block = source.read(CHUNK)
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise _corrupt_gzip(src, exc) from exc
            except OSError as exc:
                raise unreadable(src, exc) from exc
            if not block:
                return
            h.update(block)
            out.write(block)


def _corrupt_gzip(path: Path, exc: Exception) -> ChecksumError:
    return ChecksumError(
        f"{path} is not a valid gzip file ({exc}): it is corrupt or truncated. Replace it with "
        "the official file (or remove it to let mmbench fetch it from another source)."
    )


def check_sha256(got: str, expected: str, where: str | os.PathLike[str], *, label: str = "expected") -> None:
    """Refuse a file whose sha256 ``got`` is not ``expected`` (the message names both and the fix)."""
    if got != expected:
        raise ChecksumError(
            f"{where} has sha256 {got}, but the {label} file must have {expected}. It is refused: "
            "it is corrupt, truncated or a different file. Replace it with the official file "
            "(or remove it to let mmbench fetch it from another source)."
        )


def git_blob_id(path: str | os.PathLike[str]) -> str:
    """The git object id of a file: SHA-1 over ``b"blob <size>\\0"`` and its bytes.

    What a git repository (and GitHub's tree listing) pins each file by: a file published only in
    a repository can be verified against it where no sha256 was ever published.
    """
    path = Path(path)
    try:
        h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                h.update(chunk)
    except OSError as exc:
        raise unreadable(path, exc) from exc
    return h.hexdigest()


def check_git_blob(path: str | os.PathLike[str], expected: str, *, label: str = "expected") -> None:
    """Refuse a file whose git object id is not ``expected`` (the message names both and the fix)."""
    got = git_blob_id(path)
    if got != expected:
        raise ChecksumError(
            f"{path} has git blob id {got}, but the {label} file must have {expected}. It is refused: "
            "it is corrupt, truncated or a different file. Replace it with the official file "
            "(or remove it to let mmbench fetch it from another source)."
        )


# ---------------------------------------------------------------------------- npz archives
def npz_member(
    path: str | os.PathLike[str], key: str, *, extract_to: str | os.PathLike[str] | None = None
) -> np.ndarray:
    """The array ``key`` of the ``.npz`` archive ``path``, memory-mapped (read-only).

    An array stored uncompressed (``np.savez``) is mapped where it lies in the archive; one the
    archive compresses (``np.savez_compressed``) is first unpacked as a stream into
    ``extract_to/<key>.npy`` (once; later calls map that file).

    Raises:
        InputsNotFoundError: no such archive or member (the message lists the members).
        ChecksumError: the archive is not a valid zip / npz.
        CacheError: a compressed member and no ``extract_to``, or ``extract_to`` not writable.
    """
    path = Path(path)
    info = _npz_info(path, key)
    if info.compress_type == zipfile.ZIP_STORED:
        return _map_stored(path, info)
    if extract_to is None:
        raise CacheError(
            f"Array {key!r} of {path} is compressed inside the archive, so it cannot be memory-mapped "
            "in place. Pass extract_to=DIR (a cache folder) to unpack it once as a stream."
        )
    target = Path(extract_to) / f"{key}.npy"
    if not target.is_file():
        _extract_member(path, info, target)
    return np.load(target, mmap_mode="r")


def npz_header(path: str | os.PathLike[str], key: str) -> tuple[tuple[int, ...], bool, np.dtype, bool]:
    """``(shape, fortran_order, dtype, compressed)`` of array ``key`` of an ``.npz``, from its header only.

    Cheap for any archive size (nothing but the member's ``.npy`` header is read), so a wrong file
    is refused before any long work.

    Raises:
        InputsNotFoundError: no such archive or member (the message lists the members).
        ChecksumError: the archive or the member's header is corrupt.
    """
    path = Path(path)
    info = _npz_info(path, key)
    try:
        with zipfile.ZipFile(path) as zf, zf.open(info) as f:
            shape, fortran, dtype = _npy_header(f)  # type: ignore[arg-type]
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
        raise ChecksumError(f"{path}: member {info.filename} is not a readable .npy array ({exc}).") from exc
    except OSError as exc:
        raise unreadable(path, exc) from exc
    return tuple(shape), bool(fortran), np.dtype(dtype), info.compress_type != zipfile.ZIP_STORED


def _npz_info(path: Path, key: str) -> zipfile.ZipInfo:
    try:
        with zipfile.ZipFile(path) as zf:
            members = {i.filename: i for i in zf.infolist()}
    except zipfile.BadZipFile as exc:
        raise ChecksumError(f"{path} is not a valid .npz (zip) archive ({exc}): it is corrupt or truncated.") from exc
    except OSError as exc:
        raise unreadable(path, exc) from exc
    name = key if key.endswith(".npy") else f"{key}.npy"
    if name not in members:
        keys = sorted(m.removesuffix(".npy") for m in members)
        raise InputsNotFoundError(f"{path} has no array {key!r}; its arrays are {keys}.")
    return members[name]


def _map_stored(path: Path, info: zipfile.ZipInfo) -> np.ndarray:
    """Memory-map a stored ``.npy`` member: skip the zip local header, then the ``.npy`` header."""
    try:
        with open(path, "rb") as f:
            f.seek(info.header_offset)
            fields = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
            if fields[0] != b"PK\x03\x04":
                raise ChecksumError(f"{path}: member {info.filename} has no valid zip header; the archive is corrupt.")
            f.seek(info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1])
            shape, fortran, dtype = _npy_header(f)
            offset = f.tell()
            file_size = os.fstat(f.fileno()).st_size
    except (OSError, ValueError) as exc:
        if isinstance(exc, ChecksumError):
            raise
        raise ChecksumError(f"{path}: member {info.filename} is not a readable .npy array ({exc}).") from exc
    needed = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if offset + needed > file_size:  # np.memmap would fail with a bare ValueError
        raise ChecksumError(
            f"{path} is truncated: member {info.filename} ({dtype}{tuple(shape)}) needs {needed} bytes from "
            f"offset {offset}, but the file has {file_size} bytes. Replace it with the complete file."
        )
    order = "F" if fortran else "C"
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)


def _npy_header(f: io.BufferedReader) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    return np.lib.format._read_array_header(f, version)  # format 3.0 has no public reader


def _extract_member(path: Path, info: zipfile.ZipInfo, target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp, zipfile.ZipFile(path) as zf, zf.open(info) as src, open(tmp, "wb") as out:
            while block := src.read(CHUNK):
                out.write(block)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        with contextlib.suppress(OSError):
            target.unlink()
        raise ChecksumError(f"{path}: member {info.filename} is corrupt ({exc}).") from exc
    except OSError as exc:
        raise unwritable(target, exc, what="unpacked array") from exc
