"""The Blender interpreter of the ``cycles`` backend: finding it, making one, and ``mmbench blender``.

``bpy`` needs Python 3.11 and numpy < 2, mmbench numpy 2, so Cycles runs in a separate
interpreter (:mod:`~mmbench.rendering.scene.cycles`). The interpreter, first found of:

1. the ``blender=`` argument (a path);
2. ``$MMBENCH_BLENDER``: a ``blender`` executable or a Python that can ``import bpy``;
3. the environment made by ``mmbench blender setup`` (``$MMBENCH_BLENDER_ENV``, default
   ``~/.local/share/mmbench/bpy-5.0.1``): a Python 3.11 venv with ``bpy==5.0.1``;
4. ``blender`` on ``PATH``.

Commands: ``mmbench blender setup`` (make the venv), ``mmbench blender info`` (which interpreter,
Blender version and device), ``mmbench blender import-meshes`` (the release's ``Shape<Name>.blend``
files → a mesh directory for ``meshes=<dir>``).

Example:
    >>> find_interpreter()
    Interpreter(path='/root/.local/share/mmbench/bpy-5.0.1/bin/python', kind='python', source=...)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmbench.errors import InputsNotFoundError
from mmbench.rendering.scene import cycles_worker as proto

__all__ = ["BPY_VERSION", "Interpreter", "default_env_dir", "find_interpreter", "import_meshes", "setup_env", "setup_hint",
           "worker_env"]

logger = logging.getLogger(__name__)

#: The bpy release ``mmbench blender setup`` installs (cp311 wheels on PyPI).
BPY_VERSION = "5.0.1"
PYTHON_VERSION = "3.11"
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
            raise InputsNotFoundError(f"The Blender interpreter {path!r} (from {source}) does not exist. " + setup_hint())
        p = Path(found)
    if not os.access(p, os.X_OK) or p.is_dir():
        raise InputsNotFoundError(f"The Blender interpreter {str(p)!r} (from {source}) is not an executable file. " + setup_hint())
    kind = "blender" if p.name.lower().startswith("blender") else "python"
    return Interpreter(str(p), kind, source)


def setup_hint() -> str:
    """What to do when no Blender interpreter is found (the message of every such error)."""
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
        f"at {env}, no `blender` on PATH). " + setup_hint()
    )


# ============================================================================ setup
def find_python311(explicit: str | None = None) -> str:
    """A Python 3.11 executable: ``explicit``, ``$MMBENCH_PYTHON311``, ``python3.11`` on PATH, pyenv, uv."""
    if explicit:  # what the user named, or nothing
        if _python_version(explicit) != PYTHON_VERSION:
            raise InputsNotFoundError(f"--python {explicit!r} is not a Python {PYTHON_VERSION} interpreter.")
        return explicit
    candidates = [os.environ.get("MMBENCH_PYTHON311"), shutil.which(f"python{PYTHON_VERSION}")]
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates += sorted((str(p) for p in Path(pyenv_root).glob(f"versions/{PYTHON_VERSION}.*/bin/python{PYTHON_VERSION}")),
                         reverse=True)
    if shutil.which("uv"):
        found = subprocess.run(["uv", "python", "find", PYTHON_VERSION], capture_output=True, text=True, check=False)
        candidates.append(found.stdout.strip() if found.returncode == 0 else None)
    for c in candidates:
        if c and _python_version(c) == PYTHON_VERSION:
            return c
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


def worker_env() -> dict[str, str]:
    """The worker's environment: this one without the variables that would make a Python 3.11
    import this environment's (numpy 2) packages."""
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(var, None)
    return env


# ============================================================================ the release's shape files
def import_meshes(src: str | os.PathLike[str], out: str | os.PathLike[str], *, blender: str | None = None) -> list[str]:
    """Convert the reference release's shape files (``Shape<Name>.blend``, its ``assets/shapes``
    folder) into a mesh directory (``<shape>.npz``) that ``meshes=<out>`` reads, with the Blender
    interpreter; return the shapes written.

    Raises:
        InputsNotFoundError: ``src`` holds none of the seven files, or the conversion failed.
    """
    src, out = Path(src).expanduser(), Path(out).expanduser()
    names = [f"Shape{n}.blend" for n in proto.BLEND_SHAPES.values()]
    if not any((src / n).is_file() for n in names):
        raise InputsNotFoundError(f"{src} holds none of the release's shape files ({', '.join(names)}); give the "
                                  "Multimodal3DIdent repository's assets/shapes folder.")
    interp = find_interpreter(blender)
    cmd = interp.command(proto.__file__, ["--export-meshes", str(src), str(out)])
    done = subprocess.run(cmd, capture_output=True, text=True, env=worker_env(), check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("EXPORTED ")]
    if done.returncode != 0 or not lines:
        raise InputsNotFoundError(f"Converting the shape files in {src} with {interp.path} failed (status "
                                  f"{done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    return json.loads(lines[-1][len("EXPORTED "):])


# ============================================================================ CLI: mmbench blender
def add_parser(sub: Any) -> None:
    p = sub.add_parser("blender", help="set up and check the Blender interpreter of the cycles backend")
    cmds = p.add_subparsers(dest="blender_command", metavar="ACTION", required=True, help="setup, info or import-meshes")
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


def cmd_setup(args: Any) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    exe = setup_env(args.dir, python=args.python, bpy_version=args.bpy_version)
    print(f"bpy environment ready: {exe}")
    if args.dir is not None and Path(args.dir).expanduser().resolve() != default_env_dir().resolve():
        print(f"It is not the default location: set MMBENCH_BLENDER={exe} (or MMBENCH_BLENDER_ENV={args.dir}).")
    return 0


def cmd_info(args: Any) -> int:
    from mmbench.rendering.scene.cycles import CyclesBackend
    from mmbench.rendering.scene.meshes import load_mesh_set

    interp = find_interpreter(args.blender)
    print(f"interpreter: {interp.path} ({interp.kind}, from {interp.source})")
    backend = CyclesBackend(list(load_mesh_set("tiny").values()), size=16, samples=1, blender=args.blender)
    try:
        backend.start()
        print(f"blender: {backend.info.get('blender')}  device: {backend.info.get('device')}")
    finally:
        backend.close()
    return 0

