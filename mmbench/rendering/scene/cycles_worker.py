"""The Cycles render worker: a standalone script run by a Blender interpreter (never imported with bpy here).

mmbench keeps ``bpy`` out of its own environment (bpy needs Python 3.11 and numpy < 2). The
``cycles`` backend (:mod:`mmbench.rendering.scene.cycles`) starts this file in a separate
interpreter — a Python with ``bpy`` installed, or a ``blender`` executable — and talks to it
over two pipes. This file uses the standard library, numpy and (in :func:`main` only) bpy, so
that it runs in any of those interpreters; the parent imports it for the protocol alone.

**Protocol** (version :data:`PROTOCOL`). Every message is a frame ``MAGIC`` (4 bytes), the
length of a UTF-8 JSON header (uint32, little-endian), the length of a binary blob (uint64),
then the header and the blob. The parent sends:

* ``{"op": "init", ...}`` once: image size, samples, denoising, device, threads, the ground
  height and the mesh set (blob: every mesh's float32 vertices then int32 faces). The worker
  builds the scene and answers ``{"op": "ready", "blender": version, "device": ...}``;
* ``{"op": "render", "n": n, "seeds": [...]}`` with a float64 ``(n, len(PARAMS))`` blob of
  world-space scene parameters (:data:`PARAMS`, computed by the parent from its
  ``SceneBatch``: the scene's semantics live there, not here). The worker answers
  ``{"op": "images", "n": n}`` with ``n × size × size × 3`` uint8 pixels (rows top to bottom);
* ``{"op": "quit"}`` (or end of file): the worker exits.

A failure in the worker is answered ``{"op": "error", "message": ..., "traceback": ...}``.

Usage (what the parent runs)::

    python3.11 cycles_worker.py --read-fd 5 --write-fd 6
    blender -b --factory-startup --python cycles_worker.py -- --read-fd 5 --write-fd 6
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import struct
import sys
import tempfile
import time
import traceback
from typing import Any

import numpy as np

PROTOCOL = 1
MAGIC = b"MMBW"
_FRAME = struct.Struct("<4sIQ")
#: Per-scene parameters of a ``render`` message, in world units (Blender's axes, z up).
PARAMS = (
    "shape",
    "loc_x", "loc_y", "loc_z",  # object location
    "rot_x", "rot_y", "rot_z",  # object Euler angles (XYZ, radians)
    "obj_r", "obj_g", "obj_b",  # object colour
    "spot_x", "spot_y", "spot_z",  # spotlight location (it tracks the object)
    "spot_r", "spot_g", "spot_b",  # spotlight colour (the reference's colorsys output: may leave [0, 1])
    "bg_r", "bg_g", "bg_b",  # ground colour (ditto)
)
#: The reference scene's constants (research note §1.5; the lamps, world and material read with bpy
#: from the reference's assets/scenes/base_scene_equal_xyz.blend and assets/materials/Rubber.blend).
CAMERA_LOCATION = (8.0, 0.0, 8.0)
LENS_MM, SENSOR_MM = 35.0, 50.0
SUN_LOCATION, SUN_STRENGTH = (0.0, 0.0, 25.82), 0.5
SUN_ANGLE = 0.19933730363845825  # radians
AREA_LOCATION, AREA_POWER, AREA_SIZE = (0.0, 0.0, 7.0), 39.2699089050293, 1.0
WORLD_GREY = 0.05087608844041824
SPOT_POWER, SPOT_SIZE_DEG, SPOT_BLEND, SPOT_SOFT = 3000.0, 35.0, 0.1, 0.5
GROUND_SIZE = 1500.0
#: CLEVR's "Rubber" node group (assets/materials/Rubber.blend of the reference, read with bpy): the
#: colour's diffuse and sheen lobes mixed by Fresnel(IOR + 0.2), then a grey Beckmann glossy coat
#: mixed in by Fresnel(IOR), with the group's defaults IOR 1.2 and roughness 0.35 (glossy: √0.35).
RUBBER_IOR, RUBBER_ROUGHNESS, RUBBER_SHEEN_ROUGHNESS, RUBBER_GLOSS = 1.2, 0.35, 0.6, 0.8


# ============================================================================ protocol
def write_message(fd: int, header: dict[str, Any], blob: bytes | memoryview = b"") -> None:
    """Send one frame (header + blob) on file descriptor ``fd``."""
    head = json.dumps(header).encode()
    body = memoryview(blob).cast("B")  # bytes, not rows, for an n-d array's buffer
    data = memoryview(_FRAME.pack(MAGIC, len(head), len(body)) + head)
    for part in (data, body):
        while len(part):
            part = part[os.write(fd, part):]


def read_message(fd: int, *, deadline: float | None = None) -> tuple[dict[str, Any], bytes]:
    """Receive one frame from ``fd``.

    Raises:
        EOFError: the other side closed the pipe (before or inside a frame).
        TimeoutError: ``deadline`` (a ``time.monotonic()`` value) passed first.
        ValueError: the bytes are not a frame of this protocol.
    """
    magic, head_len, blob_len = _FRAME.unpack(_read_exact(fd, _FRAME.size, deadline))
    if magic != MAGIC:
        raise ValueError(f"not a render-worker frame (magic {magic!r}, expected {MAGIC!r})")
    header = json.loads(_read_exact(fd, head_len, deadline))
    return header, _read_exact(fd, blob_len, deadline)


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError(f"no answer before the deadline ({got} of {n} bytes received)")
        k = os.readv(fd, [view[got:]])
        if k == 0:
            raise EOFError(f"pipe closed after {got} of {n} bytes")
        got += k
    return bytes(buf)


def pack_meshes(meshes: list[tuple[np.ndarray, np.ndarray]]) -> tuple[list[dict[str, int]], bytes]:
    """``(vertices (V, 3), faces (F, 3))`` pairs → the ``init`` header's mesh list and blob."""
    sizes = [{"vertices": len(v), "faces": len(f)} for v, f in meshes]
    blob = b"".join(np.ascontiguousarray(v, "<f4").tobytes() + np.ascontiguousarray(f, "<i4").tobytes() for v, f in meshes)
    return sizes, blob


def unpack_meshes(sizes: list[dict[str, int]], blob: bytes) -> list[tuple[np.ndarray, np.ndarray]]:
    """Inverse of :func:`pack_meshes`."""
    out, pos = [], 0
    for s in sizes:
        v = np.frombuffer(blob, "<f4", s["vertices"] * 3, pos).reshape(-1, 3)
        pos += v.nbytes
        f = np.frombuffer(blob, "<i4", s["faces"] * 3, pos).reshape(-1, 3)
        pos += f.nbytes
        out.append((v, f))
    return out


def serve(read_fd: int, write_fd: int, make_renderer: Any) -> int:
    """The worker loop: ``make_renderer(init_header, meshes)`` returns ``(info, render)`` where
    ``render(params (n, P), seeds) -> (n, H, W, 3) uint8``. Returns the exit status."""
    render = None
    while True:
        try:
            header, blob = read_message(read_fd)
        except EOFError:
            return 0
        op = header.get("op")
        try:
            if op == "quit":
                return 0
            if op == "init":
                if header.get("protocol") != PROTOCOL:
                    raise ValueError(f"protocol {header.get('protocol')} requested, this worker speaks {PROTOCOL}")
                info, render = make_renderer(header, unpack_meshes(header["meshes"], blob))
                write_message(write_fd, {"op": "ready", **info})
            elif op == "render":
                if render is None:
                    raise ValueError("render before init")
                params = np.frombuffer(blob, "<f8").reshape(header["n"], len(PARAMS))
                images = np.ascontiguousarray(render(params, header["seeds"]), dtype=np.uint8)
                write_message(write_fd, {"op": "images", "n": len(images)}, images.data)
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as exc:  # reported to the parent, which raises a clear error
            write_message(write_fd, {"op": "error", "message": f"{type(exc).__name__}: {exc}",
                                     "traceback": traceback.format_exc()})


# ============================================================================ the Cycles scene (bpy)
class CyclesScene:
    """The reference scene built once in bpy; :meth:`render` redraws it per scene parameter row."""

    def __init__(self, init: dict[str, Any], meshes: list[tuple[np.ndarray, np.ndarray]]) -> None:
        import bpy

        self.bpy = bpy
        self.size = int(init["size"])
        bpy.ops.wm.read_factory_settings(use_empty=True)
        self.scene = bpy.context.scene
        self._render_settings(init)
        self.device = self._device(init.get("device", "auto"))
        self._world()
        target = bpy.data.objects.new("target", None)
        self.scene.collection.objects.link(target)
        self._camera(target)
        self._fill_lights(target)
        self.object_material, self.object_color = self._rubber("object")
        self.ground_material, self.ground_color = self._rubber("ground")
        self.meshes = [self._mesh(k, v, f) for k, (v, f) in enumerate(meshes)]
        self.obj = self._link(bpy.data.objects.new("object", self.meshes[0]))
        self._ground(float(init["ground"]))
        self._spot()
        self.tmp = tempfile.mkdtemp(prefix="mmbench-cycles-")
        self.scene.render.filepath = os.path.join(self.tmp, "frame.bmp")

    def _link(self, obj: Any) -> Any:
        self.scene.collection.objects.link(obj)
        return obj

    def _render_settings(self, init: dict[str, Any]) -> None:
        r, c = self.scene.render, self.scene.cycles
        r.engine = "CYCLES"
        r.resolution_x = r.resolution_y = self.size
        r.resolution_percentage = 100
        r.film_transparent = False
        r.dither_intensity = 0.0  # no noise added when quantising to 8 bits
        r.image_settings.file_format = "BMP"
        r.image_settings.color_mode = "RGB"
        threads = int(init.get("threads") or 0)
        r.threads_mode = "FIXED" if threads else "AUTO"
        if threads:
            r.threads = threads
        self.scene.view_settings.view_transform = "Standard"  # plain sRGB, as Blender 2.7x scenes
        self.scene.view_settings.look = "None"
        c.samples = int(init["samples"])
        c.use_adaptive_sampling = False  # exactly `samples` samples per pixel, as the reference
        c.max_bounces = 0  # the reference: direct light only
        c.transparent_max_bounces = 8  # (2.9x also had transparent_min_bounces = 8; gone since)
        c.blur_glossy = 2.0
        c.use_denoising = bool(init.get("denoise", True))
        if c.use_denoising:
            c.denoiser = "OPENIMAGEDENOISE"
        if hasattr(c, "use_auto_tile"):
            c.use_auto_tile = False

    def _device(self, want: str) -> str:
        """``CPU``, or the first GPU backend that has a device (``auto``/``optix``/``cuda``/``hip``/``metal``)."""
        if want == "cpu":
            self.scene.cycles.device = "CPU"
            return "CPU"
        prefs = self.bpy.context.preferences.addons["cycles"].preferences
        kinds = ["OPTIX", "CUDA", "HIP", "METAL", "ONEAPI"] if want == "auto" else [want.upper()]
        for kind in kinds:
            try:
                prefs.compute_device_type = kind
            except TypeError:
                continue
            prefs.get_devices()
            gpus = [d for d in prefs.devices if d.type == kind]
            if gpus:
                for d in prefs.devices:
                    d.use = d.type == kind
                self.scene.cycles.device = "GPU"
                return kind
        if want != "auto":
            raise RuntimeError(f"no {want.upper()} device found; use device 'auto' or 'cpu'")
        self.scene.cycles.device = "CPU"
        return "CPU"

    def _world(self) -> None:
        world = self.bpy.data.worlds.new("world")
        world.use_nodes = True
        bg = world.node_tree.nodes["Background"]
        bg.inputs["Color"].default_value = (WORLD_GREY, WORLD_GREY, WORLD_GREY, 1.0)
        self.scene.world = world

    def _track(self, obj: Any, target: Any) -> None:
        con = obj.constraints.new("TRACK_TO")
        con.target = target
        con.track_axis = "TRACK_NEGATIVE_Z"
        con.up_axis = "UP_Y"

    def _camera(self, target: Any) -> None:
        cam = self.bpy.data.cameras.new("camera")
        cam.lens, cam.sensor_width, cam.sensor_fit = LENS_MM, SENSOR_MM, "AUTO"
        obj = self._link(self.bpy.data.objects.new("camera", cam))
        obj.location = CAMERA_LOCATION
        self._track(obj, target)
        self.scene.camera = obj

    def _fill_lights(self, target: Any) -> None:
        sun = self.bpy.data.lights.new("sun", "SUN")
        sun.energy, sun.angle = SUN_STRENGTH, SUN_ANGLE
        self._link(self.bpy.data.objects.new("sun", sun)).location = SUN_LOCATION
        area = self.bpy.data.lights.new("area", "AREA")
        area.energy, area.shape, area.size = AREA_POWER, "SQUARE", AREA_SIZE
        obj = self._link(self.bpy.data.objects.new("area", area))
        obj.location = AREA_LOCATION
        self._track(obj, target)

    def _rubber(self, name: str) -> tuple[Any, Any]:
        """A rubber material (see :data:`RUBBER_IOR`) and its colour socket (an RGB node feeding both lobes)."""
        mat = self.bpy.data.materials.new(name)
        mat.use_nodes = True
        tree = mat.node_tree
        tree.nodes.clear()
        node = tree.nodes.new
        color = node("ShaderNodeRGB")
        diffuse, sheen, glossy = node("ShaderNodeBsdfDiffuse"), node("ShaderNodeBsdfSheen"), node("ShaderNodeBsdfGlossy")
        sheen.distribution = "ASHIKHMIN"
        sheen.inputs["Roughness"].default_value = RUBBER_SHEEN_ROUGHNESS
        glossy.distribution = "BECKMANN"
        glossy.inputs["Color"].default_value = (RUBBER_GLOSS, RUBBER_GLOSS, RUBBER_GLOSS, 1.0)
        glossy.inputs["Roughness"].default_value = RUBBER_ROUGHNESS**0.5
        inner, outer = node("ShaderNodeFresnel"), node("ShaderNodeFresnel")
        inner.inputs["IOR"].default_value, outer.inputs["IOR"].default_value = RUBBER_IOR + 0.2, RUBBER_IOR
        mix1, mix2, out = node("ShaderNodeMixShader"), node("ShaderNodeMixShader"), node("ShaderNodeOutputMaterial")
        link = tree.links.new
        for bsdf in (diffuse, sheen):
            link(color.outputs[0], bsdf.inputs["Color"])
        link(inner.outputs[0], mix1.inputs[0])
        link(diffuse.outputs[0], mix1.inputs[1])
        link(sheen.outputs[0], mix1.inputs[2])
        link(outer.outputs[0], mix2.inputs[0])
        link(mix1.outputs[0], mix2.inputs[1])
        link(glossy.outputs[0], mix2.inputs[2])
        link(mix2.outputs[0], out.inputs["Surface"])
        return mat, color.outputs[0]

    def _mesh(self, k: int, vertices: np.ndarray, faces: np.ndarray) -> Any:
        mesh = self.bpy.data.meshes.new(f"shape{k}")
        mesh.from_pydata(vertices.astype(float).tolist(), [], faces.tolist())
        mesh.validate()
        if hasattr(mesh, "shade_smooth"):
            mesh.shade_smooth()
        else:  # Blender < 4.1
            mesh.polygons.foreach_set("use_smooth", [True] * len(mesh.polygons))
        mesh.materials.append(self.object_material)
        return mesh

    def _ground(self, z: float) -> None:
        h = GROUND_SIZE / 2
        mesh = self.bpy.data.meshes.new("ground")
        mesh.from_pydata([(-h, -h, 0), (h, -h, 0), (h, h, 0), (-h, h, 0)], [], [(0, 1, 2, 3)])
        mesh.materials.append(self.ground_material)
        self._link(self.bpy.data.objects.new("ground", mesh)).location = (0.0, 0.0, z)

    def _spot(self) -> None:
        spot = self.bpy.data.lights.new("spot", "SPOT")
        spot.energy = SPOT_POWER
        spot.spot_size = np.radians(SPOT_SIZE_DEG)
        spot.spot_blend = SPOT_BLEND
        spot.shadow_soft_size = SPOT_SOFT
        if hasattr(spot, "use_soft_falloff"):
            spot.use_soft_falloff = False  # Blender ≥ 4.0 softens near-field falloff; 2.9x did not
        self.spot = spot
        self.spot_obj = self._link(self.bpy.data.objects.new("spot", spot))
        self._track(self.spot_obj, self.obj)

    def render(self, params: np.ndarray, seeds: list[int]) -> np.ndarray:
        out = np.empty((len(params), self.size, self.size, 3), dtype=np.uint8)
        for i, (p, seed) in enumerate(zip(params, seeds, strict=True)):
            self._set(dict(zip(PARAMS, p.tolist(), strict=True)), int(seed))
            self.bpy.ops.render.render(write_still=True)
            out[i] = read_bmp(self.scene.render.filepath, self.size)
        return out

    def _set(self, p: dict[str, float], seed: int) -> None:
        self.obj.data = self.meshes[int(p["shape"])]
        self.obj.location = (p["loc_x"], p["loc_y"], p["loc_z"])
        self.obj.rotation_mode = "XYZ"
        self.obj.rotation_euler = (p["rot_x"], p["rot_y"], p["rot_z"])
        self.object_color.default_value = (p["obj_r"], p["obj_g"], p["obj_b"], 1.0)
        self.ground_color.default_value = (p["bg_r"], p["bg_g"], p["bg_b"], 1.0)
        self.spot_obj.location = (p["spot_x"], p["spot_y"], p["spot_z"])
        self.spot.color = (p["spot_r"], p["spot_g"], p["spot_b"])
        self.scene.cycles.seed = seed


def read_bmp(path: str, size: int) -> np.ndarray:
    """The ``size × size`` RGB pixels (top row first) of a 24-bit BMP written by Blender."""
    data = np.fromfile(path, dtype=np.uint8)
    offset = int.from_bytes(data[10:14].tobytes(), "little")
    stride = (size * 3 + 3) // 4 * 4
    rows = data[offset : offset + stride * size].reshape(size, stride)[:, : size * 3]
    return rows.reshape(size, size, 3)[::-1, :, ::-1]  # bottom-up BGR → top-down RGB


# ============================================================================ the release's shape files
#: mmbench's shape names → the reference's ``assets/shapes/Shape<Name>.blend`` (one object each, named as the file).
BLEND_SHAPES = {"teapot": "Teapot", "hare": "Hare", "dragon": "Dragon", "cow": "Cow", "armadillo": "Armadillo",
                "horse": "Horse", "head": "Head"}


def export_blend_meshes(src: str, out: str) -> list[str]:
    """Write ``<out>/<shape>.npz`` (``vertices``, ``faces``: triangles, modifiers applied) from each
    ``<src>/Shape<Name>.blend``; return the shapes written. Needs bpy."""
    import bpy

    os.makedirs(out, exist_ok=True)
    written = []
    for shape, name in BLEND_SHAPES.items():
        path = os.path.join(src, f"Shape{name}.blend")
        if not os.path.isfile(path):
            continue
        bpy.ops.wm.read_factory_settings(use_empty=True)
        with bpy.data.libraries.load(path) as (data_from, data_to):
            data_to.objects = [o for o in data_from.objects if o == f"Shape{name}"] or list(data_from.objects[:1])
        obj = data_to.objects[0]
        bpy.context.scene.collection.objects.link(obj)
        evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
        mesh = evaluated.to_mesh()
        mesh.calc_loop_triangles()
        vertices = np.empty(len(mesh.vertices) * 3, np.float64)
        mesh.vertices.foreach_get("co", vertices)
        faces = np.empty(len(mesh.loop_triangles) * 3, np.int64)
        mesh.loop_triangles.foreach_get("vertices", faces)
        scale = np.array(obj.scale, dtype=np.float64)  # the object's own scale (its location is dropped: meshes are centred)
        np.savez(os.path.join(out, f"{shape}.npz"), vertices=vertices.reshape(-1, 3) * scale,
                 faces=faces.reshape(-1, 3).astype(np.int32))
        evaluated.to_mesh_clear()
        written.append(shape)
    return written


def _make_cycles(init: dict[str, Any], meshes: list[tuple[np.ndarray, np.ndarray]]) -> tuple[dict[str, Any], Any]:
    import bpy

    scene = CyclesScene(init, meshes)
    return {"blender": bpy.app.version_string, "device": scene.device}, scene.render


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the parent dies, so no orphan keeps rendering (the pipe's end of
    file stops an idle worker anyway)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


#: cores the parent pins this worker to (comma-separated), set when build workers share the machine
CPUS_ENV = "MMBENCH_CYCLES_CPUS"


def _pin_cpus() -> None:
    """Pin every thread of this process to ``$MMBENCH_CYCLES_CPUS`` (before bpy starts most of them).

    With a fixed thread count a Cycles render keeps a second thread busy besides its render
    thread (measured: 17 CPU-s for 8.5 s of rendering at threads=1). Alone on a machine that
    costs nothing, but two workers on two cores then steal each other's cores; pinned to its own
    cores, a worker renders as fast with half the CPU (8.8 CPU-s, 8.8 s).
    """
    spec = os.environ.get(CPUS_ENV)
    if not spec or not hasattr(os, "sched_setaffinity"):
        return
    cpus = {int(c) for c in spec.split(",")}
    tasks = os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ["0"]
    for tid in tasks:  # a blender executable has started its threads before running this script
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(tid), cpus)


def main(argv: list[str] | None = None) -> int:
    _die_with_parent()
    _pin_cpus()
    argv = sys.argv[1:] if argv is None else argv
    if "--" in argv:  # run by a blender executable: our arguments follow "--"
        argv = argv[argv.index("--") + 1 :]
    p = argparse.ArgumentParser(description="mmbench's Cycles render worker (spoken to over pipes).")
    p.add_argument("--read-fd", type=int)
    p.add_argument("--write-fd", type=int)
    p.add_argument("--export-meshes", nargs=2, metavar=("SRC", "OUT"), help="convert Shape<Name>.blend files, then exit")
    args = p.parse_args(argv)
    if args.export_meshes:
        print("EXPORTED", json.dumps(export_blend_meshes(*args.export_meshes)), flush=True)
        return 0
    if args.read_fd is None or args.write_fd is None:
        p.error("--read-fd and --write-fd are required")
    return serve(args.read_fd, args.write_fd, _make_cycles)


if __name__ == "__main__":
    # Run as a script, this file's folder heads sys.path, and it holds mmbench modules named like
    # Blender's own (cycles.py would shadow the Cycles add-on): take it off before bpy loads.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]
    code = main()
    sys.stdout.flush()
    os._exit(code)  # a blender executable would otherwise stay in its own main loop
