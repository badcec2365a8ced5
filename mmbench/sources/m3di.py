"""The published Multimodal3DIdent release (``m3di.tar.gz``, Zenodo record 7678231), read in place.

Layout (research note §1.7; the reference ``datasets.py``)::

    m3di/{train,val,test}/
        images/000000.png …      zero-padded to ceil(log10(N)) digits
        text/text_raw.txt        line i is the caption of image i (no newline after the last)
        latents_image.csv        object_shape, object_xpos, object_ypos, object_zpos, object_alpharot,
                                 object_betarot, object_gammarot, object_color, spotlight_pos,
                                 spotlight_color, background_color
        latents_text.csv         object_shape, object_xpos, object_ypos, object_zpos,
                                 object_color_name, object_color_index, text_phrasing

Where it is looked for: ``data_dir`` (CLI ``--data-dir``) or ``$MMBENCH_M3DI_PATH``, naming the
extracted ``m3di`` folder, a folder holding it, or the ``m3di.tar.gz`` archive (extracted once,
streaming, into ``<cache>/downloads/m3di``). No checksum of the archive is published, so none is
pinned: the sha256 of the archive (or of the extracted latents and captions) is computed once and
recorded with every build. Without the files, the error says where to get them and where to put
them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import InputsNotFoundError, InvalidConfigError
from mmbench.sources.reading import unreadable

__all__ = [
    "ARCHIVE",
    "ENV_VAR",
    "IMAGE_COLUMNS",
    "TEXT_COLUMNS",
    "URL",
    "image_name",
    "locate_release",
    "read_split",
]

ARCHIVE = "m3di.tar.gz"
URL = "https://zenodo.org/records/7678231/files/m3di.tar.gz"
ENV_VAR = "MMBENCH_M3DI_PATH"
SPLITS = ("train", "val", "test")
IMAGE_COLUMNS = ("object_shape", "object_xpos", "object_ypos", "object_zpos", "object_alpharot", "object_betarot",
                 "object_gammarot", "object_color", "spotlight_pos", "spotlight_color", "background_color")
TEXT_COLUMNS = ("object_shape", "object_xpos", "object_ypos", "object_zpos", "object_color_name",
                "object_color_index", "text_phrasing")


def image_name(index: int, count: int) -> str:
    """The release's file name of image ``index`` of a split of ``count`` images."""
    width = max(1, math.ceil(math.log10(count))) if count > 1 else 1
    return f"{index:0{width}d}.png"


def _release_root(path: Path) -> Path | None:
    """``path`` itself or ``path/m3di`` if it holds the three split folders."""
    for root in (path, path / "m3di"):
        if all((root / s / "latents_image.csv").is_file() for s in SPLITS):
            return root
    return None


def locate_release(data_dir: str | os.PathLike[str] | None, cache_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The extracted release (extracting the archive once if that is what was given).

    Returns:
        ``{"path": root, "sha256": …, "source": …}``: ``sha256`` of the archive, or of the three
        splits' latents and captions when an extracted folder was given.

    Raises:
        InputsNotFoundError: nothing usable at ``data_dir`` / ``$MMBENCH_M3DI_PATH`` (the message
            says what to download and where to put it).
    """
    given = Path(data_dir).expanduser() if data_dir is not None else (
        Path(os.environ[ENV_VAR]).expanduser() if os.environ.get(ENV_VAR) else None)
    extracted = Path(cache_dir).expanduser() / "downloads" / "m3di"
    candidates = [given] if given is not None else []
    for path in candidates:
        archive = path if path.is_file() else path / ARCHIVE
        root = _release_root(path) if path.is_dir() else None
        if root is not None:
            return {"path": str(root), "sha256": _content_sha256(root), "source": "directory", "url": URL}
        if archive.is_file():
            if _release_root(extracted) is None or (extracted / ".archive-sha256").read_text() != _quick_id(archive):
                digest = _extract(archive, extracted)
                (extracted / ".archive-sha256").write_text(_quick_id(archive))
                (extracted / ".sha256").write_text(digest)
            return {"path": str(_release_root(extracted)), "sha256": (extracted / ".sha256").read_text(),
                    "source": "archive", "archive": str(archive), "url": URL}
    where = f"{given} (given as data_dir or ${ENV_VAR})" if given is not None else "nowhere (no data_dir and no $" + ENV_VAR + ")"
    raise InputsNotFoundError(
        f"The Multimodal3DIdent release was looked for {where} and not found: it must be the extracted m3di folder "
        f"(with train/, val/, test/ holding latents_image.csv, latents_text.csv, text/text_raw.txt and images/), a folder "
        f"holding it, or {ARCHIVE}. Download {URL} (about 13 GB), then pass --data-dir DIR (data_dir=DIR) or set "
        f"{ENV_VAR}=DIR. For the rendered dataset, which needs no download, use the configs 'causal' or 'independent'."
    )


def _quick_id(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


class _HashingReader(io.RawIOBase):
    """A file object that hashes what is read through it (the archive is hashed while extracted)."""

    def __init__(self, f: Any) -> None:
        self.f, self.h = f, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.f.readinto(b)
        self.h.update(memoryview(b)[:n])
        return n


def _extract(archive: Path, target: Path) -> str:
    """Extract ``archive`` streaming into ``target`` (via a temporary sibling); return its sha256."""
    from mmbench.core.storage import tmp_path

    tmp = tmp_path(target)
    tmp.mkdir(parents=True)
    try:
        with open(archive, "rb") as raw:
            reader = _HashingReader(raw)
            with tarfile.open(fileobj=io.BufferedReader(reader, 1 << 20), mode="r|gz") as tar:
                tar.extractall(tmp, filter="data")
            while reader.readinto(bytearray(1 << 20)):  # hash any trailing bytes
                pass
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except (OSError, tarfile.TarError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise unreadable(archive, exc if isinstance(exc, OSError) else OSError(str(exc)), what="release archive") from exc
    return reader.h.hexdigest()


def _content_sha256(root: Path) -> str:
    h = hashlib.sha256()
    for split in SPLITS:
        for rel in ("latents_image.csv", "latents_text.csv", "text/text_raw.txt"):
            h.update((root / split / rel).read_bytes())
    return h.hexdigest()


def _read_csv(path: Path, columns: tuple[str, ...]) -> dict[str, list[str]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise unreadable(path, exc) from exc
    header = rows[0] if rows else []
    missing = [c for c in columns if c not in header]
    if missing:
        raise InvalidConfigError(f"{path} lacks the columns {missing} of the release layout (it has {header}).")
    return {c: [r[header.index(c)] for r in rows[1:]] for c in columns}


def read_split(root: str | os.PathLike[str], split: str) -> dict[str, Any]:
    """Latents, captions and image paths of one split of the release (columns as in the CSVs)."""
    base = Path(root) / split
    image = _read_csv(base / "latents_image.csv", IMAGE_COLUMNS)
    text = _read_csv(base / "latents_text.csv", TEXT_COLUMNS)
    try:
        captions = (base / "text" / "text_raw.txt").read_text(encoding="utf-8").split("\n")
    except OSError as exc:
        raise unreadable(base / "text" / "text_raw.txt", exc) from exc
    n = len(image["object_shape"])
    if len(text["object_shape"]) != n or len(captions) != n:
        raise InvalidConfigError(
            f"The release's {split} split is inconsistent: {n} image latents, {len(text['object_shape'])} text latents, "
            f"{len(captions)} captions in {base}."
        )
    out: dict[str, Any] = {"num_rows": n, "captions": captions, "color_name": text["object_color_name"],
                           "images": [base / "images" / image_name(i, n) for i in range(n)]}
    for c in IMAGE_COLUMNS:
        out[c] = np.asarray(image[c], dtype=np.float64)
    for c in ("object_color_index", "text_phrasing"):
        out[c] = np.asarray(text[c], dtype=np.int64)
    return out
