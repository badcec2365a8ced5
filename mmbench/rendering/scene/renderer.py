"""The scene renderer behind the core's renderer contract: latents in, ``H × W × 3`` uint8 images out.

:class:`SceneRenderer` maps a table of latent columns to a :class:`SceneBatch` (through a
field → column map, so each dataset keeps its own latent names) and draws it with a backend:

* ``raster`` — :class:`~mmbench.rendering.scene.raster.RasterBackend`, the vectorised torch
  rasteriser (no heavy dependency; CPU or GPU);
* ``cycles`` — :class:`~mmbench.rendering.scene.cycles.CyclesBackend`, Blender's Cycles in a
  worker process of a separate Blender interpreter (``mmbench blender setup`` makes one).

The backend is created on first use and dropped when the renderer is pickled, so a renderer is
cheap to send to worker processes.

Example:
    >>> r = SceneRenderer("builtin", size=64, columns={"x": "x_pos", "y": "y_pos"})
    >>> images = r.render(latents, rng=rng)          # (n, 64, 64, 3) uint8
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mmbench.core.config import check_choice, check_int
from mmbench.rendering.scene.meshes import SHAPES, Mesh, load_mesh_set, normalise_mesh_spec
from mmbench.rendering.scene.scene import SCENE_FIELDS, SceneBatch

__all__ = ["BACKENDS", "SceneRenderer"]

#: Rendering backends (part of every scene dataset's config and fingerprint).
BACKENDS = ("raster", "cycles")


class SceneRenderer:
    """One image modality of a 3DIdent-style dataset: ``render(latents, *, rng) -> (n, H, W, 3) uint8``.

    Args:
        meshes: a mesh-set name (``builtin``, ``procedural``, ``tiny``), a directory of meshes,
            or the seven :class:`Mesh` es themselves (in :data:`SHAPES` order).
        size: images are ``size × size``.
        backend: one of :data:`BACKENDS`.
        antialias: supersampling factor of the ``raster`` backend.
        shadows: draw the object's shadow from the spotlight (``raster``; Cycles always does).
        samples: Cycles samples per pixel (``cycles``).
        denoise: denoise the Cycles render (``cycles``; the reference does).
        blender: the Blender interpreter of ``cycles`` (default: found, see
            :func:`~mmbench.rendering.scene.cycles.find_interpreter`).
        columns: scene field (:data:`SCENE_FIELDS`) → latent column, where they differ.
        device: torch device of the ``raster`` backend.
    """

    def __init__(
        self,
        meshes: str | Mapping[str, Mesh] = "builtin",
        *,
        size: int = 224,
        backend: str = "raster",
        antialias: int = 1,
        shadows: bool = True,
        columns: Mapping[str, str] | None = None,
        device: str = "cpu",
        samples: int = 64,
        denoise: bool = True,
        blender: str | None = None,
    ) -> None:
        self.meshes = normalise_mesh_spec(meshes) if isinstance(meshes, str) else dict(meshes)
        self.size = check_int("size", size, low=8, high=4096)
        self.backend = check_choice("backend", backend, BACKENDS)
        self.antialias = check_int("antialias", antialias, low=1, high=8)
        self.shadows = bool(shadows)
        self.columns = dict(columns or {})
        unknown = sorted(set(self.columns) - set(SCENE_FIELDS))
        if unknown:
            from mmbench.errors import InvalidConfigError

            raise InvalidConfigError(f"columns maps unknown scene fields {unknown}; the fields are {list(SCENE_FIELDS)}.")
        self.device = device
        self.samples = check_int("samples", samples, low=1, high=65536)
        self.denoise = bool(denoise)
        self.blender = blender
        self._backend: Any = None

    def mesh_list(self) -> list[Mesh]:
        meshes = load_mesh_set(self.meshes) if isinstance(self.meshes, str) else self.meshes
        return [meshes[name] for name in SHAPES]

    def _get_backend(self) -> Any:
        if self._backend is None and self.backend == "cycles":
            from mmbench.rendering.scene.cycles import shared_backend

            self._backend = shared_backend(self.mesh_list(), size=self.size, samples=self.samples,
                                           denoise=self.denoise, blender=self.blender)
        if self._backend is None:
            from mmbench.rendering.scene.raster import RasterBackend

            self._backend = RasterBackend(self.mesh_list(), size=self.size, antialias=self.antialias,
                                          shadows=self.shadows, device=self.device)
        return self._backend

    def render(self, latents: Mapping[str, np.ndarray], *, rng: np.random.Generator | None = None) -> np.ndarray:
        """The images of the scenes in ``latents`` (``rng`` is unused: ``raster`` is deterministic, and
        ``cycles`` seeds each image from its own scene)."""
        return self.render_scenes(SceneBatch.from_latents(latents, self.columns))

    def render_scenes(self, scenes: SceneBatch) -> np.ndarray:
        """``(n, size, size, 3)`` uint8 images of a :class:`SceneBatch`."""
        return self._get_backend().render(scenes)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_backend"] = None  # rebuilt in the worker (tensors of the packed meshes, or a Blender process)
        return state
