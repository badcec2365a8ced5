"""Trainer: checkpoints, resume, Ctrl-C, the harness protocol of a trained model, bad input."""

from __future__ import annotations

import json
import math
import signal

import numpy as np
import pytest
import torch

import mmbench
from mmbench.errors import InvalidConfigError, SubmissionError
from mmbench.models.train import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    TrainConfig,
    build_model,
    load_trained,
    train,
)

TINY = dict(
    dataset="numerical/multiview/multimodal-independent",
    batch_size=32, steps=6, lr=1e-3, encoder_kwargs={"width_scale": 0.05},
    val_every=3, checkpoint_every=3, log_every=2,
)


def test_train_checkpoint_resume_and_encode(tmp_path) -> None:
    cfg = TrainConfig(**TINY)
    res = train(cfg, out_dir=tmp_path, device="cpu", progress=False)
    assert res.steps == 6 and not res.interrupted
    assert (tmp_path / CHECKPOINT_FILE).is_file()
    meta = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert meta["modality_shapes"] == {"x1": [15], "x2": [15]}
    assert any("val_loss" in h for h in res.history)
    # resume: only the new steps run, and the stream continues (batch t depends only on t)
    more = train(cfg.replace(steps=9), out_dir=tmp_path, device="cpu", progress=False)
    assert more.steps == 3 and more.history[-1]["step"] == 9
    model = load_trained(tmp_path)
    assert model.trained_steps == 9
    batch = next(mmbench.builder(cfg.dataset).sampler(10, seed=5, split="test"))
    z = model.encode(batch, modality="x2")
    assert z.shape == (10, 5) and z.dtype == torch.float32
    assert torch.equal(z, model.encode(batch["x2"], modality="x2"))
    card = model.card
    name = card["name"] if isinstance(card, dict) else card.name
    assert "independent-infonce" in name


def test_resume_equals_uninterrupted_run(tmp_path) -> None:
    cfg = TrainConfig(**{**TINY, "steps": 4, "checkpoint_every": 2})
    full = train(cfg, out_dir=tmp_path / "a", device="cpu", progress=False).model
    train(cfg.replace(steps=2), out_dir=tmp_path / "b", device="cpu", progress=False)
    resumed = train(cfg, out_dir=tmp_path / "b", device="cpu", progress=False).model
    for (k, v), (_, w) in zip(full.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.allclose(v, w, atol=1e-6), k


def test_seeded_init_is_deterministic() -> None:
    cfg = TrainConfig(**TINY)
    a, b = build_model(cfg), build_model(cfg)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    c = build_model(cfg.replace(seed=1))
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters(), strict=True))


def test_mismatched_checkpoint_config_is_refused(tmp_path) -> None:
    cfg = TrainConfig(**TINY)
    train(cfg, out_dir=tmp_path, device="cpu", progress=False)
    with pytest.raises(InvalidConfigError, match="encoding_size"):
        train(cfg.replace(encoding_size=4), out_dir=tmp_path, device="cpu", progress=False)
    with pytest.raises(InvalidConfigError, match="encoding_size"):
        load_trained(tmp_path, expect=cfg.replace(encoding_size=4))


def test_ctrl_c_leaves_a_valid_checkpoint(tmp_path, monkeypatch) -> None:
    import mmbench.models.train as tr

    calls = {"n": 0}
    real = tr._to_device

    def to_device(*args, **kwargs):  # Ctrl-C arrives during the 4th step
        calls["n"] += 1
        if calls["n"] == 4:
            signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(tr, "_to_device", to_device)
    # Python's default_int_handler normally, but SIG_IGN when the suite runs as a background job
    before = signal.getsignal(signal.SIGINT)
    cfg = TrainConfig(**{**TINY, "steps": 100_000, "checkpoint_every": 0, "val_every": 0})
    res = train(cfg, out_dir=tmp_path, device="cpu", progress=False)
    assert res.interrupted and res.steps == 4  # the step in flight completes, then it stops
    assert load_trained(tmp_path).trained_steps == 4
    assert signal.getsignal(signal.SIGINT) is before  # the handler is restored


def test_bad_inputs(tmp_path) -> None:
    with pytest.raises(InvalidConfigError, match="no modality 'image'"):
        train(TrainConfig(**{**TINY, "modalities": ("image", "x2")}), device="cpu", progress=False)
    # misalignment: x has 15 dims, t has |I_θ| + 5 = 13 → no shared encoder
    with pytest.raises(InvalidConfigError, match="same input shape"):
        build_model(TrainConfig(**{**TINY, "dataset": "numerical/misalignment/joint", "shared_encoder": True}))
    with pytest.raises(InvalidConfigError, match="Did you mean"):
        TrainConfig(**{**TINY, "loss": "infonse"})
    with pytest.raises(InvalidConfigError, match="batch_size"):
        TrainConfig(**{**TINY, "batch_size": 0})
    model = build_model(TrainConfig(**TINY))
    with pytest.raises(SubmissionError, match="Did you mean"):
        model.encode(np.zeros((2, 15), np.float32), modality="x3")
    with pytest.raises(SubmissionError, match="shape"):
        model.encode(np.zeros((2, 13), np.float32), modality="x1")


def test_dataset_input_mode(tmp_path) -> None:
    cfg = TrainConfig(**{**TINY, "data": "dataset", "dataset_overrides": {"split_sizes": {"train": 200, "val": 64, "test": 64}}})
    res = train(cfg, device="cpu", progress=False)
    assert res.steps == 6 and np.isfinite(res.history[-1]["loss"])


def test_content_is_learned_before_style() -> None:
    """A few hundred steps on a small multi-view simulation: content R² rises far above style."""
    from mmbench.harness.metrics import ProbeData, r2_linear

    cfg = TrainConfig(dataset="numerical/multiview/multiview-pi1", dataset_overrides={"n_content": 2, "n_style": 2},
                      shared_encoder=True, encoding_size=2, batch_size=128, steps=200, lr=3e-3,
                      encoder_kwargs={"width_scale": 0.2, "init": "kaiming"}, val_every=0, checkpoint_every=0)
    model = train(cfg, device="cpu", progress=False).model
    b = mmbench.builder(cfg.dataset, **dict(cfg.dataset_overrides))
    fit, score = next(b.sampler(1000, seed=1, split="val")), next(b.sampler(1000, seed=1, split="test"))
    data = ProbeData(model.encode(fit, modality="x1").numpy(), model.encode(score, modality="x1").numpy(),
                     {k: fit[f"latents.{k}"] for k in ("content", "style")}, {k: score[f"latents.{k}"] for k in ("content", "style")})
    r2 = r2_linear(data, rng=np.random.default_rng(0), device="cpu")
    assert r2["content"] > 0.6 and r2["style"] < 0.2, r2


def test_trained_model_is_a_harness_encoder() -> None:
    from mmbench.harness.protocols import Encoder, ModelCard

    model = build_model(TrainConfig(**TINY))
    assert isinstance(model.card, ModelCard) and model.card.embedding_dim == 5
    assert model.card.trained_on == ("numerical/multiview/multimodal-independent:1.0.0",)
    assert isinstance(model, Encoder)


def test_lr_schedules() -> None:
    cfg = TrainConfig(dataset="numerical/misalignment/joint", steps=100, lr=1e-2, lr_schedule="cosine", warmup_steps=10)
    assert cfg.lr_at(1) == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi / 100)))
    assert cfg.lr_at(10) == pytest.approx(1e-2 * 0.5 * (1 + math.cos(math.pi * 10 / 100)))
    assert cfg.lr_at(50) == pytest.approx(5e-3)
    assert cfg.lr_at(100) == pytest.approx(0.0, abs=1e-12)
    const = cfg.replace(lr_schedule="constant", warmup_steps=0)
    assert {const.lr_at(s) for s in (1, 50, 100)} == {1e-2}
    with pytest.raises(InvalidConfigError, match="lr_schedule"):
        cfg.replace(lr_schedule="cosin")


def test_cosine_schedule_resumes_exactly_and_fixes_its_horizon(tmp_path, monkeypatch) -> None:
    import mmbench.models.train as tr

    cfg = TrainConfig(**{**TINY, "steps": 6, "lr": 1e-2, "lr_schedule": "cosine", "warmup_steps": 2, "checkpoint_every": 0, "val_every": 0})
    full = train(cfg, device="cpu", progress=False).model
    calls = {"n": 0}
    real = tr._to_device

    def to_device(*args, **kwargs):  # Ctrl-C during the 3rd step
        calls["n"] += 1
        if calls["n"] == 3:
            signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(tr, "_to_device", to_device)
    assert train(cfg, out_dir=tmp_path, device="cpu", progress=False).steps == 3
    monkeypatch.setattr(tr, "_to_device", real)
    resumed = train(cfg, out_dir=tmp_path, device="cpu", progress=False)
    assert resumed.steps == 3
    for (k, v), (_, w) in zip(full.state_dict().items(), resumed.model.state_dict().items(), strict=True):
        assert torch.allclose(v, w, atol=1e-6), k
    # the decay horizon is `steps`: changing it on resume would change the schedule already used
    with pytest.raises(InvalidConfigError, match="cosine"):
        train(cfg.replace(steps=12), out_dir=tmp_path, device="cpu", progress=False)
    # ... but only when there is a checkpoint to resume: a run that never wrote one may start over
    (tmp_path / "checkpoint.safetensors").unlink()
    assert train(cfg.replace(steps=2), out_dir=tmp_path, device="cpu", progress=False).steps == 2
    assert load_trained(tmp_path, expect=cfg).trained_steps == 2  # loading is not resuming
