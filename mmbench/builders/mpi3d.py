"""MPI3D-Complex with text: the real robot-arm photographs paired with biased captions.

The real-image benchmark of the misalignment paper (Cai et al. 2025, §5.2 and App. E). The images
are the 460,800 photographs of MPI3D-Complex (Gondal et al. 2019), one per combination of seven
discrete factors: ``color`` (4), ``shape`` (4), ``size`` (2), ``camera`` height (3),
``background`` (3) — the semantic factors, which captions may mention — and ``horizontal`` /
``vertical`` arm position (40 each), which are image-specific. Each image gets one caption from a
template (the text-specific latent ``template``, uniform over 3) that mentions a **selection** of
the semantic factors, some of which a **perturbation** may misreport:

* ``selection-k`` (k = 1…5): the captions mention the first k of (color, shape, size, camera,
  background), nothing perturbed (Table 7, left);
* ``perturbation-k``: all five mentioned; (∅, {background}, {camera, background}, {size, camera,
  background}, {shape, size, camera, background}) misreported, each with probability 0.9 per
  caption (Table 7, right). ``perturbation-1`` is the same data as ``selection-5``.

Any selection and perturbation set and probability (one number, or one per factor) can be given
as overrides. A misreported value is drawn from the factor's *other* values (``replacement="other"``,
the paper's wording: the text is wrong with probability p) or from *all* its values
(``replacement="any"``, the reference code: wrong with probability p·(1 − 1/K)); the resulting rate of
every factor is recorded as ``extra.misalignment`` in ``dataset_info.json``.

Columns: ``image`` (3×64×64 uint8, from a shared store: one copy of the pixels for every text
config), ``text`` (the caption), ``tokens`` (ragged word ids; the vocabulary artifact
``vocabulary.json`` is built from the train split's captions with NLTK's word tokenizer),
``latents.<factor>`` (the image's true factors and the template), ``text.<factor>`` (the value each
mentioned factor has in the caption) and ``perturbed.<factor>`` (whether it was misreported).

Wording: ``paper`` (default) uses the paper's content words (Table 6: "yellow", "coffee-cup",
"small", "top", "purple") in its templates (Table 8, with its missing space in a setting-4 template
restored); ``reference`` uses the reference code's phrases ("small size", "top view", "in a purple
background", and " beer-cup" with its leading space). A selection that is not one of the paper's
prefixes uses three generic templates that list the factors ("An object with color yellow and
camera top.").

Split: the reference code's: the archive's rows shuffled with ``RandomState(split_seed = 42)``,
the first 90 % (414,720) are ``train``, the rest is halved in shuffled order into ``val`` (where
probes are fitted) and ``test`` (where they are scored), 23,040 each. ``split_sizes`` smaller than
a pool take its first rows. The image split depends only on the archive and ``split_seed``, so
every text config pairs the same images; each split is stored in ascending archive order.

Example:
    >>> ds = mmbench.load("mpi3d_complex_text/perturbation-3", split="train", data_dir="~/data/mpi3d")
    >>> ex = ds[0]   # ex["image"]: (3, 64, 64) uint8; ex["text"]: 'A small coffee-cup in yellow, ...'
    >>> ds.info.extra["misalignment"]["effective_rate"]
    {'color': 0.0, 'shape': 0.0, 'size': 0.0, 'camera': 0.9, 'background': 0.9}
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from mmbench.core.bias import REPLACE_RULES, TextBias, bias_columns
from mmbench.core.builder import Builder, Feature, Modality
from mmbench.core.config import BuilderConfig, FrozenDict, check_choice, check_int, check_number
from mmbench.core.latents import Latent, LatentSpec
from mmbench.core.storage import Store
from mmbench.errors import InvalidConfigError, MMBenchError
from mmbench.rendering.text import Templates, Vocabulary
from mmbench.sources import mpi3d as src

__all__ = [
    "IMAGE_SPECIFIC",
    "SEMANTIC",
    "TEMPLATES",
    "WORDS",
    "MPI3DComplexTextBuilder",
    "MPI3DTextConfig",
    "sample_grids",
    "split_pools",
    "split_sizes_for",
]

SEMANTIC = src.FACTORS[:5]
IMAGE_SPECIFIC = src.FACTORS[5:]
SPLITS = ("train", "val", "test")
WORDINGS = ("paper", "reference")
VOCABULARY = "vocabulary.json"
#: Value names of the official README (also the latents' category names).
VALUE_NAMES: dict[str, tuple[str, ...]] = {
    "color": ("yellow", "green", "olive", "red"),
    "shape": ("coffee-cup", "tennis-ball", "croissant", "beer-cup"),
    "size": ("small", "large"),
    "camera": ("top", "center", "bottom"),
    "background": ("purple", "sea-green", "salmon"),
}
#: Content words: the paper's (Table 6) and the reference code's phrases (§4.7 of the notes).
WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "paper": VALUE_NAMES,
    "reference": {
        "color": ("yellow", "green", "olive", "red"),
        "shape": ("coffee-cup", "tennis-ball", "croissant", " beer-cup"),
        "size": ("small size", "large size"),
        "camera": ("top view", "center view", "bottom view"),
        "background": ("in a purple background", "in a sea-green background", "in a salmon background"),
    },
}
#: Table 8: three templates per selection level k (the first k factors). The paper's "{ size}"
#: and "{cam.}" slots are written {size} and {camera}; the paper's "A { size}{shape} in ..." of
#: level 4 lacks a space, which the reference code has (restored here).
TEMPLATES: tuple[tuple[str, str, str], ...] = (
    ("An object colored {color}.", "It has a {color} appearance.", "Something with {color}."),
    ("A {shape} that is {color}.", "The {color} {shape}.", "An object shaped like a {shape}, colored {color}."),
    ("A {size} {shape} in {color}.", "{color}, {size}, {shape}.",
     "The object is {size}, shaped as a {shape}, and colored {color}."),
    ("A {size} {shape} in {color}, seen from {camera}.", "Viewed from {camera}, a {color}, {size} {shape}.",
     "A {size} {shape} with {color}, perspective: {camera}."),
    ("A {size} {shape} in {color}, viewed from {camera}, {background}.",
     "From {camera}, you see a {color}, {size} {shape}, {background}.",
     "A {size} {shape}, {color}, placed {background}, observed from {camera}."),
)
_GENERIC = ("An object with {listing}.", "The image shows {listing}.", "In the picture: {listing}.")
#: Table 7 (p = 0.9): perturbation-k misreports these factors, with all five mentioned.
PERTURBATION_SETS: tuple[tuple[str, ...], ...] = (
    (), ("background",), ("camera", "background"), ("size", "camera", "background"),
    ("shape", "size", "camera", "background"),
)
PAPER_PROB = 0.9
#: Bytes of pixels converted per store shard (the conversion holds about twice this in memory).
STORE_SHARD_BYTES = 48 << 20


def split_pools(num_images: int, *, train_fraction: float = 0.9, split_seed: int = 42) -> dict[str, np.ndarray]:
    """Archive rows of the ``train``, ``val`` and ``test`` pools, in shuffled order.

    The reference code's split: ``RandomState(split_seed)`` shuffles the rows (a legacy generator:
    its stream is frozen, so the split is the reference's on every numpy); the first
    ``int(train_fraction · N)`` are train, the rest is halved in that order into val and test.
    """
    order = np.random.RandomState(split_seed).permutation(num_images)
    n_train = int(train_fraction * num_images)
    half = (num_images - n_train) // 2
    return {"train": order[:n_train], "val": order[n_train : n_train + half], "test": order[n_train + half :]}


def split_sizes_for(num_images: int | str | Any, *, train_fraction: float = 0.9) -> dict[str, int]:
    """The whole pools' sizes for an archive of ``num_images`` rows, or of the fake at a path.

    Example:
        >>> split_sizes_for(460_800)
        {'train': 414720, 'val': 23040, 'test': 23040}
    """
    if not isinstance(num_images, int | np.integer):
        num_images = src.archive_spec(num_images).num_images
    n_train = int(train_fraction * int(num_images))
    half = (int(num_images) - n_train) // 2
    return {"train": n_train, "val": half, "test": int(num_images) - n_train - half}


def _default_sizes() -> FrozenDict:
    return FrozenDict(split_sizes_for(int(np.prod(src.FACTOR_SIZES))))


@dataclasses.dataclass(frozen=True, kw_only=True)
class MPI3DTextConfig(BuilderConfig):
    """Config of ``mpi3d_complex_text``.

    Args:
        selection: the semantic factors the captions mention (names, or the paper's θ index over
            color, shape, size, camera, background); ``None`` = all five. Stored as names.
        perturbation: the mentioned factors the captions may misreport (a proper subset of the
            selection; names or the paper's ρ index).
        perturb_prob: probability that a perturbable factor is misreported in a caption: one
            number, or ``{factor: p}`` for each perturbed factor.
        replacement: ``"other"`` (a different value: misreported with probability p) or ``"any"`` (a
            value drawn from all, as the reference code: p·(1 − 1/K)).
        wording: ``"paper"`` (content words of Table 6) or ``"reference"`` (the code's phrases).
        train_fraction: the share of the archive in the train pool (the rest: val and test halves).
        split_seed: seed of the image split (``RandomState``; 42 is the reference code's).
        split_sizes: examples per split (≤ the pools: 414,720 / 23,040 / 23,040 for the real
            archive; :func:`split_sizes_for` gives them for any archive).
        shard_size: captions per shard (part of the data: each shard has its own generator).
    """

    split_sizes: Any = dataclasses.field(default_factory=_default_sizes)
    shard_size: int | None = 50_000
    selection: Any = None
    perturbation: Any = ()
    perturb_prob: Any = PAPER_PROB
    replacement: str = "other"
    wording: str = "paper"
    train_fraction: float = 0.9
    split_seed: int = 42

    def validate(self) -> None:
        check_choice("replacement", self.replacement, REPLACE_RULES)
        check_choice("wording", self.wording, WORDINGS)
        check_number("train_fraction", self.train_fraction, low=0.0, high=1.0, open_low=True)
        check_int("split_seed", self.split_seed, low=0, high=2**32 - 1)
        unknown = sorted(set(self.split_sizes) - set(SPLITS))
        if unknown or not self.split_sizes.get("train"):
            raise InvalidConfigError(
                f"MPI3D-Complex splits are {list(SPLITS)} and 'train' is needed (the token vocabulary is built "
                f"from it); got split_sizes={dict(self.split_sizes)}."
            )
        selected, perturbed = self._resolve_sets()
        object.__setattr__(self, "selection", selected)
        object.__setattr__(self, "perturbation", perturbed)
        object.__setattr__(self, "perturb_prob", self._resolve_prob(perturbed))

    def _resolve_sets(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        for field in ("selection", "perturbation"):
            value = getattr(self, field)
            names = (value,) if isinstance(value, str) else value if isinstance(value, tuple) else ()
            specific = [n for n in names if n in IMAGE_SPECIFIC]
            if specific:
                raise InvalidConfigError(
                    f"{field} names {specific}, which are image-specific (the arm position): captions never mention "
                    f"them. Choose from the semantic factors {list(SEMANTIC)}."
                )
        try:
            bias = TextBias(selection=self.selection, perturbation=self.perturbation, prob=0.0, replace=self.replacement)
            return bias.resolve(SEMANTIC)
        except InvalidConfigError as exc:
            raise _naming_factors(exc) from None

    def _resolve_prob(self, perturbed: tuple[str, ...]) -> Any:
        """One probability (float) or ``{factor: p}`` for exactly the perturbed factors."""
        p = self.perturb_prob
        try:
            if not isinstance(p, Mapping):
                return check_number("perturb_prob", p, low=0.0, high=1.0) + 0.0
            probs = {k: check_number(f"perturb_prob[{k!r}]", p[k], low=0.0, high=1.0) + 0.0 for k in p}
        except InvalidConfigError as exc:
            raise _naming_factors(exc, f"Give a probability in [0, 1]: one number for all the perturbed factors "
                                       f"{list(perturbed)}, or {{factor: p}} for each of them.") from None
        extra = sorted(set(p) - set(perturbed))
        missing = sorted(set(perturbed) - set(p))
        if extra or missing:
            raise InvalidConfigError(
                f"perturb_prob gives probabilities for {sorted(p)}, but the perturbed factors are {list(perturbed)}"
                f"{f' ({extra} are not perturbed)' if extra else ''}{f' ({missing} have none)' if missing else ''}. "
                f"Give one number, or one per perturbed factor. The semantic factors: {list(SEMANTIC)}."
            )
        return FrozenDict({k: probs[k] for k in perturbed})

    def prob_of(self, factor: str) -> float:
        """The misreporting probability of a perturbed factor."""
        p = self.perturb_prob
        return float(p[factor]) if isinstance(p, Mapping) else float(p)

    @property
    def unbiased(self) -> tuple[str, ...]:
        """Mentioned factors that are never misreported (p = 0 counts as never)."""
        return tuple(f for f in self.selection if f not in self.perturbation or self.prob_of(f) == 0.0)

    def effective_rates(self, num_classes: Mapping[str, int]) -> dict[str, float | None]:
        """P(caption value ≠ image value) per semantic factor; ``None`` where the caption omits it."""
        out: dict[str, float | None] = {}
        for f in SEMANTIC:
            if f not in self.selection:
                out[f] = None
            elif f not in self.perturbation:
                out[f] = 0.0
            else:
                k = int(num_classes[f])
                p = self.prob_of(f)
                out[f] = p if self.replacement == "other" else p * (1.0 - 1.0 / k)
        return out


def _naming_factors(exc: InvalidConfigError, hint: str = "") -> InvalidConfigError:
    """``exc`` with ``hint`` and the valid (semantic) factors appended, unless it names them already."""
    msg = f"{exc} {hint}".rstrip()
    if str(list(SEMANTIC)) not in msg:
        msg += f" The semantic factors (which captions may mention and misreport): {list(SEMANTIC)}."
    return InvalidConfigError(msg)


def _configs() -> dict[str, MPI3DTextConfig]:
    configs = {}
    for k in range(1, 6):
        name = f"selection-{k}"
        configs[name] = MPI3DTextConfig(
            name=name, selection=SEMANTIC[:k],
            description=f"Table 7 selection setting {k}: the captions mention {', '.join(SEMANTIC[:k])}; nothing perturbed.",
        )
    for k, perturbed in enumerate(PERTURBATION_SETS, 1):
        name = f"perturbation-{k}"
        what = f"{', '.join(perturbed)} misreported with p = 0.9" if perturbed else "nothing misreported (the data of selection-5)"
        configs[name] = MPI3DTextConfig(
            name=name, perturbation=perturbed,
            description=f"Table 7 perturbation setting {k}: all five factors mentioned; {what}.",
        )
    return configs


class MPI3DComplexTextBuilder(Builder):
    """MPI3D-Complex photographs with selection- and perturbation-biased captions (see the module)."""

    name = "mpi3d_complex_text"
    VERSION = "1.0.0"
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.0.0": "Initial release: Table 7 settings, paper / reference wording, reference image split, shared image store.",
    }
    CONFIG_CLASS = MPI3DTextConfig
    CONFIGS: ClassVar[dict[str, BuilderConfig]] = _configs()
    DEFAULT_CONFIG = "selection-5"
    DESCRIPTION = (
        "MPI3D-Complex with text (Cai et al. 2025, §5.2): 460,800 real photographs of a robot arm holding an "
        "object, seven discrete factors, each paired with a template caption that mentions a selection of the "
        "five semantic factors and may misreport a perturbed subset of them."
    )
    CITATION = (
        "Cai, Wang, Liu, Zhang, et al. Negate or Embrace: On How Misalignment Shapes Multimodal Representation "
        "Learning. 2025. Images: Gondal et al. On the Transfer of Inductive Bias from Simulation to the Real World: "
        "a New Disentanglement Dataset. NeurIPS 2019 (CC BY 4.0)."
    )
    HOMEPAGE = src.HOMEPAGE

    config: MPI3DTextConfig

    # ------------------------------------------------------------------ the archive
    @functools.cached_property
    def archive(self) -> src.ArchiveSpec:
        """Factor sizes and image size of the archive in use (the official one's unless a fake)."""
        return src.archive_spec(self.data_dir)

    @property
    def config_id(self) -> str:
        # A fake archive gives the same config: its builds get a cache entry of their own.
        tag = self.archive.tag
        return f"{super().config_id}-{tag}" if tag else super().config_id

    def resolve_inputs(self) -> dict[str, Any]:
        return {"mpi3d": src.resolve_archive(self.data_dir, self.cache_dir)}

    @property
    def num_classes(self) -> dict[str, int]:
        return dict(zip(src.FACTORS, self.archive.factor_sizes, strict=True))

    # ------------------------------------------------------------------ schema
    def modalities(self) -> dict[str, Modality]:
        s = self.archive.image_size
        return {
            "image": Modality("image", "image", (3, s, s), "uint8", "photograph (channels first)", store="images"),
            "text": Modality("text", "text", (), "str", "caption"),
            "tokens": Modality("tokens", "tokens", (), "int32", f"word ids of the caption (artifact {VOCABULARY}), ending in {{eos}}"),
        }

    def latent_spec(self) -> LatentSpec:
        c = self.config
        lats = []
        for f in SEMANTIC:
            values = VALUE_NAMES[f][: self.num_classes[f]]
            if f not in c.selection:
                role, scope, what = "specific", "image", "not mentioned by the captions"
            elif f in c.unbiased:
                role, scope, what = "content", "shared", "mentioned, never misreported"
            else:
                role, scope, what = "style", "shared", f"mentioned, misreported with p = {c.prob_of(f)}"
            lats.append(Latent(name=f, kind="categorical", support=values, role=role, scope=scope,
                               description=f"{f} of the photographed scene ({what})"))
        for f in IMAGE_SPECIFIC:
            lats.append(Latent(name=f, kind="discrete", support=(0, self.num_classes[f] - 1), role="specific",
                               scope="image", description=f"{f} position of the robot arm (image-specific)"))
        lats.append(Latent(name="template", kind="categorical", support=self.templates.templates, role="specific",
                           scope="text", description="which caption template (text-specific, uniform)"))
        return LatentSpec(tuple(lats))

    def extra_features(self) -> dict[str, Feature]:
        c = self.config
        feats = {f"text.{f}": Feature((), "int64") for f in c.selection}
        feats.update({f"perturbed.{f}": Feature((), "bool") for f in c.perturbation})
        return feats

    def expected_identifiable(self) -> tuple[str, ...]:
        return self.config.unbiased

    def extra_info(self) -> dict[str, Any]:
        c = self.config
        return {
            "misalignment": {
                "selection": list(c.selection),
                "perturbation": list(c.perturbation),
                "perturb_prob": {f: c.prob_of(f) for f in c.perturbation},
                "replacement": c.replacement,
                "effective_rate": c.effective_rates(self.num_classes),
                "definition": ("P(text.<factor> != latents.<factor>) per caption: p for replacement='other', "
                               "p·(1 − 1/K) for replacement='any'; null: the captions omit the factor."),
            },
            "wording": c.wording,
            "split": {"split_seed": c.split_seed, "train_fraction": c.train_fraction,
                      "pools": split_sizes_for(self.archive.num_images, train_fraction=c.train_fraction)},
        }

    # ------------------------------------------------------------------ captions
    @functools.cached_property
    def templates(self) -> Templates:
        """The three templates of this selection, with the content words of this wording."""
        c = self.config
        sel = c.selection
        if sel == SEMANTIC[: len(sel)]:
            texts: tuple[str, ...] = TEMPLATES[len(sel) - 1]
        else:
            listing = ", ".join(f"{f} {{{f}}}" for f in sel[:-1])
            listing = f"{listing} and {sel[-1]} {{{sel[-1]}}}" if listing else f"{sel[-1]} {{{sel[-1]}}}"
            texts = tuple(t.replace("{listing}", listing) for t in _GENERIC)
        words = {f: WORDS[c.wording][f][: self.num_classes[f]] for f in sel}
        return Templates(texts, words, columns={f: f"text.{f}" for f in sel})

    @functools.cached_property
    def pools(self) -> dict[str, np.ndarray]:
        c = self.config
        return split_pools(self.archive.num_images, train_fraction=c.train_fraction, split_seed=c.split_seed)

    def split_rows(self, split: str) -> np.ndarray:
        """Archive rows of ``split`` (the first ``split_sizes[split]`` of its pool), ascending."""
        size = self.config.split_sizes[self.check_split(split)]
        return np.sort(self.pools[split][:size])

    def _check_sizes(self) -> None:
        c = self.config
        pools = split_sizes_for(self.archive.num_images, train_fraction=c.train_fraction)
        too_big = {s: n for s, n in c.split_sizes.items() if n > pools[s]}
        if too_big:
            which = "a fake archive (per its manifest)" if self.archive.fake else "the MPI3D-Complex archive"
            raise InvalidConfigError(
                f"split_sizes {too_big} exceed the pools of {which} of {self.archive.num_images} images with "
                f"train_fraction={c.train_fraction}: {pools}. Pass split_sizes={pools} (all of them) or smaller sizes."
            )

    def prepare(self) -> dict[str, np.ndarray]:
        self._check_sizes()  # the first step of every build: wrong sizes fail before any work
        return {}

    def text_columns(self, split: str, start: int, stop: int, *, rng: np.random.Generator) -> dict[str, Any]:
        """Rows ``[start, stop)`` of ``split`` without the tokens: archive rows, latents, text-side
        values, perturbation flags and captions (the first draws of the shard's generator)."""
        c = self.config
        rows = self.split_rows(split)[start:stop]
        true = src.factor_values(rows, self.archive.factor_sizes)
        shown = {f: true[f] for f in c.selection}
        flags = {}
        for f in c.perturbation:  # one TextBias per factor: its own p; the draws of one bias over all
            bias = TextBias(selection=c.selection, perturbation=(f,), prob=c.prob_of(f), replace=c.replacement)
            shown, flag = bias.apply(shown, SEMANTIC, rng=rng, num_classes=self.num_classes)
            flags[f] = flag[f]
        template = rng.integers(0, 3, len(rows))
        captions = self.templates.fill({f"text.{f}": v for f, v in shown.items()}, template=template)
        out: dict[str, Any] = {"image": rows, "text": captions}
        out.update({f"latents.{f}": v for f, v in true.items()})
        out["latents.template"] = template
        out.update(bias_columns(shown, flags))
        return out

    def make_artifacts(self) -> dict[str, bytes]:
        captions: list[str] = []
        for k, (start, stop) in enumerate(self.shard_bounds("train")):
            captions += self.text_columns("train", start, stop, rng=self.shard_rng("train", k))["text"]
        return {VOCABULARY: Vocabulary.build(captions, tokenizer="word", order="sorted").to_json()}

    @functools.cached_property
    def vocabulary(self) -> Vocabulary:
        return Vocabulary.from_json(self.artifact(VOCABULARY))

    def generate(self, split: str, start: int, stop: int, *, rng: np.random.Generator) -> dict[str, Any]:
        out = self.text_columns(split, start, stop, rng=rng)
        out["tokens"] = self.vocabulary.encode(out["text"])  # a Ragged of int32 ids, each ending in {eos}
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("pools", None)  # 3.7 MB of row order: workers recompute it in milliseconds
        return state

    # ------------------------------------------------------------------ the shared image store
    def stores(self) -> dict[str, Store]:
        s = self.archive.image_size
        row_bytes = 3 * s * s
        key = {"archive_sha256": self.inputs["mpi3d"]["sha256"], "image_shape": [3, s, s], "layout": "CHW"}
        feats = {"image": Feature((3, s, s), "uint8")}
        rows = max(1, STORE_SHARD_BYTES // row_bytes)
        return {"images": Store("mpi3d_complex/images", key, self.archive.num_images, feats, shard_rows=rows)}

    def generate_store(self, store: str, start: int, stop: int, *, rng: np.random.Generator) -> dict[str, np.ndarray]:
        pixels = src.read_images(self.inputs["mpi3d"], start, stop)  # (n, H, W, 3), read from disk
        return {"image": np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))}

    def sampler(self, *args: Any, **kwargs: Any) -> Any:
        raise MMBenchError(
            f"{self.name} is a fixed set of photographs: it has no generative sampler. Iterate a built split "
            "instead: mmbench.load(...).batches(256, shuffle=True) or .dataloader(256, shuffle=True)."
        )


def sample_grids(out_dir: Any, *, split: str = "test", num: int = 8, configs: Any = None, **load_kwargs: Any) -> list[Any]:
    """Write ``<out_dir>/<config>.png`` for every named config: images with their captions.

    ``load_kwargs`` go to :func:`mmbench.load` (``data_dir``, ``cache_dir``, overrides); the
    examples are spread evenly over the split. Returns the paths.

    Example:
        >>> sample_grids("cards/mpi3d_complex_text", data_dir="~/data/mpi3d")
    """
    from pathlib import Path

    import mmbench
    from mmbench.rendering.grid import save_grid

    out = Path(out_dir)
    paths = []
    for name in configs or MPI3DComplexTextBuilder.CONFIGS:
        ds = mmbench.load(f"{MPI3DComplexTextBuilder.name}/{name}", split=split, **load_kwargs)
        paths.append(save_grid(ds, out / f"{name}.png", num=num, spread=True))
    return paths
