"""The 3D scene renderer: geometry, rasteriser, identifiability of every latent, determinism, meshes."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from mmbench.errors import ChecksumError, InputsNotFoundError, InvalidConfigError
from mmbench.rendering.scene import meshes as meshmod
from mmbench.rendering.scene.meshes import SHAPES, Mesh, load_mesh_set, procedural_mesh, read_mesh
from mmbench.rendering.scene.raster import RasterBackend, rasterize
from mmbench.rendering.scene.renderer import SceneRenderer
from mmbench.rendering.scene.scene import CAMERA, SCENE_FIELDS, SceneBatch, euler_xyz

SIZE = 48


def scenes(n=1, **fields):
    base = dict(shape=0, x=1, y=1, alpha=0.5, beta=0.5, gamma=0.5, object_hue=0.3, spot_pos=0.5, spot_hue=0.7, background_hue=0.6)
    base.update(fields)
    return SceneBatch(**{k: np.broadcast_to(np.asarray(v), (n,)).copy() for k, v in base.items()})


@pytest.fixture(scope="module")
def backend():
    return RasterBackend(list(load_mesh_set("tiny").values()), size=SIZE)


def object_mask(backend, **fields):
    """Pixels where the object is: those that change with the object's hue alone."""
    a = backend.render(scenes(object_hue=0.0, **fields))[0].astype(int)
    b = backend.render(scenes(object_hue=0.5, **fields))[0].astype(int)
    return np.abs(a - b).sum(-1) > 30


# ------------------------------------------------------------------ geometry
def test_camera_and_rotations():
    assert CAMERA.fov_degrees == pytest.approx(71.08, abs=0.01)
    right, up, _forward = CAMERA.basis()
    assert np.allclose(right, [0, 1, 0]) and up[2] > 0 and up[0] < 0  # image-right = +y, image-up = towards −x
    r = euler_xyz(np.array([[0.3, -0.2, 1.1]]))[0]
    assert np.allclose(r @ r.T, np.eye(3)) and np.isclose(np.linalg.det(r), 1)
    rx = euler_xyz(np.array([[np.pi / 2, 0, 0]]))[0]
    assert np.allclose(rx @ [0, 1, 0], [0, 0, 1])  # X rotates y onto z


def test_positions_land_where_the_text_says(backend):
    """x = 0/1/2 renders left/centre/right, y = 0/1/2 top/mid/bottom (the reference mapping)."""
    cols, rows = [], []
    for k in range(3):
        ys, xs = np.nonzero(object_mask(backend, x=k, y=1))
        cols.append(xs.mean())
        ys, xs = np.nonzero(object_mask(backend, x=1, y=k))
        rows.append(ys.mean())
    assert cols[0] < SIZE / 2 - 4 < SIZE / 2 + 4 < cols[2] and abs(cols[1] - SIZE / 2) < 4
    assert rows[0] < rows[1] < rows[2]


def test_every_latent_visibly_changes_the_picture(backend):
    """Identifiability needs every latent to reach the pixels: change one, the image changes."""
    base = backend.render(scenes())[0].astype(int)
    changes = dict(shape=3, x=2, y=0, alpha=0.8, beta=0.2, gamma=0.9, object_hue=0.9, spot_pos=0.1, spot_hue=0.2, background_hue=0.1)
    assert set(changes) == set(SCENE_FIELDS)
    for field, value in changes.items():
        other = backend.render(scenes(**{field: value}))[0].astype(int)
        changed = (np.abs(other - base).sum(-1) > 12).sum()
        assert changed >= 10, f"changing {field} changed only {changed} pixels"


def test_batch_composition_and_repeats_do_not_change_pixels(backend):
    rng = np.random.default_rng(0)
    n = 9
    batch = SceneBatch(shape=rng.integers(0, 7, n), x=rng.integers(0, 3, n), y=rng.integers(0, 3, n),
                       **{f: rng.random(n) for f in SCENE_FIELDS[3:]})
    together = backend.render(batch)
    assert together.shape == (n, SIZE, SIZE, 3) and together.dtype == np.uint8
    alone = np.concatenate([backend.render(batch.take(slice(i, i + 1))) for i in range(n)])
    assert np.array_equal(together, alone)
    small_chunks = RasterBackend(list(load_mesh_set("tiny").values()), size=SIZE, chunk=2)
    assert np.array_equal(small_chunks.render(batch), together)


def test_antialias_and_shadows_options():
    meshes = list(load_mesh_set("tiny").values())
    aa = RasterBackend(meshes, size=32, antialias=2).render(scenes(2))
    assert aa.shape == (2, 32, 32, 3)
    with_shadow = RasterBackend(meshes, size=SIZE).render(scenes(spot_pos=0.2))[0]
    without = RasterBackend(meshes, size=SIZE, shadows=False).render(scenes(spot_pos=0.2))[0]
    darker = (with_shadow.astype(int).sum(-1) < without.astype(int).sum(-1) - 20).sum()
    assert darker >= 5  # the shadow darkens part of the spotlit ground


def test_scene_batch_checks():
    with pytest.raises(InvalidConfigError, match="'alpha' must lie in \\[0, 1\\]"):
        scenes(alpha=1.5)
    with pytest.raises(InvalidConfigError, match="'x' must lie in \\[0, 2\\]"):
        scenes(x=3)
    with pytest.raises(InvalidConfigError, match="integer mesh indices"):
        scenes(shape=0.5)
    with pytest.raises(InvalidConfigError, match="has 2 values, expected 1"):
        SceneBatch(**{f: np.zeros(2 if f == "beta" else 1, dtype=int if f == "shape" else float) for f in SCENE_FIELDS})
    with pytest.raises(InvalidConfigError, match="needs the latent columns \\['x_pos'\\]"):
        SceneBatch.from_latents({f: np.zeros(1) for f in SCENE_FIELDS if f != "x"}, {"x": "x_pos"})


def test_shape_index_out_of_the_mesh_set(backend):
    with pytest.raises(InvalidConfigError, match=r"in \[0, 6\]"):
        backend.render(scenes(shape=7))


# ------------------------------------------------------------------ rasteriser
def test_rasterize_coverage_and_depth_order():
    # two overlapping triangles in one 8×8 image: the nearer (larger inverse depth) wins
    xy = torch.tensor([[[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]], [[0.0, 0.0], [8.0, 0.0], [8.0, 8.0]]])
    inv_z = torch.tensor([[1 / 5.0] * 3, [1 / 3.0] * 3])
    win = rasterize(xy, inv_z, torch.tensor([0, 0]), 1, 8, 8).view(8, 8)
    r, c = np.mgrid[0:8, 0:8] + 0.5
    in0, in1 = c + r <= 8, r <= c  # pixel centres inside triangle 0 / 1
    expected = np.where(in1, 1, np.where(in0, 0, -1))  # overlap → the nearer triangle 1
    assert np.array_equal(win.numpy(), expected)
    assert rasterize(xy[:1], -inv_z[:1], torch.tensor([0]), 1, 8, 8).eq(-1).all()  # behind the camera


# ------------------------------------------------------------------ the renderer contract
def test_scene_renderer_contract_and_pickling(tmp_path):
    r = SceneRenderer("tiny", size=24, columns={"x": "x_pos", "y": "y_pos"})
    n = 3
    lat = {("x_pos" if f == "x" else "y_pos" if f == "y" else f): np.zeros(n, dtype=int if f in ("shape", "x", "y") else float)
           for f in SCENE_FIELDS}
    out = r.render(lat, rng=np.random.default_rng(0))
    assert out.shape == (n, 24, 24, 3)
    clone = pickle.loads(pickle.dumps(r))
    assert clone._backend is None and np.array_equal(clone.render(lat), out)
    with pytest.raises(InvalidConfigError, match="backend must be one of"):
        SceneRenderer("tiny", backend="blender")
    with pytest.raises(InvalidConfigError, match="unknown scene fields"):
        SceneRenderer("tiny", columns={"colour": "c"})


# ------------------------------------------------------------------ meshes
def test_builtin_set_is_pinned_and_complete():
    meshes = load_mesh_set("builtin")
    assert list(meshes) == list(SHAPES)
    assert meshes["teapot"].faces.shape == (2256, 3)
    assert sum(m.faces.nbytes + m.vertices.nbytes for m in meshes.values()) < 400_000
    assert set(meshmod.BUILTIN_MESHES) == set(SHAPES)
    assert all({"source", "license"} <= set(v) for v in meshmod.BUILTIN_MESHES.values())


def test_builtin_set_with_a_wrong_hash_is_refused(monkeypatch):
    monkeypatch.setattr(meshmod, "BUILTIN_SHA256", "f" * 64)
    meshmod._builtin.cache_clear()
    try:
        with pytest.raises(ChecksumError, match="installation is damaged"):
            load_mesh_set("builtin")
    finally:
        meshmod._builtin.cache_clear()


def test_procedural_meshes_are_closed_and_outward():
    for name in SHAPES:
        m = procedural_mesh(name, detail=1)
        tri = m.vertices.astype(np.float64)[m.faces]
        volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
        assert volume > 0, name
        edges = np.sort(np.concatenate([m.faces[:, [0, 1]], m.faces[:, [1, 2]], m.faces[:, [2, 0]]]), axis=1)
        _, counts = np.unique(edges, axis=0, return_counts=True)
        assert (counts == 2).all(), f"{name} is not closed"
    with pytest.raises(InvalidConfigError, match="No procedural stand-in for 'hores'.*horse"):
        procedural_mesh("hores")


def test_mesh_files_and_directories(tmp_path):
    m = procedural_mesh("cow", detail=1)
    (tmp_path / "set").mkdir()
    np.savez(tmp_path / "set" / "teapot.npz", vertices=m.vertices, faces=m.faces)
    obj = "\n".join([*(f"v {a} {b} {c}" for a, b, c in m.vertices.tolist()), *(f"f {a + 1}/1 {b + 1}/1 {c + 1}/1" for a, b, c in m.faces.tolist())])
    (tmp_path / "set" / "hare.obj").write_text(obj)
    off = "OFF\n# a comment\n" + f"{len(m.vertices)} {len(m.faces)} 0\n" + "\n".join(
        [*(" ".join(map(str, v)) for v in m.vertices.tolist()), *(f"3 {a} {b} {c}" for a, b, c in m.faces.tolist())])
    (tmp_path / "set" / "dragon.off").write_text(off)
    for name in ("teapot.npz", "hare.obj", "dragon.off"):
        got = read_mesh(tmp_path / "set" / name)
        assert np.allclose(got.vertices, m.vertices, atol=1e-6) and np.array_equal(got.faces, m.faces), name
    with pytest.raises(InputsNotFoundError, match="lacks cow, armadillo, horse, head"):
        load_mesh_set(str(tmp_path / "set"))
    for name in ("cow", "armadillo", "horse", "head"):
        np.savez(tmp_path / "set" / f"{name}.npz", vertices=m.vertices, faces=m.faces)
    assert list(load_mesh_set(str(tmp_path / "set"))) == list(SHAPES)
    quad = tmp_path / "quad.obj"
    quad.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 1\nf 1 2 3 4\n")
    assert read_mesh(quad).faces.tolist() == [[0, 1, 2], [0, 2, 3]]  # polygons are fanned
    (tmp_path / "bad.off").write_text("not a mesh")
    with pytest.raises(InvalidConfigError, match="bad.off is not a valid OFF"):
        read_mesh(tmp_path / "bad.off")
    with pytest.raises(InvalidConfigError, match="not supported"):
        read_mesh(tmp_path / "x.stl")
    with pytest.raises(InvalidConfigError, match="neither a mesh set.*Did you mean.*'builtin'"):
        load_mesh_set("bulitin")


def test_mesh_validation():
    with pytest.raises(InvalidConfigError, match="outside"):
        Mesh(np.zeros((3, 3)) + np.eye(3), np.array([[0, 1, 5]]))
    with pytest.raises(InvalidConfigError, match="zero extent"):
        Mesh(np.ones((3, 3)), np.array([[0, 1, 2]]))
