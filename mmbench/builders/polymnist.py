"""PolyMNIST and Translated-PolyMNIST, rebuilt reproducibly and with every ground-truth latent.

PolyMNIST (Sutter, Daunhawer & Vogt, ICLR 2021; thesis §4.1) makes ``M`` image modalities from
MNIST: a tuple is ``M`` MNIST images of the same digit, each composited over a random 28×28 crop
of its modality's background photo by inverting the background's colours where the digit pixel
is > 128. Translated-PolyMNIST (Daunhawer et al., ICLR 2022; thesis §4.1.1) first downsamples
each digit by ``scale`` (bilinear) and places it at a random offset, independently per image.

What mmbench fixes or adds relative to the reference generator (MoPoE ``MMNISTDataset.py``):

* Seeded and deterministic: the tuple structure of a split comes from
  ``default_rng([seed, split_id(split), TUPLES])`` over the whole split, the crops/offsets of
  shard ``k`` from the shard's generator; identical bytes for any number of workers.
* Every latent is recorded: ``digit`` (shared content), and per modality ``mN.mnist_index``
  (which MNIST image: the handwriting), ``mN.crop_x``/``mN.crop_y`` (the crop's top-left
  corner) and, translated, ``mN.digit_x``/``mN.digit_y`` (the scaled digit's top-left corner).
* Full valid ranges: crop corners in ``0 … W − 28`` and digit offsets in ``0 … 28 − size``
  (the reference draws ``randint(0, W − 28)`` and ``randint(0, 28·(1 − s))`` with exclusive
  upper bounds, never reaching the last position: a documented deviation).
* Pairing ``reference`` = independent per-class permutations per modality (as the original,
  where ~100 train tuples repeat an MNIST image in two modalities); ``distinct`` = the same,
  with such collisions repaired by random transpositions, so no tuple repeats a handwriting.
* A validation split with its own handwriting: ``val_size`` MNIST training images (default
  5,000, chosen by ``default_rng([seed, VAL])``) are held out before tuples are formed, so val
  and train tuples never share an MNIST image. Default sizes: 55,000 train, 5,000 val, 10,000
  test; config ``full-train`` reproduces the original 60,000 / 10,000 with no val split.
* Backgrounds: five openly licensed photos shipped in scikit-image by default (the original
  JPEGs carry no licence) or any directory of images; the decoded pixels' sha256 is part of
  the config fingerprint.

Example:
    >>> ds = mmbench.load("polymnist", split="test")
    >>> ex = ds[0]                    # ex["m0"] … ex["m4"]: (3, 28, 28) uint8
    >>> ex["latents.digit"], ex["latents.m0.crop_x"]
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, ClassVar

import numpy as np

from mmbench.core.builder import Builder, Modality, split_id
from mmbench.core.config import BuilderConfig, FrozenDict, check_choice, check_int, check_number
from mmbench.core.latents import Latent, LatentSpec
from mmbench.errors import InvalidConfigError
from mmbench.rendering.compositing import CANVAS, THRESHOLD, composite, digit_size
from mmbench.sources import backgrounds as bgsrc
from mmbench.sources import mnist as mnistsrc

__all__ = [
    "PAIRINGS",
    "PolyMNISTBuilder",
    "PolyMNISTConfig",
    "TranslatedPolyMNISTBuilder",
    "TranslatedPolyMNISTConfig",
    "make_tuples",
]

PAIRINGS = ("reference", "distinct")
SPLITS = ("train", "val", "test")
MNIST_SIZES = {"train": 60_000, "test": 10_000}
MAX_MODALITIES = 5
_TUPLE_STREAM = 0x7075  # tuple structure: default_rng([seed, split_id(split), _TUPLE_STREAM])
_VAL_STREAM = 0x7661  # which MNIST training images form the val pool: default_rng([seed, _VAL_STREAM])
_MAX_REPAIR_ROUNDS = 10_000


def _default_sizes() -> FrozenDict:
    return FrozenDict(train=55_000, val=5_000, test=10_000)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PolyMNISTConfig(BuilderConfig):
    """Config of ``polymnist``.

    Args:
        num_modalities: number of modalities ``m0 … m{M−1}`` (2–5); modality ``mN`` uses
            background ``N``.
        pairing: ``reference`` (independent per-class permutations per modality, as the
            original) or ``distinct`` (no MNIST image twice in one tuple).
        val_size: MNIST training images held out (seeded) to form the ``val`` split; the ``train``
            split is formed from the remaining ``60,000 − val_size``.
        backgrounds: ``"skimage"`` (default: five openly licensed photos from scikit-image) or a
            directory of at least ``num_modalities`` images (sorted by file name).
        mnist: ``official`` (the real MNIST, sha256-checked) or ``fake`` (synthetic digits written
            by :func:`mmbench.testing.mnist.write_fake_mnist` in ``data_dir``; tests only).
        split_sizes: tuples per split (``train``/``val``/``test``); a size below the pool's takes a
            prefix of the split's seeded tuple order (class-balanced in expectation).
        shard_size: tuples per shard (part of the data: each shard has its own generator).
    """

    split_sizes: Any = dataclasses.field(default_factory=_default_sizes)
    shard_size: int = 5_000
    num_modalities: int = 5
    pairing: str = "reference"
    val_size: int = 5_000
    backgrounds: str = bgsrc.DEFAULT_SET
    mnist: str = "official"

    def validate(self) -> None:
        check_int("num_modalities", self.num_modalities, low=2, high=MAX_MODALITIES)
        check_choice("pairing", self.pairing, PAIRINGS)
        check_choice("mnist", self.mnist, ("official", "fake"))
        check_int("val_size", self.val_size, low=0, high=MNIST_SIZES["train"] - 1)
        if isinstance(self.backgrounds, os.PathLike):
            object.__setattr__(self, "backgrounds", os.fspath(self.backgrounds))
        if not isinstance(self.backgrounds, str):
            raise InvalidConfigError(
                f"backgrounds must be {bgsrc.DEFAULT_SET!r} or a directory path, got {self.backgrounds!r}."
            )
        if not self.backgrounds.strip():  # abspath("") is the current directory: never meant
            raise InvalidConfigError(f"backgrounds is empty ({self.backgrounds!r}): give {bgsrc.DEFAULT_SET!r} or a directory path.")
        if self.backgrounds != bgsrc.DEFAULT_SET:
            object.__setattr__(self, "backgrounds", os.path.abspath(os.path.expanduser(self.backgrounds)))
        bgsrc.background_files(self.backgrounds, self.num_modalities)  # fails early on a bad directory
        unknown = sorted(set(self.split_sizes) - set(SPLITS))
        if unknown:
            raise InvalidConfigError(
                f"PolyMNIST splits are {list(SPLITS)}; unknown split(s) {unknown} in split_sizes. "
                "train/val tuples come from MNIST train (val from a held-out pool), test from MNIST test."
            )
        for split, size in self.split_sizes.items():
            limit = pool_size(split, MNIST_SIZES["test" if split == "test" else "train"], self.val_size)
            if size > limit:
                raise InvalidConfigError(
                    f"split_sizes[{split!r}] = {size}, but the {split} pool has only {limit} MNIST images "
                    f"(val_size = {self.val_size}). Lower the size{' or raise val_size' if split == 'val' else ''}."
                )

    def data(self) -> dict[str, Any]:
        # The background set enters the fingerprint by content (decoded pixels), not by path.
        out = super().data()
        out["backgrounds"] = {
            "set": "skimage" if self.backgrounds == bgsrc.DEFAULT_SET else "directory",
            "sha256": bgsrc.background_set_digest(self.backgrounds, self.num_modalities),
        }
        return out


@dataclasses.dataclass(frozen=True, kw_only=True)
class TranslatedPolyMNISTConfig(PolyMNISTConfig):
    """Config of ``translated_polymnist``: :class:`PolyMNISTConfig` plus the digit ``scale``.

    Args:
        scale: downscaling factor of the digits (0.5 in the original paper, 0.7 in the thesis);
            digits are ``floor(28·scale)`` pixels wide, placed at offsets ``0 … 28 − size``.
    """

    scale: float = 0.7

    def validate(self) -> None:
        super().validate()
        check_number("scale", self.scale, low=0.1, high=1.0)
        object.__setattr__(self, "scale", float(self.scale))


def pool_size(split: str, mnist_size: int, val_size: int) -> int:
    """Number of MNIST images (= tuples) available to ``split``."""
    if split == "test":
        return mnist_size
    return val_size if split == "val" else mnist_size - val_size


def split_pools(num_train_images: int, val_size: int, seed: int) -> dict[str, np.ndarray]:
    """Sorted MNIST-train indices of the ``train`` and ``val`` pools (disjoint, seeded)."""
    order = np.random.default_rng([seed, _VAL_STREAM]).permutation(num_train_images)
    return {"val": np.sort(order[:val_size]), "train": np.sort(order[val_size:])}


def make_tuples(
    pool: np.ndarray, labels: np.ndarray, num_modalities: int, pairing: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Group MNIST images of a pool into tuples of the same digit, one image per modality.

    For each digit class, every modality gets an independent random permutation of the class's
    images, so each image appears exactly once per modality (class frequencies are MNIST's).
    With ``pairing="distinct"``, positions where a modality's image repeats one of an earlier
    modality's in the same tuple are repaired by random transpositions. Finally the tuples are
    shuffled, so any prefix is a random, class-balanced subset.

    Args:
        pool: MNIST indices available to the split.
        labels: the digit label of every MNIST image of the file (indexed by ``pool``).
        num_modalities: ``M``.
        pairing: ``reference`` or ``distinct``.
        rng: a generator keyed on the split only (not the shard).

    Returns:
        ``(indices (n, M) int64, digits (n,) int64)``.
    """
    check_choice("pairing", pairing, PAIRINGS)
    pool = np.asarray(pool, dtype=np.int64)
    pool_labels = np.asarray(labels)[pool]
    blocks, digits = [], []
    for digit in range(10):
        members = pool[pool_labels == digit]
        n = len(members)
        if n == 0:
            continue
        if pairing == "distinct" and n < num_modalities:
            raise InvalidConfigError(
                f"pairing='distinct' needs at least {num_modalities} images of every digit in a pool; "
                f"digit {digit} has {n}. Use a larger split/val_size or pairing='reference'."
            )
        cols = [rng.permutation(n)]
        for _ in range(1, num_modalities):
            perm = rng.permutation(n)
            if pairing == "distinct":
                perm = _repair_collisions(perm, np.stack(cols, axis=1), rng, digit=digit)
            cols.append(perm)
        blocks.append(members[np.stack(cols, axis=1)])
        digits.append(np.full(n, digit, dtype=np.int64))
    if not blocks:
        return np.zeros((0, num_modalities), np.int64), np.zeros(0, np.int64)
    indices = np.concatenate(blocks)
    labels_out = np.concatenate(digits)
    order = rng.permutation(len(indices))
    return indices[order], labels_out[order]


def _repair_collisions(perm: np.ndarray, earlier: np.ndarray, rng: np.random.Generator, *, digit: int) -> np.ndarray:
    """Swap colliding entries of ``perm`` with random partners until no row repeats an earlier column.

    Collisions are rare (about one per earlier modality per class), so the loop is over a handful
    of positions, never over images.
    """
    perm = perm.copy()
    for _ in range(_MAX_REPAIR_ROUNDS):
        bad = np.flatnonzero((earlier == perm[:, None]).any(axis=1))
        if len(bad) == 0:
            return perm
        partners = rng.integers(0, len(perm), len(bad))
        for j, k in zip(bad.tolist(), partners.tolist(), strict=True):
            perm[j], perm[k] = perm[k], perm[j]
    raise InvalidConfigError(
        f"pairing='distinct' could not separate the handwritings of digit {digit} "
        f"({len(perm)} images for {earlier.shape[1] + 1} modalities). Use more images or pairing='reference'."
    )


class _PolyMNISTBase(Builder):
    """Shared machinery of ``polymnist`` and ``translated_polymnist``."""

    CONFIG_CLASS: ClassVar[type[BuilderConfig]] = PolyMNISTConfig
    HOMEPAGE = "https://github.com/thomassutter/MoPoE"
    config: PolyMNISTConfig

    # ------------------------------------------------------------------ inputs
    @functools.cached_property
    def backgrounds(self) -> list[bgsrc.Background]:
        """The decoded background photos, one per modality."""
        return bgsrc.load_backgrounds(self.config.backgrounds, self.config.num_modalities)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("backgrounds", None)  # workers get the pixels through the resources
        return state

    def resolve_inputs(self) -> dict[str, Any]:
        c = self.config
        mnist = mnistsrc.resolve_mnist(self.data_dir, self.cache_dir, fake=c.mnist == "fake")
        return {
            "mnist": mnist,
            "backgrounds": {
                "set": c.backgrounds,
                "sha256": bgsrc.background_set_digest(c.backgrounds, c.num_modalities),
                "images": {f"m{m}": bg.record() for m, bg in enumerate(self.backgrounds)},
            },
        }

    def _mnist(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        return mnistsrc.load_split(self.inputs["mnist"], "test" if split == "test" else "train")

    # ------------------------------------------------------------------ schema
    @property
    def scale(self) -> float | None:
        """Digit downscaling factor (``None``: full-size digits, plain PolyMNIST)."""
        return getattr(self.config, "scale", None)

    @property
    def size(self) -> int:
        """Side of the digit on the canvas (28, or ``floor(28·scale)`` translated)."""
        return CANVAS if self.scale is None else digit_size(self.scale)

    def modalities(self) -> dict[str, Modality]:
        return {
            f"m{m}": Modality(f"m{m}", "image", (3, CANVAS, CANVAS), "uint8", f"digit over crops of background {bg.name!r}")
            for m, bg in enumerate(self.backgrounds)
        }

    def latent_spec(self) -> LatentSpec:
        lats = [
            Latent(name="digit", kind="categorical", support=tuple("0123456789"), role="content",
                   description="the MNIST digit label, shared by every modality of a tuple"),
        ]
        for m, bg in enumerate(self.backgrounds):
            key = f"m{m}"
            lats += [
                Latent(name=f"{key}.mnist_index", kind="discrete", support=(0, MNIST_SIZES["train"] - 1),
                       role="specific", scope=key,
                       description="which MNIST image (the handwriting). Per split: train and val index the "
                                   "official train file (0 … 59,999); test indexes the t10k file (0 … 9,999). "
                                   "The support shown is the train file's range, shared by every split."),
                Latent(name=f"{key}.crop_x", kind="discrete", support=(0, bg.width - CANVAS), role="specific",
                       scope=key, description=f"column of the crop's top-left corner in background {bg.name!r}"),
                Latent(name=f"{key}.crop_y", kind="discrete", support=(0, bg.height - CANVAS), role="specific",
                       scope=key, description=f"row of the crop's top-left corner in background {bg.name!r}"),
            ]
            if self.scale is not None:
                hi = CANVAS - self.size
                lats += [
                    Latent(name=f"{key}.digit_x", kind="discrete", support=(0, hi), role="specific", scope=key,
                           description=f"column of the {self.size}-pixel digit's top-left corner on the canvas"),
                    Latent(name=f"{key}.digit_y", kind="discrete", support=(0, hi), role="specific", scope=key,
                           description=f"row of the {self.size}-pixel digit's top-left corner on the canvas"),
                ]
        return LatentSpec(tuple(lats))

    def expected_identifiable(self) -> tuple[str, ...]:
        return ("digit",)

    # ------------------------------------------------------------------ generation
    def tuples(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The whole tuple structure of ``split`` (before truncation to its size).

        Drawn from ``default_rng([seed, split_id(split), TUPLES])`` only, so every shard and
        worker agrees on it.
        """
        c = self.config
        _, labels = self._mnist(split)
        if split == "test":
            pool = np.arange(len(labels))
        else:
            if c.val_size >= len(labels):
                raise InvalidConfigError(f"val_size = {c.val_size} leaves no MNIST training image for train ({len(labels)} in all).")
            pool = split_pools(len(labels), c.val_size, c.seed)[split]
        rng = np.random.default_rng([c.seed, split_id(split), _TUPLE_STREAM])
        return make_tuples(pool, np.asarray(labels), c.num_modalities, c.pairing, rng)

    def prepare(self) -> dict[str, np.ndarray]:
        c = self.config
        res: dict[str, np.ndarray] = {f"background.m{m}": bg.pixels for m, bg in enumerate(self.backgrounds)}
        for split in self.split_names():
            size = c.split_sizes[split]
            indices, digits = self.tuples(split)
            if size > len(indices):
                raise InvalidConfigError(
                    f"split_sizes[{split!r}] = {size}, but the MNIST source ({self.inputs['mnist']['source']}) "
                    f"gives the {split} split only {len(indices)} tuples (val_size = {c.val_size}). Lower the size."
                )
            res[f"tuples.{split}"] = indices[:size].astype(np.int32)
            res[f"digit.{split}"] = digits[:size].astype(np.int64)
        return res

    def generate(self, split: str, start: int, stop: int, *, rng: np.random.Generator) -> dict[str, np.ndarray]:
        c, r = self.config, self.resources
        n = stop - start
        indices = r[f"tuples.{split}"][start:stop]
        images, _ = self._mnist(split)
        out: dict[str, np.ndarray] = {"latents.digit": np.array(r[f"digit.{split}"][start:stop], dtype=np.int64)}
        for m in range(c.num_modalities):
            key = f"m{m}"
            bg = r[f"background.{key}"]
            height, width = bg.shape[:2]
            crop_x = rng.integers(0, width - CANVAS + 1, n)
            crop_y = rng.integers(0, height - CANVAS + 1, n)
            extra: dict[str, Any] = {}
            if self.scale is not None:
                extra = {
                    "scale": self.scale,
                    "digit_x": rng.integers(0, CANVAS - self.size + 1, n),
                    "digit_y": rng.integers(0, CANVAS - self.size + 1, n),
                }
                out[f"latents.{key}.digit_x"] = extra["digit_x"]
                out[f"latents.{key}.digit_y"] = extra["digit_y"]
            digits = np.asarray(images[indices[:, m]])
            out[key] = composite(bg, digits, crop_x, crop_y, threshold=THRESHOLD, **extra)
            out[f"latents.{key}.mnist_index"] = indices[:, m].astype(np.int64)
            out[f"latents.{key}.crop_x"] = crop_x
            out[f"latents.{key}.crop_y"] = crop_y
        return out


_CITATION_POLY = (
    "Sutter, Daunhawer, Vogt. Generalized Multimodal ELBO. ICLR 2021. "
    "Daunhawer. Multimodal representation learning under weak supervision. PhD thesis, ETH Zurich, 2023 (§4.1)."
)
_CITATION_TRANSLATED = (
    "Daunhawer, Sutter, Chin-Cheong, Palumbo, Vogt. On the Limitations of Multimodal VAEs. ICLR 2022. "
    "Daunhawer. Multimodal representation learning under weak supervision. PhD thesis, ETH Zurich, 2023 (§4.1.1)."
)


class PolyMNISTBuilder(_PolyMNISTBase):
    """PolyMNIST: ``M`` image modalities of the same digit over different background photos."""

    name = "polymnist"
    VERSION = "1.0.0"
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.0.0": "Initial release: seeded MoPoE recipe, full latents, scikit-image backgrounds, val split.",
    }
    CONFIG_CLASS = PolyMNISTConfig
    CONFIGS: ClassVar[dict[str, BuilderConfig]] = {
        "reference": PolyMNISTConfig(
            name="reference",
            description="MoPoE pairing (independent per-class permutations); 55k train / 5k val / 10k test.",
        ),
        "distinct": PolyMNISTConfig(
            name="distinct",
            description="No MNIST image twice in a tuple; 55k train / 5k val / 10k test.",
            pairing="distinct",
        ),
        "full-train": PolyMNISTConfig(
            name="full-train",
            description="The original layout: MoPoE pairing, 60k train / 10k test, no val split.",
            val_size=0,
            split_sizes=FrozenDict(train=60_000, test=10_000),
        ),
    }
    DEFAULT_CONFIG = "reference"
    DESCRIPTION = (
        "PolyMNIST (Sutter et al., ICLR 2021): tuples of M = 5 MNIST images of the same digit, each "
        "over a random 28×28 crop of its modality's background photo with the colours inverted where "
        "the digit pixel > 128. Shared content: the digit; modality-specific: handwriting and crop."
    )
    CITATION = _CITATION_POLY


class TranslatedPolyMNISTBuilder(_PolyMNISTBase):
    """Translated-PolyMNIST: PolyMNIST with downscaled digits at random, per-image offsets."""

    name = "translated_polymnist"
    VERSION = "1.0.0"
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.0.0": "Initial release: bilinear downscale, full offset range, recorded offsets.",
    }
    CONFIG_CLASS = TranslatedPolyMNISTConfig
    CONFIGS: ClassVar[dict[str, BuilderConfig]] = {
        "thesis": TranslatedPolyMNISTConfig(
            name="thesis", description="scale 0.7 (19-pixel digits, offsets 0–9), as the thesis §7.3.", scale=0.7,
        ),
        "paper": TranslatedPolyMNISTConfig(
            name="paper", description="scale 0.5 (14-pixel digits, offsets 0–14), as the ICLR 2022 paper.", scale=0.5,
        ),
    }
    DEFAULT_CONFIG = "thesis"
    DESCRIPTION = (
        "Translated-PolyMNIST (Daunhawer et al., ICLR 2022): PolyMNIST whose digits are downscaled "
        "(bilinear, factor `scale`) and placed at a uniform random offset independently in every "
        "image, so digit position is modality-specific."
    )
    CITATION = _CITATION_TRANSLATED
