"""Read triangle meshes out of Blender ``.blend`` files, without Blender.

A ``.blend`` file is a header, a list of memory blocks (each tagged with the C struct it holds
and the address it had in memory when saved) and the SDNA: the layout of every struct, so that
any version's file describes itself. This module reads just enough of it to get a mesh object:
the ``Object`` (its name, scale and the ``Mesh`` it points to) and the mesh's vertices and
polygons (``MVert.co`` with ``MPoly``/``MLoop``, the layout of Blender 2.63–3.x; legacy
``MFace`` tessellation faces before that). Polygons are fanned into triangles.

Used for the ``original`` mesh set: the Multimodal3DIdent release's ``Shape<Name>.blend`` files
(saved by Blender 2.78 and 2.91). Compressed files (gzip) are read too; Blender ≥ 3.0's zstd
compression, meshes stored only as attributes (Blender ≥ 3.4) and Blender ≥ 5.0's large-header
format are refused with a clear error (use the original files, or convert them with
``mmbench blender import-meshes``).

Modifiers are not applied: the release's shape objects have none (checked by
:func:`read_blend_mesh`, which refuses an object with modifiers rather than return another shape).

Example:
    >>> vertices, faces, info = read_blend_mesh("ShapeTeapot.blend")
    >>> info["object"], info["scale"]
    ('Teapot', (1.0, 1.0, 1.0))
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import ChecksumError, InputsNotFoundError

__all__ = ["BlendFile", "read_blend_mesh"]

_HEADER = re.compile(rb"^BLENDER([_-])([vV])(\d{3})")
_LARGE_HEADER = re.compile(rb"^BLENDER\d\d-\d\dv(\d{4})")  # Blender >= 5.0: "BLENDER17-01v0500"
_ARRAY = re.compile(r"\[(\d+)\]")


@dataclasses.dataclass(frozen=True)
class _Block:
    code: bytes
    size: int
    address: int
    sdna: int
    count: int
    offset: int  # of the block's data in the file


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str  # without '*' and array dimensions
    type: str
    offset: int
    size: int
    pointer: bool
    shape: tuple[int, ...]


class BlendFile:
    """The blocks and struct layouts of one ``.blend`` file, held in memory (read once).

    Raises:
        InputsNotFoundError: the file cannot be read.
        ChecksumError: it is not a ``.blend`` file this reader understands (the message says why).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise InputsNotFoundError(f"Cannot read the Blender file {self.path}: {exc}.") from exc
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        if data[:4] == b"\x28\xb5\x2f\xfd":
            raise self._refuse("it is zstd-compressed (Blender ≥ 3.0's 'Compress' option); re-save it uncompressed")
        m = _HEADER.match(data)
        if m is None and (large := _LARGE_HEADER.match(data)):
            version = large.group(1).decode()
            raise self._refuse(f"it was saved by Blender {int(version[:2])}.{int(version[2:])} in the large-header format of Blender "
                               "≥ 5.0, which this reader does not read (it reads the release's 2.7x–3.x files); use the "
                               "original file, or convert it with `mmbench blender import-meshes`")
        if m is None:
            raise self._refuse("it does not start with a Blender header ('BLENDER' + pointer size + endianness + version)")
        self.data = data
        self.pointer_size = 8 if m.group(1) == b"-" else 4
        self.endian = "<" if m.group(2) == b"v" else ">"
        self.version = int(m.group(3))
        self.blocks = self._read_blocks(len(m.group(0)))
        dna = next((b for b in self.blocks if b.code == b"DNA1"), None)
        if dna is None:
            raise self._refuse("it has no DNA1 block (struct layouts)")
        self._read_sdna(dna)
        self.by_address = {b.address: b for b in self.blocks if b.address}

    def _refuse(self, why: str) -> ChecksumError:
        return ChecksumError(f"{self.path} cannot be read as a Blender file: {why}.")

    # ------------------------------------------------------------------ layout
    def _read_blocks(self, pos: int) -> list[_Block]:
        head = struct.Struct(f"{self.endian}4si{'Q' if self.pointer_size == 8 else 'I'}ii")
        blocks = []
        while pos + head.size <= len(self.data):
            code, size, address, sdna, count = head.unpack_from(self.data, pos)
            pos += head.size
            if code == b"ENDB":
                return blocks
            if size < 0 or pos + size > len(self.data):
                raise self._refuse(f"block {code!r} at byte {pos - head.size} runs past the end of the file (truncated?)")
            blocks.append(_Block(code, size, address, sdna, count, pos))
            pos += size
        raise self._refuse("it ends without an ENDB block (truncated?)")

    def _read_sdna(self, dna: _Block) -> None:
        buf, pos = self.data, dna.offset + 8  # after b"SDNA" b"NAME"
        names, pos = self._strings(buf, pos)
        pos = _align4(pos) + 4  # b"TYPE"
        types, pos = self._strings(buf, pos)
        pos = _align4(pos) + 4  # b"TLEN"
        lengths = np.frombuffer(buf, f"{self.endian}u2", len(types), pos).astype(int)
        pos = _align4(pos + 2 * len(types)) + 4  # b"STRC"
        (n_structs,) = struct.unpack_from(f"{self.endian}i", buf, pos)
        pos += 4
        self.type_names, self.type_lengths = types, {t: int(n) for t, n in zip(types, lengths, strict=True)}
        self.struct_index: dict[str, int] = {}
        self.struct_names: list[str] = []
        self.layouts: list[dict[str, _Field]] = []
        for k in range(n_structs):
            type_idx, n_fields = struct.unpack_from(f"{self.endian}hh", buf, pos)
            pairs = np.frombuffer(buf, f"{self.endian}i2", 2 * n_fields, pos + 4).reshape(-1, 2)
            pos += 4 + 4 * n_fields
            name = types[type_idx]
            self.struct_index[name] = k
            self.struct_names.append(name)
            self.layouts.append(self._layout(pairs, names, types))

    def _strings(self, buf: bytes, pos: int) -> tuple[list[str], int]:
        (n,) = struct.unpack_from(f"{self.endian}i", buf, pos)
        pos += 4
        out = []
        for _ in range(n):
            end = buf.index(b"\0", pos)
            out.append(buf[pos:end].decode("latin-1"))
            pos = end + 1
        return out, pos

    def _layout(self, pairs: np.ndarray, names: list[str], types: list[str]) -> dict[str, _Field]:
        fields, offset = {}, 0
        for t, n in pairs:
            raw, type_name = names[n], types[t]
            shape = tuple(int(d) for d in _ARRAY.findall(raw))
            pointer = raw.startswith("*") or raw.startswith("(*")
            unit = self.pointer_size if pointer else self.type_lengths[type_name]
            size = unit * int(np.prod(shape, dtype=int))
            clean = raw.lstrip("*(").split("[")[0].split(")")[0]
            fields[clean] = _Field(clean, type_name, offset, size, pointer, shape)
            offset += size
        return fields

    # ------------------------------------------------------------------ reading values
    def struct_of(self, block: _Block) -> str:
        return self.struct_names[block.sdna]

    def field(self, block: _Block, name: str, index: int = 0) -> Any:
        """Field ``name`` of the ``index``-th struct in ``block``: a number, a tuple, a str or a pointer."""
        f = self.layouts[block.sdna].get(name)
        if f is None:
            raise self._refuse(f"its {self.struct_of(block)} struct has no field {name!r} (a Blender version this reader does not know)")
        pos = block.offset + index * self.type_lengths[self.struct_of(block)] + f.offset
        if f.pointer:
            return struct.unpack_from(f"{self.endian}{'Q' if self.pointer_size == 8 else 'I'}", self.data, pos)[0]
        if f.type == "char" and f.shape:
            return self.data[pos : pos + f.size].split(b"\0", 1)[0].decode("utf-8", "replace")
        values = np.frombuffer(self.data, _DTYPES[f.type].newbyteorder(self.endian), f.size // _DTYPES[f.type].itemsize, pos)
        return tuple(values.tolist()) if f.shape else values.item()

    def has_field(self, block: _Block, name: str) -> bool:
        return name in self.layouts[block.sdna]

    def array(self, address: int, fields: tuple[str, ...], count: int) -> dict[str, np.ndarray]:
        """Columns ``fields`` of the ``count`` structs stored at ``address`` (one numpy view each)."""
        block = self.by_address.get(address)
        if block is None or block.count < count:
            raise self._refuse(f"a mesh array at address {address:#x} is missing or shorter than {count}")
        layout, stride = self.layouts[block.sdna], self.type_lengths[self.struct_of(block)]
        out = {}
        for name in fields:
            f = layout[name]
            dtype = _DTYPES[f.type].newbyteorder(self.endian)
            view = np.ndarray((count, *f.shape), dtype, self.data, block.offset + f.offset, (stride, *_strides(f.shape, dtype)))
            out[name] = np.array(view)
        return out

    def blocks_of(self, code: bytes) -> list[_Block]:
        return [b for b in self.blocks if b.code == code.ljust(4, b"\0")]


_DTYPES = {"char": np.dtype("u1"), "uchar": np.dtype("u1"), "short": np.dtype("i2"), "ushort": np.dtype("u2"),
           "int": np.dtype("i4"), "uint": np.dtype("u4"), "float": np.dtype("f4"), "double": np.dtype("f8"),
           "int64_t": np.dtype("i8"), "uint64_t": np.dtype("u8"), "int8_t": np.dtype("i1")}


def _strides(shape: tuple[int, ...], dtype: np.dtype) -> tuple[int, ...]:
    out, step = [], dtype.itemsize
    for d in reversed(shape):
        out.append(step)
        step *= d
    return tuple(reversed(out))


def _align4(pos: int) -> int:
    return (pos + 3) & ~3


# ---------------------------------------------------------------------------- meshes
def read_blend_mesh(path: str | os.PathLike[str], *, object_name: str | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Vertices ``(V, 3)`` float32 (object scale applied) and triangles ``(F, 3)`` int64 of a mesh object.

    Args:
        path: the ``.blend`` file.
        object_name: the object to read (its name without Blender's ``OB`` prefix); default: the
            file's only mesh object.

    Returns:
        ``(vertices, faces, info)``; ``info`` has the ``object`` and ``mesh`` names, the object's
        ``scale`` (applied to the vertices; its location and rotation are not, as the reference
        generator re-places and re-rotates every object) and the file's Blender ``version``.

    Raises:
        ChecksumError: no such mesh object, several when none was named, modifiers on it, or a
            layout this reader does not know.
    """
    blend = BlendFile(path)
    obj = _mesh_object(blend, object_name)
    if blend.has_field(obj, "modifiers") and _listbase_first(blend, obj, "modifiers"):
        raise blend._refuse(f"object {_id_name(blend, obj)!r} has modifiers, which this reader cannot apply; "
                            "convert it with `mmbench blender import-meshes` instead")
    mesh = blend.by_address[blend.field(obj, "data")]
    vertices = blend.array(blend.field(mesh, "mvert"), ("co",), blend.field(mesh, "totvert"))["co"]
    faces = _triangles(blend, mesh)
    scale = np.asarray(blend.field(obj, "size"), np.float32)
    info = {"object": _id_name(blend, obj), "mesh": _id_name(blend, mesh), "scale": tuple(scale.tolist()),
            "blender_version": blend.version}
    return (vertices * scale).astype(np.float32), faces, info


def _id_name(blend: BlendFile, block: _Block) -> str:
    f = blend.layouts[block.sdna]["id"]
    id_block = dataclasses.replace(block, sdna=blend.struct_index["ID"], offset=block.offset + f.offset)
    return blend.field(id_block, "name")[2:]  # drop the "OB" / "ME" type prefix


def _listbase_first(blend: BlendFile, block: _Block, name: str) -> int:
    f = blend.layouts[block.sdna][name]
    lb = dataclasses.replace(block, sdna=blend.struct_index["ListBase"], offset=block.offset + f.offset)
    return blend.field(lb, "first")


def _mesh_object(blend: BlendFile, object_name: str | None) -> _Block:
    meshes = {b.address for b in blend.blocks_of(b"ME")}
    objects = [b for b in blend.blocks_of(b"OB") if blend.field(b, "data") in meshes]
    names = [_id_name(blend, b) for b in objects]
    if object_name is not None:
        if object_name not in names:
            raise blend._refuse(f"it has no mesh object named {object_name!r} (it has {names})")
        return objects[names.index(object_name)]
    if len(objects) != 1:
        raise blend._refuse(f"it has {len(objects)} mesh objects ({names}); name the one to read")
    return objects[0]


def _triangles(blend: BlendFile, mesh: _Block) -> np.ndarray:
    n_poly = blend.field(mesh, "totpoly") if blend.has_field(mesh, "totpoly") else 0
    if n_poly:
        poly = blend.array(blend.field(mesh, "mpoly"), ("loopstart", "totloop"), n_poly)
        loops = blend.array(blend.field(mesh, "mloop"), ("v",), blend.field(mesh, "totloop"))["v"].astype(np.int64)
        return _fan(poly["loopstart"].astype(np.int64), poly["totloop"].astype(np.int64), loops)
    n_face = blend.field(mesh, "totface")
    if not n_face:
        raise blend._refuse(f"mesh {_id_name(blend, mesh)!r} has no polygons in a layout this reader knows")
    f = blend.array(blend.field(mesh, "mface"), ("v1", "v2", "v3", "v4"), n_face)
    quads = f["v4"] != 0  # MFace: v4 == 0 marks a triangle
    tri = np.stack([f["v1"], f["v2"], f["v3"]], 1)
    second = np.stack([f["v1"], f["v3"], f["v4"]], 1)[quads]
    return np.concatenate([tri, second]).astype(np.int64)


def _fan(start: np.ndarray, count: np.ndarray, loops: np.ndarray) -> np.ndarray:
    """Triangles (l0, l_k, l_k+1) of every polygon, vectorised over all polygons."""
    n_tri = np.maximum(count - 2, 0)
    poly = np.repeat(np.arange(len(start)), n_tri)
    k = np.arange(int(n_tri.sum())) - np.repeat(np.cumsum(n_tri) - n_tri, n_tri) + 1
    first = start[poly]
    return np.stack([loops[first], loops[first + k], loops[first + k + 1]], 1)
