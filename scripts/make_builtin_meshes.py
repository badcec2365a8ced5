"""Make ``mmbench/rendering/data/meshes.npz``, the ``builtin`` mesh set, from its sources.

Run by hand (not part of the package or the tests); it prints the sha256 to pin as
``mmbench.rendering.scene.meshes.BUILTIN_SHA256``. Inputs, all from package registries:

* ``teapot.egg.pz`` from the panda3d 1.10.16 wheel (``pip download --no-deps panda3d==1.10.16``;
  ``panda3d/models/teapot.egg.pz``): the Utah teapot, public domain;
* ``bunny.obj`` from the pybullet 3.2.7 wheel (``pybullet_data/bunny.obj``): the Stanford bunny;
* ``armadillo.off`` from Debian's ``libcgal-demo`` 5.5.1 (``apt-get download libcgal-demo``;
  ``usr/share/doc/libcgal-dev/data.tar.gz`` → ``data/meshes/armadillo.off``): the Stanford armadillo;
* the dragon, cow, horse and head are the procedural stand-ins of
  :func:`mmbench.rendering.scene.meshes.procedural_mesh`.

Every mesh is converted to z up, welded (coincident vertices merged), oriented (outward faces)
and stored as float32 vertices and uint16 faces.

Usage:
    python scripts/make_builtin_meshes.py SOURCE_DIR [--out mmbench/rendering/data/meshes.npz]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import zlib
from pathlib import Path

import numpy as np

from mmbench.rendering.scene.meshes import BUILTIN_MESHES, SHAPES, Mesh, procedural_mesh, read_mesh

SOURCES = {
    "teapot.egg.pz": "59eb2bcff39d5f7236479cca062a390cd486a7b2109bb7e75cb9dbd1ac88427a",
    "bunny.obj": "cf22c66f64f5ffec529bc0df1025b72c6b07f1715be2784f51e02a5a4d6e61f5",
    "armadillo.off": "6f7f3ca1abc506569466b72f2f59d49493a284e7376d7a7e23c08115ec8cec4e",
}
ARMADILLO_FACES = 3000


def read_egg(path: Path) -> Mesh:
    """The polygons of a zlib-compressed Panda3D ``.egg`` (vertex pools + ``<VertexRef>`` polygons)."""
    text = zlib.decompress(path.read_bytes()).decode()
    pools: dict[str, list[list[float]]] = {}
    for name, body in re.findall(r"<VertexPool>\s+(\S+)\s*\{(.*?)\n    \}", text, flags=re.S):
        pools[name] = [[float(c) for c in v.split()[:3]] for v in re.findall(r"<Vertex>\s+\d+\s*\{\s*([^\n<]+)", body)]
    offsets, verts = {}, []
    for name, pool in pools.items():
        offsets[name] = len(verts)
        verts.extend(pool)
    tris = []
    for refs, pool in re.findall(r"<VertexRef>\s*\{\s*([\d\s]+)<Ref>\s*\{\s*(\S+)\s*\}", text):
        idx = [int(i) + offsets[pool] for i in refs.split()]
        tris += [(idx[0], idx[k], idx[k + 1]) for k in range(1, len(idx) - 1)]
    return Mesh(np.array(verts), np.array(tris))


def y_up_to_z_up(mesh: Mesh) -> Mesh:
    v = mesh.vertices
    return Mesh(np.stack([v[:, 0], -v[:, 2], v[:, 1]], 1), mesh.faces)


def weld(mesh: Mesh, tol: float = 1e-5) -> Mesh:
    """Merge vertices closer than ``tol`` (relative to the size) and drop degenerate faces."""
    scale = float(np.ptp(mesh.vertices, axis=0).max())
    keys = np.round(mesh.vertices / (tol * scale)).astype(np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    faces = inverse.reshape(-1)[mesh.faces]
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    return compact(Mesh(mesh.vertices[first], faces))


def compact(mesh: Mesh) -> Mesh:
    used, faces = np.unique(mesh.faces, return_inverse=True)
    return Mesh(mesh.vertices[used], faces.reshape(-1, 3))


def cluster(mesh: Mesh, cell: float) -> Mesh:
    """Vertex clustering: snap vertices to a grid of ``cell``, one averaged vertex per occupied cell."""
    keys = np.floor((mesh.vertices - mesh.vertices.min(0)) / cell).astype(np.int64)
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    count = np.bincount(inverse)
    verts = np.stack([np.bincount(inverse, mesh.vertices[:, k]) for k in range(3)], 1) / count[:, None]
    faces = inverse[mesh.faces]
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    first = np.unique(np.sort(faces, axis=1), axis=0, return_index=True)[1]
    return compact(Mesh(verts, faces[np.sort(first)]))


def cluster_decimate(mesh: Mesh, target_faces: int) -> Mesh:
    """The clustering (cell size found by bisection) with at most ``target_faces`` faces."""
    extent = float(np.ptp(mesh.vertices, axis=0).max())
    lo, hi = 1e-3 * extent, 0.5 * extent
    best = cluster(mesh, hi)
    for _ in range(25):
        mid = (lo + hi) / 2
        out = cluster(mesh, mid)
        if len(out.faces) > target_faces:
            lo = mid
        else:
            hi, best = mid, out
    return best


def orient_outward(mesh: Mesh) -> Mesh:
    """Flip all faces if the signed volume is negative (faces pointing inward)."""
    tri = mesh.vertices.astype(np.float64)[mesh.faces]
    volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
    return mesh if volume > 0 else Mesh(mesh.vertices, mesh.faces[:, ::-1])


def build(source: Path) -> dict[str, Mesh]:
    for name, digest in SOURCES.items():
        got = hashlib.sha256((source / name).read_bytes()).hexdigest()
        if got != digest:
            raise SystemExit(f"{source / name} has sha256 {got}, expected {digest}")
    meshes = {
        "teapot": weld(y_up_to_z_up(read_egg(source / "teapot.egg.pz"))),
        "hare": weld(y_up_to_z_up(read_mesh(source / "bunny.obj"))),
        "armadillo": cluster_decimate(weld(y_up_to_z_up(read_mesh(source / "armadillo.off"))), ARMADILLO_FACES),
    }
    for name in ("dragon", "cow", "horse", "head"):
        meshes[name] = procedural_mesh(name, detail=2)
    return {name: orient_outward(meshes[name]) for name in SHAPES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="folder with teapot.egg.pz, bunny.obj, armadillo.off")
    parser.add_argument("--out", type=Path, default=Path("mmbench/rendering/data/meshes.npz"))
    args = parser.parse_args()
    meshes = build(args.source)
    arrays = {}
    for name, mesh in meshes.items():
        arrays[f"{name}.vertices"] = mesh.vertices.astype(np.float32)
        arrays[f"{name}.faces"] = mesh.faces.astype(np.uint16)
        print(f"{name}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces")
    arrays["provenance"] = np.frombuffer(json.dumps(BUILTIN_MESHES, sort_keys=True).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    data = buf.getvalue()
    args.out.write_bytes(data)
    print(f"Wrote {args.out}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
