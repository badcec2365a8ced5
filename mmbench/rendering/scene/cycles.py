"""The ``cycles`` backend: Blender's Cycles in worker processes of a separate interpreter.

``bpy`` needs Python 3.11 and numpy < 2, mmbench numpy 2: the two cannot share an environment,
so this process never imports bpy. It starts :mod:`~mmbench.rendering.scene.cycles_worker` (a
standalone script) in a **Blender interpreter**, sends it the mesh set once, then batches of
scene parameters, and reads back the pixels (the protocol is in the worker's docstring).

The interpreter, first found of:

1. the ``blender=`` argument (a path);
2. ``$MMBENCH_BLENDER``: a ``blender`` executable or a Python that can ``import bpy``;
3. the environment made by ``mmbench blender setup`` (``$MMBENCH_BLENDER_ENV``, default
   ``~/.local/share/mmbench/bpy-5.0.1``): a Python 3.11 venv with ``bpy==5.0.1``;
4. ``blender`` on ``PATH``.

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
import dataclasses
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import ExecutorError, InputsNotFoundError, InvalidConfigError
from mmbench.rendering.scene import cycles_worker as proto
from mmbench.rendering.scene.meshes import Mesh
from mmbench.rendering.scene.scene import GROUND, OBJECT_SCALE, SceneBatch

__all__ = ["BPY_VERSION", "CyclesBackend", "Interpreter", "default_env_dir", "find_interpreter", "import_meshes", "setup_env"]

logger = logging.getLogger(__name__)

#: The bpy release ``mmbench blender setup`` installs (cp311 wheels on PyPI).
BPY_VERSION = "5.0.1"
PYTHON_VERSION = "3.11"
DEVICES = ("auto", "cpu", "optix", "cuda", "hip", "metal", "oneapi")
DEFAULT_TIMEOUT_S = 300.0  # per image: a 224² image at 512 samples takes seconds on one core
STARTUP_TIMEOUT_S = 120.0  # interpreter start + bpy import + scene build
CHUNK = 8  # scenes per render message: a hung worker is noticed after at most CHUNK images
SETUP_HINT = (
    "Create one with `mmbench blender setup` (a Python {py} venv with bpy=={bpy}, ~1 GB), or install Blender and "
    "put `blender` on PATH, or set MMBENCH_BLENDER to a blender executable or to a Python that can `import bpy`."
)


# ============================================================================ the interpreter
@dataclasses.dataclass(frozen=True)
class Interpreter:
    """A program that can run the worker: ``kind`` is ``python`` (with bpy) or ``blender``."""

    path: str
    kind: str
    source: str  # where it was found (argument, $MMBENCH_BLENDER, setup env, PATH)

    def command(self, script: str, args: Sequence[str]) -> list[str]:
        if self.kind == "blender":
            return [self.path, "-b", "--factory-startup", "-noaudio", "--python", script, "--", *args]
        return [self.path, script, *args]


def default_env_dir() -> Path:
    """Where ``mmbench blender setup`` puts its venv (``$MMBENCH_BLENDER_ENV`` overrides)."""
    if os.environ.get("MMBENCH_BLENDER_ENV"):
        return Path(os.environ["MMBENCH_BLENDER_ENV"]).expanduser()
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data / "mmbench" / f"bpy-{BPY_VERSION}"


def _env_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _as_interpreter(path: str, source: str) -> Interpreter:
    p = Path(path).expanduser()
    if not p.exists():
        found = shutil.which(path)
        if found is None:
            raise InputsNotFoundError(f"The Blender interpreter {path!r} (from {source}) does not exist. " + _hint())
        p = Path(found)
    if not os.access(p, os.X_OK) or p.is_dir():
        raise InputsNotFoundError(f"The Blender interpreter {str(p)!r} (from {source}) is not an executable file. " + _hint())
    kind = "blender" if p.name.lower().startswith("blender") else "python"
    return Interpreter(str(p), kind, source)


def _hint() -> str:
    return SETUP_HINT.format(py=PYTHON_VERSION, bpy=BPY_VERSION)


def find_interpreter(blender: str | os.PathLike[str] | None = None) -> Interpreter:
    """The interpreter the ``cycles`` backend runs (see the module docstring for the order).

    Raises:
        InputsNotFoundError: none is set up; the message says how to make one.
    """
    if blender is not None:
        return _as_interpreter(os.fspath(blender), "the blender argument")
    if os.environ.get("MMBENCH_BLENDER"):
        return _as_interpreter(os.environ["MMBENCH_BLENDER"], "$MMBENCH_BLENDER")
    env = default_env_dir()
    if _env_python(env).is_file():
        return Interpreter(str(_env_python(env)), "python", f"the bpy environment {env}")
    on_path = shutil.which("blender")
    if on_path:
        return Interpreter(on_path, "blender", "PATH")
    raise InputsNotFoundError(
        f"backend='cycles' needs a Blender interpreter and none is set up (no $MMBENCH_BLENDER, no bpy environment "
        f"at {env}, no `blender` on PATH). " + _hint()
    )


# ============================================================================ setup
def find_python311(explicit: str | None = None) -> str:
    """A Python 3.11 executable: ``explicit``, ``$MMBENCH_PYTHON311``, ``python3.11`` on PATH, pyenv, uv."""
    candidates = [explicit, os.environ.get("MMBENCH_PYTHON311"), shutil.which(f"python{PYTHON_VERSION}")]
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates += sorted((str(p) for p in Path(pyenv_root).glob(f"versions/{PYTHON_VERSION}.*/bin/python{PYTHON_VERSION}")),
                         reverse=True)
    if shutil.which("uv"):
        found = subprocess.run(["uv", "python", "find", PYTHON_VERSION], capture_output=True, text=True, check=False)
        candidates.append(found.stdout.strip() if found.returncode == 0 else None)
    for c in candidates:
        if c and _python_version(c) == PYTHON_VERSION:
            return c
    if explicit:
        raise InputsNotFoundError(f"--python {explicit!r} is not a Python {PYTHON_VERSION} interpreter.")
    raise InputsNotFoundError(
        f"bpy {BPY_VERSION} needs Python {PYTHON_VERSION}, and none was found (python{PYTHON_VERSION} on PATH, pyenv, uv). "
        f"Install one (e.g. `uv python install {PYTHON_VERSION}` or `pyenv install {PYTHON_VERSION}`) and pass it with "
        f"--python, or point MMBENCH_BLENDER to a blender executable instead."
    )


def _python_version(path: str) -> str | None:
    try:
        out = subprocess.run([path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def setup_env(env: str | os.PathLike[str] | None = None, *, python: str | None = None,
              bpy_version: str = BPY_VERSION) -> Path:
    """Create (or complete) a venv with ``bpy`` for the ``cycles`` backend; return its Python.

    Args:
        env: the venv's directory (default :func:`default_env_dir`).
        python: a Python 3.11 to create it with (default: found by :func:`find_python311`).
        bpy_version: the bpy release to install.

    Example:
        >>> setup_env()     # then backend="cycles" finds it with no further setting
    """
    env = Path(env).expanduser() if env is not None else default_env_dir()
    exe = _env_python(env)
    if not exe.is_file():
        base = find_python311(python)
        logger.info("creating %s with %s", env, base)
        env.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([base, "-m", "venv", str(env)], check=True)
    pip = [str(exe), "-m", "pip", "install", "--disable-pip-version-check", f"bpy=={bpy_version}", "numpy>=1.26,<2"]
    if subprocess.run(pip, check=False).returncode != 0:
        raise InputsNotFoundError(f"Installing bpy=={bpy_version} into {env} failed (pip's output is above). "
                                  f"Check the network or the package index, then run `mmbench blender setup` again.")
    check = subprocess.run([str(exe), "-c", "import bpy; print(bpy.app.version_string)"], capture_output=True, text=True,
                           check=False)
    if check.returncode != 0:
        raise InputsNotFoundError(f"bpy does not import in {env}:\n{check.stderr[-2000:]}")
    logger.info("bpy %s ready in %s", check.stdout.strip(), env)
    return exe


# ============================================================================ the backend
def scene_params(scenes: SceneBatch) -> tuple[np.ndarray, list[int]]:
    """The worker's per-scene parameters (:data:`~cycles_worker.PARAMS`) and per-image seeds."""
    size = np.full(len(scenes), -GROUND)  # the object's largest dimension (every normalised mesh)
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
        self.meshes = [(m.normalized().vertices * OBJECT_SCALE, m.faces) for m in meshes]
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
        params, seeds = scene_params(scenes)
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
    def _start(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker (closed in close())
        cmd = self.interpreter.command(proto.__file__, ["--read-fd", str(to_child_r), "--write-fd", str(from_child_w)])
        try:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                          pass_fds=(to_child_r, from_child_w), env=_worker_env())
        except OSError as exc:
            for fd in (to_child_r, to_child_w, from_child_r, from_child_w):
                os.close(fd)
            raise InputsNotFoundError(f"Could not start the Blender interpreter {self.interpreter.path!r} "
                                      f"(from {self.interpreter.source}): {exc}. " + _hint()) from exc
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
            self._start()
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


def _worker_env() -> dict[str, str]:
    """The worker's environment: this one without the variables that would make a Python 3.11
    import this environment's (numpy 2) packages."""
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(var, None)
    return env


def _default_threads() -> int:
    """``$MMBENCH_CYCLES_THREADS``, else the cores shared among the build's worker processes."""
    if os.environ.get("MMBENCH_CYCLES_THREADS"):
        return int(os.environ["MMBENCH_CYCLES_THREADS"])
    workers = int(os.environ.get("MMBENCH_NUM_WORKERS", "1") or 1)
    return max(1, (os.cpu_count() or 1) // max(1, workers)) if workers > 1 else 0


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


# ============================================================================ CLI: mmbench blender
def add_parser(sub: Any) -> None:
    p = sub.add_parser("blender", help="set up and check the Blender interpreter of the cycles backend")
    cmds = p.add_subparsers(dest="blender_command", metavar="ACTION", required=True)
    s = cmds.add_parser("setup", help=f"create a Python {PYTHON_VERSION} venv with bpy=={BPY_VERSION}")
    s.add_argument("--dir", default=None, help=f"where (default: $MMBENCH_BLENDER_ENV or {default_env_dir()})")
    s.add_argument("--python", default=None, help=f"the Python {PYTHON_VERSION} to create it with (default: found)")
    s.add_argument("--bpy-version", default=BPY_VERSION, help=f"bpy release (default {BPY_VERSION})")
    s.set_defaults(func=cmd_setup)
    i = cmds.add_parser("info", help="which interpreter backend='cycles' uses, its Blender version and device")
    i.add_argument("--blender", default=None, help="check this interpreter instead")
    i.set_defaults(func=cmd_info)
    m = cmds.add_parser("import-meshes", help="convert the release's Shape<Name>.blend files into a mesh directory")
    m.add_argument("src", help="the reference repository's assets/shapes folder")
    m.add_argument("out", help="the mesh directory to write (then build with -o meshes=OUT)")
    m.add_argument("--blender", default=None, help="the Blender interpreter (default: found)")
    m.set_defaults(func=cmd_import_meshes)


def cmd_import_meshes(args: Any) -> int:
    from mmbench.rendering.scene.meshes import SHAPES

    written = import_meshes(args.src, args.out, blender=args.blender)
    missing = [s for s in SHAPES if s not in written]
    print(f"wrote {len(written)} meshes to {args.out}: {', '.join(written)}")
    if missing:
        print(f"missing: {', '.join(missing)} — add <shape>.obj/.off/.npz files for them before using -o meshes={args.out}")
    return 0


def import_meshes(src: str | os.PathLike[str], out: str | os.PathLike[str], *, blender: str | None = None) -> list[str]:
    """Convert the reference release's shape files (``Shape<Name>.blend``, its ``assets/shapes``
    folder) into a mesh directory (``<shape>.npz``) that ``meshes=<out>`` reads, with the Blender
    interpreter; return the shapes written.

    Raises:
        InputsNotFoundError: ``src`` holds none of the seven files, or the conversion failed.
    """
    src, out = Path(src).expanduser(), Path(out).expanduser()
    from mmbench.rendering.scene.cycles_worker import BLEND_SHAPES

    names = [f"Shape{n}.blend" for n in BLEND_SHAPES.values()]
    if not any((src / n).is_file() for n in names):
        raise InputsNotFoundError(f"{src} holds none of the release's shape files ({', '.join(names)}); give the "
                                  "Multimodal3DIdent repository's assets/shapes folder.")
    interp = find_interpreter(blender)
    cmd = interp.command(proto.__file__, ["--export-meshes", str(src), str(out)])
    done = subprocess.run(cmd, capture_output=True, text=True, env=_worker_env(), check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("EXPORTED ")]
    if done.returncode != 0 or not lines:
        raise InputsNotFoundError(f"Converting the shape files in {src} with {interp.path} failed (status "
                                  f"{done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    import json

    return json.loads(lines[-1][len("EXPORTED "):])


def cmd_setup(args: Any) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    exe = setup_env(args.dir, python=args.python, bpy_version=args.bpy_version)
    print(f"bpy environment ready: {exe}")
    if args.dir is not None and Path(args.dir).expanduser().resolve() != default_env_dir().resolve():
        print(f"It is not the default location: set MMBENCH_BLENDER={exe} (or MMBENCH_BLENDER_ENV={args.dir}).")
    return 0


def cmd_info(args: Any) -> int:
    from mmbench.rendering.scene.meshes import load_mesh_set

    interp = find_interpreter(args.blender)
    print(f"interpreter: {interp.path} ({interp.kind}, from {interp.source})")
    backend = CyclesBackend(list(load_mesh_set("tiny").values()), size=16, samples=1, blender=args.blender)
    try:
        backend._start()
        print(f"blender: {backend.info.get('blender')}  device: {backend.info.get('device')}")
    finally:
        backend.close()
    return 0
