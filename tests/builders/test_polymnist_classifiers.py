"""Per-modality digit classifiers: train on fake PolyMNIST, save with the data, load back (CPU, tiny)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmbench.cli import main
from mmbench.errors import CacheError
from mmbench.models.classifiers import REPORT_FILE, load_classifiers, predict, train_classifiers
from mmbench.testing.mnist import write_fake_mnist


@pytest.fixture
def kwargs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("MMBENCH_OFFLINE", "1")
    d = write_fake_mnist(tmp_path / "mnist", n_train=400, n_test=100)
    return {
        "data_dir": d, "cache_dir": tmp_path / "c", "mnist": "fake", "num_modalities": 2, "val_size": 50,
        "split_sizes": {"train": 350, "test": 100}, "shard_size": 200,
    }


def test_train_save_load_predict(kwargs: dict) -> None:
    with pytest.raises(CacheError, match="mmbench train-classifiers polymnist"):
        load_classifiers("polymnist", **kwargs)
    report = train_classifiers("polymnist", epochs=1, batch_size=64, threads=1, **kwargs)
    assert set(report["accuracy"]) == {"m0", "m1"}
    assert 0.0 <= report["mean_accuracy"] <= 1.0  # real accuracy is checked on real data (RESULTS.md)
    assert report["train_split"]["fingerprint"] and report["architecture"] == "digit-cnn-v1"
    models = load_classifiers("polymnist", **kwargs)
    import mmbench

    ds = mmbench.load("polymnist", split="test", **kwargs)
    pred = predict(models["m1"], ds.column("m1"))
    acc = float((pred == np.asarray(ds.column("latents.digit"))).mean())
    assert acc == pytest.approx(report["accuracy"]["m1"], abs=1e-4)


def test_cli_train_classifiers(kwargs: dict, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train-classifiers", "polymnist", "--data-dir", str(kwargs["data_dir"]), "--cache-dir", str(kwargs["cache_dir"]),
            "--epochs", "1", "--threads", "1", "-o", "mnist=fake", "-o", "num_modalities=2", "-o", "val_size=50",
            "-o", "shard_size=200", "-o", "split_sizes.train=350", "-o", "split_sizes.val=50", "-o", "split_sizes.test=100"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "m0: test accuracy" in out and "mean:" in out
    report_path = next(Path(kwargs["cache_dir"]).rglob(REPORT_FILE))
    assert json.loads(report_path.read_text())["settings"]["epochs"] == 1
