"""SIGINT/SIGTERM sent to the main process only (as `timeout`, `kill` or a job scheduler does) stop
`mmbench build --workers 2`, `mmbench train` and `mmbench reproduce --jobs 2` within seconds: no
process of the command outlives it and nothing half-written is left.

Each command runs as a subprocess carrying a unique environment marker, which its spawned workers
and multiprocessing's resource tracker inherit; after the signal no process may still carry it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds processes through /proc (Linux)")

STOP_WITHIN_S = 10.0  # "a few seconds": the workers get 3 s to exit after SIGTERM, then SIGKILL


def _marked(marker: str) -> list[int]:
    """Pids of live processes whose environment holds ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                status = (entry / "status").read_text()
                if "\nState:\tZ" not in status:  # a zombie is dead; its parent reaps it
                    pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _start(args: list[str], tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    marker = f"MMBENCH_SIGNAL_TEST={uuid.uuid4().hex}"
    env = {**os.environ, "MMBENCH_SIGNAL_TEST": marker.split("=", 1)[1], "MMBENCH_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "mmbench.cli", *args], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, marker


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str], marker: str, what: str, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the command ended (rc {proc.returncode}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            for pid in _marked(marker):  # the test failed; leave nothing running
                os.kill(pid, signal.SIGKILL)
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def _signal_and_check(proc: subprocess.Popen[str], marker: str, sig: int) -> tuple[str, str]:
    """Signal the parent only; it must exit within STOP_WITHIN_S and leave no marked process."""
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"still running {STOP_WITHIN_S} s after {signal.Signals(sig).name}:\n{err[-2000:]}")
    took = time.monotonic() - t0
    time.sleep(0.5)  # the resource tracker exits when its last client closes the pipe
    left = _marked(marker)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes outlived the command: {left}"
    assert took < STOP_WITHIN_S
    return out, err


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".tmp") or ".tmp-" in p.name or p.name.endswith(".tmp")]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_build_with_workers_stops_on_a_signal_to_the_parent(tmp_path: Path, sig: int) -> None:
    args = ["build", "numerical/misalignment/joint", "--workers", "2", "--no-progress", "-o", "shard_size=50000",
            "-o", 'split_sizes:={"train": 4000000}']
    proc, marker = _start(args, tmp_path)
    _wait_for(lambda: len(_marked(marker)) >= 3, proc, marker, "two workers to start")  # parent + 2 workers (+ tracker)
    time.sleep(1.0)  # the workers are generating shards
    _, err = _signal_and_check(proc, marker, sig)
    assert proc.returncode == 128 + sig and "interrupted" in err
    cache = tmp_path / "cache"
    assert not _temp_files(cache), _temp_files(cache)
    assert not list(cache.rglob("split_info.json")) and not list(cache.rglob("train/*.npy"))  # no split was committed


def test_train_stops_on_sigterm_with_a_valid_checkpoint(tmp_path: Path) -> None:
    from mmbench.models.train import load_trained

    out = tmp_path / "run"
    proc, marker = _start(["train", "numerical/multiview/multimodal-independent", "--preset", "quick", "--steps", "1000000",
                           "--checkpoint-every", "20", "--val-every", "0", "--batch-size", "64", "--out", str(out),
                           "--no-progress", "--device", "cpu"], tmp_path)
    _wait_for(lambda: (out / "checkpoint.safetensors").is_file(), proc, marker, "the first checkpoint")
    out_text, _ = _signal_and_check(proc, marker, signal.SIGTERM)
    assert proc.returncode == 128 + signal.SIGTERM and "interrupted" in out_text
    assert not _temp_files(out), _temp_files(out)
    model = load_trained(out)
    assert model.trained_steps >= 20
    assert isinstance(json.loads((out / "history.json").read_text()), list)  # written with the checkpoint


def test_reproduce_with_jobs_stops_on_sigterm(tmp_path: Path) -> None:
    from mmbench.models.train import load_trained

    out = tmp_path / "repro"
    proc, marker = _start(["reproduce", "m3di-table1", "--quick", "--only", "multiview / p=1.0", "--seeds", "0", "1",
                           "--jobs", "2", "--steps", "1000000", "--out", str(out), "--no-progress", "--device", "cpu"], tmp_path)
    runs = out / "runs"
    _wait_for(lambda: len(list(runs.glob("*/config.json"))) == 2, proc, marker, "both runs to start training")
    time.sleep(8.0)  # both are past their first steps
    _, err = _signal_and_check(proc, marker, signal.SIGTERM)
    assert proc.returncode == 128 + signal.SIGTERM and "interrupted" in err
    assert not _temp_files(out), _temp_files(out)
    checkpoints = list(runs.glob("*/checkpoint.safetensors"))  # each worker saved the step it had reached
    assert len(checkpoints) == 2
    for ckpt in checkpoints:
        assert load_trained(ckpt.parent).trained_steps > 0
    assert not (out / "m3di-table1.md").exists()  # no table from an interrupted reproduction
