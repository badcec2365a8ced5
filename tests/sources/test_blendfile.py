"""Meshes read out of .blend files without Blender (the format Blender writes, via mmbench.testing.shapes).

The reader was also checked against Blender itself (bpy 5.0.1) on the two release files that could
be read here (ShapeTeapot.blend saved by 2.78, ShapeCow.blend by 2.91): identical vertices and
triangles; the figures are in benchmarks/RESULTS.md. Those files are not in the repository."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from mmbench.errors import ChecksumError, InputsNotFoundError
from mmbench.sources.blendfile import BlendFile, read_blend_mesh
from mmbench.testing.shapes import write_blend

CUBE = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 2)], np.float32)
POLYS = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7, 3]]  # quads + 2 triangles


def test_vertices_scaled_and_polygons_fanned_into_triangles(tmp_path: Path) -> None:
    path = write_blend(tmp_path / "ShapeBox.blend", CUBE, POLYS, object_name="ShapeBox", scale=(2.0, 2.0, 0.5),
                       rotation=(1.0, 0.0, 0.0))
    v, f, info = read_blend_mesh(path)
    np.testing.assert_array_equal(v, CUBE * np.array([2.0, 2.0, 0.5], np.float32))  # scale applied, rotation not
    expected = [(p[0], p[k], p[k + 1]) for p in POLYS for k in range(1, len(p) - 1)]
    assert f.dtype == np.int64 and f.tolist() == [list(t) for t in expected]
    assert info == {"object": "ShapeBox", "mesh": "ShapeBoxMesh", "scale": (2.0, 2.0, 0.5), "blender_version": 291}
    assert read_blend_mesh(path, object_name="ShapeBox")[1].shape == (12, 3)


def test_layout_comes_from_the_files_own_sdna(tmp_path: Path) -> None:
    blend = BlendFile(write_blend(tmp_path / "a.blend", CUBE, POLYS, object_name="A"))
    assert blend.pointer_size == 8 and blend.endian == "<" and blend.version == 291
    me = blend.blocks_of(b"ME")[0]
    assert blend.struct_of(me) == "Mesh" and blend.field(me, "totvert") == 8 and blend.field(me, "totloop") == 26
    # MVert is 20 bytes here (co[3], no[3], flag, bweight): the stride comes from the SDNA, not a constant
    assert blend.type_lengths["MVert"] == 20


def test_gzip_compressed_file_is_read(tmp_path: Path) -> None:
    path = write_blend(tmp_path / "a.blend", CUBE, POLYS, object_name="A")
    plain = read_blend_mesh(path)
    path.write_bytes(gzip.compress(path.read_bytes()))
    v, f, _ = read_blend_mesh(path)
    np.testing.assert_array_equal(v, plain[0])
    np.testing.assert_array_equal(f, plain[1])


@pytest.mark.parametrize(("damage", "message"), [
    (lambda b: b"NOTBLEND" + b[8:], "does not start with a Blender header"),
    (lambda b: b[: len(b) // 2], "truncated"),
    (lambda b: b"\x28\xb5\x2f\xfd" + b, "zstd-compressed"),
    (lambda b: b"BLENDER17-01v0500" + b[12:], "saved by Blender 5.0 in the large-header format"),
])
def test_damaged_or_unsupported_files_are_refused_clearly(tmp_path: Path, damage, message: str) -> None:
    path = write_blend(tmp_path / "a.blend", CUBE, POLYS, object_name="A")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ChecksumError, match=message) as err:
        read_blend_mesh(path)
    assert str(path) in str(err.value)


def test_wrong_object_name_and_modifiers_are_refused(tmp_path: Path) -> None:
    path = write_blend(tmp_path / "a.blend", CUBE, POLYS, object_name="ShapeA")
    with pytest.raises(ChecksumError, match=r"no mesh object named 'ShapeB' \(it has \['ShapeA'\]\)"):
        read_blend_mesh(path, object_name="ShapeB")
    path = write_blend(tmp_path / "m.blend", CUBE, POLYS, object_name="ShapeM", modifiers=1)
    with pytest.raises(ChecksumError, match="has modifiers.*mmbench blender import-meshes"):
        read_blend_mesh(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputsNotFoundError, match="Cannot read the Blender file"):
        read_blend_mesh(tmp_path / "nope.blend")
