"""Causal3DIdent-text: rendered scenes with causally dependent latents and biased captions.

The semi-synthetic benchmark of the misalignment paper (Cai et al. 2025, §5.3 and App. F;
research note ``misalignment_mpi3d.md`` §5): the Multimodal3DIdent scene at 128 × 128 with seven
**semantic** latents and a causal graph among them, three image-specific rotations, and captions
that mention a **selection** of the semantic latents, some of them **perturbed**.

Latents (Table 9; the reference's ``generate_latents.py``):

* ``shape`` ~ U{0..6}; ``x_pos``, ``y_pos`` ~ U{0, 1, 2}; ``s_pos`` ~ U[0, 1];
* ``color`` = ((x_pos + y_pos)/2 + U)/3 (x, y → colour);
* ``s_color`` = (s_pos + U)/2 (spotlight position → its colour);
* ``b_color`` = (s_pos + s_color + U)/3 (both → background colour);
* ``alpha``, ``beta``, ``gamma`` ~ U[0, 1] (image-specific); ``phrasing`` ~ U{0..4} (text-specific).

In the text, ``s_pos`` is one of five words by equal bins (northwest, northeast, center,
southwest, southeast: lossy on purpose), and each colour is the nearest name of a **fixed**
palette: Tableau for ``color``, CSS4 for ``s_color``, XKCD for ``b_color`` (matplotlib names).
Captions follow the paper's Table 11: five templates per selection setting.

Configs (Table 10): ``selection-k`` mentions the first ``k`` of (shape, x_pos, y_pos, s_pos,
color, s_color, b_color); ``perturbation-k`` mentions all seven and resamples the last ``k − 1``
of them in every caption (uniformly: discrete from their values, continuous from U[0, 1], the
paper's rule, which may redraw the true value). ``perturbation-1`` is the same data as
``selection-7``. Setting ``k`` of the perturbation list is row ``8 − k`` of the paper's printed
table (its perturbation column runs in reverse; the text and the code agree on this order).

Deviation from the reference code: it computes the background word of the unperturbed captions
from the *object* hue (research note §5.5); mmbench uses the background hue.

Example:
    >>> ds = mmbench.load("causal3dident_text/selection-4", split="train", split_sizes={"train": 2000})
    >>> ds[0]["text"]     # 'A cow is at the top-left, illuminated by a light from southeast.'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from mmbench.builders.scenes import X_WORDS, Y_WORDS, SceneBuilder, SceneConfig
from mmbench.core.bias import bias_columns
from mmbench.core.config import FrozenDict
from mmbench.core.latents import Latent, LatentSpec
from mmbench.errors import InvalidConfigError
from mmbench.rendering.colors import hsv_to_rgb, nearest_color, palette
from mmbench.rendering.scene.meshes import SHAPES
from mmbench.rendering.text import Templates

__all__ = ["ENCODING_SIZES", "SEMANTIC", "TEMPLATES", "Causal3DIdentConfig", "Causal3DIdentTextBuilder"]

#: The semantic latents, in the paper's order (a selection setting is a prefix of it).
SEMANTIC = ("shape", "x_pos", "y_pos", "s_pos", "color", "s_color", "b_color")
CONTINUOUS = ("s_pos", "color", "s_color", "b_color")
S_POS_WORDS = ("northwest", "northeast", "center", "southwest", "southeast")
#: The fixed palette of each colour latent.
PALETTE_OF = {"color": "tableau", "s_color": "css4", "b_color": "xkcd"}
#: Table 11: the five templates of each selection setting (1-based; 7 = every latent).
TEMPLATES: dict[int, tuple[str, ...]] = {
    1: ("A {shape} is visible.", "A {shape} is in the image.", "The image shows a {shape}.",
        "The picture is a {shape}.", "There is an object in the form of a {shape}."),
    2: ("A {shape} is visible, positioned at the {x_pos} of the image.", "A {shape} is at the {x_pos} of the image.",
        "The {x_pos} of the image shows a {shape}.", "At the {x_pos} of the picture is a {shape}.",
        "At the {x_pos} of the image, there is an object in the form of a {shape}."),
    4: ("A {shape} is visible, positioned at the {y_pos}-{x_pos}, with a spotlight shining from {s_pos}.",
        "A {shape} is at the {y_pos}-{x_pos}, illuminated by a light from {s_pos}.",
        "The {y_pos}-{x_pos} shows a {shape}, highlighted by a light from {s_pos}.",
        "At the {y_pos}-{x_pos} is a {shape}, under a light from {s_pos}.",
        "There is a {shape} at {y_pos}-{x_pos}, lit from {s_pos}."),
    5: ("A {shape} of {color} color is visible at {y_pos}-{x_pos}, with a spotlight from {s_pos}.",
        "A {color} {shape} is at {y_pos}-{x_pos}, lit from {s_pos}.",
        "The area {y_pos}-{x_pos} shows a {color} {shape}, under a light from {s_pos}.",
        "A {color} {shape} is illuminated at {y_pos}-{x_pos} from {s_pos}.",
        "A {color} object shaped like a {shape} is lit from {s_pos}."),
    6: ("A {color} {shape} is lit by a {s_color} spotlight from {s_pos}, at {y_pos}-{x_pos}.",
        "At {y_pos}-{x_pos}, a {color} {shape} is under a {s_color} light from {s_pos}.",
        "The {shape} is {color}, under a {s_color} light at {s_pos}.",
        "A {color} {shape} under a {s_color} spotlight at {s_pos}, located at {y_pos}-{x_pos}.",
        "A {color} {shape} stands under a {s_color} light from {s_pos}."),
    7: ("A {color} {shape} under a {s_color} spotlight at {s_pos}, with a {b_color} background, at {y_pos}-{x_pos}.",
        "At {y_pos}-{x_pos}, a {color} {shape} is under a {s_color} light from {s_pos}, against a {b_color} background.",
        "A {color} {shape} appears at {y_pos}-{x_pos}, lit by {s_color} from {s_pos}, with {b_color} background.",
        "The scene shows a {color} {shape} under {s_color} lighting at {s_pos}, with a {b_color} backdrop.",
        "A {color} object shaped like a {shape}, under a {s_color} spotlight at {s_pos}, with a {b_color} background."),
}
TEMPLATES[3] = tuple(t.replace("{x_pos}", "{y_pos}-{x_pos}") for t in TEMPLATES[2])
#: The paper's encoding size of each setting (App. F; hard-coded in its code).
ENCODING_SIZES = {"selection": (3, 3, 4, 5, 5, 6, 7), "perturbation": (7, 6, 5, 5, 4, 3, 3)}


def _default_sizes() -> FrozenDict:
    return FrozenDict(train=80_000, val=10_000, test=10_000)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Causal3DIdentConfig(SceneConfig):
    """Config of ``causal3dident_text`` (fields of :class:`~mmbench.builders.scenes.SceneConfig`):
    128 × 128 images, 80,000 / 10,000 / 10,000 examples, perturbed latents resampled uniformly
    (``prob`` 1, ``replacement`` ``any``) as the paper does."""

    split_sizes: Any = dataclasses.field(default_factory=_default_sizes)
    size: int = 128
    replacement: str = "any"

    def validate(self) -> None:
        super().validate()
        selected = self.selected
        if selected != SEMANTIC[: len(selected)]:
            raise InvalidConfigError(
                f"selection {list(selected)} has no caption templates: the paper's selections are prefixes of "
                f"{list(SEMANTIC)} (settings 1–7). Choose one of {[list(SEMANTIC[:k]) for k in range(1, 8)]}."
            )
        if self.perturbed and len(selected) != len(SEMANTIC):
            raise InvalidConfigError(
                "A perturbation needs the full selection (the paper's perturbation settings mention all seven latents); "
                f"got selection {list(selected)}."
            )

    def semantic_latents(self) -> tuple[str, ...]:
        return SEMANTIC


def _named_configs() -> dict[str, Causal3DIdentConfig]:
    out = {}
    for k in range(1, 8):
        out[f"selection-{k}"] = Causal3DIdentConfig(
            name=f"selection-{k}", selection=SEMANTIC[:k],
            description=f"Captions mention {', '.join(SEMANTIC[:k])} (Table 10, selection setting {k}; encoding size "
                        f"{ENCODING_SIZES['selection'][k - 1]}).")
    for k in range(1, 8):
        perturbed = SEMANTIC[len(SEMANTIC) - (k - 1):] if k > 1 else ()
        out[f"perturbation-{k}"] = Causal3DIdentConfig(
            name=f"perturbation-{k}", perturbation=perturbed, prob=1.0 if perturbed else 0.0,
            description=f"All seven mentioned, {', '.join(perturbed) or 'none'} resampled (Table 10, perturbation setting {k}; "
                        f"encoding size {ENCODING_SIZES['perturbation'][k - 1]}).")
    return out


def s_pos_word(s_pos: np.ndarray) -> np.ndarray:
    """The five equal bins of the spotlight position (1.0 falls in the last)."""
    return np.minimum((np.asarray(s_pos) * 5).astype(np.int64), 4)


def colour_word(hue: np.ndarray, latent: str) -> np.ndarray:
    """Index into the fixed palette of ``latent`` of the nearest colour to each hue."""
    return nearest_color(hsv_to_rgb(np.asarray(hue, dtype=np.float64), 1.0, 1.0), PALETTE_OF[latent])


class Causal3DIdentTextBuilder(SceneBuilder):
    """Causal3DIdent image–caption pairs (see the module docstring)."""

    name = "causal3dident_text"
    VERSION = "1.0.0"
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.0.0": "Initial version: Table 9 latents, Table 10 settings, Table 11 templates, raster renderer.",
    }
    CONFIG_CLASS = Causal3DIdentConfig
    CONFIGS: ClassVar[dict[str, Causal3DIdentConfig]] = _named_configs()
    DEFAULT_CONFIG = "selection-7"
    DESCRIPTION = "Rendered scenes with causally dependent latents and selection/perturbation-biased captions."
    CITATION = "Cai et al. Negate or Embrace: On How Misalignment Shapes Multimodal Representation Learning. 2025."
    STORE = "causal3dident/images"

    config: Causal3DIdentConfig

    def latent_spec(self) -> LatentSpec:
        c = self.config
        desc = {"shape": "object shape", "x_pos": "object x-position", "y_pos": "object y-position",
                "s_pos": "spotlight position", "color": "object hue ← x_pos, y_pos", "s_color": "spotlight hue ← s_pos",
                "b_color": "background hue ← s_pos, s_color"}
        support: dict[str, Any] = {"shape": SHAPES, "x_pos": X_WORDS, "y_pos": Y_WORDS}
        lats = [Latent(name=name, kind="categorical" if name in support else "continuous", support=support.get(name, (0.0, 1.0)),
                       **c.semantic_role(name), description=desc[name]) for name in SEMANTIC]
        lats += [Latent(name=n, kind="continuous", support=(0.0, 1.0), role="specific", scope="image",
                        description=f"object rotation {n}") for n in ("alpha", "beta", "gamma")]
        lats.append(Latent(name="phrasing", kind="categorical", support=self.templates().templates, role="specific",
                           scope="text", description="caption template"))
        return LatentSpec(tuple(lats))

    def sample_scene_latents(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        shape = rng.integers(0, len(SHAPES), n)
        x, y = rng.integers(0, 3, n), rng.integers(0, 3, n)
        s_pos = rng.random(n)
        color = ((x + y) / 2 + rng.random(n)) / 3
        s_color = (s_pos + rng.random(n)) / 2
        b_color = (s_pos + s_color + rng.random(n)) / 3
        rot = rng.random((3, n))
        return {"shape": shape, "x_pos": x, "y_pos": y, "color": color, "alpha": rot[0], "beta": rot[1],
                "gamma": rot[2], "s_pos": s_pos, "s_color": s_color, "b_color": b_color}

    def templates(self) -> Templates:
        words = {"shape": SHAPES, "x_pos": X_WORDS, "y_pos": Y_WORDS, "s_pos": S_POS_WORDS,
                 **{k: palette(p).names for k, p in PALETTE_OF.items()}}
        texts = TEMPLATES[len(self.config.selected)]
        used = [f for f in words if any("{" + f + "}" in t for t in texts)]
        return Templates(texts, {f: words[f] for f in used}, columns={f: f"word.{f}" for f in used})

    def text_values(self, latents: Mapping[str, np.ndarray], rng: np.random.Generator) -> dict[str, Any]:
        c = self.config
        n = len(latents["shape"])
        phrasing = rng.integers(0, 5, n)
        values = {k: latents[k] for k in SEMANTIC}
        # a continuous latent is resampled from U[0, 1]: its "noise" is the new value minus the old
        noise = {k: (rng.random(n) - values[k]).astype(np.float32) for k in c.perturbed if k in CONTINUOUS}
        shown, flags = self.biased_values(values, rng=rng, num_classes={"shape": 7, "x_pos": 3, "y_pos": 3}, noise=noise)
        if c.perturbed:
            shown = {k: np.clip(v, 0.0, 1.0).astype(v.dtype) if k in CONTINUOUS else v for k, v in shown.items()}
        fields = {}
        for k, v in shown.items():
            fields[f"word.{k}"] = s_pos_word(v) if k == "s_pos" else colour_word(v, k) if k in PALETTE_OF else v
        out: dict[str, Any] = {"latents.phrasing": phrasing, "fields": fields}
        out.update(bias_columns(shown, flags))
        return out
