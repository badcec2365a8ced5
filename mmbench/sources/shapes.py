"""The Multimodal3DIdent release's shape files, as raw inputs of the ``original`` mesh set.

The reference generator appends one object from ``assets/shapes/Shape<Name>.blend`` of its
repository (``imantdaunhawer/Multimodal3DIdent``, commit ``1d9781b``) per image. These seven files
are the ``original`` mesh set: each is found (:func:`mmbench.sources.resource.locate`) in

1. ``data_dir`` / ``$MMBENCH_M3DI_SHAPES``: a folder with the ``Shape<Name>.blend`` files, or a
   checkout of the repository (``assets/shapes/`` under it);
2. the downloads cache, ``<cache>/downloads/m3di-shapes/``;
3. a download from the repository at the pinned commit (where the network allows),

and read without Blender by :mod:`mmbench.sources.blendfile` (vertices with the object's scale;
its location and rotation are re-set by the scene, as the reference does).

**Pins.** Every file is pinned by its git blob id, read from the repository's tree at the pinned
commit; the teapot and the cow, whose bytes could be read when this was written, by their sha256
too. A copy is refused unless it matches.

**Fakes.** :func:`mmbench.testing.shapes.write_fake_shapes` writes seven small ``.blend`` files in
the same format with a manifest (``mmbench-fake-shapes.json``) beside them; a folder holding the
manifest is checked against it instead, its builds record ``source: "fake"`` and get a cache
entry of their own (:func:`fake_tag`), so fake shapes are never served as the original ones.

Example:
    >>> meshes = read_original_meshes(data_dir="~/src/Multimodal3DIdent")   # {shape: (v, f, info)}
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import InputsNotFoundError
from mmbench.sources.resource import Located, Resource, locate, user_location

__all__ = [
    "COMMIT",
    "ENV_VAR",
    "FAKE_MANIFEST",
    "ORIGINAL_SHAPES",
    "REPOSITORY",
    "fake_tag",
    "locate_shapes",
    "original_digest",
    "read_original_meshes",
    "shape_resources",
]

logger = logging.getLogger(__name__)

REPOSITORY = "imantdaunhawer/Multimodal3DIdent"
COMMIT = "1d9781b130cfe9e517c8fa4798336f5cd5452ae8"
ENV_VAR = "MMBENCH_M3DI_SHAPES"
FAKE_MANIFEST = "mmbench-fake-shapes.json"
FAKE_FORMAT = "mmbench.fake-m3di-shapes"
FAKE_SOURCE = "fake (mmbench.testing.shapes)"
#: Bumped when :mod:`mmbench.sources.blendfile` would read the same file differently.
READER_REVISION = 1

_STANFORD = ("Stanford 3D Scanning Repository terms (research use and redistribution with credit to the Stanford "
             "Computer Graphics Laboratory; no commercial use without permission)")
_REPO_TERMS = f"from the {REPOSITORY} repository (MIT licence for the repository)"
_ORIGIN_UNSTATED = "the repository does not state where this model comes from or its terms; check before redistributing"
#: shape → (file, git blob id at COMMIT, sha256 or None, size or None, licence of the model inside)
_FILES: dict[str, tuple[str, str, str | None, int | None, str]] = {
    "teapot": ("ShapeTeapot.blend", "7eb06cd43d91eef1dcf7b08355c7fc2e57598e2e",
               "203dbc2bfa96c32c9c5313f024abc0471df78d3b913ef573afb8ea8d8b692e56", 974_392,
               "the Utah teapot (Martin Newell, 1975; widely treated as public domain)"),
    "hare": ("ShapeHare.blend", "a8d02004c719e3ccdf2b691a5059e5419e4fec18", None, None, f"the Stanford bunny: {_STANFORD}"),
    "dragon": ("ShapeDragon.blend", "417ce12206340bd2f9a78b18f688dcd9e166bca4", None, None, f"the Stanford dragon: {_STANFORD}"),
    "cow": ("ShapeCow.blend", "469fa3a2036d2f8323f8d05a032dfd199a4599ce",
            "3e58fc29f346ba0639ae248c94af466177d5a923b4ed9c5c446686fb90feffcb", 1_073_764, _ORIGIN_UNSTATED),
    "armadillo": ("ShapeArmadillo.blend", "2426ab8767397ee8755e58c4127a772a9c107731", None, None,
                  f"the Stanford armadillo: {_STANFORD}"),
    "horse": ("ShapeHorse.blend", "e4d9bfc1fc1bef2adb1228ee4331ecf3957f0c2a", None, None, _ORIGIN_UNSTATED),
    "head": ("ShapeHead.blend", "99321cc2dfb0a299c1c6b71836a4d211d4e9218b", None, None, _ORIGIN_UNSTATED),
}


def _resource(file: str, git_blob: str, sha256: str | None, size: int | None, license: str) -> Resource:
    return Resource(
        name=f"m3di-shapes/{file}", sha256=sha256, size=size, git_blob=git_blob, license=f"{license}; {_REPO_TERMS}",
        urls=(f"https://raw.githubusercontent.com/{REPOSITORY}/{COMMIT}/assets/shapes/{file}",),
        data_paths=(f"assets/shapes/{file}", f"shapes/{file}"), env_var=ENV_VAR,
        homepage=f"https://github.com/{REPOSITORY}/tree/{COMMIT}/assets/shapes",
    )


#: The seven official shape files, by shape name (:data:`mmbench.rendering.scene.meshes.SHAPES`).
ORIGINAL_SHAPES: dict[str, Resource] = {shape: _resource(*spec) for shape, spec in _FILES.items()}


# ---------------------------------------------------------------------------- fakes
def _fake_manifest(data_dir: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """The fake-shapes manifest in the user's location, or ``None``; a broken one is a clear error."""
    named = user_location(data_dir, ENV_VAR)
    if named is None:
        return None
    folder = named[0] if named[0].is_dir() else named[0].parent
    path = next((p for p in (folder / FAKE_MANIFEST, folder / "assets" / "shapes" / FAKE_MANIFEST) if p.is_file()), None)
    if path is None:
        return None
    try:
        manifest = json.loads(path.read_text())
        ok = manifest.get("format") == FAKE_FORMAT and set(manifest["files"]) == set(_FILES)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        ok, manifest = False, repr(exc)
    if not ok:
        raise InputsNotFoundError(
            f"{path} is not a valid fake-shapes manifest ({manifest!r:.200}). Write the fake shapes again with "
            "mmbench.testing.shapes.write_fake_shapes(DIR), or remove the manifest if DIR holds the real files."
        )
    return manifest


def fake_tag(data_dir: str | os.PathLike[str] | None) -> str | None:
    """``"fake-shapes-<hash>"`` when the shapes in use are mmbench's fakes (builds get their own cache entry)."""
    manifest = _fake_manifest(data_dir)
    if manifest is None:
        return None
    return "fake-shapes-" + hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:10]


def shape_resources(data_dir: str | os.PathLike[str] | None = None) -> dict[str, Resource]:
    """The resources to look for: the official files, or a fake set's (from its manifest)."""
    manifest = _fake_manifest(data_dir)
    if manifest is None:
        return dict(ORIGINAL_SHAPES)
    out = {}
    for shape, entry in manifest["files"].items():
        out[shape] = Resource(name=f"m3di-shapes-fake/{entry['file']}", sha256=entry["sha256"], size=entry["size"],
                              git_blob=entry["git_blob"], license="synthetic (mmbench.testing.shapes)",
                              data_paths=(f"assets/shapes/{entry['file']}",), env_var=ENV_VAR)
    return out


# ---------------------------------------------------------------------------- lookup and reading
def original_digest(data_dir: str | os.PathLike[str] | None = None) -> str:
    """sha256 over the shapes' pins and the reader's revision: the set's identity in fingerprints,
    known without reading a file (a copy is used only if it matches its pin)."""
    h = hashlib.sha256(f"original-shapes:{READER_REVISION}".encode())
    for shape, res in shape_resources(data_dir).items():
        h.update(f"{shape}:{res.git_blob}:{res.sha256}".encode())
    return h.hexdigest()


def locate_shapes(
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    allow_network: bool | None = None,
    progress: bool | None = None,
) -> dict[str, Located]:
    """A verified copy of each of the seven shape files (see the module docstring for where).

    Raises:
        InputsNotFoundError: a file is nowhere to be found (the message lists the places tried
            and how to provide it).
        ChecksumError: a copy does not match its pin.
    """
    return {shape: locate(res, data_dir=data_dir, cache_dir=cache_dir, allow_network=allow_network, progress=progress)
            for shape, res in shape_resources(data_dir).items()}


def shape_records(located: Mapping[str, Located]) -> dict[str, Any]:
    """What a build records about the shape files (per shape: path, hashes, source, licence)."""
    fake = any(loc.resource.name.startswith("m3di-shapes-fake/") for loc in located.values())
    return {"source": FAKE_SOURCE if fake else "official", "repository": REPOSITORY, "commit": COMMIT,
            "reader_revision": READER_REVISION, "files": {shape: loc.record() for shape, loc in located.items()}}


def read_original_meshes(
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    allow_network: bool | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
    """``{shape: (vertices, triangles, info)}`` read from the located shape files (no Blender needed)."""
    from mmbench.sources.blendfile import read_blend_mesh

    located = locate_shapes(data_dir, cache_dir, allow_network=allow_network)
    if any(loc.resource.name.startswith("m3di-shapes-fake/") for loc in located.values()):
        logger.warning("Shapes from %s: FAKE shape files written by mmbench.testing.shapes (test data)",
                       Path(next(iter(located.values())).path).parent)
    # The reference appends the object named like its file (``ShapeTeapot`` from ShapeTeapot.blend).
    return {shape: read_blend_mesh(loc.path, object_name=Path(loc.resource.filename).stem) for shape, loc in located.items()}
