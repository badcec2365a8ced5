"""A small fake Multimodal3DIdent release in the real layout (``m3di/{train,val,test}/…``).

The latents follow the reference generator's rules, the captions its five phrasings, the images
are rendered by the ``raster`` backend with the tiny procedural meshes: a few dozen examples that
exercise the ``release`` config's reader end to end, with no download.

Example:
    >>> from mmbench.testing.m3di import write_fake_release
    >>> root = write_fake_release(tmp_path, archive=True)     # tmp_path / "m3di.tar.gz"
    >>> ds = mmbench.load("multimodal3dident/release", split="train", data_dir=root,
    ...                   split_sizes={"train": 24, "val": 8, "test": 8}, size=32)
"""

from __future__ import annotations

import csv
import tarfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mmbench.sources.m3di import IMAGE_COLUMNS, TEXT_COLUMNS, image_name

__all__ = ["FAKE_SIZES", "write_fake_release"]

FAKE_SIZES = {"train": 24, "val": 8, "test": 8}


def write_fake_release(
    directory: str | Path,
    *,
    sizes: Mapping[str, int] = FAKE_SIZES,
    image_size: int = 32,
    seed: int = 0,
    archive: bool = False,
) -> Path:
    """Write ``directory/m3di/…`` (or ``directory/m3di.tar.gz`` with ``archive=True``); return the path."""
    from PIL import Image

    import mmbench
    from mmbench.builders.multimodal3dident import PHRASES, colour_names_of
    from mmbench.rendering.colors import all_color_names
    from mmbench.rendering.text import Templates

    directory = Path(directory)
    root = directory / "m3di"
    b = mmbench.builder("multimodal3dident", meshes="tiny", size=image_size)
    names = all_color_names()
    for k, (split, n) in enumerate(sizes.items()):
        rng = np.random.default_rng([seed, k])
        lat = {key: np.asarray(v).astype(b.IMAGE_LATENTS[key]) for key, v in b.sample_scene_latents(n, rng).items()}
        images = b.render(lat)
        pal, phrasing = rng.integers(0, 3, n), rng.integers(0, 5, n)
        index = colour_names_of(lat["color"], pal)
        words = {"SHAPE": ("teapot", "hare", "dragon", "cow", "armadillo", "horse", "head"),
                 "XPOS": ("left", "center", "right"), "YPOS": ("top", "mid", "bottom"), "COLOR": names}
        captions = Templates(PHRASES, words, columns={"SHAPE": "shape", "XPOS": "x_pos", "YPOS": "y_pos", "COLOR": "c"}).fill(
            {"shape": lat["shape"], "x_pos": lat["x_pos"], "y_pos": lat["y_pos"], "c": index}, template=phrasing)
        base = root / split
        (base / "images").mkdir(parents=True, exist_ok=True)
        (base / "text").mkdir(exist_ok=True)
        for i in range(n):
            Image.fromarray(images[i].transpose(1, 2, 0)).save(base / "images" / image_name(i, n))
        (base / "text" / "text_raw.txt").write_text("\n".join(captions), encoding="utf-8")
        image_cols = [lat["shape"], lat["x_pos"], lat["y_pos"], np.zeros(n), lat["alpha"], lat["beta"], lat["gamma"],
                      lat["color"], lat["s_pos"], lat["s_color"], lat["b_color"]]
        _write_csv(base / "latents_image.csv", IMAGE_COLUMNS, image_cols)
        text_cols = [lat["shape"], lat["x_pos"], lat["y_pos"], np.zeros(n), [names[i] for i in index], index, phrasing]
        _write_csv(base / "latents_text.csv", TEXT_COLUMNS, text_cols)
    if not archive:
        return root
    path = directory / "m3di.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(root, arcname="m3di")
    import shutil

    shutil.rmtree(root)
    return path


def _write_csv(path: Path, header: tuple[str, ...], columns: list) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in zip(*columns, strict=True):
            writer.writerow([repr(float(v)) if isinstance(v, np.floating) else v.item() if isinstance(v, np.generic) else v for v in row])
