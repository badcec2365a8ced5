"""Background photos for PolyMNIST: an openly licensed default set, or a user directory.

The original PolyMNIST backgrounds are five unnamed JPEGs with no stated licence. mmbench's
default set (``"skimage"``) is five photos shipped inside the scikit-image wheel, all public
domain or CC0, loaded offline. Users may pass a directory instead (e.g. the original JPEGs):
its images, sorted by file name, give modality ``m0, m1, …``.

A background set is identified by the sha256 of the decoded RGB arrays (not of the file bytes,
so re-encoding a PNG losslessly changes nothing); that digest is part of the config fingerprint.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmbench.errors import InputsNotFoundError, InvalidConfigError

__all__ = ["DEFAULT_SET", "IMAGE_SUFFIXES", "SKIMAGE_BACKGROUNDS", "Background", "background_files", "load_backgrounds"]

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


@dataclass(frozen=True)
class Background:
    """One decoded background photo (``H × W × 3`` uint8) and where it came from."""

    name: str
    path: str
    license: str
    pixels: np.ndarray

    @property
    def sha256(self) -> str:
        return hashlib.sha256(np.ascontiguousarray(self.pixels).tobytes()).hexdigest()

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    def record(self) -> dict[str, object]:
        return {"name": self.name, "path": self.path, "license": self.license, "shape": list(self.pixels.shape), "sha256": self.sha256}


def _skimage_dir() -> Path:
    try:
        return Path(str(importlib.resources.files("skimage") / "data"))
    except ModuleNotFoundError as exc:
        raise InputsNotFoundError(
            "The default PolyMNIST backgrounds are photos shipped inside scikit-image, which is not "
            "installed. Install it (`pip install scikit-image`, a dependency of mmbench) or pass "
            "backgrounds=DIR with your own images."
        ) from exc


def background_files(spec: str, num: int) -> list[tuple[str, Path, str]]:
    """(name, path, licence) of the ``num`` images of a background set, in modality order.

    Raises:
        InvalidConfigError: the directory does not exist or has fewer than ``num`` images.
    """
    if spec == DEFAULT_SET:
        root = _skimage_dir()
        return [(name, root / file, lic) for name, file, lic in SKIMAGE_BACKGROUNDS[:num]]
    directory = Path(spec).expanduser()
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
        out.append(Background(name=name, path=str(path), license=lic, pixels=pixels))
    return tuple(out)


def background_set_digest(spec: str, num: int) -> str:
    """sha256 over the decoded pixels (and shapes) of the ``num`` backgrounds, in order."""
    h = hashlib.sha256()
    for bg in load_backgrounds(spec, num):
        h.update(repr(bg.pixels.shape).encode())
        h.update(bg.sha256.encode())
    return h.hexdigest()
