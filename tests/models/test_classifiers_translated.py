"""Translated-PolyMNIST digit classifiers: trained by the same command, versioned per config (id + sha256)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from mmbench import Replace
from mmbench.cli import main
from mmbench.errors import CacheError
from mmbench.harness.generative import DigitClassifiers
from mmbench.models import classifiers
from mmbench.models.classifiers import classifier_report, train_classifiers
from mmbench.testing.mnist import write_fake_mnist


@pytest.fixture
def kwargs(tmp_path: Path) -> dict:
    d = write_fake_mnist(tmp_path / "mnist", n_train=300, n_test=80)
    return {"data_dir": d, "cache_dir": tmp_path / "c", "num_modalities": 2, "val_size": 50,
            "split_sizes": Replace({"train": 200, "test": 80}), "shard_size": 200}


def test_translated_classifiers_are_versioned_per_config(kwargs: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(classifiers, "EXPECTED_ACCURACY", 0.0)  # fake digits check the plumbing only
    with pytest.raises(CacheError, match="mmbench train-classifiers translated_polymnist/paper"):
        DigitClassifiers.load("translated_polymnist/paper", **kwargs)
    report = train_classifiers("translated_polymnist/paper", epochs=1, batch_size=64, threads=1, **kwargs)
    assert report["dataset"].startswith("translated_polymnist/paper") and set(report["files"]) == {"m0", "m1"}
    clf = DigitClassifiers.load("translated_polymnist/paper", **kwargs)
    assert clf.id.startswith("digit-cnn-v2@translated_polymnist/paper") and clf.sha256 == {m: f["sha256"] for m, f in report["files"].items()}
    with pytest.raises(CacheError, match="translated_polymnist/thesis"):  # another config: its own classifiers
        classifier_report("translated_polymnist/thesis", **kwargs)
    with pytest.raises(CacheError, match="mmbench train-classifiers polymnist"):  # nor PolyMNIST's
        classifier_report("polymnist", **kwargs)


def test_cli_trains_translated_classifiers(kwargs: dict, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train-classifiers", "translated_polymnist", "--data-dir", str(kwargs["data_dir"]), "--cache-dir", str(kwargs["cache_dir"]),
            "--epochs", "1", "--threads", "1", "-o", "num_modalities=2", "-o", "val_size=50", "-o", "shard_size=200",
            "-o", "split_sizes:={\"train\": 200, \"test\": 80}"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # fake digits stay below the real-data bar
        assert main(args) == 0
    out = capsys.readouterr().out
    assert "Trained 2 digit-cnn-v2 classifiers for translated_polymnist/thesis" in out and "m1: test accuracy" in out
