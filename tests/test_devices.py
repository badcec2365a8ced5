"""One device rule (mmbench.devices.resolve_device) for every command and API, with one wording."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import torch

import mmbench
from mmbench.devices import DEVICE_HELP, resolve_device
from mmbench.errors import InvalidConfigError


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_and_explicit_devices(no_cuda, monkeypatch) -> None:
    assert resolve_device("auto") == resolve_device(None) == torch.device("cpu")
    assert resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(InvalidConfigError, match="CUDA is not available on this machine") as err:
        resolve_device("cuda")
    assert "--device auto" in str(err.value) and "cpu" in str(err.value)
    with pytest.raises(InvalidConfigError, match="Invalid device 'gpu'"):
        resolve_device("gpu")
    with pytest.raises(InvalidConfigError, match="must be a string"):
        resolve_device(3)  # type: ignore[arg-type]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda")
    with pytest.raises(InvalidConfigError, match="has 2 CUDA device"):
        resolve_device("cuda:2")


def test_the_api_raises_one_clear_error_before_any_work(no_cuda, tmp_path) -> None:
    from mmbench.models.train import TrainConfig, train
    from mmbench.testing.oracles import LatentOracle

    with pytest.raises(InvalidConfigError, match="CUDA is not available"):
        mmbench.evaluate(LatentOracle(), "identifiability-numerical-quick:v1", device="cuda", cache_dir=tmp_path)
    with pytest.raises(InvalidConfigError, match="CUDA is not available"):
        train(TrainConfig(dataset="numerical/multiview/multimodal-independent", steps=1), device="cuda")
    assert not any(tmp_path.iterdir())  # nothing was built


@pytest.mark.parametrize("command", [
    ["evaluate", "--model", "mmbench.testing.oracles:LatentOracle", "--suite", "identifiability-numerical-quick:v1"],
    ["train", "numerical/multiview/multimodal-independent", "--out", "{tmp}/run", "--steps", "1"],
    ["reproduce", "m3di-table1", "--quick", "--steps", "1", "--only", "p=1.0"],
    ["train-classifiers", "polymnist"],
])
def test_every_command_gives_one_error_line_for_an_unavailable_device(command, no_cuda, tmp_path, capsys) -> None:
    from mmbench.cli import main

    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    assert main([*args, "--device", "cuda", *(["--cache-dir", str(tmp_path / "c")] if command[0] in ("evaluate", "train-classifiers") else [])]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: device 'cuda' was requested, but CUDA is not available"), err


def test_every_device_option_has_the_same_default_and_words() -> None:
    from mmbench.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    seen = []
    for name, p in sub.choices.items():
        for action in p._actions:
            if "--device" in action.option_strings:
                seen.append(name)
                assert action.default == "auto" and action.help == DEVICE_HELP, name
    assert set(seen) >= {"train", "evaluate", "reproduce", "train-classifiers"}


def test_one_resolve_device_in_the_package() -> None:
    root = Path(mmbench.__file__).parent
    defs = [p for p in root.rglob("*.py") if re.search(r"^\s*def resolve_device\(", p.read_text(), re.M)]
    assert [p.relative_to(root).as_posix() for p in defs] == ["devices.py"]
