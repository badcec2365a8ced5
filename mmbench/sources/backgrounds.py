"""Background photos for PolyMNIST: an openly licensed default set, or a user directory.

The original PolyMNIST backgrounds are five unnamed JPEGs with no stated licence. mmbench's
default set (``"skimage"``) is five photos shipped inside the scikit-image wheel, all public
domain or CC0, loaded offline: the raw-input layer's :class:`~mmbench.sources.resource.PackageCopy`
finds them through the package metadata, without importing scikit-image. Users may pass a directory instead (e.g. the original JPEGs):
its images, sorted by file name, give modality ``m0, m1, …``.

A background set is identified by the sha256 of the decoded RGB arrays (not of the file bytes,
so re-encoding a PNG losslessly changes nothing); that digest is part of the config fingerprint.

The default photos come from an unpinned scikit-image wheel and are decoded by an unpinned
Pillow, and two of them are JPEGs, whose decoded pixels may legitimately differ between libjpeg
builds. So the expected sha256 of every decoded default image is stored here
(:data:`SKIMAGE_PIXEL_SHA256`, measured with scikit-image 0.26.0 and Pillow 13.0.0); when an
image decodes differently, a :class:`UserWarning` names it and both hashes. Such a build is a
different dataset from the published one at the same version: its config fingerprint (and so
its cache folder and every result's provenance) differs, and its numbers are not comparable.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmbench.core.storage import sha256_array
from mmbench.errors import InputsNotFoundError, InvalidConfigError
from mmbench.sources.resource import PackageCopy

__all__ = [
    "DEFAULT_SET",
    "IMAGE_SUFFIXES",
    "SKIMAGE_BACKGROUNDS",
    "SKIMAGE_PIXEL_SHA256",
    "Background",
    "background_files",
    "load_backgrounds",
]

DEFAULT_SET = "skimage"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MIN_SIZE = 28

#: (name, file inside ``skimage/data``, licence and attribution) of the default set, in modality order.
SKIMAGE_BACKGROUNDS: tuple[tuple[str, str, str], ...] = (
    ("coffee", "coffee.png", "CC0, photo by Rachel Michetti, courtesy of Pikolo Espresso Bar (scikit-image data)"),
    ("chelsea", "chelsea.png", "CC0, photo by Stefan van der Walt (scikit-image data)"),
    ("rocket", "rocket.jpg", "Public domain, SpaceX launch photo of DSCOVR on Falcon 9 (scikit-image data)"),
    ("hubble_deep_field", "hubble_deep_field.jpg", "Public domain, NASA Hubble eXtreme Deep Field (scikit-image data)"),
    ("immunohistochemistry", "ihc.png", "No known copyright restrictions, CMMI IHC staining image (scikit-image data)"),
)
#: name → sha256 of the decoded ``H × W × 3`` uint8 pixels of each default image (what the
#: published PolyMNIST builds were made from; scikit-image 0.26.0, Pillow 13.0.0).
SKIMAGE_PIXEL_SHA256: dict[str, str] = {
    "coffee": "0ce2b51640b9c95f19617f03eabf40c3f0368589cc1ee1190b70966165ac184f",
    "chelsea": "416b729128bfb2c3d1eb69bf9b1734a796293abc17939267b2dc94f8a5784031",
    "rocket": "3d4435cc745752b7f9724df88c6e18817de3ce7e3d2d71c55f85f7831e68f197",
    "hubble_deep_field": "9a3ea9548188f81e63435188456e74de45a981ebeb791e265abe79a26d3b528b",
    "immunohistochemistry": "c5b3ef509a92f16d4c29be8cf0300fe75d53e13a3ce650159db932caea8dcc1b",
}


@dataclass(frozen=True)
class Background:
    """One decoded background photo (``H × W × 3`` uint8) and where it came from."""

    name: str
    path: str
    license: str
    pixels: np.ndarray
    #: the pinned sha256 of the decoded pixels (default set only; ``None`` for user images)
    expected_sha256: str | None = None

    @property
    def sha256(self) -> str:
        return sha256_array(self.pixels)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    def record(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name, "path": self.path, "license": self.license, "shape": list(self.pixels.shape), "sha256": self.sha256,
        }
        if self.expected_sha256 is not None:
            out["expected_sha256"] = self.expected_sha256
            out["matches_expected"] = self.sha256 == self.expected_sha256
        return out


@functools.cache
def _skimage_file(file: str) -> Path:
    """A default photo, read from the installed scikit-image wheel (located, never imported)."""
    path = PackageCopy("scikit-image", f"skimage/data/{file}").locate()
    if path is None:
        raise InputsNotFoundError(
            f"The default PolyMNIST backgrounds are photos shipped inside scikit-image, and "
            f"skimage/data/{file} is not installed. Install it (`pip install scikit-image`, a "
            "dependency of mmbench) or pass backgrounds=DIR with your own images."
        )
    return path


def normalise_spec(spec: str) -> str:
    """``"skimage"``, or ``spec`` as an absolute directory path (``~`` expanded).

    Raises:
        InvalidConfigError: an empty string (``Path("")`` would silently be the current directory).
    """
    if spec == DEFAULT_SET:
        return spec
    if not spec.strip():
        raise InvalidConfigError(
            f"backgrounds must be {DEFAULT_SET!r} (the default photos) or a directory of images; got an empty string."
        )
    return os.path.abspath(os.path.expanduser(spec))


def background_files(spec: str, num: int) -> list[tuple[str, Path, str]]:
    """(name, path, licence) of the ``num`` images of a background set, in modality order.

    Raises:
        InvalidConfigError: the directory does not exist or has fewer than ``num`` images.
    """
    if spec == DEFAULT_SET:
        return [(name, _skimage_file(file), lic) for name, file, lic in SKIMAGE_BACKGROUNDS[:num]]
    directory = Path(normalise_spec(spec))
    if not directory.is_dir():
        raise InvalidConfigError(
            f"backgrounds must be {DEFAULT_SET!r} (the default photos) or a directory of images; "
            f"{spec!r} is not a directory."
        )
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < num:
        raise InvalidConfigError(
            f"The background directory {directory} has {len(files)} image(s) "
            f"({', '.join(p.name for p in files) or 'none'}; suffixes {', '.join(IMAGE_SUFFIXES)}), "
            f"but {num} modalities need one each. Add images or lower num_modalities."
        )
    return [(p.stem, p, "user-provided") for p in files[:num]]


def _decode(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise InvalidConfigError(
            f"Background image {path} cannot be read ({exc}). Replace or remove it."
        ) from exc


def load_backgrounds(spec: str, num: int) -> list[Background]:
    """Decode the ``num`` backgrounds of ``spec`` (``"skimage"`` or a directory).

    Raises:
        InvalidConfigError: too few images, an unreadable file, or an image smaller than 28×28.
    """
    return list(_load_cached(_cache_key(spec, num)))


def _cache_key(spec: str, num: int) -> tuple[str, int, tuple[tuple[str, int, int], ...]]:
    files = background_files(spec, num)
    stats = tuple((str(p), os.stat(p).st_size, os.stat(p).st_mtime_ns) for _, p, _ in files)
    return spec, num, stats


@functools.lru_cache(maxsize=8)
def _load_cached(key: tuple[str, int, tuple[tuple[str, int, int], ...]]) -> tuple[Background, ...]:
    spec, num, _ = key
    out = []
    for name, path, lic in background_files(spec, num):
        pixels = _decode(path)
        pixels.setflags(write=False)
        if pixels.shape[0] < MIN_SIZE or pixels.shape[1] < MIN_SIZE:
            raise InvalidConfigError(
                f"Background image {path} is {pixels.shape[1]}×{pixels.shape[0]} pixels; PolyMNIST "
                f"crops {MIN_SIZE}×{MIN_SIZE} patches, so every background must be at least "
                f"{MIN_SIZE}×{MIN_SIZE}. Use a larger image."
            )
        bg = Background(
            name=name, path=str(path), license=lic, pixels=pixels,
            expected_sha256=SKIMAGE_PIXEL_SHA256.get(name) if spec == DEFAULT_SET else None,
        )
        if bg.expected_sha256 is not None and bg.sha256 != bg.expected_sha256:
            _warn_unpinned(bg)
        out.append(bg)
    return tuple(out)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _warn_unpinned(bg: Background) -> None:
    # A warning, not an error: the build stays reproducible on this machine and its fingerprint
    # already differs, but the user must know it is not the published dataset.
    msg = (
        f"The default PolyMNIST background {bg.name!r} ({bg.path}) decodes to pixels with sha256 "
        f"{bg.sha256}, not the expected {bg.expected_sha256} (scikit-image {_version('scikit-image')}, "
        f"Pillow {_version('Pillow')} here). Its file or decoder differs from the one the published "
        "builds used, so this build is a different dataset at the same version: its config "
        "fingerprint differs and its results are not comparable with published ones. Install the "
        "scikit-image/Pillow versions named in mmbench.sources.backgrounds, or pass your own "
        "backgrounds=DIR of lossless images."
    )
    warnings.warn(msg, UserWarning, stacklevel=2)


def background_set_digest(spec: str, num: int) -> str:
    """sha256 over the decoded pixels (and shapes) of the ``num`` backgrounds, in order."""
    h = hashlib.sha256()
    for bg in load_backgrounds(spec, num):
        h.update(repr(bg.pixels.shape).encode())
        h.update(bg.sha256.encode())
    return h.hexdigest()
