"""The ``cycles`` backend: Blender's Cycles in worker processes of a separate interpreter.

``bpy`` needs Python 3.11 and numpy < 2, mmbench numpy 2: the two cannot share an environment,
so this process never imports bpy. It starts :mod:`~mmbench.rendering.scene.cycles_worker` (a
standalone script) in a **Blender interpreter**, sends it the mesh set once, then batches of
scene parameters, and reads back the pixels (the protocol is in the worker's docstring).

The interpreter is found (or made, with ``mmbench blender setup``) by
:mod:`~mmbench.rendering.scene.blender`.

Settings (the scene's semantics are :class:`~mmbench.rendering.scene.scene.SceneBatch`'s):
``samples`` per pixel and ``denoise`` (OpenImageDenoise) are part of the dataset config; the
device (``$MMBENCH_CYCLES_DEVICE``: ``auto`` = OptiX/CUDA/HIP/Metal when a GPU is present, else
CPU), the threads per worker (``$MMBENCH_CYCLES_THREADS``; default: the cores shared among the
build's worker processes) and the timeout (``$MMBENCH_CYCLES_TIMEOUT`` seconds per image,
default 300) change speed only. Every image is rendered with a Cycles seed derived from its own
scene parameters, so an image does not depend on the batch it is rendered in.

A worker that crashes or stops answering raises :class:`~mmbench.errors.ExecutorError` with
its exit status and the end of its log; the worker is killed and the next render starts a new one.

Example:
    >>> backend = CyclesBackend(list(load_mesh_set("builtin").values()), size=224, samples=64)
    >>> images = backend.render(scenes)     # (n, 224, 224, 3) uint8
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import subprocess
import tempfile
import time
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmbench.errors import ExecutorError, InputsNotFoundError, InvalidConfigError
from mmbench.rendering.scene import cycles_worker as proto
from mmbench.rendering.scene.blender import find_interpreter, setup_hint, worker_env
from mmbench.rendering.scene.meshes import Mesh
from mmbench.rendering.scene.scene import GROUND, SceneBatch

__all__ = ["CyclesBackend", "scene_params", "shared_backend", "worker_cpus"]

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "optix", "cuda", "hip", "metal", "oneapi")
DEFAULT_TIMEOUT_S = 300.0  # per image: a 224² image at 512 samples takes seconds on one core
STARTUP_TIMEOUT_S = 120.0  # interpreter start + bpy import + scene build
CHUNK = 8  # scenes per render message: a hung worker is noticed after at most CHUNK images


# ============================================================================ the backend
def scene_params(scenes: SceneBatch, sizes: np.ndarray | None = None) -> tuple[np.ndarray, list[int]]:
    """The worker's per-scene parameters (:data:`~cycles_worker.PARAMS`) and per-image seeds.

    ``sizes``: each shape's largest dimension (:meth:`Mesh.scene_size`), which sets its spotlight's
    height; ``None``: 3.0 for all, the size of every normalised mesh.
    """
    size = np.full(len(scenes), -GROUND) if sizes is None else np.asarray(sizes, np.float64)[scenes.shape]
    params = np.column_stack([
        scenes.shape.astype(np.float64), scenes.object_position(), scenes.euler_angles(), scenes.object_rgb(),
        scenes.spot_position(size), scenes.spot_rgb(), scenes.background_rgb(),
    ])
    seeds = [zlib.crc32(row.tobytes()) & 0x7FFFFFFF for row in params]
    return np.ascontiguousarray(params, dtype="<f8"), seeds


class CyclesBackend:
    """Renders :class:`SceneBatch` es with Cycles in one worker process (see the module docstring).

    Args:
        meshes: the mesh set (index = the scene's ``shape``).
        size: output images are ``size × size``.
        samples: Cycles samples per pixel.
        denoise: OpenImageDenoise on the render (the reference denoises).
        blender: the interpreter (default: :func:`find_interpreter`).
        device: ``auto``, ``cpu`` or a GPU backend (default ``$MMBENCH_CYCLES_DEVICE`` or ``auto``).
        threads: CPU threads of the worker (0: Cycles' own choice).
        timeout: seconds per image before a worker is declared hung.
    """

    def __init__(self, meshes: Sequence[Mesh], *, size: int, samples: int = 64, denoise: bool = True,
                 blender: str | None = None, device: str | None = None, threads: int | None = None,
                 timeout: float | None = None) -> None:
        self.interpreter = find_interpreter(blender)
        self.meshes = [(m.scene_vertices(), m.faces) for m in meshes]
        self.sizes = np.array([m.scene_size() for m in meshes])
        self.size, self.samples, self.denoise = int(size), int(samples), bool(denoise)
        self.device = (device or os.environ.get("MMBENCH_CYCLES_DEVICE") or "auto").lower()
        if self.device not in DEVICES:
            raise InvalidConfigError(f"Unknown Cycles device {self.device!r}; choose one of {list(DEVICES)}.")
        self.threads = _default_threads() if threads is None else int(threads)
        self.timeout = float(timeout if timeout is not None else os.environ.get("MMBENCH_CYCLES_TIMEOUT", DEFAULT_TIMEOUT_S))
        self._proc: subprocess.Popen[bytes] | None = None
        self._fds: tuple[int, int] | None = None
        self._log: Any = None
        self.info: dict[str, Any] = {}

    # ------------------------------------------------------------------ public
    def render(self, scenes: SceneBatch) -> np.ndarray:
        """``(n, size, size, 3)`` uint8 images of ``scenes``."""
        if len(scenes) and (scenes.shape.min() < 0 or scenes.shape.max() >= len(self.meshes)):
            raise InvalidConfigError(
                f"Scene shape indices must be in [0, {len(self.meshes) - 1}] (the mesh set has {len(self.meshes)} "
                f"meshes), got values in [{scenes.shape.min()}, {scenes.shape.max()}]."
            )
        params, seeds = scene_params(scenes, self.sizes)
        out = np.empty((len(scenes), self.size, self.size, 3), dtype=np.uint8)
        for start in range(0, len(scenes), CHUNK):
            stop = min(start + CHUNK, len(scenes))
            header = {"op": "render", "n": stop - start, "seeds": seeds[start:stop]}
            _, blob = self._call(header, params[start:stop].tobytes(), self.timeout * (stop - start),
                                     what=f"rendering {stop - start} scenes")
            out[start:stop] = np.frombuffer(blob, np.uint8).reshape(stop - start, self.size, self.size, 3)
            self._log.seek(0)  # keep only the latest chunk's output (the file offset is shared with the worker)
            self._log.truncate()
        return out

    def close(self) -> None:
        """Stop the worker (it also exits by itself when this process dies: its pipe closes)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proto.write_message(self._fds[1], {"op": "quit"})
                proc.wait(5)
            except Exception:
                proc.kill()
                proc.wait()
        if self._fds is not None:
            for fd in self._fds:
                os.close(fd)
            self._fds = None
        if self._log is not None:
            self._log.close()
            self._log = None

    # ------------------------------------------------------------------ the worker
    def start(self) -> None:
        """Start the worker now (otherwise the first render does): interpreter, bpy, scene, meshes."""
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker (closed in close())
        cmd = self.interpreter.command(proto.__file__, ["--read-fd", str(to_child_r), "--write-fd", str(from_child_w)])
        try:
            env = worker_env()
            cpus = worker_cpus(self.threads)
            if cpus:
                env[proto.CPUS_ENV] = ",".join(map(str, cpus))
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                          pass_fds=(to_child_r, from_child_w), env=env)
        except OSError as exc:
            for fd in (to_child_r, to_child_w, from_child_r, from_child_w):
                os.close(fd)
            raise InputsNotFoundError(f"Could not start the Blender interpreter {self.interpreter.path!r} "
                                      f"(from {self.interpreter.source}): {exc}. " + setup_hint()) from exc
        os.close(to_child_r)
        os.close(from_child_w)
        self._fds = (from_child_r, to_child_w)
        sizes, blob = proto.pack_meshes(self.meshes)
        init = {"op": "init", "protocol": proto.PROTOCOL, "size": self.size, "samples": self.samples,
                "denoise": self.denoise, "device": self.device, "threads": self.threads, "ground": GROUND,
                "meshes": sizes}
        reply, _ = self._exchange(init, blob, STARTUP_TIMEOUT_S + 0.1 * sum(len(v) for v, _ in self.meshes) / 1000,
                                  what="starting up")
        self.info = {k: v for k, v in reply.items() if k != "op"}
        logger.info("Cycles worker pid %d: Blender %s on %s", self._proc.pid, self.info.get("blender"),
                    self.info.get("device"))

    def _call(self, header: dict[str, Any], blob: bytes, timeout: float, *, what: str) -> tuple[dict[str, Any], bytes]:
        if self._proc is None:
            self.start()
        return self._exchange(header, blob, timeout, what=what)

    def _exchange(self, header: dict[str, Any], blob: bytes, timeout: float, *, what: str) -> tuple[dict[str, Any], bytes]:
        assert self._fds is not None and self._proc is not None
        try:
            proto.write_message(self._fds[1], header, blob)
            reply, data = proto.read_message(self._fds[0], deadline=time.monotonic() + timeout)
        except TimeoutError as exc:
            raise self._failed(f"did not answer within {timeout:.3g} s while {what} (hung; the limit is "
                               f"$MMBENCH_CYCLES_TIMEOUT = {self.timeout:g} s per image)") from exc
        except (EOFError, BrokenPipeError, ValueError) as exc:
            raise self._failed(f"died while {what}") from exc
        if reply.get("op") == "error":
            raise self._failed(f"failed while {what}: {reply.get('message')}\n{reply.get('traceback', '')}")
        return reply, data

    def _failed(self, what: str) -> ExecutorError:
        """Kill the worker; the error names it, its exit status and the end of its log."""
        proc = self._proc
        assert proc is not None
        if proc.poll() is None:
            proc.kill()
        status = proc.wait()
        log = b""
        if self._log is not None:
            self._log.seek(0)
            log = self._log.read()[-3000:]
        pid, interp = proc.pid, self.interpreter
        self.close()
        tail = log.decode(errors="replace").strip() or "(no output)"
        return ExecutorError(
            f"The Cycles worker (pid {pid}, {interp.kind} {interp.path!r} from {interp.source}) {what}; exit status "
            f"{status}. The end of its output:\n{tail}\nA new worker is started on the next render."
        )

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _default_threads() -> int:
    """``$MMBENCH_CYCLES_THREADS``, else the cores shared among the build's worker processes."""
    if os.environ.get("MMBENCH_CYCLES_THREADS"):
        return int(os.environ["MMBENCH_CYCLES_THREADS"])
    workers = int(os.environ.get("MMBENCH_NUM_WORKERS", "1") or 1)
    return max(1, (os.cpu_count() or 1) // max(1, workers)) if workers > 1 else 0


def worker_cpus(threads: int) -> list[int] | None:
    """The cores of this build worker's Cycles worker: ``threads`` cores of its own, chosen by the
    build worker's index (``$MMBENCH_WORKER_INDEX``, set by the core executor), when several build
    workers share the machine at a fixed thread count; ``None`` otherwise (Cycles uses every core).

    Why: see :func:`~mmbench.rendering.scene.cycles_worker._pin_cpus` (2 workers on 2 cores:
    1.56× the throughput of one unpinned, measured, against ≈ 2× pinned).
    """
    index = os.environ.get("MMBENCH_WORKER_INDEX")
    if not threads or index is None or not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    slots = len(cpus) // threads
    if slots < 2:
        return None
    k = int(index) % slots
    return cpus[k * threads : (k + 1) * threads]


# ============================================================================ one worker per process
_BACKENDS: dict[str, CyclesBackend] = {}


def shared_backend(meshes: Sequence[Mesh], **settings: Any) -> CyclesBackend:
    """A :class:`CyclesBackend` kept for the life of this process, one per (meshes, settings):
    the shards a pool worker renders one after another share one Blender worker (its start-up,
    ~1 s, is paid once)."""
    # the interpreter and the environment's settings are resolved now: a changed $MMBENCH_BLENDER
    # (or device, threads, timeout) gets a new worker
    resolved = {**settings, "blender": find_interpreter(settings.get("blender")).path,
                "env": [os.environ.get(f"MMBENCH_CYCLES_{k}") for k in ("DEVICE", "THREADS", "TIMEOUT")]}
    h = hashlib.sha256(repr(sorted(resolved.items())).encode())
    for m in meshes:
        h.update(np.ascontiguousarray(m.vertices).tobytes())
        h.update(np.ascontiguousarray(m.faces).tobytes())
    key = h.hexdigest()
    if key not in _BACKENDS:
        _BACKENDS[key] = CyclesBackend(meshes, **settings)
    return _BACKENDS[key]


@atexit.register
def _close_all() -> None:
    for backend in _BACKENDS.values():
        backend.close()
    _BACKENDS.clear()
