"""One trainer for every model family: VAEs through ``train`` and ``mmbench train --recipe``,
their run directories as harness models (Encoder + Generator), NaN safety, config mismatches,
and the reproduce targets' specs (tiny fake PolyMNIST; seconds on a CPU)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mmbench.errors import InvalidConfigError
from mmbench.harness.protocols import is_generator, load_model, representations
from mmbench.models.train import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    NonFiniteLossError,
    TrainConfig,
    build_model,
    load_trained,
    train,
)
from mmbench.models.vae import MultimodalVAE
from mmbench.testing.mnist import write_fake_mnist

DATA = {"num_modalities": 3, "val_size": 50, "split_sizes": {"train": 128, "val": 32, "test": 64}, "shard_size": 128}
RUN = {"dataset_overrides": DATA, "steps": 4, "batch_size": 16, "val_every": 2, "checkpoint_every": 2, "log_every": 2}
TINY_RECIPES = ("mvae-tiny", "mmvae-tiny", "mmvae-dreg-tiny", "mopoe-tiny", "mmvaeplus-tiny")


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train-vae")
    write_fake_mnist(root / "mnist", n_train=300, n_test=100)
    return root


@pytest.fixture(autouse=True)
def _fake_polymnist(fake_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PolyMNIST from fake digits, built once into a cache shared by this module's tests."""
    monkeypatch.setenv("MMBENCH_MNIST_DIR", str(fake_root / "mnist"))
    monkeypatch.setenv("MMBENCH_CACHE", str(fake_root / "cache"))
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _cfg(recipe: str = "mopoe-tiny", **changes) -> TrainConfig:
    return TrainConfig.from_recipe(recipe, dataset="polymnist", **{**RUN, **changes})


def test_recipe_config_roundtrip_and_contrastive_configs_unchanged() -> None:
    cfg = _cfg()
    assert cfg.model == "mopoe" and cfg.recipe == "mopoe-tiny" and cfg.data == "dataset" and cfg.grad_clip is None
    assert cfg.model_config["kind"] == "mopoe" and cfg.model_config["latent_dim"] == 8
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    plain = TrainConfig(dataset="numerical/multiview/multimodal-independent")
    assert not {"model", "model_config", "recipe", "optimizer"} & set(plain.to_dict())  # config.json as before
    cpu = TrainConfig.from_recipe("mopoe-polymnist-cpu")
    assert (cpu.model_config["latent_dim"], cpu.lr_schedule, cpu.steps) == (32, "cosine", 15_000)
    full = TrainConfig.from_recipe("mopoe-polymnist", model_config={"beta": 1.0})
    assert full.steps == 300 * (55_000 // 256) and full.model_config["beta"] == 1.0 and full.model_config["latent_dim"] == 512
    assert TrainConfig.from_recipe("mmvaeplus-polymnist").optimizer == "amsgrad"


@pytest.mark.parametrize(("changes", "match"), [
    ({"model": "mopoee"}, "Did you mean"),
    ({"model": "mopoe", "encoding_size": 3}, "configure contrastive models"),
    ({"model": "mopoe", "model_config": {"kind": "mvae"}}, "must agree"),
    ({"model": "mopoe", "model_config": {"beta": 0}}, "beta"),
    ({"model_config": {"latent_dim": 3}}, "for the VAE families"),
    ({"optimizer": "sgd"}, "optimizer"),
])
def test_bad_family_configs_are_refused(changes: dict, match: str) -> None:
    with pytest.raises(InvalidConfigError, match=match):
        TrainConfig(dataset="polymnist", **changes)


def test_vae_trains_resumes_and_its_run_dir_is_an_encoder_and_generator(tmp_path: Path) -> None:
    cfg = _cfg()
    res = train(cfg, out_dir=tmp_path, device="cpu", progress=False)
    assert isinstance(res.model, MultimodalVAE) and res.steps == 4
    rec = next(h for h in res.history if "loss" in h)
    assert {"recon", "kl", "beta"} <= set(rec) and math.isfinite(rec["loss"])
    assert any("val_loss" in h and math.isfinite(h["val_loss"]) for h in res.history)
    meta = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert meta["model"]["family"] == "mopoe" and meta["model"]["modalities"]["m0"] == {"shape": [3, 28, 28], "dtype": "uint8"}
    assert train(cfg.replace(steps=6), out_dir=tmp_path, device="cpu", progress=False).steps == 2
    model = load_model(str(tmp_path))  # what `mmbench evaluate --model DIR` does
    assert isinstance(model, MultimodalVAE) and model.trained_steps == 6 and is_generator(model)
    assert model.mmbench_source["type"] == "training_run" and len(model.mmbench_source["weights_sha256"]) == 64
    assert model.card.revision == "seed0-step6" and model.card.extra["generator"]
    assert model.card.input_shapes["m0"] == (3, 28, 28)  # suites of other data mark it n/a, not failed
    import mmbench

    ds = mmbench.load("polymnist", split="test", **DATA)
    batch = {m: np.array(ds.column(m)[:10]) for m in ("m0", "m1", "m2")}
    assert model.encode(batch, modality="m1").shape == (10, 8)
    gen = [model.generate(batch, source=["m0", "m2"], target="m1", generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    assert gen[0].shape == (10, 3, 28, 28) and gen[0].dtype == torch.uint8 and torch.equal(gen[0], gen[1])
    assert model.sample(4, generator=torch.Generator().manual_seed(0))["m2"].shape == (4, 3, 28, 28)


def test_resumed_vae_run_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    cfg = _cfg(val_every=0)
    full = train(cfg, out_dir=tmp_path / "a", device="cpu", progress=False).model
    train(cfg.replace(steps=2), out_dir=tmp_path / "b", device="cpu", progress=False)
    resumed = train(cfg, out_dir=tmp_path / "b", device="cpu", progress=False).model
    for (k, v), (_, w) in zip(full.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.allclose(v, w, atol=1e-6), k


@pytest.mark.parametrize("recipe", TINY_RECIPES)
def test_every_family_trains_through_the_one_trainer(recipe: str) -> None:
    res = train(_cfg(recipe, steps=2, val_every=0), device="cpu", progress=False)
    assert res.steps == 2 and math.isfinite(res.history[-1]["loss"])
    assert type(res.model).__name__ == "MultimodalVAE" and res.model.family == recipe.split("-")[0]


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_finite_checkpoint(tmp_path: Path, monkeypatch) -> None:
    real = MultimodalVAE.training_loss

    def poisoned(self, batch, *, step, **kw):  # the model goes NaN at step 3
        loss, logs = real(self, batch, step=step, **kw)
        return (loss * float("nan"), logs) if step >= 3 else (loss, logs)

    monkeypatch.setattr(MultimodalVAE, "training_loss", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"at step 3 .*checkpoint of step 2"):
        train(_cfg(steps=6, val_every=0), out_dir=tmp_path, device="cpu", progress=False)
    kept = load_trained(tmp_path)
    assert kept.trained_steps == 2
    assert all(torch.isfinite(v).all() for v in kept.state_dict().values())


def test_non_finite_weights_are_never_checkpointed(tmp_path: Path) -> None:
    from mmbench.models.train import _save_checkpoint

    model = build_model(_cfg())
    opt = torch.optim.Adam(model.parameters())
    _save_checkpoint(tmp_path, model, opt, 1, [])
    before = (tmp_path / CHECKPOINT_FILE).read_bytes()
    with torch.no_grad():
        next(model.parameters()).fill_(float("inf"))
    with pytest.raises(NonFiniteLossError, match="not finite"):
        _save_checkpoint(tmp_path, model, opt, 2, [])
    assert (tmp_path / CHECKPOINT_FILE).read_bytes() == before


def test_a_checkpoint_of_another_config_is_refused_clearly(tmp_path: Path) -> None:
    cfg = _cfg(steps=2, val_every=0)
    train(cfg, out_dir=tmp_path, device="cpu", progress=False)
    other = cfg.replace(model_config={**cfg.model_config, "beta": 2.0})
    with pytest.raises(InvalidConfigError, match=r"model_config\.beta: checkpoint 1\.0 vs requested 2\.0"):
        train(other, out_dir=tmp_path, device="cpu", progress=False)
    with pytest.raises(InvalidConfigError, match=r"model_config\.beta"):
        load_trained(tmp_path, expect=other)
    with pytest.raises(InvalidConfigError, match="model: checkpoint 'mopoe' vs requested 'contrastive'"):
        train(TrainConfig(dataset="polymnist", dataset_overrides=DATA, steps=2, batch_size=8), out_dir=tmp_path, device="cpu",
              progress=False)


def test_cli_recipe_options(tmp_path: Path, capsys) -> None:
    from mmbench.cli import main
    from mmbench.models.train_cli import config_from_args

    def args(*argv: str):
        import argparse

        from mmbench.models.train_cli import add_train_parser

        p = argparse.ArgumentParser()
        add_train_parser(p.add_subparsers())
        return p.parse_args(["train", *argv])

    cfg = config_from_args(args("polymnist", "--out", "x", "--recipe", "mopoe-polymnist-cpu", "--model-set", "beta=2.5",
                                "--model-set", "latent_dim=16", "--steps", "10"))
    assert (cfg.model, cfg.model_config["beta"], cfg.model_config["latent_dim"], cfg.steps) == ("mopoe", 2.5, 16, 10)
    with pytest.raises(InvalidConfigError, match="--loss configure contrastive"):
        config_from_args(args("polymnist", "--out", "x", "--recipe", "mopoe-tiny", "--loss", "ntxent"))
    with pytest.raises(InvalidConfigError, match="give only one"):
        config_from_args(args("polymnist", "--out", "x", "--recipe", "mopoe-tiny", "--preset", "quick"))
    with pytest.raises(InvalidConfigError, match="use it with --recipe"):
        config_from_args(args("polymnist", "--out", "x", "--model-set", "beta=2"))
    out = tmp_path / "run"
    argv = ["train", "polymnist", "--recipe", "mmvaeplus-tiny", "--steps", "2", "--batch-size", "8", "--out", str(out),
            "--no-progress", *[f"-o{k}={json.dumps(v)}" for k, v in DATA.items()]]
    assert main(argv) == 0
    assert "done: 2 steps" in capsys.readouterr().out
    model = load_model(str(out))
    assert representations(model) == {"shared": 8, "private": 4}  # MMVAE+: encode(..., part="private")


@pytest.mark.filterwarnings("ignore:Digit classifiers for polymnist")  # fake digits stay below the real-data bar
def test_reproduce_targets_and_their_runner(tmp_path: Path) -> None:
    from mmbench.models.classifiers import train_classifiers
    from mmbench.models.reproduce import PAPER, table_spec
    from mmbench.models.vae.tables import run

    quick, full = table_spec("mopoe-polymnist", "quick"), table_spec("mopoe-polymnist", "full")
    assert quick.runs[0].config.recipe == "mopoe-polymnist-cpu" and "Quick scale (CPU)" in quick.quick_note
    assert full.runs[0].config.recipe == "mopoe-polymnist" and (quick.checks[0].low, full.checks[0].low) == (0.5, 0.8)
    assert PAPER["mopoe-polymnist"]["MoPoE-VAE"]["4 inputs"] == 0.85
    assert table_spec("mmvaeplus-polymnist", "quick").runs[0].config.model == "mmvaeplus"
    train_classifiers("polymnist", device="cpu", epochs=1, **DATA)
    tiny = _cfg(steps=2, val_every=0, name="tiny")
    spec = dataclasses.replace(quick, runs=(dataclasses.replace(quick.runs[0], config=tiny),), eval_samples=32)
    cells, info = run(spec, 0, 0, scale="quick", device="cpu", steps=None, out_dir=str(tmp_path), progress=False)
    row = cells["MoPoE-VAE"]
    assert set(row) == {"1 input", "2 inputs"} and all(0.0 <= v <= 1.0 for v in row.values())  # 3 modalities
    assert info["coherence"]["num_examples"] == 32 and len(info["coherence"]["classifiers"]["sha256"]) == 3
    assert (tmp_path / "tiny-seed0" / CHECKPOINT_FILE).is_file()
    assert np.isclose(info["coherence"]["by_num_inputs"][1], row["1 input"])
