"""The trainable-model protocol: families, the β warm-up, per-step generators, the contrastive adapter."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmbench.errors import InvalidConfigError, NotFoundError, SubmissionError
from mmbench.models.train import TrainConfig, build_model
from mmbench.models.trainable import (
    MODEL_FAMILIES,
    ContrastiveTrainable,
    Trainable,
    as_trainable,
    kl_warmup,
    step_generator,
)

TINY = dict(dataset="numerical/multiview/multimodal-independent", batch_size=16, steps=2, lr=1e-3,
            encoder_kwargs={"width_scale": 0.05}, val_every=0)


def test_kl_warmup_is_a_pure_function_of_the_step() -> None:
    assert [kl_warmup(s, 4) for s in (0, 1, 2, 4, 9)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    assert kl_warmup(0, 0) == kl_warmup(10**6, 0) == 1.0
    assert kl_warmup(0, 10, start=0.2) == pytest.approx(0.2) and kl_warmup(5, 10, start=0.2) == pytest.approx(0.6)
    cos = [kl_warmup(s, 10, shape="cosine") for s in range(11)]
    assert cos[0] == 0.0 and cos[5] == pytest.approx(0.5) and cos[10] == 1.0 and all(np.diff(cos) > 0)
    for bad in ({"warmup_steps": -1}, {"warmup_steps": 2.5}, {"warmup_steps": 3, "start": 1.5}, {"warmup_steps": 3, "shape": "exp"}):
        with pytest.raises(InvalidConfigError):
            kl_warmup(1, **bad)


def test_step_generator_depends_only_on_seed_and_step() -> None:
    draw = lambda seed, step: torch.rand(4, generator=step_generator(seed, step))  # noqa: E731
    assert torch.equal(draw(0, 5), draw(0, 5))
    assert not torch.equal(draw(0, 5), draw(0, 6)) and not torch.equal(draw(0, 5), draw(1, 5))


def test_registry_lists_every_family_and_suggests_names() -> None:
    assert {"contrastive", "mvae", "mmvae", "mopoe", "mmvaeplus"} <= set(MODEL_FAMILIES.names())
    with pytest.raises(NotFoundError, match="Did you mean 'mopoe'"):
        MODEL_FAMILIES.get("mopo")
    assert MODEL_FAMILIES.get("mopoe").reference.startswith("Sutter")


def test_contrastive_adapter_keeps_loss_and_checkpoint_keys() -> None:
    model = build_model(TrainConfig(**TINY))
    keys = list(model.state_dict())
    t = as_trainable(model)
    assert isinstance(t, ContrastiveTrainable) and isinstance(t, Trainable)
    assert t.module is model and list(t.module.state_dict()) == keys  # existing checkpoints load unchanged
    assert t.input_columns == ("x1", "x2") and t.rows_per_step(16) == 32  # independent negatives: 2 x batch
    g = torch.Generator().manual_seed(0)
    batch = {m: torch.randn(32, 15, generator=g) for m in ("x1", "x2")}
    loss, logs = t.training_loss(batch, step=1)
    assert torch.equal(loss, model.loss(batch)) and torch.equal(logs["loss"], loss.detach())
    assert t.model_config() == model.config.to_dict() and t.card.name == model.card.name
    # The family rebuilds the same architecture from the recorded config.
    rebuilt = MODEL_FAMILIES.get("contrastive").build(t.model_config(), {"x1": (15,), "x2": (15,)})
    assert list(rebuilt.module.state_dict()) == keys
    for (k, v), w in zip(model.state_dict().items(), rebuilt.module.state_dict().values(), strict=True):
        assert torch.equal(v, w), k  # seeded by the config's seed


def test_existing_contrastive_checkpoints_rebuild_through_the_protocol(tmp_path) -> None:
    """A run directory written by the current trainer (no model family recorded) loads as a Trainable."""
    import json

    from mmbench.models.train import CHECKPOINT_FILE, CONFIG_FILE, load_trained, train
    from mmbench.models.trainable import checkpoint_meta, rebuild

    train(TrainConfig(**{**TINY, "steps": 1}), out_dir=tmp_path, device="cpu", progress=False)
    meta = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert "model" not in meta  # the legacy layout
    model = rebuild(meta)
    from safetensors.torch import load_file

    state = {k[len("model."):]: v for k, v in load_file(str(tmp_path / CHECKPOINT_FILE)).items() if k.startswith("model.")}
    model.module.load_state_dict(state, strict=True)
    x = torch.randn(8, 15, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.module.encode(x, modality="x1"), load_trained(tmp_path).encode(x, modality="x1"))
    new = checkpoint_meta(model)
    assert new["family"] == "contrastive" and new["modalities"]["x1"] == {"shape": [15], "dtype": "float32"}
    again = rebuild({"model": json.loads(json.dumps(new))})
    assert sorted(again.module.state_dict()) == sorted(state)


def test_vae_checkpoint_meta_roundtrip() -> None:
    import json

    from mmbench.models.trainable import checkpoint_meta, rebuild
    from mmbench.models.vae import VAE_RECIPES, build_vae

    specs = {m: {"shape": (3, 28, 28), "dtype": "uint8"} for m in ("m0", "m1")}
    model = build_vae(VAE_RECIPES.get("mmvaeplus-tiny").model, specs, dataset_id="polymnist", seed=3)
    meta = json.loads(json.dumps(checkpoint_meta(model)))
    assert meta["family"] == "mmvaeplus" and meta["seed"] == 3 and meta["modalities"]["m0"]["dtype"] == "uint8"
    again = rebuild({"model": meta})
    for (k, v), w in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(v, w), k  # same seed, same init
    assert again.card == model.card
    with pytest.raises(SubmissionError, match="names no model family"):
        rebuild({"dataset_id": "x"})


def test_as_trainable_rejects_other_objects() -> None:
    with pytest.raises(SubmissionError, match="lacks .*training_loss"):
        as_trainable(object())
    assert math.isfinite(kl_warmup(3, 5))
