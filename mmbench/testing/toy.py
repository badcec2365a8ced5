"""A tiny image–text dataset that exercises every core feature: the test double of MPI3D and
Multimodal3DIdent.

* ``image`` (3×8×8 uint8) lives in a **shared store** keyed by the seed and sizes only, so configs
  that differ only in their text (``wording``) share one copy of the pixels;
* ``text`` is a **string** column (a caption from a template over the latents);
* ``tokens`` is a **ragged** column of word ids from a vocabulary **artifact** built from the
  train split's captions;
* every latent is stored, so the text can be checked against the image.

It is not registered (``mmbench list`` does not show it); build it directly::

    from mmbench.testing.toy import ToyTextBuilder
    b = ToyTextBuilder(cache_dir=tmp, wording="short")
    b.build()
    ds = b.as_dataset("train")
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

import numpy as np

from mmbench.core.builder import Builder, Modality, split_id
from mmbench.core.columns import Ragged
from mmbench.core.config import BuilderConfig, FrozenDict, check_choice
from mmbench.core.info import Feature
from mmbench.core.latents import Latent, LatentSpec
from mmbench.core.storage import Store

__all__ = ["COLORS", "SHAPES", "ToyTextBuilder", "ToyTextConfig"]

COLORS = ("red", "green", "blue", "yellow")
SHAPES = ("square", "cross", "dot")
_RGB = np.array([(220, 30, 30), (30, 200, 30), (30, 30, 220), (230, 220, 20)], dtype=np.uint8)
_TEMPLATES = {
    "short": "a {color} {shape}",
    "long": "there is a {size} {color} {shape} in the picture",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class ToyTextConfig(BuilderConfig):
    """Config of the toy dataset: ``wording`` changes only the text (the images are shared)."""

    split_sizes: Any = dataclasses.field(default_factory=lambda: FrozenDict(train=64, val=16, test=16))
    shard_size: int | None = 16
    wording: str = "short"

    def validate(self) -> None:
        check_choice("wording", self.wording, tuple(_TEMPLATES))


class ToyTextBuilder(Builder):
    """Toy image–caption pairs; see the module docstring."""

    name = "testing/toy-text"
    VERSION = "1.0.0"
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "Initial toy dataset."}
    CONFIG_CLASS = ToyTextConfig
    DESCRIPTION = "Toy images with captions (tests of string, ragged, store and artifact columns)."

    def modalities(self) -> dict[str, Modality]:
        return {
            "image": Modality("image", "image", (3, 8, 8), "uint8", store="images"),
            "text": Modality("text", "text", (), "str"),
            "tokens": Modality("tokens", "tokens", (), "int32"),
        }

    def latent_spec(self) -> LatentSpec:
        return LatentSpec((
            Latent(name="color", kind="categorical", support=COLORS, role="content"),
            Latent(name="shape", kind="categorical", support=SHAPES, role="content"),
            Latent(name="size", kind="discrete", support=(2, 6), role="content"),
        ))

    # ---------------------------------------------------------------- the shared image store
    def stores(self) -> dict[str, Store]:
        c = self.config
        feats = {
            "image": Feature((3, 8, 8), "uint8"),
            "color": Feature((), "int64"),
            "shape": Feature((), "int64"),
            "size": Feature((), "int64"),
        }
        key = {"seed": c.seed, "split_sizes": dict(c.split_sizes)}
        return {"images": Store("testing/toy-images", key, sum(c.split_sizes.values()), feats, shard_rows=32)}

    def generate_store(self, store: str, start: int, stop: int, *, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n = stop - start
        color = rng.integers(0, len(COLORS), n)
        shape = rng.integers(0, len(SHAPES), n)
        size = rng.integers(2, 7, n)
        return {"image": draw(color, shape, size), "color": color, "shape": shape, "size": size}

    # ---------------------------------------------------------------- text and tokens
    def _rows(self, split: str, start: int, stop: int) -> np.ndarray:
        n = self.config.split_sizes[split]
        perm = np.random.default_rng([self.config.seed, split_id(split)]).permutation(n)
        return self.config.split_offsets()[split] + perm[start:stop]

    def _captions(self, latents: dict[str, np.ndarray]) -> list[str]:
        template = _TEMPLATES[self.config.wording]
        return [
            template.format(color=COLORS[c], shape=SHAPES[s], size="big" if z > 4 else "small")
            for c, s, z in zip(latents["color"].tolist(), latents["shape"].tolist(), latents["size"].tolist(), strict=True)
        ]

    def _latents(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        return {k: np.asarray(self.store_column("images", k)[rows]) for k in ("color", "shape", "size")}

    def make_artifacts(self) -> dict[str, bytes]:
        rows = self._rows("train", 0, self.config.split_sizes["train"])
        words = sorted({w for caption in self._captions(self._latents(rows)) for w in caption.split()})
        return {"vocabulary.json": json.dumps(["{pad}", "{eos}", "{unk}", *words]).encode()}

    def generate(self, split: str, start: int, stop: int, *, rng: np.random.Generator) -> dict[str, Any]:
        rows = self._rows(split, start, stop)
        latents = self._latents(rows)
        captions = self._captions(latents)
        ids = {w: i for i, w in enumerate(json.loads(self.artifact("vocabulary.json")))}
        tokens = Ragged.from_sequences(([ids.get(w, 2) for w in c.split()] + [1] for c in captions), dtype=np.int32)
        out: dict[str, Any] = {"image": rows, "text": captions, "tokens": tokens}
        out.update({f"latents.{k}": v for k, v in latents.items()})
        return out


def draw(color: np.ndarray, shape: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Tiny pictures: a coloured square, cross or dot of the given size on black (vectorised)."""
    yy, xx = np.mgrid[0:8, 0:8]
    d = np.maximum(np.abs(yy - 3.5), np.abs(xx - 3.5))[None]  # Chebyshev distance from the centre
    r = size[:, None, None] / 2
    square = d <= r
    cross = ((np.abs(yy - 3.5) < 1)[None] | (np.abs(xx - 3.5) < 1)[None]) & (d <= r)
    dot = (np.hypot(yy - 3.5, xx - 3.5)[None] <= r)
    mask = np.where((shape == 0)[:, None, None], square, np.where((shape == 1)[:, None, None], cross, dot))
    return (mask[:, None] * _RGB[color][:, :, None, None]).astype(np.uint8)
