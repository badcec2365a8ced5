"""Fake Multimodal3DIdent shape files: real ``.blend`` format, tiny procedural meshes.

:func:`write_blend` writes a Blender file the way Blender lays one out (header, tagged memory
blocks with their saved addresses, an SDNA describing every struct used) holding one mesh object:
an ``Object`` pointing at a ``Mesh`` whose vertices, polygons and loops are ``MVert``/``MPoly``/
``MLoop`` arrays, the layout of Blender 2.63–3.x. The SDNA holds only the fields mmbench reads,
so the files are small, but the reader (:mod:`mmbench.sources.blendfile`) finds every field
through the SDNA exactly as it does in Blender's own files.

:func:`write_fake_shapes` writes the seven ``Shape<Name>.blend`` files of the ``original`` mesh
set (the procedural stand-ins at the lowest detail, polygons as quads and triangles) with the
manifest that marks them as fake (:mod:`mmbench.sources.shapes`).

Example:
    >>> root = write_fake_shapes(tmp_path, layout="repo")          # tmp_path/assets/shapes/…
    >>> mmbench.build("multimodal3dident", meshes="original", data_dir=root, ...)
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["write_blend", "write_fake_shapes"]

_VERSION = b"291"
_PTR = 8
#: struct name → fields (type, name as SDNA spells it: '*' for pointers, '[n]' for arrays)
_STRUCTS: dict[str, list[tuple[str, str]]] = {
    "ID": [("void", "*next"), ("void", "*prev"), ("char", "name[66]"), ("char", "_pad[6]")],
    "ListBase": [("void", "*first"), ("void", "*last")],
    "Object": [("ID", "id"), ("void", "*data"), ("ListBase", "modifiers"), ("float", "loc[3]"), ("float", "size[3]"),
               ("float", "rot[3]"), ("int", "type"), ("int", "_pad")],
    "Mesh": [("ID", "id"), ("MVert", "*mvert"), ("MPoly", "*mpoly"), ("MLoop", "*mloop"), ("MFace", "*mface"),
             ("int", "totvert"), ("int", "totpoly"), ("int", "totloop"), ("int", "totface")],
    "MVert": [("float", "co[3]"), ("short", "no[3]"), ("char", "flag"), ("char", "bweight")],
    "MPoly": [("int", "loopstart"), ("int", "totloop"), ("short", "mat_nr"), ("char", "flag"), ("char", "_pad")],
    "MLoop": [("int", "v"), ("int", "e")],
    "MFace": [("int", "v1"), ("int", "v2"), ("int", "v3"), ("int", "v4"), ("short", "mat_nr"), ("char", "edcode"),
              ("char", "flag")],
    "ModifierData": [("void", "*next"), ("void", "*prev"), ("int", "type"), ("int", "mode")],
}
_BASIC = {"char": 1, "short": 2, "int": 4, "float": 4, "void": 0}


def _sdna() -> tuple[bytes, dict[str, int], dict[str, int]]:
    """The DNA1 block's payload, each struct's index and each type's length."""
    types = list(_BASIC) + list(_STRUCTS)
    names = list(dict.fromkeys(n for fields in _STRUCTS.values() for _, n in fields))
    lengths = dict(_BASIC)
    for sname, fields in _STRUCTS.items():
        lengths[sname] = sum(_field_size(t, n, lengths) for t, n in fields)

    def strings(tag: bytes, items: Sequence[str]) -> bytes:
        out = tag + struct.pack("<i", len(items)) + b"".join(s.encode() + b"\0" for s in items)
        return out + b"\0" * (-len(out) % 4)

    body = b"SDNA" + strings(b"NAME", names) + strings(b"TYPE", types)
    tlen = b"TLEN" + struct.pack(f"<{len(types)}H", *(lengths[t] for t in types))
    body += tlen + b"\0" * (-len(tlen) % 4)
    body += b"STRC" + struct.pack("<i", len(_STRUCTS))
    for sname, fields in _STRUCTS.items():
        body += struct.pack("<hh", types.index(sname), len(fields))
        body += b"".join(struct.pack("<hh", types.index(t), names.index(n)) for t, n in fields)
    return body, {s: i for i, s in enumerate(_STRUCTS)}, lengths


def _field_size(type_name: str, name: str, lengths: dict[str, int]) -> int:
    count = 1
    for dim in name.replace("]", "").split("[")[1:]:
        count *= int(dim)
    return (_PTR if name.startswith("*") else lengths[type_name]) * count


def _pack(values: dict[str, object], sname: str, lengths: dict[str, int]) -> bytes:
    """One struct's bytes: the named fields set, the rest zero."""
    out = bytearray(lengths[sname])
    offset = 0
    for t, n in _STRUCTS[sname]:
        size = _field_size(t, n, lengths)
        key = n.lstrip("*").split("[")[0]
        if key in values:
            v = values[key]
            if isinstance(v, bytes):
                out[offset : offset + size] = v.ljust(size, b"\0")[:size]
            elif n.startswith("*"):
                out[offset : offset + size] = struct.pack("<Q", v)
            elif t in ("ID", "ListBase"):
                out[offset : offset + size] = _pack(v, t, lengths)  # type: ignore[arg-type]
            else:
                fmt = {"float": "f", "int": "i", "short": "h", "char": "b"}[t]
                arr = np.atleast_1d(np.asarray(v))
                out[offset : offset + size] = struct.pack(f"<{len(arr)}{fmt}", *arr.tolist())
        offset += size
    return bytes(out)


def write_blend(
    path: str | os.PathLike[str],
    vertices: np.ndarray,
    polygons: Sequence[Sequence[int]],
    *,
    object_name: str,
    scale: Sequence[float] = (1.0, 1.0, 1.0),
    rotation: Sequence[float] = (0.0, 0.0, 0.0),
    modifiers: int = 0,
) -> Path:
    """Write a ``.blend`` file holding one mesh object (``modifiers``: how many dummy modifiers)."""
    sdna, index, lengths = _sdna()
    v = np.asarray(vertices, np.float32)
    loops = [int(i) for poly in polygons for i in poly]
    starts = np.cumsum([0] + [len(p) for p in polygons])[:-1]
    addr = {"ob": 0x1000, "me": 0x2000, "mvert": 0x3000, "mpoly": 0x4000, "mloop": 0x5000, "mod": 0x6000}
    mod_first = addr["mod"] if modifiers else 0
    blocks = [
        (b"OB\0\0", "Object", addr["ob"], 1, _pack({
            "id": {"name": b"OB" + object_name.encode()}, "data": addr["me"], "modifiers": {"first": mod_first, "last": mod_first},
            "size": list(scale), "rot": list(rotation), "type": 1}, "Object", lengths)),
        (b"ME\0\0", "Mesh", addr["me"], 1, _pack({
            "id": {"name": b"ME" + object_name.encode() + b"Mesh"}, "mvert": addr["mvert"], "mpoly": addr["mpoly"],
            "mloop": addr["mloop"], "totvert": len(v), "totpoly": len(polygons), "totloop": len(loops)}, "Mesh", lengths)),
        (b"DATA", "MVert", addr["mvert"], len(v), b"".join(_pack({"co": row}, "MVert", lengths) for row in v)),
        (b"DATA", "MPoly", addr["mpoly"], len(polygons),
         b"".join(_pack({"loopstart": int(s), "totloop": len(p)}, "MPoly", lengths) for s, p in zip(starts, polygons, strict=True))),
        (b"DATA", "MLoop", addr["mloop"], len(loops), b"".join(_pack({"v": i}, "MLoop", lengths) for i in loops)),
    ]
    blocks += [(b"DATA", "ModifierData", addr["mod"], 1, _pack({"type": 1}, "ModifierData", lengths))] * bool(modifiers)
    out = bytearray(b"BLENDER-v" + _VERSION)
    for code, sname, address, count, data in blocks:
        out += struct.pack("<4siQii", code, len(data), address, index[sname], count) + data
    out += struct.pack("<4siQii", b"DNA1", len(sdna), 0, 0, 1) + sdna
    out += struct.pack("<4siQii", b"ENDB", 0, 0, 0, 0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path


def _quads_and_triangles(faces: np.ndarray) -> list[list[int]]:
    """Triangles, with every other adjacent pair sharing an edge merged back into a quad (so the
    fan triangulation is exercised)."""
    polys: list[list[int]] = []
    k = 0
    while k < len(faces):
        a = [int(x) for x in faces[k]]
        if k + 1 < len(faces):
            b = [int(x) for x in faces[k + 1]]
            if a[0] == b[0] and a[2] == b[1]:
                polys.append([a[0], a[1], a[2], b[2]])
                k += 2
                continue
        polys.append(a)
        k += 1
    return polys


def write_fake_shapes(directory: str | os.PathLike[str], *, layout: str = "flat") -> Path:
    """Write the seven ``Shape<Name>.blend`` files (tiny procedural meshes, each object with its own
    scale) and the fake manifest; ``layout="repo"`` puts them under ``assets/shapes/`` like the
    repository. Returns ``directory`` (what ``data_dir`` should name)."""
    from mmbench.rendering.scene.meshes import SHAPES, procedural_mesh
    from mmbench.sources.reading import git_blob_id
    from mmbench.sources.shapes import _FILES, FAKE_FORMAT, FAKE_MANIFEST
    from mmbench.versioning import sha256_file

    root = Path(directory)
    folder = root / "assets" / "shapes" if layout == "repo" else root
    files = {}
    for k, shape in enumerate(SHAPES):
        mesh = procedural_mesh(shape, detail=1)
        file = _FILES[shape][0]
        path = write_blend(folder / file, mesh.vertices, _quads_and_triangles(mesh.faces), object_name=Path(file).stem,
                           scale=(1.0 + 0.1 * k,) * 3, rotation=(0.5 * k, 0.0, 0.0))
        files[shape] = {"file": file, "sha256": sha256_file(path), "size": path.stat().st_size, "git_blob": git_blob_id(path)}
    (folder / FAKE_MANIFEST).write_text(json.dumps({"format": FAKE_FORMAT, "files": files}, indent=1))
    return root
