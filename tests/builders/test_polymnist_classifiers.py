"""Per-modality digit classifiers: train on fake PolyMNIST, save with the data, load back (CPU, tiny)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from mmbench import Replace
from mmbench.cli import main
from mmbench.errors import CacheError
from mmbench.models import classifiers
from mmbench.models.classifiers import REPORT_FILE, load_classifiers, predict, train_classifiers
from mmbench.testing.mnist import write_fake_mnist


@pytest.fixture
def kwargs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("MMBENCH_OFFLINE", "1")
    d = write_fake_mnist(tmp_path / "mnist", n_train=400, n_test=100)
    return {
        "data_dir": d, "cache_dir": tmp_path / "c", "num_modalities": 2, "val_size": 50,
        "split_sizes": Replace({"train": 350, "test": 100}), "shard_size": 200,
    }


def test_train_save_load_predict(kwargs: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CacheError, match="mmbench train-classifiers polymnist"):
        load_classifiers("polymnist", **kwargs)
    monkeypatch.setattr(classifiers, "EXPECTED_ACCURACY", 1.01)  # unreachable: the check must fire
    with pytest.warns(UserWarning, match=r"m0 \d\.\d{4}, m1 \d\.\d{4}, below the expected 1\.01") as caught:
        report = train_classifiers("polymnist", epochs=1, batch_size=64, threads=1, **kwargs)
    assert "not comparable" in str(caught[0].message)
    assert set(report["accuracy"]) == {"m0", "m1"}
    # Fake digits only check the plumbing; the >= 98 % target is for the real datasets, trained by
    # hand with `mmbench train-classifiers polymnist` (its report records meets_expected).
    assert 0.0 <= report["mean_accuracy"] <= 1.0
    saved = json.loads(next(Path(kwargs["cache_dir"]).rglob(REPORT_FILE)).read_text())
    assert saved["meets_expected"] is False and saved["below_expected"] == ["m0", "m1"]
    assert saved["expected_accuracy"] == 1.01
    assert report["train_split"]["fingerprint"] and report["architecture"] == "digit-cnn-v1"
    models = load_classifiers("polymnist", **kwargs)
    import mmbench

    ds = mmbench.load("polymnist", split="test", **kwargs)
    pred = predict(models["m1"], ds.column("m1"))
    acc = float((pred == np.asarray(ds.column("latents.digit"))).mean())
    assert acc == pytest.approx(report["accuracy"]["m1"], abs=1e-4)


def test_cli_train_classifiers(kwargs: dict, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(classifiers, "EXPECTED_ACCURACY", 1.01)
    args = ["train-classifiers", "polymnist", "--data-dir", str(kwargs["data_dir"]), "--cache-dir", str(kwargs["cache_dir"]),
            "--epochs", "1", "--threads", "1", "-o", "num_modalities=2", "-o", "val_size=50",
            "-o", "shard_size=200", "-o", "split_sizes.train=350", "-o", "split_sizes.val=50", "-o", "split_sizes.test=100"]
    with pytest.warns(UserWarning, match="below the expected"):
        assert main(args) == 0
    out = capsys.readouterr().out
    assert "m0: test accuracy" in out and "mean:" in out and "below the expected 1.01: m0, m1" in out
    report_path = next(Path(kwargs["cache_dir"]).rglob(REPORT_FILE))
    assert json.loads(report_path.read_text())["settings"]["epochs"] == 1


def test_meets_expected_without_a_warning(kwargs: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(classifiers, "EXPECTED_ACCURACY", 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        report = train_classifiers("polymnist", epochs=1, batch_size=64, threads=1, **kwargs)
    assert report["meets_expected"] is True and report["below_expected"] == []
    assert classifiers.EXPECTED_ACCURACY == 0.0 and json.loads(
        next(Path(kwargs["cache_dir"]).rglob(REPORT_FILE)).read_text()
    )["meets_expected"] is True


def test_default_expected_accuracy_is_98_percent() -> None:
    assert classifiers.EXPECTED_ACCURACY == 0.98


def test_load_refuses_another_architecture(kwargs: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(classifiers, "EXPECTED_ACCURACY", 0.0)
    train_classifiers("polymnist", epochs=1, batch_size=64, threads=1, **kwargs)
    report_path = next(Path(kwargs["cache_dir"]).rglob(REPORT_FILE))
    good = report_path.read_text()
    report = json.loads(good)
    report["architecture"] = "digit-cnn-v0"
    report_path.write_text(json.dumps(report))
    with pytest.raises(CacheError, match=r"records architecture 'digit-cnn-v0', but this mmbench builds 'digit-cnn-v1'"):
        load_classifiers("polymnist", **kwargs)
    # The weights file's own metadata is checked too (a file copied from another version).
    from safetensors.torch import load_file, save_file

    from mmbench.versioning import sha256_file

    report = json.loads(good)
    weights = report_path.parent / report["files"]["m1"]["path"]
    save_file(load_file(str(weights)), str(weights), metadata={"architecture": "digit-cnn-v2"})
    report["files"]["m1"]["sha256"] = sha256_file(weights)
    report_path.write_text(json.dumps(report))
    with pytest.raises(CacheError, match=r"m1.safetensors records architecture 'digit-cnn-v2'.*train-classifiers polymnist"):
        load_classifiers("polymnist", **kwargs)
