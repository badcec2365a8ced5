"""`mmbench train`: presets, option precedence, help, the printed evaluate command, and a run
directory as the --model of `mmbench evaluate` and smoke_run."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import shlex

import pytest

from mmbench.cli import build_parser, main
from mmbench.models.train import PRESETS, TrainConfig, train

DATASET = "numerical/multiview/multimodal-independent"


def _args(*argv: str) -> argparse.Namespace:
    return build_parser({"train"}).parse_args(["train", DATASET, "--out", "x", *argv])


def test_presets() -> None:
    quick = TrainConfig.preset("quick", dataset=DATASET)
    assert (quick.steps, quick.batch_size, quick.lr, quick.lr_schedule) == (2500, 512, 2e-3, "cosine")
    assert quick.dataset_overrides == {"mixing_layers": 2} and quick.encoder_kwargs["hidden"] == [256, 256, 256]
    assert TrainConfig.preset("paper", dataset=DATASET) == TrainConfig(dataset=DATASET)  # the papers' defaults
    assert TrainConfig.preset("quick", dataset="polymnist").dataset_overrides == {}  # no mixing MLP to change
    with pytest.raises(Exception, match="Did you mean 'quick'"):
        TrainConfig.preset("quik", dataset=DATASET)


def test_reproduce_quick_is_the_quick_preset() -> None:
    from mmbench.models.reproduce import table_spec

    run = table_spec("m3di-table1", "quick").runs[0].config
    quick = TrainConfig.preset("quick", dataset=run.dataset)
    same = ("steps", "batch_size", "lr", "lr_schedule", "warmup_steps", "dataset_overrides")
    assert {f: getattr(run, f) for f in same} == {f: getattr(quick, f) for f in same}
    assert {k: run.encoder_kwargs[k] for k in ("hidden", "slope", "init")} == dict(PRESETS["quick"]["encoder_kwargs"])


def test_option_precedence(tmp_path) -> None:
    from mmbench.models.train_cli import config_from_args

    assert config_from_args(_args()).steps == 300_000  # --preset paper is the default
    cfg = config_from_args(_args("--preset", "quick", "--steps", "40", "-o", "seed=3"))
    assert cfg.steps == 40 and cfg.lr == 2e-3 and cfg.dataset_overrides == {"mixing_layers": 2, "seed": 3}
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"lr": 0.5, "batch_size": 8, "dataset_overrides": {"seed": 1}}))
    cfg = config_from_args(_args("--preset", "quick", "--config", str(path), "--batch-size", "16"))
    assert (cfg.lr, cfg.batch_size) == (0.5, 16) and cfg.dataset_overrides == {"mixing_layers": 2, "seed": 1}
    cfg = config_from_args(_args("--preset", "quick", "--width-scale", "0.5"))
    assert cfg.encoder_kwargs["width_scale"] == 0.5 and "hidden" not in cfg.encoder_kwargs


def test_every_option_of_every_command_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {a.option_strings or a.dest}" for name, p in sub.choices.items() for a in p._actions
               if not isinstance(a, argparse._HelpAction) and not a.help]
    assert missing == []


def test_train_prints_the_evaluate_command_and_the_run_is_a_model(tmp_path, capsys) -> None:
    from mmbench.harness.evaluate import evaluate
    from mmbench.harness.protocols import load_model
    from mmbench.testing import smoke_run

    out = tmp_path / "run"
    assert main(["train", DATASET, "--preset", "quick", "--steps", "4", "--batch-size", "32", "--out", str(out),
                 "--device", "cpu", "--no-progress", "--val-every", "0"]) == 0
    printed = capsys.readouterr().out
    command = re.search(r"^\s+(mmbench evaluate .*)$", printed, re.M).group(1)
    assert shlex.split(command)[1:6] == ["evaluate", "--model", str(out), "--suite", "identifiability-numerical-quick:v1"]
    model = load_model(str(out))  # what `evaluate --model DIR` does
    assert model.trained_steps == 4 and model.card.input_shapes == {"x1": (15,), "x2": (15,)}
    sha = hashlib.sha256((out / "checkpoint.safetensors").read_bytes()).hexdigest()
    assert model.mmbench_source["weights_sha256"] == sha and model.mmbench_source["type"] == "training_run"
    suite = {"name": "tiny-quick", "version": 1, "seeds": [0], "entries": [
        {"dataset": f"{DATASET}:1.0.0", "label": "multiview", "metrics": ["r2_linear"],
         "overrides": {"mixing_layers": 2, "split_sizes": {"val": 300, "test": 200}}},
        {"dataset": "numerical/clica/sphere-uniform-vmf1:1.0.0", "label": "clica", "metrics": ["r2_linear"], "latents": ["z"],
         "overrides": {"split_sizes": {"val": 300, "test": 200}}}]}
    result = evaluate(model, suite, device="cpu", progress=False)
    assert result.model_source["weights_sha256"] == sha
    clica = result.entry("clica")  # x1/x2 exist there too, but 10-d: not this model's input
    assert clica["status"] == "n/a" and "shape" in clica["reason"]
    report = smoke_run(str(out), device="cpu")
    assert report.ok and "clica-sphere-vmf1: n/a" in repr(report)


def test_a_directory_that_is_no_model_says_what_one_is(tmp_path) -> None:
    from mmbench.errors import SubmissionError
    from mmbench.harness.protocols import load_model

    with pytest.raises(SubmissionError, match="neither a checkpoint directory nor a training run"):
        load_model(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"train_config": {"dataset": DATASET}, "modality_shapes": {"x1": [15], "x2": [15]}}))
    with pytest.raises(SubmissionError, match="never reached its first checkpoint"):
        load_model(str(tmp_path))


def test_a_resumed_run_says_so(tmp_path, caplog) -> None:
    cfg = TrainConfig(dataset=DATASET, steps=2, batch_size=16, val_every=0, checkpoint_every=0, encoder_kwargs={"width_scale": 0.05})
    train(cfg, out_dir=tmp_path, device="cpu", progress=False)
    with caplog.at_level(logging.INFO, logger="mmbench.progress"):
        train(cfg.replace(steps=3), out_dir=tmp_path, device="cpu", progress=False)
    assert any("resuming the checkpoint" in r.getMessage() and "at step 2 of 3" in r.getMessage() for r in caplog.records)


def test_without_a_bar_training_logs_a_line_per_checkpoint(tmp_path, caplog) -> None:
    cfg = TrainConfig(dataset=DATASET, steps=4, batch_size=16, val_every=2, checkpoint_every=2, log_every=1,
                      encoder_kwargs={"width_scale": 0.05})
    with caplog.at_level(logging.INFO, logger="mmbench.progress"):
        train(cfg, out_dir=tmp_path, device="cpu", progress=False)
    lines = [r.getMessage() for r in caplog.records if r.name == "mmbench.progress.steps"]
    assert len(lines) == 2 and lines[0].startswith("train: step 2/4, loss") and ", val " in lines[0]
