"""The cycles backend: interpreter discovery, the worker protocol, failures, and (slow) real Cycles.

Everything but the last test runs a fake interpreter (:mod:`mmbench.testing.blender`) that
speaks the real protocol without bpy.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import pytest

import mmbench
from mmbench.errors import ExecutorError, InputsNotFoundError
from mmbench.rendering.scene import SceneBatch, SceneRenderer, load_mesh_set
from mmbench.rendering.scene import cycles_worker as proto
from mmbench.rendering.scene.blender import find_interpreter
from mmbench.rendering.scene.cycles import CyclesBackend, scene_params
from mmbench.testing.blender import fake_image, write_fake_blender

TINY = {"size": 16, "meshes": "tiny", "backend": "cycles", "samples": 4,
        "split_sizes": {"train": 12, "val": 4, "test": 4}, "shard_size": 10, "render_shard_size": 4}


def _scenes(n: int = 5, seed: int = 0) -> SceneBatch:
    rng = np.random.default_rng(seed)
    return SceneBatch(shape=rng.integers(0, 7, n), x=rng.integers(0, 3, n).astype(float),
                      y=rng.integers(0, 3, n).astype(float), alpha=rng.random(n), beta=rng.random(n),
                      gamma=rng.random(n), object_hue=rng.random(n), spot_pos=rng.random(n),
                      spot_hue=rng.random(n), background_hue=rng.random(n))


@pytest.fixture
def no_blender(monkeypatch, tmp_path):
    monkeypatch.delenv("MMBENCH_BLENDER", raising=False)
    monkeypatch.setenv("MMBENCH_BLENDER_ENV", str(tmp_path / "no-env"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))


def _fake(monkeypatch, tmp_path, **kw):
    exe = write_fake_blender(tmp_path, **kw)
    monkeypatch.setenv("MMBENCH_BLENDER", str(exe))
    return exe


# ---------------------------------------------------------------------------- interpreter
def test_no_interpreter_says_how_to_make_one(no_blender, tmp_path):
    with pytest.raises(InputsNotFoundError, match="mmbench blender setup.*MMBENCH_BLENDER"):
        find_interpreter()
    b = mmbench.builder("multimodal3dident", cache_dir=tmp_path, **TINY)
    with pytest.raises(InputsNotFoundError, match="needs a Blender interpreter"):
        b.build(progress=False)


def test_a_bad_interpreter_path_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("MMBENCH_BLENDER", str(tmp_path / "nope" / "blender"))
    with pytest.raises(InputsNotFoundError, match=r"nope/blender.*\$MMBENCH_BLENDER.*does not exist"):
        find_interpreter()


def test_interpreter_kind_and_order(monkeypatch, tmp_path):
    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").write_text("")
    monkeypatch.delenv("MMBENCH_BLENDER", raising=False)
    monkeypatch.setenv("MMBENCH_BLENDER_ENV", str(env))
    found = find_interpreter()
    assert (found.path, found.kind) == (str(env / "bin" / "python"), "python")
    blender = write_fake_blender(tmp_path, name="blender")
    monkeypatch.setenv("MMBENCH_BLENDER", str(blender))  # the variable wins over the setup env
    found = find_interpreter()
    assert found.kind == "blender"
    assert found.command("w.py", ["--x"])[:5] == [str(blender), "-b", "--factory-startup", "-noaudio", "--python"]


# ---------------------------------------------------------------------------- protocol
def test_protocol_round_trip_and_errors():
    r, w = os.pipe()
    try:
        blob = np.arange(24, dtype=np.uint8).reshape(2, 2, 2, 3)
        proto.write_message(w, {"op": "images", "n": 2}, blob.data)
        header, data = proto.read_message(r, deadline=time.monotonic() + 5)
        assert header == {"op": "images", "n": 2} and data == blob.tobytes()
        with pytest.raises(TimeoutError):
            proto.read_message(r, deadline=time.monotonic() + 0.05)
        os.write(w, b"XXXX" + bytes(12))
        with pytest.raises(ValueError, match="magic"):
            proto.read_message(r)
    finally:
        os.close(w)
    with pytest.raises(EOFError):
        proto.read_message(r)
    os.close(r)
    meshes = [(m.vertices.astype(np.float32), m.faces.astype(np.int32)) for m in load_mesh_set("tiny").values()]
    back = proto.unpack_meshes(*proto.pack_meshes(meshes))
    assert all((a == c).all() and (b == d).all() for (a, b), (c, d) in zip(meshes, back, strict=True))


def test_scene_params_follow_the_scene_batch():
    s = _scenes(4)
    params, seeds = scene_params(s)
    col = {name: params[:, i] for i, name in enumerate(proto.PARAMS)}
    np.testing.assert_allclose(np.c_[col["loc_x"], col["loc_y"], col["loc_z"]], s.object_position())
    np.testing.assert_allclose(np.c_[col["rot_x"], col["rot_y"], col["rot_z"]], s.euler_angles())
    np.testing.assert_allclose(np.c_[col["spot_r"], col["spot_g"], col["spot_b"]], s.spot_rgb())  # colorsys, unclipped
    np.testing.assert_allclose(np.c_[col["bg_r"], col["bg_g"], col["bg_b"]], s.background_rgb())
    assert seeds == scene_params(s.take(slice(None, None, -1)))[1][::-1]  # a seed belongs to its scene
    assert len(set(seeds)) == 4


# ---------------------------------------------------------------------------- the backend with a fake worker
def test_fake_worker_renders_each_scene_independently_of_its_batch(monkeypatch, tmp_path):
    _fake(monkeypatch, tmp_path)
    r = SceneRenderer("tiny", size=16, backend="cycles", samples=4)
    s = _scenes(11)  # more than one render message
    images = r.render_scenes(s)
    assert images.shape == (11, 16, 16, 3) and images.dtype == np.uint8
    params, _ = scene_params(s)
    np.testing.assert_array_equal(images[3], fake_image(params[3], 16))
    np.testing.assert_array_equal(r.render_scenes(s.take(slice(3, 4)))[0], images[3])
    assert r._get_backend().info["meshes"] == 7


def test_a_crashing_worker_is_reported_and_replaced(monkeypatch, tmp_path):
    _fake(monkeypatch, tmp_path, mode="crash", after=1)
    backend = CyclesBackend(list(load_mesh_set("tiny").values()), size=16, samples=4)
    backend.render(_scenes(3))
    with pytest.raises(ExecutorError, match=r"(?s)died while rendering 3 scenes; exit status 3.*crash after 1 render"):
        backend.render(_scenes(3))
    assert backend._proc is None
    backend.render(_scenes(3))  # a new worker serves again
    backend.close()


def test_a_hung_worker_times_out_and_is_killed(monkeypatch, tmp_path):
    _fake(monkeypatch, tmp_path, mode="hang", after=0)
    monkeypatch.setenv("MMBENCH_CYCLES_TIMEOUT", "0.2")
    backend = CyclesBackend(list(load_mesh_set("tiny").values()), size=16, samples=4)
    backend.start()  # the start-up has its own, longer limit
    proc = backend._proc
    start = time.monotonic()
    with pytest.raises(ExecutorError, match=r"did not answer within 0.4 s while rendering 2 scenes \(hung"):
        backend.render(_scenes(2))
    assert time.monotonic() - start < 30
    assert proc.poll() is not None  # killed, not left behind


def test_a_build_names_the_failed_shard_and_keeps_the_finished_ones(monkeypatch, tmp_path, caplog):
    _fake(monkeypatch, tmp_path, mode="crash", after=2)
    b = mmbench.builder("multimodal3dident", cache_dir=tmp_path / "cache", **TINY)
    with pytest.raises(ExecutorError, match=r"(?s)rendering shard 2 of the 'images' store \(rows 8–11\) failed.*exit status 3"):
        b.build(progress=False)
    from mmbench.rendering.scene import cycles

    cycles._close_all()
    _fake(monkeypatch, tmp_path, mode="ok")
    with caplog.at_level(logging.INFO, logger="mmbench.core.build"):
        b.build(progress=False)
    assert "2 of 5 shards reused" in caplog.text
    ds = b.as_dataset("train")
    assert ds[0]["image"].shape == (3, 16, 16)
    fresh = mmbench.builder("multimodal3dident", cache_dir=tmp_path / "fresh", **TINY)
    fresh.build(progress=False)
    assert fresh.as_dataset("train").fingerprint == ds.fingerprint  # resumed = built at once


def test_cycles_settings_are_in_the_fingerprint_and_raster_ones_unchanged():
    base = mmbench.builder("multimodal3dident", size=32).config
    assert "samples" not in base.data() and "cycles" not in base.image_key()
    c16 = mmbench.builder("multimodal3dident", size=32, backend="cycles", samples=16).config
    c64 = mmbench.builder("multimodal3dident", size=32, backend="cycles", samples=64).config
    assert len({base.fingerprint, c16.fingerprint, c64.fingerprint}) == 3
    assert c16.image_key()["cycles"] == {"samples": 16, "denoise": True}


def test_cycles_in_a_process_pool(monkeypatch, tmp_path):
    _fake(monkeypatch, tmp_path)
    serial = mmbench.builder("multimodal3dident", cache_dir=tmp_path / "a", **TINY)
    serial.build(progress=False)
    pooled = mmbench.builder("multimodal3dident", cache_dir=tmp_path / "b", **TINY)
    pooled.build(progress=False, num_workers=2)
    assert pooled.as_dataset("train").fingerprint == serial.as_dataset("train").fingerprint


# ---------------------------------------------------------------------------- real Cycles

@pytest.mark.slow
def test_real_cycles_renders_deterministic_images_where_latents_show():
    try:
        find_interpreter()
    except InputsNotFoundError:
        pytest.skip("no Blender interpreter (run `mmbench blender setup` or set MMBENCH_BLENDER)")
    r = SceneRenderer("builtin", size=48, backend="cycles", samples=4)
    s = _scenes(1, seed=3)
    moved = SceneBatch(**{**{f: getattr(s, f) for f in ("shape", "y", "alpha", "beta", "gamma", "object_hue",
                                                          "spot_pos", "spot_hue", "background_hue")},
                          "x": np.array([(s.x[0] + 1) % 3])})
    a, b = r.render_scenes(s), r.render_scenes(moved)
    assert a.std() > 1 and np.abs(a.astype(int) - b).mean() > 0.5
    np.testing.assert_array_equal(r.render_scenes(s), a)  # seeded per image


def test_import_meshes_needs_the_shape_files(tmp_path):
    from mmbench.rendering.scene.blender import import_meshes

    with pytest.raises(InputsNotFoundError, match="none of the release's shape files.*ShapeTeapot.blend"):
        import_meshes(tmp_path, tmp_path / "out")


@pytest.mark.slow
def test_import_meshes_converts_a_blend_file(tmp_path):
    import subprocess

    from mmbench.rendering.scene.blender import import_meshes, worker_env
    from mmbench.rendering.scene.meshes import read_mesh

    try:
        interp = find_interpreter()
    except InputsNotFoundError:
        pytest.skip("no Blender interpreter (run `mmbench blender setup` or set MMBENCH_BLENDER)")
    if interp.kind != "python":
        pytest.skip("writes its .blend fixture with a Python that imports bpy")
    make = ("import bpy; bpy.ops.wm.read_factory_settings(use_empty=True); me = bpy.data.meshes.new('m'); "
            "me.from_pydata([(0,0,0),(1,0,0),(0,1,0),(0,0,1)], [], [(0,1,2),(0,1,3),(0,2,3),(1,2,3)]); "
            "o = bpy.data.objects.new('ShapeCow', me); o.scale = (2, 2, 2); bpy.context.scene.collection.objects.link(o); "
            f"bpy.ops.wm.save_as_mainfile(filepath={str(tmp_path / 'ShapeCow.blend')!r})")
    subprocess.run([interp.path, "-c", make], check=True, capture_output=True, env=worker_env())
    assert import_meshes(tmp_path, tmp_path / "out") == ["cow"]
    mesh = read_mesh(tmp_path / "out" / "cow.npz")
    assert mesh.faces.shape == (4, 3) and mesh.vertices.max() == 2.0  # the object's own scale applied


def test_setup_needs_a_python_311(tmp_path):
    from mmbench.rendering.scene.blender import find_python311

    with pytest.raises(InputsNotFoundError, match="--python '/no/python3.11' is not a Python 3.11"):
        find_python311("/no/python3.11")


def test_build_workers_pin_their_cycles_workers_to_cores_of_their_own(monkeypatch):
    from mmbench.rendering.scene import cycles

    monkeypatch.setattr(cycles.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setenv("MMBENCH_WORKER_INDEX", "1")
    assert cycles.worker_cpus(1) == [1] and cycles.worker_cpus(2) == [2, 3]
    assert cycles.worker_cpus(4) is None  # one worker's share is the whole machine: no pinning
    assert cycles.worker_cpus(0) is None  # automatic threads: Cycles spreads over every core
    monkeypatch.setenv("MMBENCH_WORKER_INDEX", "5")
    assert cycles.worker_cpus(1) == [1]  # indices wrap around the slots
    monkeypatch.delenv("MMBENCH_WORKER_INDEX")
    assert cycles.worker_cpus(1) is None  # not in a build's worker pool


def test_worker_pins_all_its_threads_from_the_environment(monkeypatch):
    import os
    import threading

    from mmbench.rendering.scene import cycles_worker

    pinned = {}
    monkeypatch.setattr(cycles_worker.os, "sched_setaffinity", lambda tid, cpus: pinned.__setitem__(tid, cpus), raising=False)
    cycles_worker._pin_cpus()
    assert pinned == {}  # no cores given: nothing pinned
    monkeypatch.setenv(cycles_worker.CPUS_ENV, "0,3")
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)  # a thread started before the pinning (as blender's are)
    other.start()
    try:
        cycles_worker._pin_cpus()
    finally:
        stop.set()
        other.join()
    assert {os.getpid(), other.native_id} <= set(pinned) and all(c == {0, 3} for c in pinned.values())
