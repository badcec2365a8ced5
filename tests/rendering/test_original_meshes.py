"""The `original` mesh set: the release's Shape<Name>.blend files, pinned, read without Blender,
kept at their own size; exercised on fake shape files in the real format and layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import mmbench
from mmbench.errors import ChecksumError, InputsNotFoundError
from mmbench.rendering.scene.cycles import scene_params
from mmbench.rendering.scene.meshes import SHAPES, Mesh, load_mesh_set, mesh_set_key
from mmbench.rendering.scene.renderer import SceneRenderer
from mmbench.rendering.scene.scene import SPOT_HEIGHT, SceneBatch
from mmbench.sources import shapes
from mmbench.testing.shapes import write_fake_shapes

SPLITS = {"train": 12, "val": 4, "test": 4}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMBENCH_OFFLINE", "1")
    monkeypatch.delenv(shapes.ENV_VAR, raising=False)


def test_official_pins_are_the_repositorys_files_at_one_commit() -> None:
    assert list(shapes.ORIGINAL_SHAPES) == list(SHAPES)
    for shape, res in shapes.ORIGINAL_SHAPES.items():
        assert res.git_blob and len(res.git_blob) == 40
        assert res.urls == (f"https://raw.githubusercontent.com/{shapes.REPOSITORY}/{shapes.COMMIT}/assets/shapes/{res.filename}",)
        assert res.filename == f"Shape{shape.capitalize()}.blend" and f"assets/shapes/{res.filename}" in res.candidates()
    assert {s for s, r in shapes.ORIGINAL_SHAPES.items() if r.sha256} == {"teapot", "cow"}  # the two read here
    assert mesh_set_key("original") == shapes.original_digest()  # known without any file


@pytest.mark.parametrize("layout", ["flat", "repo"])
def test_fake_shapes_load_as_native_meshes(tmp_path: Path, layout: str) -> None:
    root = write_fake_shapes(tmp_path / "shapes", layout=layout)
    meshes = load_mesh_set("original", data_dir=root, cache_dir=tmp_path / "c")
    assert list(meshes) == list(SHAPES) and all(m.native for m in meshes.values())
    # each keeps its object's own scale (1.0, 1.1, … in the fakes): sizes differ, unlike every other set
    sizes = [m.scene_size() for m in meshes.values()]
    assert len({round(s, 3) for s in sizes}) == 7 and all(s == 3.0 for s in (m.scene_size() for m in load_mesh_set("tiny").values()))
    assert shapes.fake_tag(root).startswith("fake-shapes-") and shapes.fake_tag(tmp_path) is None
    assert shapes.original_digest(root) != shapes.original_digest()  # a fake set never shares the official identity


def test_official_set_offline_without_files_says_where_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(InputsNotFoundError) as err:
        load_mesh_set("original", cache_dir=tmp_path / "c")
    msg = str(err.value)
    assert "m3di-shapes/ShapeTeapot.blend" in msg and "MMBENCH_M3DI_SHAPES" in msg and "raw.githubusercontent.com" in msg
    assert "offline" in msg


def test_other_files_under_the_official_names_are_refused(tmp_path: Path) -> None:
    fake = write_fake_shapes(tmp_path / "fake")
    (fake / shapes.FAKE_MANIFEST).unlink()  # now they claim to be the release's files
    with pytest.raises(ChecksumError, match=r"ShapeTeapot.blend has (\d+ bytes|sha256)"):
        load_mesh_set("original", data_dir=fake, cache_dir=tmp_path / "c")
    only_blob = {s: f for s, f in shapes._FILES.items() if f[2] is None}
    res = shapes.ORIGINAL_SHAPES[next(iter(only_blob))]
    with pytest.raises(ChecksumError, match=f"has git blob id [0-9a-f]{{40}}, but the official {res.name} file must have {res.git_blob}"):
        res.verify(fake / res.filename, label=f"official {res.name}")


def test_native_meshes_render_at_their_own_size_with_the_spot_above_them() -> None:
    tiny = load_mesh_set("tiny")
    small, big = Mesh(tiny["teapot"].vertices, tiny["teapot"].faces), Mesh(tiny["teapot"].vertices * 2.0, tiny["teapot"].faces, native=True)
    assert small.scene_size() == pytest.approx(3.0) and big.scene_size() == pytest.approx(1.5 * np.ptp(big.vertices, 0).max())
    assert small.digest() != Mesh(small.vertices, small.faces, native=True).digest()
    lat = {"shape": np.array([0, 1]), "x": np.ones(2), "y": np.ones(2), "alpha": np.full(2, .5), "beta": np.full(2, .5),
           "gamma": np.full(2, .5), "object_hue": np.zeros(2), "spot_pos": np.full(2, .5), "spot_hue": np.full(2, .5),
           "background_hue": np.full(2, .5)}
    scenes = SceneBatch.from_latents(lat)
    params, _ = scene_params(scenes, np.array([big.scene_size(), small.scene_size()]))
    assert params[:, 12] == pytest.approx(SPOT_HEIGHT + np.array([big.scene_size(), 3.0]))  # spotlight z: 6 + size
    meshes = {**tiny, "teapot": small}
    fg = []
    for teapot in (small, big):
        img = SceneRenderer({**meshes, "teapot": teapot}, size=48, backend="raster").render(
            {k: v[:1] for k, v in lat.items()})
        fg.append(int((np.abs(img[0].astype(int) - img[0, 0, 0].astype(int)).sum(-1) > 60).sum()))
    assert fg[1] > 1.5 * fg[0]  # the native teapot, twice as large, covers far more pixels


def test_build_with_fake_original_shapes_records_them_and_keeps_its_own_cache_entry(tmp_path: Path) -> None:
    root = write_fake_shapes(tmp_path / "src", layout="repo")
    kw = {"cache_dir": tmp_path / "c", "size": 24, "split_sizes": SPLITS, "shard_size": None}
    b = mmbench.builder("multimodal3dident", meshes="original", data_dir=root, **kw)
    b.build(progress=False)
    info = json.loads((b.dataset_dir() / "dataset_info.json").read_text())
    rec = info["inputs"]["shapes"]
    assert rec["source"] == "fake (mmbench.testing.shapes)" and rec["commit"] == shapes.COMMIT
    assert set(rec["files"]) == set(SHAPES) and all(f["source"] == "data_dir" and len(f["git_blob"]) == 40 for f in rec["files"].values())
    assert b.config_id.endswith(shapes.fake_tag(root)) and "fake-shapes" in str(b.dataset_dir())
    artifact = json.loads((b.dataset_dir() / "artifacts" / "meshes.json").read_bytes())
    assert artifact["set"] == "original" and artifact["sha256"] == shapes.original_digest(root)
    assert artifact["provenance"]["cow"]["file"] == "ShapeCow.blend"
    builtin = mmbench.builder("multimodal3dident", **kw)
    builtin.build(progress=False)
    keys = [x.stores()["images"].key["mesh_sha256"] for x in (b, builtin)]
    assert keys[0] == shapes.original_digest(root) != keys[1]  # an image store of its own
