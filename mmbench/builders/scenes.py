"""What the rendered 3DIdent datasets share: scene configs, the image store, captions and tokens.

Multimodal3DIdent and Causal3DIdent-text pair a rendered image with a caption. Their builders
differ in how the latents are sampled and how the text describes them; the rest is here:

* :class:`SceneConfig` — image size, rendering backend, mesh set, supersampling, shadows, and
  the text bias (selection, perturbation, probability, replacement rule);
* :class:`SceneBuilder` — the images live in a **shared store** with the image latents (the
  store key holds everything that changes a pixel and nothing about the text), so configs that
  differ only in their captions reuse one render; a split row ``i`` is store row
  ``offset(split) + i``. The captions, their latents, the bias flags and the tokens are made
  per split shard from the shard's generator; the vocabulary (train split only) and the mesh
  set's provenance are artifacts.

The store is built shard by shard (each shard of ``render_shard_size`` scenes, or ~32 MB of
pixels, draws its latents from its own generator), resumable after a crash like every build.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import json
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from mmbench.core.bias import REPLACE_RULES, TextBias
from mmbench.core.builder import Builder, Feature, Modality
from mmbench.core.config import BuilderConfig, check_choice, check_int, check_number
from mmbench.core.storage import Store
from mmbench.errors import ExecutorError, InvalidConfigError, MMBenchError
from mmbench.rendering.scene.meshes import (
    BUILTIN_MESHES,
    MESH_SETS,
    SHAPES,
    load_mesh_set,
    mesh_set_digest,
    mesh_set_key,
    normalise_mesh_spec,
)
from mmbench.rendering.scene.renderer import BACKENDS, SceneRenderer
from mmbench.rendering.text import Templates, Vocabulary
from mmbench.sources import shapes as shapes_src

__all__ = ["RENDERER_REVISION", "SceneBuilder", "SceneConfig"]

#: Bumped whenever the raster backend's pixels change (it is part of every image store's key).
RENDERER_REVISION = 1
VOCABULARY = "vocabulary.json"
MESHES = "meshes.json"
STORE_SHARD_BYTES = 32 * 2**20
#: The scene fields and the latent names of the 3DIdent datasets (the misalignment paper's).
SCENE_COLUMNS = {
    "shape": "shape", "x": "x_pos", "y": "y_pos", "alpha": "alpha", "beta": "beta", "gamma": "gamma",
    "object_hue": "color", "spot_pos": "s_pos", "spot_hue": "s_color", "background_hue": "b_color",
}
X_WORDS = ("left", "center", "right")
Y_WORDS = ("top", "mid", "bottom")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SceneConfig(BuilderConfig):
    """Config fields shared by the rendered 3DIdent datasets.

    Args:
        size: images are ``size × size`` (224 in Multimodal3DIdent, 128 in Causal3DIdent).
        backend: rendering backend: ``raster`` (built in) or ``cycles`` (Blender's Cycles in a
            separate Blender interpreter: ``mmbench blender setup``; see
            :mod:`mmbench.rendering.scene.cycles`).
        meshes: mesh set: ``builtin``, ``procedural``, ``tiny`` or a directory (see
            :mod:`mmbench.rendering.scene.meshes`); it enters the fingerprint by content.
        antialias: supersampling factor of the raster backend (1 = none).
        shadows: the object's shadow from the spotlight.
        samples: Cycles samples per pixel (``cycles`` only; the reference used 512).
        denoise: denoise the Cycles render (``cycles`` only; the reference did).
        render_shard_size: scenes per image-store shard (``None``: ~32 MB of pixels). Part of
            the images: each store shard draws its latents from its own generator.
        selection: the semantic latents the captions mention (``None``: all), or the paper's θ index.
        perturbation: the latents the captions may misreport (a proper subset of the selection).
        prob: probability of misreporting each perturbed latent, per caption.
        replacement: ``other`` (a different value) or ``any`` (uniform over all values) for
            categorical latents; continuous ones are shifted (see the builder).
        shard_size: captions per split shard (``None``: sized by bytes).
    """

    size: int = 224
    backend: str = "raster"
    meshes: str = "builtin"
    antialias: int = 1
    shadows: bool = True
    samples: int = 64
    denoise: bool = True
    render_shard_size: int | None = None
    selection: Any = None
    perturbation: Any = ()
    prob: float = 0.0
    replacement: str = "other"
    shard_size: int | None = None

    def validate(self) -> None:
        check_int("size", self.size, low=16, high=2048)
        check_choice("backend", self.backend, BACKENDS)
        object.__setattr__(self, "meshes", normalise_mesh_spec(self.meshes))
        check_int("antialias", self.antialias, low=1, high=8)
        if not isinstance(self.shadows, bool):
            raise InvalidConfigError(f"shadows must be true or false, got {self.shadows!r}.")
        check_int("samples", self.samples, low=1, high=65536)
        if not isinstance(self.denoise, bool):
            raise InvalidConfigError(f"denoise must be true or false, got {self.denoise!r}.")
        if self.render_shard_size is not None:
            check_int("render_shard_size", self.render_shard_size, low=1)
        check_number("prob", self.prob, low=0.0, high=1.0)
        check_choice("replacement", self.replacement, REPLACE_RULES)
        self.bias.resolve(self.semantic_latents())  # unknown names, non-subsets: fail at config time

    def semantic_latents(self) -> tuple[str, ...]:
        """The latents a caption may mention, in the dataset's order."""
        raise NotImplementedError

    @property
    def bias(self) -> TextBias:
        return TextBias(selection=self.selection, perturbation=self.perturbation, prob=self.prob, replace=self.replacement)

    @property
    def selected(self) -> tuple[str, ...]:
        return self.bias.resolve(self.semantic_latents())[0]

    @property
    def perturbed(self) -> tuple[str, ...]:
        return self.bias.resolve(self.semantic_latents())[1] if self.prob > 0 else ()

    def semantic_role(self, name: str, default: str = "content") -> dict[str, str]:
        """``role`` and ``scope`` of a semantic latent under the text bias.

        Not mentioned: image-specific; mentioned and misreported: shared style; mentioned and
        faithful: shared ``default`` (content, or style for a latent such as Multimodal3DIdent's hue).
        """
        if name not in self.selected:
            return {"role": "specific", "scope": "image"}
        return {"role": "style" if name in self.perturbed else default, "scope": "shared"}

    def data(self) -> dict[str, Any]:
        # The mesh set enters the fingerprint by content, not by path.
        out = super().data()
        if self.backend != "cycles":  # Cycles' settings change nothing else (raster fingerprints predate them)
            del out["samples"], out["denoise"]
        if self.meshes not in MESH_SETS:
            out["meshes"] = {"directory": True, "sha256": mesh_set_digest(load_mesh_set(self.meshes))}
        return out

    def image_key(self) -> dict[str, Any]:
        """Everything that changes a pixel or an image latent (the image store's key)."""
        meshes = self.meshes if self.meshes in MESH_SETS else "directory"
        cycles = {"cycles": {"samples": self.samples, "denoise": self.denoise}} if self.backend == "cycles" else {}
        return {**cycles,
            "seed": self.seed, "split_sizes": dict(self.split_sizes), "size": self.size, "backend": self.backend,
            "meshes": meshes, "mesh_sha256": mesh_set_key(self.meshes), "antialias": self.antialias,
            "shadows": self.shadows, "renderer_revision": RENDERER_REVISION, "render_shard_size": self.render_shard_size,
        }


class SceneBuilder(Builder):
    """Base of the rendered 3DIdent builders: image store + captions (see the module docstring).

    Subclasses define the latents (:meth:`latent_spec`, :meth:`sample_scene_latents`), the
    store's name and extra key (:data:`STORE`, :meth:`store_key`), the caption templates
    (:meth:`templates`) and what the text shows (:meth:`text_values`).
    """

    STORE: ClassVar[str]
    #: Image latents kept in the store beside the pixels: name → dtype.
    IMAGE_LATENTS: ClassVar[dict[str, str]] = {
        "shape": "int64", "x_pos": "int64", "y_pos": "int64", "color": "float32", "alpha": "float32",
        "beta": "float32", "gamma": "float32", "s_pos": "float32", "s_color": "float32", "b_color": "float32",
    }

    config: SceneConfig

    # ------------------------------------------------------------------ to implement
    @abc.abstractmethod
    def sample_scene_latents(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``n`` draws of the image latents (:data:`IMAGE_LATENTS`), from ``rng`` only."""

    def store_key(self) -> dict[str, Any]:
        """What, beyond :meth:`SceneConfig.image_key`, changes the images (e.g. the variant)."""
        return {}

    @abc.abstractmethod
    def templates(self) -> Templates:
        """The caption templates of this config (fields read ``text.<latent>`` columns)."""

    @abc.abstractmethod
    def text_values(self, latents: Mapping[str, np.ndarray], rng: np.random.Generator) -> dict[str, Any]:
        """Per caption: ``template`` index, ``text.<latent>`` values, ``perturbed.<latent>`` flags,
        text-specific latents (``latents.<name>``) and the template columns; drawn from ``rng``."""

    # ------------------------------------------------------------------ schema
    def modalities(self) -> dict[str, Modality]:
        s = self.config.size
        return {
            "image": Modality("image", "image", (3, s, s), "uint8", "rendered scene (channels first)", store="images"),
            "text": Modality("text", "text", (), "str", "caption"),
            "tokens": Modality("tokens", "tokens", (), "int32", f"word ids of the caption (artifact {VOCABULARY}), ending in {{eos}}"),
        }

    def extra_features(self) -> dict[str, Feature]:
        c = self.config
        feats = {f"text.{f}": Feature((), self.IMAGE_LATENTS[f]) for f in c.selected}
        feats.update({f"perturbed.{f}": Feature((), "bool") for f in c.perturbed})
        return feats

    def expected_identifiable(self) -> tuple[str, ...]:
        """The mentioned, never-misreported content latents (the theory's ``I_θ \\ I_ρ``)."""
        c = self.config
        content = {lat.name for lat in self.latent_spec() if lat.role == "content"}
        return tuple(f for f in c.selected if f not in c.perturbed and f in content)

    # ------------------------------------------------------------------ rendering
    @property
    def config_id(self) -> str:
        # Fake shape files (a data_dir holding mmbench.testing's manifest) give the same config:
        # their builds get a cache entry of their own, never served as the original shapes.
        tag = shapes_src.fake_tag(self.data_dir) if self.config.meshes == "original" else None
        return f"{super().config_id}-{tag}" if tag else super().config_id

    def resolve_inputs(self) -> dict[str, Any]:
        if self.config.meshes != "original":
            return {}
        return {"shapes": shapes_src.shape_records(shapes_src.locate_shapes(self.data_dir, self.cache_dir))}

    @functools.cached_property
    def renderer(self) -> SceneRenderer:
        c = self.config
        meshes = load_mesh_set(c.meshes, data_dir=self.data_dir, cache_dir=self.cache_dir) if c.meshes == "original" else c.meshes
        return SceneRenderer(meshes, size=c.size, backend=c.backend, antialias=c.antialias, shadows=c.shadows,
                             samples=c.samples, denoise=c.denoise,
                             columns={f: col for f, col in SCENE_COLUMNS.items() if f != col})

    def render(self, latents: Mapping[str, np.ndarray]) -> np.ndarray:
        """``(n, 3, size, size)`` uint8 images of the scenes in ``latents`` (latent names as stored)."""
        return np.ascontiguousarray(self.renderer.render(latents).transpose(0, 3, 1, 2))

    def stores(self) -> dict[str, Store]:
        c = self.config
        feats = {"image": Feature((3, c.size, c.size), "uint8")}
        feats.update({k: Feature((), dtype) for k, dtype in self.IMAGE_LATENTS.items()})
        rows = c.render_shard_size or max(1, STORE_SHARD_BYTES // (3 * c.size * c.size))
        key = {**c.image_key(), **self.store_key()}
        if c.meshes == "original":
            key["mesh_sha256"] = mesh_set_key(c.meshes, data_dir=self.data_dir)  # a fake set's pins, if fake
        return {"images": Store(self.STORE, key, max(1, sum(c.split_sizes.values())), feats, shard_rows=rows)}

    def generate_store_shard(self, store: str, shard: int) -> dict[str, np.ndarray]:
        try:
            return super().generate_store_shard(store, shard)
        except ExecutorError as exc:  # a render worker crashed or hung: say which shard (the others are kept)
            start, stop = self.stores()[store].bounds()[shard]
            raise ExecutorError(
                f"{self.name}: rendering shard {shard} of the {store!r} store (rows {start}–{stop - 1}) failed. {exc}\n"
                "The shards already finished are kept: building again resumes from them."
            ) from exc

    def generate_store(self, store: str, start: int, stop: int, *, rng: np.random.Generator) -> dict[str, np.ndarray]:
        lat = {k: np.asarray(v).astype(self.IMAGE_LATENTS[k]) for k, v in self.sample_scene_latents(stop - start, rng).items()}
        return {"image": self.render(lat), **lat}

    def image_latents(self, split: str, start: int, stop: int) -> dict[str, np.ndarray]:
        """Store rows and image latents of examples ``[start, stop)`` of ``split``."""
        first = self.config.split_offsets()[split]
        out = {k: np.asarray(self.store_column("images", k)[first + start : first + stop]) for k in self.IMAGE_LATENTS}
        out["_rows"] = np.arange(first + start, first + stop, dtype=np.int64)
        return out

    # ------------------------------------------------------------------ captions and tokens
    def biased_values(self, values: Mapping[str, np.ndarray], *, rng: np.random.Generator,
                      num_classes: Mapping[str, int], noise: Mapping[str, np.ndarray] | None = None,
                      ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """What the captions show of the semantic ``values`` and which latents they misreport.

        The config's :class:`~mmbench.core.bias.TextBias` over :meth:`SceneConfig.semantic_latents`:
        ``(shown, flags)``, ``shown`` holding the selected latents (misreported ones replaced) and
        ``flags`` a boolean array per perturbed latent; without a perturbation, the selected values
        as they are and no flags (``rng`` untouched).
        """
        c = self.config
        if not c.perturbed:
            return {k: values[k] for k in c.selected}, {}
        return c.bias.apply(values, c.semantic_latents(), rng=rng, num_classes=num_classes, noise=noise)

    @functools.cached_property
    def _templates(self) -> Templates:
        return self.templates()

    def text_columns(self, split: str, start: int, stop: int, *, rng: np.random.Generator) -> dict[str, Any]:
        """Every column of examples ``[start, stop)`` of ``split`` except the tokens."""
        lat = self.image_latents(split, start, stop)
        rows = lat.pop("_rows")
        text = self.text_values(lat, rng)
        captions = self._templates.fill(text.pop("fields"), template=text["latents.phrasing"])
        out: dict[str, Any] = {"image": rows, "text": captions}
        out.update({f"latents.{k}": v for k, v in lat.items()})
        out.update(text)
        return out

    def make_artifacts(self) -> dict[str, bytes]:
        captions: list[str] = []
        for k, (start, stop) in enumerate(self.shard_bounds(self.split_names()[0])):
            captions += self.text_columns(self.split_names()[0], start, stop, rng=self.shard_rng(self.split_names()[0], k))["text"]
        meshes = {"set": self.config.meshes if self.config.meshes in MESH_SETS else "directory",
                  "shapes": list(SHAPES), "sha256": mesh_set_key(self.config.meshes, data_dir=self.data_dir)}
        if self.config.meshes == "builtin":
            meshes["provenance"] = BUILTIN_MESHES
        if self.config.meshes == "original":
            meshes["provenance"] = {shape: {"file": r.filename, "git_blob": r.git_blob, "sha256": r.sha256, "url": r.urls[0] if r.urls else None,
                                            "license": r.license} for shape, r in shapes_src.shape_resources(self.data_dir).items()}
        return {VOCABULARY: Vocabulary.build(captions, tokenizer="word", order="first").to_json(),
                MESHES: json.dumps(meshes, indent=1, sort_keys=True).encode()}

    @functools.cached_property
    def vocabulary(self) -> Vocabulary:
        return Vocabulary.from_json(self.artifact(VOCABULARY))

    def generate(self, split: str, start: int, stop: int, *, rng: np.random.Generator) -> dict[str, Any]:
        out = self.text_columns(split, start, stop, rng=rng)
        out["tokens"] = self.vocabulary.encode(out["text"])
        return out

    def sampler(self, *args: Any, **kwargs: Any) -> Any:
        raise MMBenchError(
            f"{self.name} keeps its images in a rendered store: it has no on-the-fly sampler. Build the splits and "
            "iterate them: mmbench.load(...).batches(256, shuffle=True), or train with data='dataset'."
        )

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("renderer", None)  # rebuilt in the worker
        return state

