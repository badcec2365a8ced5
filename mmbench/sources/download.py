"""Download one file: streamed, hashed while it streams, resumable, renamed into place when exact.

The transfer goes to ``<dest>.<sha256[:16]>.part`` in chunks (memory stays flat for any file
size), feeding a sha256 as it goes. When a connection drops, the part is kept and the next
attempt (in the same call, or a later one) asks only for the missing bytes with an HTTP
``Range`` header; a server that ignores ranges sends the whole file again and the part restarts.
The part becomes ``dest`` (one atomic rename) only when its size and sha256 are the expected
ones. A file lock (``<dest>.lock``) makes a second process wait for the first and reuse its file.

Why not pooch: pooch 1.9 gives known-hash downloads, a cache and a tqdm bar, but (1) its
``HTTPDownloader`` opens the output with ``"w+b"`` and sends no ``Range`` header, and its
``stream_download`` deletes the temporary file on any failure, so an interrupted multi-GB
transfer always restarts from zero; (2) it hashes the finished file in a second full read
instead of while streaming; (3) it needs ``requests`` (not otherwise a dependency here). What is
left once those are done ourselves is a few lines of :mod:`urllib`, so pooch is not used.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mmbench.core.storage import clean_stale_tmp
from mmbench.errors import ChecksumError, InputsNotFoundError
from mmbench.sources.reading import CHUNK, git_blob_id, iter_chunks, unwritable

__all__ = ["RETRY_BACKOFF_S", "download", "partial_path"]

logger = logging.getLogger(__name__)

#: seconds to wait before the first retry of a dropped transfer (doubling, at most 30 s)
RETRY_BACKOFF_S = 1.0
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class _Interrupted(Exception):
    """The connection dropped after the transfer began: the part is kept and can be resumed."""


def partial_path(dest: str | os.PathLike[str], sha256: str) -> Path:
    """Where the transfer of ``dest`` accumulates (keyed by the expected hash, sha256 or else the
    git blob id: never mixed up)."""
    dest = Path(dest)
    return dest.with_name(f"{dest.name}.{sha256[:16]}.part")


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None,
    size: int | None = None,
    timeout: float = 60.0,
    retries: int = 3,
    progress: bool | None = None,
    desc: str | None = None,
    git_blob: str | None = None,
) -> Path:
    """Fetch ``url`` into ``dest``, verified; resume a transfer a previous attempt left partial.

    Args:
        url: an ``http(s)://`` (or ``file://``) URL.
        dest: the final path; it appears only complete, with ``size`` bytes and ``sha256``.
        sha256: the expected hex digest (``None``: only ``git_blob`` is known).
        size: the expected size in bytes (``None``: trust the server's ``Content-Length``).
        timeout: seconds a connection may stay silent.
        retries: how many times a dropped transfer is resumed within this call.
        progress: show a tqdm bar (``None``: when stderr is a terminal).
        desc: the bar's label (default: the file name).
        git_blob: the expected git object id (:func:`mmbench.sources.reading.git_blob_id`),
            checked once the transfer is complete.

    Returns:
        ``dest``.

    Raises:
        InputsNotFoundError: the server cannot be reached or refuses the file, or the transfer
            kept dropping (the bytes received stay in the part file for the next call).
        ChecksumError: the server's file has the wrong size or sha256 (nothing is kept).
        CacheError: ``dest``'s folder cannot be written.

    Example:
        >>> download("https://example.org/data.npz", cache / "data.npz", sha256="…", size=123)
    """
    from filelock import FileLock

    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(dest.with_name(dest.name + ".lock")))
        lock.acquire()
    except OSError as exc:
        raise unwritable(dest, exc, what="download") from exc
    try:
        if dest.is_file() and _matches(dest, sha256, size, git_blob):
            return dest  # another process finished it while this one waited for the lock
        clean_stale_tmp(dest.parent)  # temps of killed processes (the .part is kept: it resumes)
        part = partial_path(dest, sha256 or git_blob or "")
        got_sha, got_size = _transfer_with_retries(url, part, size=size, timeout=timeout, retries=retries,
                                                   progress=progress, desc=desc or dest.name)
        _accept(part, dest, url, sha256=sha256, size=size, got_sha=got_sha, got_size=got_size, git_blob=git_blob)
        return dest
    finally:
        lock.release()


def _matches(path: Path, sha256: str | None, size: int | None, git_blob: str | None) -> bool:
    from mmbench.versioning import sha256_file

    return ((size is None or path.stat().st_size == size) and (sha256 is None or sha256_file(path) == sha256)
            and (git_blob is None or git_blob_id(path) == git_blob))


def _accept(part: Path, dest: Path, url: str, *, sha256: str | None, size: int | None, got_sha: str, got_size: int,
            git_blob: str | None = None) -> None:
    """Rename the part into place if exact; otherwise delete it and refuse the server's file."""
    got_blob = git_blob_id(part) if git_blob is not None else None
    if (size is not None and got_size != size) or got_sha != (sha256 or got_sha) or got_blob != git_blob:
        part.unlink(missing_ok=True)
        what = f"{got_size} bytes, expected {size}" if size is not None and got_size != size else (
            f"sha256 {got_sha}, expected {sha256}" if got_sha != (sha256 or got_sha) else f"git blob {got_blob}, expected {git_blob}")
        raise ChecksumError(
            f"The file downloaded from {url} has {what}. It is refused and deleted: the server's "
            "copy is corrupt, truncated or a different file. Try another mirror, or put the "
            "official file in the downloads cache or a data_dir yourself."
        )
    try:
        os.replace(part, dest)
    except OSError as exc:
        raise unwritable(dest, exc, what="download") from exc


def _transfer_with_retries(
    url: str, part: Path, *, size: int | None, timeout: float, retries: int, progress: bool | None, desc: str
) -> tuple[str, int]:
    from tqdm.auto import tqdm

    bar = tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
               disable=None if progress is None else not progress, dynamic_ncols=True)
    try:
        for attempt in range(retries + 1):
            try:
                return _transfer(url, part, size=size, timeout=timeout, bar=bar)
            except _Interrupted as exc:
                have = part.stat().st_size if part.exists() else 0
                if attempt == retries:
                    raise InputsNotFoundError(
                        f"Downloading {url} was interrupted {retries + 1} times (last: {exc}). The "
                        f"{have} bytes received are kept in {part}; run again to resume from there."
                    ) from exc
                wait = min(RETRY_BACKOFF_S * 2**attempt, 30.0)
                logger.warning("Download of %s interrupted (%s); resuming at byte %d in %.1f s", url, exc, have, wait)
                time.sleep(wait)
        raise AssertionError("unreachable")
    finally:
        bar.close()


def _transfer(url: str, part: Path, *, size: int | None, timeout: float, bar: Any) -> tuple[str, int]:
    """One request: continue ``part`` from its current length; return (sha256, total bytes)."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        part.unlink()
        offset = 0
    if size is not None and offset == size:  # complete already (e.g. killed before the rename)
        return _hasher_of(part).hexdigest(), offset
    try:
        response = _open(url, offset, timeout)
    except InputsNotFoundError as exc:
        if offset:  # mid-transfer: worth another try after the back-off (the part is kept)
            raise _Interrupted(str(exc)) from exc
        raise
    if response is None:  # 416: the part already holds every byte the server has
        return _hasher_of(part).hexdigest(), offset
    with response:
        offset = _resume_offset(response, offset, url)
        length = response.headers.get("Content-Length")
        expected_total = offset + int(length) if length is not None else None
        if size is not None and expected_total is not None and expected_total != size:
            part.unlink(missing_ok=True)
            raise ChecksumError(
                f"{url} serves {expected_total} bytes, but the file must have {size}. It is refused "
                "before downloading: the server's copy is truncated or a different file."
            )
        h = _hasher_of(part) if offset else hashlib.sha256()
        bar.reset(total=size if size is not None else expected_total)
        bar.update(offset)
        received = _stream(response, part, h, append=offset > 0, limit=size, start=offset, bar=bar)
    total = offset + received
    if expected_total is not None and total < expected_total:
        raise _Interrupted(f"the connection closed after {total} of {expected_total} bytes")
    return h.hexdigest(), total


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse | None:
    import mmbench

    headers = {"User-Agent": f"mmbench/{mmbench.__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return None
        raise InputsNotFoundError(f"{url} answered HTTP {exc.code} ({exc.reason}).") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputsNotFoundError(f"{url} cannot be reached ({reason}).") from exc


def _resume_offset(response: http.client.HTTPResponse, offset: int, url: str) -> int:
    """Where this response's body starts: ``offset`` for a matching 206, 0 if the server sent it all."""
    status = getattr(response, "status", None) or 200
    if not offset:
        return 0
    if status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match and int(match.group(1)) == offset:
            return offset
        raise _Interrupted(f"{url} answered the range request with {response.headers.get('Content-Range')!r}")
    logger.info("%s does not support ranges: downloading it from the start", url)
    return 0


def _stream(response: http.client.HTTPResponse, part: Path, h: Any, *, append: bool,
            limit: int | None, start: int, bar: Any) -> int:
    """Copy the body into ``part`` chunk by chunk, hashing it; return the bytes received."""
    received = 0
    try:
        out = open(part, "ab" if append else "wb")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise unwritable(part, exc, what="download") from exc
    with out:
        while True:
            try:
                block = response.read(CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                raise _Interrupted(f"{type(exc).__name__}: {exc}") from exc
            if not block:
                return received
            if limit is not None and start + received + len(block) > limit:
                out.close()
                part.unlink(missing_ok=True)
                raise ChecksumError(f"{response.geturl()} sends more than the {limit} bytes the file must have; refused.")
            try:
                out.write(block)
            except OSError as exc:
                raise unwritable(part, exc, what="download") from exc
            h.update(block)
            received += len(block)
            bar.update(len(block))


def _hasher_of(part: Path) -> Any:
    """A sha256 fed with the bytes already in ``part`` (read in chunks), ready to continue."""
    h = hashlib.sha256()
    for block in iter_chunks(part, what="partial download"):
        h.update(block)
    return h
