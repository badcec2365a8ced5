"""3D scenes of the 3DIdent family: scene batches, meshes, and the renderers that draw them.

* :mod:`~mmbench.rendering.scene.scene` — :class:`SceneBatch` (the latents that drive a scene)
  and the scene's geometry (camera, object placement, spotlight, colours);
* :mod:`~mmbench.rendering.scene.meshes` — the seven objects: mesh sets, readers, stand-ins;
* :mod:`~mmbench.rendering.scene.raster` — the ``raster`` backend;
* :mod:`~mmbench.rendering.scene.cycles` — the ``cycles`` backend (Blender's Cycles in worker
  processes: :mod:`~mmbench.rendering.scene.cycles_worker` is their standalone script,
  :mod:`~mmbench.rendering.scene.blender` finds or makes the Blender interpreter);
* :mod:`~mmbench.rendering.scene.renderer` — :class:`SceneRenderer`, the renderer contract.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BACKENDS", "SCENE_FIELDS", "SHAPES", "Mesh", "SceneBatch", "SceneRenderer", "load_mesh_set"]

_LAZY = {
    "BACKENDS": "mmbench.rendering.scene.renderer",
    "SceneRenderer": "mmbench.rendering.scene.renderer",
    "SCENE_FIELDS": "mmbench.rendering.scene.scene",
    "SceneBatch": "mmbench.rendering.scene.scene",
    "SHAPES": "mmbench.rendering.scene.meshes",
    "Mesh": "mmbench.rendering.scene.meshes",
    "load_mesh_set": "mmbench.rendering.scene.meshes",
}


def __getattr__(name: str) -> Any:  # torch is imported only when a renderer is used
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mmbench.rendering.scene' has no attribute {name!r}")
