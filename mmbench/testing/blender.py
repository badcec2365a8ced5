"""A fake Blender interpreter for tests of the ``cycles`` backend without bpy.

:func:`write_fake_blender` writes an executable that the backend runs in place of a Python with
bpy. It speaks the real worker protocol (:mod:`mmbench.rendering.scene.cycles_worker`'s own
functions) and draws flat images from the scene parameters — and, to test the failure paths, it
can crash (exit status 3) or hang after serving a number of render requests.

Example:
    >>> exe = write_fake_blender(tmp_path, mode="crash", after=2)
    >>> monkeypatch.setenv("MMBENCH_BLENDER", str(exe))   # backend="cycles" now runs the fake
"""

from __future__ import annotations

import argparse
import os
import shlex
import stat
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FAKE_MODES", "fake_image", "write_fake_blender"]

FAKE_MODES = ("ok", "crash", "hang")


def write_fake_blender(directory: str | os.PathLike[str], *, mode: str = "ok", after: int = 0,
                       name: str = "fake-python") -> Path:
    """Write an executable fake interpreter into ``directory`` and return its path.

    Args:
        mode: ``ok`` (always renders), ``crash`` (exits with status 3) or ``hang`` (sleeps) on the
            render request after the first ``after`` ones.
        after: render requests served normally first (per worker process).
        name: the file name (a name starting with ``blender`` is run as a blender executable).
    """
    if mode not in FAKE_MODES:
        raise ValueError(f"mode must be one of {FAKE_MODES}, got {mode!r}")
    root = str(Path(__file__).resolve().parents[2])  # the folder holding the mmbench package
    code = (f"import sys; sys.path.insert(0, {root!r}); from mmbench.testing.blender import main; "
            f"sys.exit(main({mode!r}, {int(after)}))")
    path = Path(directory) / name
    path.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -c {shlex.quote(code)} \"$@\"\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def fake_image(params: np.ndarray, size: int) -> np.ndarray:
    """The fake's picture of one scene: the ground colour with an object-coloured square whose place
    follows the object's location and whose side follows its shape (a function of every group of
    parameters, so the tests can tell scenes apart)."""
    from mmbench.rendering.scene.cycles_worker import PARAMS

    p = dict(zip(PARAMS, params.tolist(), strict=True))
    img = np.empty((size, size, 3), np.uint8)
    img[:] = (np.clip([p["bg_r"], p["bg_g"], p["bg_b"]], 0, 1) * 255).astype(np.uint8)
    side = max(1, size // 8 + int(p["shape"]))
    row = int((p["loc_x"] + 3) / 6 * (size - side))
    col = int((p["loc_y"] + 3) / 6 * (size - side))
    img[row : row + side, col : col + side] = (np.clip([p["obj_r"], p["obj_g"], p["obj_b"]], 0, 1) * 255).astype(np.uint8)
    return img


def main(mode: str, after: int, argv: list[str] | None = None) -> int:
    """The fake interpreter's entry point (``argv``: the worker script, then its arguments)."""
    from mmbench.rendering.scene import cycles_worker as proto

    argv = sys.argv[1:] if argv is None else argv
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    read_fd, write_fd = _parse_fds(argv)
    served = 0

    def make(init: dict[str, Any], meshes: list[tuple[np.ndarray, np.ndarray]]) -> tuple[dict[str, Any], Any]:
        size = int(init["size"])

        def render(params: np.ndarray, seeds: list[int]) -> np.ndarray:
            nonlocal served
            if served >= after and mode != "ok":
                print(f"fake worker: {mode} after {served} render requests", flush=True)
                if mode == "crash":
                    os._exit(3)
                time.sleep(3600)
            served += 1
            return np.stack([fake_image(p, size) for p in params])

        return {"blender": "fake", "device": "CPU", "meshes": len(meshes)}, render

    return proto.serve(read_fd, write_fd, make)


def _parse_fds(argv: list[str]) -> tuple[int, int]:
    """The pipe descriptors from the worker's arguments (the script path before them is ignored)."""
    p = argparse.ArgumentParser()
    p.add_argument("--read-fd", type=int, required=True)
    p.add_argument("--write-fd", type=int, required=True)
    a, _ = p.parse_known_args(argv)
    return a.read_fd, a.write_fd
