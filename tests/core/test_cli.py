from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmbench.cli import main, parse_overrides
from mmbench.errors import MMBenchError


def test_parse_overrides() -> None:
    assert parse_overrides(["seed=3", "split_sizes.train=10", "dependence=dependent", 'selection=["s1"]']) == {
        "seed": 3, "split_sizes": {"train": 10}, "dependence": "dependent", "selection": ["s1"]
    }
    assert parse_overrides(['split_sizes={"train": 5}', "split_sizes.val=2"]) == {"split_sizes": {"train": 5, "val": 2}}
    assert parse_overrides(['split_sizes:={"train": 5}'])["split_sizes"] == {"$replace": {"train": 5}}
    with pytest.raises(MMBenchError, match="KEY=VALUE"):
        parse_overrides(["seed"])


def test_list_and_info(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--configs"]) == 0
    out = capsys.readouterr().out
    assert "numerical/misalignment" in out and "numerical/misalignment/joint" in out and "numerical/clica" in out
    assert main(["info", "numerical/misalignment/joint"]) == 0
    out = capsys.readouterr().out
    assert "| s9 | continuous | 1 |" in out and "Expected identifiable (theory): s3, s4, s5, s6, s7, s8" in out


def test_build_show_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--cache-dir", str(tmp_path), "-o", "split_sizes.train=300", "-o", "split_sizes.val=0", "-o", "split_sizes.test=50", "-o", "shard_size=100"]
    assert main(["build", "numerical/misalignment/perturbation-3", *args, "--workers", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "train: 300 examples, 3 shards" in out and "content fingerprint" in out
    root = next(tmp_path.glob("numerical__misalignment/perturbation-3-*/1.0.0"))
    info = json.loads((root / "dataset_info.json").read_text())
    assert info["config"]["perturbation"] == ["s1", "s2", "s3"]
    assert main(["show", "numerical/misalignment/perturbation-3", *args, "--split", "test", "-n", "1"]) == 0
    assert "perturbed.s3" in capsys.readouterr().out
    assert main(["build", "numerical/misalignment/jiont", "--cache-dir", str(tmp_path)]) == 1
    assert "Did you mean 'joint'" in capsys.readouterr().err
    assert main(["build", "numerical/misalignment", "-o", "perturb_prob=2", "--cache-dir", str(tmp_path)]) == 1
    assert "perturb_prob must be <= 1.0, got 2.0" in capsys.readouterr().err


def test_build_same_split_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--cache-dir", str(tmp_path), "-o", 'split_sizes={"train": 100, "test": 50}', "--no-progress"]
    assert main(["build", "numerical/misalignment/joint", "--split", "test", "--split", "test", *args]) == 0
    assert "test: 50 examples" in capsys.readouterr().out
    assert not list(tmp_path.rglob(".tmp-*"))


def test_list_imports_only_what_it_runs() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from mmbench.cli import main; main(['list']); "
        "print(sorted(m for m in ('torch', 'sklearn', 'mmbench.models.train', 'mmbench.harness.cli') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_help_lists_every_command_with_its_own_help(capsys: pytest.CaptureFixture[str]) -> None:
    from mmbench.cli import COMMAND_HELP, COMMANDS, build_parser

    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)
    full = build_parser()  # every command's real parser: the placeholders must say the same
    sub = next(a for a in full._actions if a.dest == "command")
    assert {a.dest: a.help for a in sub._choices_actions} == {name: COMMAND_HELP[name] for name in COMMANDS}


def test_show_summarises_arrays_and_the_latent_table_reads_well(tmp_path, capsys) -> None:
    import numpy as np

    import mmbench
    from mmbench.cli import describe_value

    assert describe_value(np.zeros((3, 28, 28), np.uint8)).startswith("uint8 array (3, 28, 28), min 0, max 0")
    assert describe_value(np.arange(3)) == "[0 1 2]" and len(describe_value(np.zeros((3, 28, 28)), full=True)) > 2000
    spec = mmbench.builder("numerical/misalignment/joint").latent_spec()
    assert repr(spec.table()).startswith("| latent | kind |") and "\\n" not in repr(spec.table())  # a REPL shows the table


def test_quiet_and_verbose_are_accepted_after_the_command(capsys) -> None:
    assert main(["list", "-v"]) == 0 and main(["list", "-q"]) == 0
    assert main(["-v", "list"]) == 0
