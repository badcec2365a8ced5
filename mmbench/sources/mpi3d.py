"""The MPI3D-Complex archive: finding it, refusing a wrong file early, and reading its images.

``real3d_complicated_shapes_ordered.npz`` (Gondal et al., NeurIPS 2019; `rr-learning/disentanglement_dataset
<https://github.com/rr-learning/disentanglement_dataset>`_, CC BY 4.0) holds one uncompressed
``.npy`` member ``images``: uint8, ``(460800, 64, 64, 3)``, rows in C order over the factors
``[4, 4, 2, 3, 3, 40, 40]`` (color, shape, size, camera, background, horizontal, vertical), so
row ``i`` has the factors ``np.unravel_index(i, FACTOR_SIZES)``.

Where it is looked for, in order: ``data_dir`` (CLI ``--data-dir``) or ``$MMBENCH_MPI3D_PATH``
(the file itself or a directory holding it, also as ``mpi3d/``, ``MPI_real_complex/``,
``MPI3d_real_complex/`` or ``data/`` below it), then ``<cache>/downloads/mpi3d/``. A location
the user named must hold the file (no silent fallback).

**The checksum.** No sha256 (or exact size) of the official file is published: the dataset
README links a Google Drive file and carries no checksums, and in 2025 the file behind the link of
a sibling variant (``mpi3d_real.npz``) was replaced under the same name. So :data:`SHA256` is
``None``: mmbench checks the archive's structure before any work (a zip with the member
``images``, uint8, ``(460800, 64, 64, 3)``, C order, not truncated), computes its sha256 once
(remembered per path, size and modification time in the downloads cache) and records it in every
build and in the key of the shared image store, so that two different files never share
converted images. With no published hash there is no unattended download: a 5.7 GB Google Drive
transfer could be an HTML page or another version. Once a checksum is published, setting
:data:`SHA256` (and :data:`SIZE`) pins it and turns on the download from :data:`URLS` through
:mod:`mmbench.sources.resource`.

**Fakes.** :func:`mmbench.testing.write_fake_mpi3d` writes archives in the same format at any
factor sizes and image size, with a manifest (``mmbench-fake-mpi3d.json``) beside them that
records their sha256, factor sizes and image size. A location holding that manifest is read as a
fake: the file is checked against the manifest, the build records ``source: "fake
(mmbench.testing.mpi3d)"`` and builders put it in a cache entry of its own (:attr:`ArchiveSpec.tag`).

Example:
    >>> record = resolve_archive(data_dir=None, cache_dir="~/.cache/mmbench")
    >>> first = read_images(record, 0, 1000)          # (1000, 64, 64, 3) uint8, read from disk
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.core.storage import atomic_write
from mmbench.errors import ChecksumError, InputsNotFoundError, InvalidConfigError
from mmbench.sources.reading import check_sha256, npz_header, npz_member, unreadable
from mmbench.sources.resource import (
    OFFLINE_ENV,
    Resource,
    file_sha256,
    find_file,
    locate,
    offline,
    user_location,
)

__all__ = [
    "ENV_VAR",
    "FACTORS",
    "FACTOR_SIZES",
    "FAKE_MANIFEST",
    "FILENAME",
    "IMAGE_SIZE",
    "KEY",
    "SHA256",
    "ArchiveSpec",
    "archive_spec",
    "factor_values",
    "read_images",
    "resolve_archive",
]

logger = logging.getLogger(__name__)

FILENAME = "real3d_complicated_shapes_ordered.npz"
KEY = "images"
#: The seven factors in the archive's (C) order; the last two are image-specific.
FACTORS = ("color", "shape", "size", "camera", "background", "horizontal", "vertical")
FACTOR_SIZES = (4, 4, 2, 3, 3, 40, 40)
IMAGE_SIZE = 64
CHANNELS = 3
ENV_VAR = "MMBENCH_MPI3D_PATH"
DRIVE_ID = "1Tp8eTdHxgUMtsZv5uAoYAbJR1BOa_OQm"
#: The official link (dataset README, 2025-04-17) and its direct-download form.
PAGE_URL = f"https://drive.google.com/file/d/{DRIVE_ID}/view"
URLS = (f"https://drive.usercontent.google.com/download?id={DRIVE_ID}&export=download&confirm=t",)
#: Not published (see the module docstring); set it to pin the file and enable downloads.
SHA256: str | None = None
#: Not published either; the array alone is 460,800 × 12,288 = 5,662,310,400 bytes.
SIZE: int | None = None
HOMEPAGE = "https://github.com/rr-learning/disentanglement_dataset"
LICENSE = (
    "CC BY 4.0; M. W. Gondal, M. Wüthrich, Đ. Miladinović, F. Locatello, M. Breidt, V. Volchkov, J. Akpo, "
    "O. Bachem, B. Schölkopf, S. Bauer. On the Transfer of Inductive Bias from Simulation to the Real World: "
    "a New Disentanglement Dataset. NeurIPS 2019."
)
DATA_PATHS = tuple(f"{folder}/{FILENAME}" for folder in ("mpi3d", "MPI_real_complex", "MPI3d_real_complex", "data"))
FAKE_MANIFEST = "mmbench-fake-mpi3d.json"
FAKE_FORMAT = "mmbench.fake-mpi3d"
FAKE_SOURCE = "fake (mmbench.testing.mpi3d)"
_STAMPS = "sha256-stamps.json"


def resource() -> Resource:
    """The archive as a resource of the raw-input layer (only when :data:`SHA256` is pinned)."""
    if SHA256 is None:
        raise InvalidConfigError("The MPI3D-Complex sha256 is not pinned; the resource layer needs one.")
    return Resource(name=f"mpi3d/{FILENAME}", sha256=SHA256, size=SIZE, license=LICENSE, urls=URLS,
                    data_paths=DATA_PATHS, env_var=ENV_VAR, homepage=HOMEPAGE)


def _cache_path(cache_dir: Path) -> Path:
    return cache_dir / "downloads" / "mpi3d" / FILENAME


# ---------------------------------------------------------------------------- what the archive holds
@dataclasses.dataclass(frozen=True)
class ArchiveSpec:
    """Factor sizes and image size of the archive in use, known without reading it.

    The official archive's, unless the user's location holds a fake's manifest.
    """

    factor_sizes: tuple[int, ...] = FACTOR_SIZES
    image_size: int = IMAGE_SIZE
    #: the manifest of a fake archive (``None`` for the official one)
    fake: Mapping[str, Any] | None = None

    @property
    def num_images(self) -> int:
        return int(np.prod(self.factor_sizes, dtype=np.int64))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` as stored in the archive."""
        return (self.image_size, self.image_size, CHANNELS)

    @property
    def tag(self) -> str | None:
        """``"fake-mpi3d-<sha>"`` for a fake (its builds get a cache entry of their own), else ``None``."""
        return f"fake-mpi3d-{self.fake['sha256'][:10]}" if self.fake else None


def archive_spec(data_dir: str | os.PathLike[str] | None) -> ArchiveSpec:
    """The :class:`ArchiveSpec` of the archive ``data_dir`` (or ``$MMBENCH_MPI3D_PATH``) names.

    Reads at most the small fake manifest: no hashing, no archive access.
    """
    named = user_location(data_dir, ENV_VAR)
    manifest = _fake_manifest(named[0]) if named is not None else None
    if manifest is None:
        return ArchiveSpec()
    return ArchiveSpec(tuple(manifest["factor_sizes"]), int(manifest["image_size"]), manifest)


def _fake_manifest(where: Path) -> dict[str, Any] | None:
    """The fake manifest beside (or in) ``where``, or ``None``; a broken one is a clear error."""
    folder = where if where.is_dir() else where.parent
    path = folder / FAKE_MANIFEST
    try:
        if not path.is_file():
            return None
        manifest = json.loads(path.read_text())
        ok = (manifest.get("format") == FAKE_FORMAT and isinstance(manifest.get("file"), str)
              and isinstance(manifest.get("sha256"), str) and len(manifest["factor_sizes"]) == len(FACTORS)
              and int(manifest["image_size"]) > 0)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputsNotFoundError(
            f"{path} is not a valid fake-MPI3D manifest ({exc!r}). Write the fake again with "
            "mmbench.testing.write_fake_mpi3d, or remove the manifest if the folder holds the real archive."
        ) from exc
    if not ok:
        raise InputsNotFoundError(f"{path} is not a fake-MPI3D manifest of this mmbench (format {manifest.get('format')!r}).")
    if not where.is_dir() and where.name != manifest["file"]:
        return None  # a manifest for another file of the folder
    return manifest


def factor_values(rows: np.ndarray, factor_sizes: tuple[int, ...] = FACTOR_SIZES) -> dict[str, np.ndarray]:
    """The seven factors (int64) of archive rows ``rows`` (the archive is in C order over them)."""
    values = np.unravel_index(np.asarray(rows, dtype=np.int64), factor_sizes)
    return {name: v.astype(np.int64, copy=False) for name, v in zip(FACTORS, values, strict=True)}


# ---------------------------------------------------------------------------- finding and checking it
def resolve_archive(
    data_dir: str | os.PathLike[str] | None,
    cache_dir: str | os.PathLike[str],
    *,
    allow_network: bool | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Find the archive, refuse a wrong one, and describe what was used.

    The structure (key, dtype, shape, order, completeness) is checked first, from the headers
    (instant); then the sha256 is computed (remembered per path, size and mtime, so once per
    file) and compared with the pinned one (:data:`SHA256`, or a fake's manifest).

    Returns:
        ``{"name", "path", "sha256", "bytes", "source", "origin", "license", "factor_sizes",
        "image_shape", "member": {"file", "offset"}, "sha256_pinned", "tried"}``: what a build
        records in ``dataset_info.json``; ``member`` locates the pixels for :func:`read_images`.

    Raises:
        InputsNotFoundError: a location the user named lacks the file, or nothing has it (the
            message lists the places tried, the official URL and where to put the file).
        ChecksumError: a wrong key, dtype, shape or order, a truncated or corrupt file, or a
            sha256 other than the pinned one.
    """
    cache_root = Path(cache_dir).expanduser()
    spec = archive_spec(data_dir)
    path, source, origin, tried = _find(spec, data_dir, cache_root, allow_network, progress)
    shape, fortran, dtype, compressed = npz_header(path, KEY)
    _check_header(path, spec, shape, fortran, dtype)
    member = None if compressed else _member(npz_member(path, KEY))  # also refuses a truncated member
    expected = spec.fake["sha256"] if spec.fake else SHA256
    sha = _sha256(path, cache_root, progress=progress, stamp=spec.fake)
    if expected is not None:
        label = "fake-MPI3D manifest's" if spec.fake else "official MPI3D-Complex"
        check_sha256(sha, expected, path, label=label)
    if member is None:  # a compressed member: unpacked once (as a stream) into the cache, then read there
        member = _member(npz_member(path, KEY, extract_to=cache_root / "downloads" / "mpi3d" / f"unpacked-{sha[:16]}"))
    return {
        "name": f"mpi3d/{FILENAME}", "path": str(path), "sha256": sha, "bytes": path.stat().st_size,
        "source": FAKE_SOURCE if spec.fake else source, "origin": origin,
        "license": "synthetic (mmbench.testing.mpi3d)" if spec.fake else LICENSE,
        "factor_sizes": list(spec.factor_sizes), "image_shape": list(spec.image_shape), "member": member,
        "sha256_pinned": expected is not None, "tried": tried,
    }


def _member(mm: np.memmap) -> dict[str, Any]:
    out = {"file": str(mm.filename), "offset": int(mm.offset)}
    del mm  # unmapped: reading goes through read_images, never through a mapping of the whole file
    return out


def _find(spec: ArchiveSpec, data_dir: Any, cache_root: Path, allow_network: bool | None,
          progress: bool | None) -> tuple[Path, str, str, list[str]]:
    """``(path, source, origin, tried)`` of the archive: the user's location, the cache, a download."""
    named = user_location(data_dir, ENV_VAR)
    if named is not None:
        where, named_by = named
        return _from_user(spec, where, named_by), "data_dir", str(where), []
    tried = [f"data_dir / ${ENV_VAR}: not given"]
    cached = _cache_path(cache_root)
    if cached.is_file():
        return cached, "cache", str(cached), tried
    tried.append(f"cache: {cached} does not exist")
    allow_network = (not offline()) if allow_network is None else allow_network
    if SHA256 is None:
        tried.append("download: skipped (no sha256 of the official file is published, so it is never fetched "
                     "unverified)")
    elif not allow_network:
        tried.append(f"download: skipped (offline: ${OFFLINE_ENV} is set or network disabled)")
    else:
        try:
            got = locate(resource(), cache_dir=cache_root, sources=("download",), allow_network=True, progress=progress)
        except InputsNotFoundError as exc:
            tried.extend(getattr(exc, "tried", ()) or [f"download: {exc}"])
        else:
            return got.path, "download", got.origin, tried
    raise _not_found(tried, cached)


def _from_user(spec: ArchiveSpec, where: Path, named_by: str) -> Path:
    try:
        is_dir = where.is_dir()
    except OSError as exc:
        raise unreadable(where, exc) from exc
    names = (spec.fake["file"],) if spec.fake else (FILENAME, f"mpi3d/{FILENAME}", *DATA_PATHS)
    path = find_file(where, names) if is_dir else (where if where.is_file() else None)
    if path is not None:
        return path
    state = "does not exist" if not where.exists() else f"holds none of {', '.join(dict.fromkeys(names))}"
    raise InputsNotFoundError(
        f"The location {where} (given as {named_by}) {state}. It must be {FILENAME} itself or a directory "
        f"holding it. Fix the path, put the file there, or drop {named_by} to use the copy in the mmbench "
        f"cache. The file: {PAGE_URL} ({_expected()})."
    )


def _expected() -> str:
    if SHA256 is not None:
        return f"sha256 {SHA256}" + (f", {SIZE} bytes" if SIZE is not None else "")
    return ("sha256: not published, so mmbench checks the structure — member 'images', uint8, "
            f"({int(np.prod(FACTOR_SIZES))}, {IMAGE_SIZE}, {IMAGE_SIZE}, {CHANNELS}) — and records the sha256 it computes")


def _not_found(tried: list[str], cached: Path) -> InputsNotFoundError:
    err = InputsNotFoundError(
        f"The MPI3D-Complex archive {FILENAME} (≈5.7 GB, licence CC BY 4.0) could not be found. Places tried, in order:\n"
        + "\n".join(f"  {i}. {t}" for i, t in enumerate(tried, 1))
        + f"\nDownload it from the official link {PAGE_URL} (from {HOMEPAGE}; {_expected()}), then any one of:\n"
        f"  * put it at {cached} (the downloads cache);\n"
        f"  * put it in a directory DIR and pass data_dir=DIR (CLI: --data-dir DIR);\n"
        f"  * set {ENV_VAR}=PATH to the file or its directory."
    )
    err.tried = tuple(tried)
    return err


def _check_header(path: Path, spec: ArchiveSpec, shape: tuple[int, ...], fortran: bool, dtype: np.dtype) -> None:
    """Refuse an archive whose ``images`` is not ``uint8 (N, H, W, 3)`` in C order."""
    want = (spec.num_images, *spec.image_shape)
    what = "fake archive (per its manifest)" if spec.fake else "MPI3D-Complex archive"
    problems = []
    if dtype != np.uint8:
        problems.append(f"dtype {dtype} (expected uint8)")
    if tuple(shape) != want:
        problems.append(f"shape {tuple(shape)} (expected {want}: {' × '.join(map(str, spec.factor_sizes))} images "
                        f"of {spec.image_size}×{spec.image_size}×{CHANNELS})")
    if fortran:
        problems.append("Fortran order (expected C order: rows are the factor grid in C order)")
    if problems:
        raise ChecksumError(
            f"{path} is not the {what}: its array {KEY!r} has {'; '.join(problems)}. It is refused before any "
            f"conversion. Use the official {FILENAME} ({PAGE_URL})."
        )


# ---------------------------------------------------------------------------- hashing once per file
def _sha256(path: Path, cache_root: Path, *, progress: bool | None, stamp: Mapping[str, Any] | None = None) -> str:
    """The file's sha256, remembered per (real path, size, mtime) in the downloads cache.

    ``stamp`` (a fake's manifest) is one more such record, written when the fake was.
    """
    stamps_path = cache_root / "downloads" / "mpi3d" / _STAMPS
    try:
        st = path.stat()
    except OSError as exc:
        raise unreadable(path, exc) from exc
    key = str(path.resolve())
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    stamps = _read_stamps(stamps_path)
    known = stamps.get(key, {})
    if stamp is not None and stamp.get("bytes") == st.st_size and stamp.get("mtime_ns") == st.st_mtime_ns:
        known = {"size": stamp["bytes"], "mtime_ns": stamp["mtime_ns"], "sha256": stamp["sha256"]}
    if {k: known.get(k) for k in stamp} == stamp and isinstance(known.get("sha256"), str):
        return known["sha256"]
    sha = file_sha256(path, progress=progress)
    stamps = _read_stamps(stamps_path)  # another process may have added its own meanwhile
    stamps[key] = {**stamp, "sha256": sha}
    try:
        stamps_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(stamps_path, json.dumps(stamps, indent=1))
    except OSError as exc:  # a read-only cache: hash again next time
        logger.warning("Could not remember the sha256 of %s in %s: %s", path, stamps_path, exc)
    return sha


def _read_stamps(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# ---------------------------------------------------------------------------- reading
def read_images(record: Mapping[str, Any], start: int, stop: int) -> np.ndarray:
    """Rows ``[start, stop)`` of the archive as ``(n, H, W, 3)`` uint8, read from disk.

    One read into a fresh array: nothing is memory-mapped, so the process's resident memory
    stays at the size of the rows asked for, whatever the size of the archive.
    """
    h, w, c = record["image_shape"]
    row = h * w * c
    out = np.empty((stop - start, h, w, c), dtype=np.uint8)
    view = memoryview(out).cast("B")
    path = record["member"]["file"]
    try:
        with open(path, "rb", buffering=0) as f:
            f.seek(int(record["member"]["offset"]) + start * row)
            got = 0
            while got < len(view):
                n = f.readinto(view[got:])
                if not n:
                    raise ChecksumError(f"{path} ended after {got} of {len(view)} bytes of rows [{start}, {stop}): it was "
                                        "truncated after it was checked. Restore the file and build again.")
                got += n
    except OSError as exc:
        raise unreadable(path, exc, what="MPI3D archive",
                         fix="It was checked when the build started; restore it and build again.") from exc
    return out
