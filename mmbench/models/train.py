"""Training of every baseline (contrastive models and multimodal VAEs): config, trainer, checkpoints.

A run is described by a frozen :class:`TrainConfig` (dataset id, model family, schedule). The
model is any family of :data:`mmbench.models.trainable.MODEL_FAMILIES` — ``"contrastive"`` (the
default: encoder and loss fields) or a VAE (``"mopoe"``, ``"mmvaeplus"``, ...; ``model_config`` is
its :class:`~mmbench.models.vae.VAEConfig`, usually from a named recipe,
:meth:`TrainConfig.from_recipe`) — and is trained through the
:class:`~mmbench.models.trainable.Trainable` protocol: the model computes its own loss, the
trainer owns seeding, schedules, checkpoints and Ctrl-C safety. The trainer draws batches from the
dataset's infinite sampler (fresh data every step, as the simulation papers) or iterates a built
split, and writes to ``out_dir``:

* ``config.json`` — the train config, the resolved dataset id and the modality shapes (and, for
  the other families, the model record of :func:`~mmbench.models.trainable.checkpoint_meta`);
* ``checkpoint.safetensors`` — model and optimiser tensors plus the step and history in its
  metadata, replaced atomically, so an interrupted run (Ctrl-C, crash) always leaves the last
  complete checkpoint;
* ``history.json`` — training / validation loss curve.

A non-finite loss stops the run with :class:`NonFiniteLossError` naming the step; the update is
not applied and the last checkpoint on disk (always of finite weights) is kept.

The trained model (a :class:`ContrastiveModel` or a
:class:`~mmbench.models.vae.MultimodalVAE`) is a harness submission: it has a ``card`` and a
batched ``encode(batch, *, modality) -> Tensor[n, d]`` (a VAE is also a ``Generator``), and
``out_dir`` itself is a valid ``--model`` for ``mmbench evaluate`` (:func:`load_trained`:
mmbench's own model classes, safetensors weights only). The command line is in
:mod:`mmbench.models.train_cli`.

Example:
    >>> cfg = TrainConfig(dataset="numerical/multiview/multimodal-independent", steps=2000,
    ...                   batch_size=512, lr=1e-3)
    >>> result = train(cfg, out_dir="runs/m3di")
    >>> z = result.model.encode(batch, modality="x1")
    >>> vae = train(TrainConfig.from_recipe("mopoe-polymnist-cpu"), out_dir="runs/mopoe").model
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import signal
import struct
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmbench.core.storage import atomic_path
from mmbench.devices import resolve_device
from mmbench.errors import InvalidConfigError, MMBenchError, SubmissionError, did_you_mean
from mmbench.models.encoders import ENCODERS, build_encoder
from mmbench.models.losses import LOSSES, ContrastiveLoss
from mmbench.models.trainable import (
    MODEL_FAMILIES,
    Trainable,
    as_trainable,
    checkpoint_meta,
    step_generator,
)
from mmbench.progress import progress_bar, report
from mmbench.versioning import strict_fields

__all__ = [
    "OPTIMIZERS",
    "PRESETS",
    "ContrastiveModel",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainResult",
    "build_model",
    "build_trainable",
    "dataset_builder",
    "is_training_run",
    "load_trained",
    "preset_fields",
    "recipe_fields",
    "train",
]

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.safetensors"
HISTORY_FILE = "history.json"
FORMAT_VERSION = 1
LR_SCHEDULES = ("constant", "cosine")
OPTIMIZERS = ("adam", "amsgrad")
CONTRASTIVE = "contrastive"
# Fields that may differ when resuming (schedule/bookkeeping, not the model or the data).
_RESUMABLE_FIELDS = frozenset({"steps", "val_every", "checkpoint_every", "log_every", "name", "recipe"})
# Fields added with the model families, written to config.json only when they differ from these
# defaults: a contrastive run's config.json (hence its metadata sha256) is what it was before.
_FAMILY_DEFAULTS: dict[str, Any] = {"model": CONTRASTIVE, "model_config": {}, "recipe": "", "optimizer": "adam"}
# Fields that configure the contrastive family only (a VAE is configured by model_config).
_CONTRASTIVE_ONLY = ("encoder", "encoder_kwargs", "shared_encoder", "encoding_size", "loss", "loss_kwargs")


class NonFiniteLossError(MMBenchError):
    """The training loss became NaN or infinite; the message names the step and the checkpoint kept."""

#: Named recipes of :meth:`TrainConfig.preset` and ``mmbench train --preset``.
#:
#: * ``paper`` — the simulation papers' schedule (the :class:`TrainConfig` defaults: 7-layer
#:   MLPs, batch 6144, Adam 1e-4, 300k steps): GPU work.
#: * ``quick`` — the CPU scale of ``mmbench reproduce --quick`` (minutes on 2 cores): a 3 × 256
#:   LeakyReLU(0.2) MLP, batch 512, 2,500 Adam steps at lr 2e-3 with warm-up and cosine decay, on
#:   the dataset with 2-layer mixing MLPs instead of 3 (:data:`QUICK_DATASET_OVERRIDES`). The
#:   papers' 3-layer mixing is not invertible at this budget (benchmarks/RESULTS.md, "Training").
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "quick": {
        "batch_size": 512, "steps": 2500, "lr": 2e-3, "lr_schedule": "cosine", "warmup_steps": 100,
        "encoder_kwargs": {"hidden": [256, 256, 256], "slope": 0.2, "init": "kaiming"},
        "val_every": 250, "checkpoint_every": 250, "log_every": 100,
    },
}
#: Dataset overrides of the quick preset, applied to datasets whose config has these fields.
QUICK_DATASET_OVERRIDES: dict[str, Any] = {"mixing_layers": 2}


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _frozen(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_frozen(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Everything that defines a training run (JSON-serialisable; defaults = the papers' MLP runs).

    Args:
        dataset: dataset id ``name[/config][:x.y.z]``.
        model: the model family (:data:`~mmbench.models.trainable.MODEL_FAMILIES`):
            ``"contrastive"`` (default; configured by the encoder and loss fields below) or a VAE
            family (``"mvae"``, ``"mmvae"``, ``"mopoe"``, ``"mmvaeplus"``).
        model_config: the VAE families' :class:`~mmbench.models.vae.VAEConfig` fields (validated
            and completed with the defaults; ``kind`` = ``model``). Empty for contrastive models.
        recipe: the named recipe the run came from (:meth:`from_recipe`; provenance only).
        optimizer: ``"adam"`` (AdamW when ``weight_decay > 0``) or ``"amsgrad"`` (Adam with the
            AMSGrad correction, the MMVAE/MMVAE+ references').
        dataset_overrides: builder config overrides (e.g. ``{"seed": 1}``).
        modalities: the modalities to contrast (default: all of the dataset's, in order).
        encoder: encoder kind (``"mlp"``, ``"resnet18"``, ``"text-conv"``, ``"conv28"``), or a
            mapping modality → kind.
        encoder_kwargs: keyword arguments of the encoder(s) (``width_scale``, ``norm``, ...), or a
            mapping modality → kwargs when ``encoder`` is a mapping.
        shared_encoder: one encoder for every modality (the multi-view setting, f₁ = f₂).
        encoding_size: output dimension ``d`` of every encoder.
        loss: a name of :data:`mmbench.models.losses.LOSSES`.
        loss_kwargs: ``tau``, ``learn_tau``, ``similarity``, ``p``, ``power``.
        batch_size: positive pairs per step (losses with an independent negative batch draw
            twice as many examples).
        steps: optimiser steps.
        lr, weight_decay: Adam(W) settings (Adam when ``weight_decay == 0``).
        lr_schedule: ``"constant"`` (the papers') or ``"cosine"`` (linear warm-up over
            ``warmup_steps``, then cosine decay to 0 at ``steps``; what short CPU schedules use).
        warmup_steps: linear warm-up length (both schedules).
        grad_clip: max gradient 2-norm (``None``: no clipping).
        seed: model initialisation and data stream seed.
        data: ``"sampler"`` (fresh batches from the generative process every step) or
            ``"dataset"`` (shuffled epochs over the built ``split``).
        split: training split (``"dataset"`` mode).
        val_every: validation-loss period in steps (0: never).
        val_batches, val_batch_size: size of the fixed validation set (default batch size).
        checkpoint_every: checkpoint period in steps (0: only at the end).
        log_every: period of the recorded training-loss average.
        amp: bfloat16 autocast on CUDA (no effect on CPU).
        compile: ``torch.compile`` the encoders (and a VAE's decoders).
        name: free-form run name (used in the model card).

    The family fields (``model``, ``model_config``, ``recipe``, ``optimizer``) are written by
    :meth:`to_dict` only when they differ from their defaults, so a contrastive run's config is
    the same as before the families existed. β and its KL warm-up are the VAE's own
    (``model_config["beta"]``, ``model_config["kl_warmup_steps"]``).
    """

    dataset: str
    dataset_overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    modalities: tuple[str, ...] | None = None
    encoder: str | Mapping[str, str] = "mlp"
    encoder_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    shared_encoder: bool = False
    encoding_size: int = 5
    loss: str = "independent-infonce"
    loss_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    batch_size: int = 6144
    steps: int = 300_000
    lr: float = 1e-4
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    grad_clip: float | None = 2.0
    seed: int = 0
    data: str = "sampler"
    split: str = "train"
    val_every: int = 1000
    val_batches: int = 1
    val_batch_size: int | None = None
    checkpoint_every: int = 10_000
    log_every: int = 100
    amp: bool = True
    compile: bool = False
    name: str = ""
    model: str = CONTRASTIVE
    model_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    recipe: str = ""
    optimizer: str = "adam"

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataset_overrides", _frozen(dict(self.dataset_overrides)))
        object.__setattr__(self, "encoder_kwargs", _frozen(dict(self.encoder_kwargs)))
        object.__setattr__(self, "loss_kwargs", _frozen(dict(self.loss_kwargs)))
        if isinstance(self.encoder, Mapping):
            object.__setattr__(self, "encoder", {str(k): str(v) for k, v in self.encoder.items()})
        if self.modalities is not None:
            object.__setattr__(self, "modalities", tuple(self.modalities))
        object.__setattr__(self, "model_config", _model_config(self.model, self.model_config))
        self.validate()

    def validate(self) -> None:
        def pos_int(name: str, value: Any, *, zero: bool = False) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1):
                raise InvalidConfigError(f"TrainConfig.{name} must be a {'non-negative' if zero else 'positive'} integer, got {value!r}.")

        for f in ("encoding_size", "batch_size", "steps", "val_batches", "log_every"):
            pos_int(f, getattr(self, f))
        for f in ("val_every", "checkpoint_every", "seed", "warmup_steps"):
            pos_int(f, getattr(self, f), zero=True)
        if self.val_batch_size is not None:
            pos_int("val_batch_size", self.val_batch_size)
        kinds = self.encoder.values() if isinstance(self.encoder, Mapping) else [self.encoder]
        for kind in kinds:
            if kind not in ENCODERS:
                raise InvalidConfigError(f"Unknown encoder {kind!r}.{did_you_mean(kind, ENCODERS)} Choose one of {ENCODERS}.")
        if self.loss not in LOSSES:
            raise InvalidConfigError(f"Unknown loss {self.loss!r}.{did_you_mean(self.loss, LOSSES)} Choose one of {list(LOSSES)}.")
        if not (isinstance(self.lr, int | float) and self.lr > 0 and math.isfinite(self.lr)):
            raise InvalidConfigError(f"TrainConfig.lr must be a positive number, got {self.lr!r}.")
        if self.lr_schedule not in LR_SCHEDULES:
            raise InvalidConfigError(
                f"TrainConfig.lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}.{did_you_mean(str(self.lr_schedule), LR_SCHEDULES)}"
            )
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise InvalidConfigError(f"TrainConfig.grad_clip must be > 0 or None, got {self.grad_clip!r}.")
        if self.weight_decay < 0:
            raise InvalidConfigError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay!r}.")
        if self.data not in ("sampler", "dataset"):
            raise InvalidConfigError(f"TrainConfig.data must be 'sampler' or 'dataset', got {self.data!r}.")
        if self.modalities is not None and len(self.modalities) < 2:
            raise InvalidConfigError(f"A contrastive model needs at least 2 modalities, got {list(self.modalities)}.")
        unknown = set(self.loss_kwargs) - {"tau", "learn_tau", "similarity", "p", "power"}
        if unknown:
            raise InvalidConfigError(f"Unknown loss_kwargs {sorted(unknown)}; valid: tau, learn_tau, similarity, p, power.")
        if self.optimizer not in OPTIMIZERS:
            raise InvalidConfigError(f"TrainConfig.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}.{did_you_mean(str(self.optimizer), OPTIMIZERS)}")
        self._check_family_fields()

    def _check_family_fields(self) -> None:
        """Contrastive-only fields left at their defaults when the model is not contrastive."""
        if self.model == CONTRASTIVE:
            return
        defaults = {f.name: (f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default)
                    for f in dataclasses.fields(self) if f.name in _CONTRASTIVE_ONLY}
        changed = sorted(k for k, v in defaults.items() if _frozen(getattr(self, k)) != _frozen(v))
        if changed:
            raise InvalidConfigError(
                f"TrainConfig fields {changed} configure contrastive models; model={self.model!r} is configured by "
                "model_config (VAEConfig fields, e.g. latent_dim, beta). Remove them or use model='contrastive'."
            )

    def to_dict(self) -> dict[str, Any]:
        d = json.loads(json.dumps(dataclasses.asdict(self)))
        for key, default in _FAMILY_DEFAULTS.items():
            if d.get(key) == default:
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        d = strict_fields(cls, d, what="TrainConfig field")
        if d.get("modalities") is not None:
            d["modalities"] = tuple(d["modalities"])
        return cls(**d)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def preset(cls, name: str, *, dataset: str, **changes: Any) -> TrainConfig:
        """The :data:`PRESETS` recipe ``name`` for ``dataset``, with ``changes`` on top.

        Example:
            >>> cfg = TrainConfig.preset("quick", dataset="numerical/multiview/multimodal-independent")
            >>> cfg.steps, cfg.dataset_overrides
            (2500, {'mixing_layers': 2})
        """
        return cls.from_dict({**preset_fields(name, dataset), **changes, "dataset": dataset})

    @classmethod
    def from_recipe(cls, recipe: str, /, *, dataset: str | None = None, **changes: Any) -> TrainConfig:
        """The run of VAE recipe ``recipe`` (:data:`~mmbench.models.vae.VAE_RECIPES`), with ``changes`` on top.

        ``dataset`` defaults to the recipe's; a recipe fixed in epochs gets the steps of that many
        epochs over the dataset's training split. ``model_config`` in ``changes`` updates the
        recipe's model config field by field.

        Example:
            >>> cfg = TrainConfig.from_recipe("mopoe-polymnist-cpu")
            >>> cfg.model, cfg.model_config["latent_dim"], cfg.steps
            ('mopoe', 32, 15000)
        """
        fields = recipe_fields(recipe, dataset, changes.get("dataset_overrides"))
        model_changes = changes.pop("model_config", None) or {}
        fields["model_config"] = {**fields["model_config"], **dict(model_changes)}
        return cls.from_dict({**fields, **changes})

    def lr_at(self, step: int) -> float:
        """Learning rate of optimiser step ``step`` (1-based): a pure function of the step, so a
        resumed run follows the same schedule."""
        scale = min(1.0, step / self.warmup_steps) if self.warmup_steps else 1.0
        if self.lr_schedule == "cosine":
            scale *= 0.5 * (1.0 + math.cos(math.pi * min(step, self.steps) / self.steps))
        return self.lr * scale

    def encoder_for(self, modality: str) -> tuple[str, dict[str, Any]]:
        """Encoder kind and kwargs of ``modality``."""
        if isinstance(self.encoder, Mapping):
            if modality not in self.encoder:
                raise InvalidConfigError(f"TrainConfig.encoder has no entry for modality {modality!r}; it names {list(self.encoder)}.")
            kwargs = self.encoder_kwargs.get(modality, {}) if all(isinstance(v, Mapping) for v in self.encoder_kwargs.values()) else self.encoder_kwargs
            return self.encoder[modality], dict(kwargs)
        return str(self.encoder), dict(self.encoder_kwargs)


def _model_config(model: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """``model_config`` validated and completed for family ``model`` (empty for contrastive models)."""
    if model not in MODEL_FAMILIES:
        raise InvalidConfigError(MODEL_FAMILIES.not_found_message(str(model)) + " (TrainConfig.model)")
    config = _frozen(dict(config or {}))
    if model == CONTRASTIVE:
        if config:
            raise InvalidConfigError(
                f"model_config {sorted(config)} is for the VAE families; a contrastive model is configured by the encoder "
                "and loss fields of TrainConfig. Remove model_config or choose a VAE family (model='mopoe', ...)."
            )
        return {}
    from mmbench.models.vae.config import KINDS, VAEConfig

    if model not in KINDS:  # a family registered later: its own build validates the config
        return config
    kind = config.get("kind", model)
    if kind != model:
        raise InvalidConfigError(f"TrainConfig.model={model!r} but model_config names kind={kind!r}; they must agree.")
    return VAEConfig.from_dict({**config, "kind": model}).to_dict()


def recipe_fields(name: str, dataset: str | None = None, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The TrainConfig fields of VAE recipe ``name`` (:data:`~mmbench.models.vae.VAE_RECIPES`) on ``dataset``.

    Its model config, optimiser, learning rate, batch size and steps (``epochs`` × the training
    split's batches when the recipe is fixed in epochs; the split of ``dataset`` with the builder
    ``overrides``), plus the recipe's ``train_fields`` (data mode, schedule, checkpoint periods).
    ``dataset`` defaults to the recipe's.
    """
    from mmbench.models.vae.config import VAE_RECIPES

    recipe = VAE_RECIPES.get(name)
    dataset = dataset or recipe.dataset
    steps = recipe.steps
    if recipe.epochs is not None:
        sizes = dataset_builder(dataset, overrides).config.split_sizes
        steps = recipe.steps_for(int(sizes.get("train", 0)))
    return {
        "dataset": dataset, "model": recipe.model.kind, "model_config": recipe.model.to_dict(), "recipe": recipe.name,
        "lr": recipe.lr, "optimizer": recipe.optimizer, "batch_size": recipe.batch_size, "steps": int(steps or 1),
        "data": "dataset", "grad_clip": None, **{k: _frozen(v) for k, v in recipe.train_fields.items()},
    }


def preset_fields(name: str, dataset: str) -> dict[str, Any]:
    """The TrainConfig fields of preset ``name`` for ``dataset`` (its dataset overrides included)."""
    if name not in PRESETS:
        raise InvalidConfigError(f"Unknown preset {name!r}.{did_you_mean(name, PRESETS)} Choose one of {list(PRESETS)}.")
    fields = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in PRESETS[name].items()}
    if name == "quick":
        import mmbench

        names = mmbench.builder(dataset).config.field_names()
        extra = {k: v for k, v in QUICK_DATASET_OVERRIDES.items() if k in names}
        if extra:
            fields["dataset_overrides"] = extra
    return fields


# ====================================================================== model
class ContrastiveModel(nn.Module):
    """Per-modality encoders plus the contrastive loss; an ``Encoder`` for the harness.

    Args:
        config: the train config.
        modality_shapes: per-example input shape of every modality to encode.
        dataset_id: the resolved dataset id (recorded in the card).
    """

    def __init__(self, config: TrainConfig, modality_shapes: Mapping[str, Sequence[int]], *, dataset_id: str = "") -> None:
        super().__init__()
        self.config = config
        self.dataset_id = dataset_id or config.dataset
        self.modality_shapes = {m: tuple(int(s) for s in shape) for m, shape in modality_shapes.items()}
        mods = list(self.modality_shapes)
        if len(mods) < 2:
            raise InvalidConfigError(f"A contrastive model needs at least 2 modalities, got {mods}.")
        self.encoders = nn.ModuleDict()
        self.encoder_of: dict[str, str] = {}
        if config.shared_encoder:
            shapes = {self.modality_shapes[m] for m in mods}
            if len(shapes) != 1:
                raise InvalidConfigError(
                    f"shared_encoder=True needs every modality to have the same input shape, got "
                    f"{self.modality_shapes}. Use shared_encoder=False (one encoder per modality)."
                )
            kind, kwargs = config.encoder_for(mods[0])
            self.encoders["shared"] = build_encoder(kind, self.modality_shapes[mods[0]], config.encoding_size, **kwargs)
            self.encoder_of = dict.fromkeys(mods, "shared")
        else:
            for m in mods:
                kind, kwargs = config.encoder_for(m)
                self.encoders[m] = build_encoder(kind, self.modality_shapes[m], config.encoding_size, **kwargs)
                self.encoder_of[m] = m
        self.loss_fn = ContrastiveLoss(config.loss, **dict(config.loss_kwargs))

    # ------------------------------------------------------------------ harness protocol
    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.modality_shapes)

    @property
    def encoding_size(self) -> int:
        return self.config.encoding_size

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def card(self) -> Any:
        """The harness ``ModelCard`` of this baseline."""
        return _model_card(self)

    def _input(self, batch: Any, modality: str) -> Tensor:
        if modality not in self.modality_shapes:
            raise SubmissionError(
                f"This model encodes modalities {list(self.modality_shapes)}, not {modality!r}."
                f"{did_you_mean(modality, self.modality_shapes)} It was trained on {self.dataset_id!r}."
            )
        x = batch[modality] if isinstance(batch, Mapping) else batch
        t = x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
        if t.is_floating_point() and t.dtype != torch.float32:
            t = t.float()
        expected = self.modality_shapes[modality]
        if tuple(t.shape[1:]) != expected:
            raise SubmissionError(
                f"Modality {modality!r} inputs have per-example shape {tuple(t.shape[1:])}, but the model "
                f"was trained on shape {expected} (dataset {self.dataset_id!r}). Encode data of the dataset "
                "the model was trained on."
            )
        return t

    @torch.no_grad()
    def encode(self, batch: Any, *, modality: str, batch_size: int = 8192) -> Tensor:
        """Embeddings ``[n, d]`` (float32, CPU) of one modality of ``batch``.

        Args:
            batch: a dict of columns (a dataset batch) or the modality's array/tensor itself.
            modality: which modality to encode.
            batch_size: chunk size of the forward passes.
        """
        x = self._input(batch, modality)
        was_training = self.training
        self.eval()
        try:
            enc = self.encoders[self.encoder_of[modality]]
            dev = self.device
            outs = [enc(x[i : i + batch_size].to(dev, non_blocking=True)).float().cpu() for i in range(0, len(x), batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(outs) if outs else torch.empty(0, self.encoding_size)

    # ------------------------------------------------------------------ training
    def embed(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Embeddings of every modality in ``inputs`` (with gradients)."""
        return {m: self.encoders[self.encoder_of[m]](x) for m, x in inputs.items()}

    def loss(self, inputs: Mapping[str, Tensor], *, amp: bool = False) -> Tensor:
        """The contrastive loss of a batch; with an independent negative batch, the first half
        of every modality's rows are the positives and the second half the negatives."""
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=amp):
            z = self.embed(inputs)
        if self.loss_fn.needs_negatives:
            n = next(iter(z.values())).shape[0] // 2
            return self.loss_fn({m: v[:n] for m, v in z.items()}, {m: v[n:] for m, v in z.items()})
        return self.loss_fn(z)


def _model_card(model: ContrastiveModel) -> Any:
    """A :class:`mmbench.harness.protocols.ModelCard` (a dict if the harness is unavailable)."""
    cfg = model.config
    fields = {
        "name": cfg.name or f"{cfg.loss}-{cfg.encoder if isinstance(cfg.encoder, str) else 'multi'}-d{cfg.encoding_size}",
        "revision": f"seed{cfg.seed}-step{getattr(model, 'trained_steps', 0)}",
        "modalities": tuple(model.modalities),
        "embedding_dim": cfg.encoding_size,
        "trained_on": (model.dataset_id,),
        "input_shapes": dict(model.modality_shapes),
        "description": f"mmbench contrastive baseline ({cfg.loss}, {cfg.steps} steps, batch {cfg.batch_size}, lr {cfg.lr}).",
        "extra": {"train_config": cfg.to_dict()},
    }
    try:
        from mmbench.harness.protocols import ModelCard
    except ImportError:
        return fields
    return _fill_dataclass(ModelCard, fields)


def _fill_dataclass(cls: Any, values: Mapping[str, Any]) -> Any:
    """Construct ``cls`` from the ``values`` it accepts (the harness card may evolve)."""
    import inspect

    params = inspect.signature(cls).parameters
    kwargs = {k: v for k, v in values.items() if k in params}
    return cls(**kwargs)


# ====================================================================== data
_BUILDERS: dict[str, Any] = {}


def dataset_builder(dataset: str, overrides: Mapping[str, Any] | None = None) -> Any:
    """``mmbench.builder(dataset, **overrides)``, memoised per process (a few recent ones).

    Builders prepare their resources (e.g. the simulations' mixing MLPs) lazily and keep them, so
    re-using the instance saves that work between training, validation and evaluation.
    """
    import mmbench

    key = json.dumps([dataset, _frozen(dict(overrides or {}))], sort_keys=True, default=str)
    b = _BUILDERS.pop(key, None)
    if b is None:
        b = mmbench.builder(dataset, **dict(overrides or {}))
    _BUILDERS[key] = b
    while len(_BUILDERS) > 8:
        _BUILDERS.pop(next(iter(_BUILDERS)))
    return b


def _dataset_info(config: TrainConfig) -> tuple[Any, str, dict[str, dict[str, Any]]]:
    """The builder, its resolved id and the specs (``{"shape", "dtype"}``) of the trained modalities."""
    b = dataset_builder(config.dataset, config.dataset_overrides)
    mods = b.modalities()
    chosen = list(config.modalities) if config.modalities is not None else list(mods)
    for m in chosen:
        if m not in mods:
            raise InvalidConfigError(
                f"Dataset {b.id!r} has no modality {m!r}.{did_you_mean(m, mods)} Its modalities: {list(mods)}."
            )
    if len(chosen) < 2:
        raise InvalidConfigError(f"Dataset {b.id!r} has modalities {list(mods)}; a {config.model} model needs two or more.")
    return b, b.id, {m: {"shape": [int(d) for d in mods[m].shape], "dtype": str(np.dtype(mods[m].dtype))} for m in chosen}


def _shapes(specs: Mapping[str, Any]) -> dict[str, list[int]]:
    return {m: list(s["shape"]) if isinstance(s, Mapping) else list(s) for m, s in specs.items()}


def _sampler_batches(builder: Any, n: int, *, seed: int, split: str, start: int) -> Iterator[dict[str, np.ndarray]]:
    """The builder's infinite sampler from step ``start`` on (batch ``t`` depends only on ``t``)."""
    yield from builder.sampler(n, seed=seed, split=split, start=start)


def _dataset_batches(ds: Any, n: int, *, seed: int, start: int, columns: Sequence[str]) -> Iterator[dict[str, np.ndarray]]:
    """Shuffled epochs of ``n`` rows (drop_last), resumable at global step ``start``."""
    per_epoch = len(ds) // n
    if per_epoch == 0:
        raise InvalidConfigError(f"The training split has {len(ds)} examples, fewer than one batch of {n}; lower batch_size.")
    epoch, skip = divmod(start, per_epoch)
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(len(ds))
        for k in range(skip, per_epoch):
            idx = np.sort(order[k * n : (k + 1) * n])
            yield {c: np.array(ds.column(c)[idx]) for c in columns}  # writable copy for torch
        epoch, skip = epoch + 1, 0


def _to_device(batch: Mapping[str, Any], modalities: Sequence[str], device: torch.device) -> dict[str, Any]:
    """The modalities' columns on ``device`` (a ragged one with its ``.lengths``; captions untouched)."""
    from mmbench.core.columns import lengths_key
    from mmbench.core.torch_data import to_torch

    keys = [k for m in modalities for k in (m, lengths_key(m)) if k in batch]
    return {k: to_torch(batch[k], device, float32=True) for k in keys}


class _Prefetcher:
    """Generate the next batch in a background thread while the model trains on this one."""

    def __init__(self, it: Iterator[dict[str, np.ndarray]]) -> None:
        self._it = it
        self._next: Any = None
        self._thread: threading.Thread | None = None
        self._start()

    def _run(self) -> None:
        try:
            self._next = ("ok", next(self._it))
        except BaseException as exc:  # re-raised in the consumer
            self._next = ("err", exc)

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def __next__(self) -> dict[str, np.ndarray]:
        assert self._thread is not None
        self._thread.join()
        kind, value = self._next
        if kind == "err":
            raise value
        self._start()
        return value


# ====================================================================== checkpoints
def _atomic_replace(path: Path, write: Any) -> None:
    with atomic_path(path) as tmp:
        write(tmp)


def _config_json(config: TrainConfig, dataset_id: str, specs: Mapping[str, Any], trainable: Trainable | None = None) -> dict[str, Any]:
    """``config.json``: the train config and data; a non-contrastive run adds its model record."""
    import mmbench

    out: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "mmbench_version": mmbench.__version__,
        "train_config": config.to_dict(),
        "dataset_id": dataset_id,
        "modality_shapes": _shapes(specs),
    }
    if config.model != CONTRASTIVE and trainable is not None:
        out["model"] = checkpoint_meta(trainable)
    return out


def _check_finite_weights(model: nn.Module, step: int, out_dir: Path) -> None:
    bad = [k for k, v in model.state_dict().items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise NonFiniteLossError(
            f"The weights after step {step} are not finite ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); "
            f"they were not saved, and the checkpoint in {out_dir} (an earlier step) is kept. Lower lr or set grad_clip."
        )


def _save_checkpoint(out_dir: Path, model: nn.Module, opt: torch.optim.Optimizer, step: int, history: list[dict[str, Any]]) -> None:
    """Model and optimiser tensors at ``step`` (weights checked finite first), replaced atomically."""
    from safetensors.torch import save_file

    _check_finite_weights(model, step, out_dir)
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    opt_state = opt.state_dict()
    scalars: dict[str, Any] = {}
    for idx, st in opt_state["state"].items():
        for key, value in st.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{idx}.{key}"] = value.detach().contiguous().cpu()
            else:
                scalars[f"{idx}.{key}"] = value
    meta = {
        "format": str(FORMAT_VERSION),
        "step": str(step),
        "param_groups": json.dumps(opt_state["param_groups"]),
        "optim_scalars": json.dumps(scalars),
    }
    _atomic_replace(out_dir / CHECKPOINT_FILE, lambda p: save_file(tensors, str(p), metadata=meta))
    _atomic_replace(out_dir / HISTORY_FILE, lambda p: p.write_text(json.dumps(history, indent=1)))


def _read_checkpoint(path: Path) -> tuple[dict[str, Tensor], dict[str, str], str]:
    """Tensors, metadata and sha256 of a safetensors checkpoint (the bytes hashed are the bytes loaded)."""
    from safetensors.torch import load as load_safetensors

    try:
        data = path.read_bytes()
        tensors = load_safetensors(data)
        (n,) = struct.unpack("<Q", data[:8])
        meta = json.loads(data[8 : 8 + n]).get("__metadata__") or {}
    except Exception as exc:
        raise MMBenchError(f"The checkpoint {path} is unreadable ({type(exc).__name__}: {exc}). Delete it to train from scratch.") from exc
    return tensors, meta, hashlib.sha256(data).hexdigest()


def _load_state(model: nn.Module, tensors: Mapping[str, Tensor], path: Path) -> None:
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise InvalidConfigError(
            f"The checkpoint {path} does not fit the model its config.json describes ({exc}). "
            "It was written by a different model; train again or point to the right directory."
        ) from exc


def _read_config(out_dir: Path) -> dict[str, Any]:
    path = out_dir / CONFIG_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MMBenchError(f"No readable {CONFIG_FILE} in {out_dir} ({exc}): is this a training output directory?") from exc


def is_training_run(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an ``out_dir`` of :func:`train` (it has ``config.json`` with a train config)."""
    p = Path(path)
    try:
        return p.is_dir() and "train_config" in json.loads((p / CONFIG_FILE).read_text())
    except (OSError, ValueError, TypeError):
        return False


def _run_config(meta: Mapping[str, Any], out_dir: Path) -> tuple[TrainConfig, dict[str, Any]]:
    """The train config and modality specs a run's ``config.json`` records."""
    try:
        config = TrainConfig.from_dict(meta["train_config"])
        model_meta = meta.get("model") or {}
        specs = model_meta.get("modalities") or meta["modality_shapes"]
    except (KeyError, TypeError, AttributeError) as exc:
        raise MMBenchError(f"{out_dir / CONFIG_FILE} is not the config of an mmbench training run (missing {exc}).") from exc
    return config, dict(specs)


def load_trained(path: str | os.PathLike[str], *, device: str | torch.device | None = "cpu", expect: TrainConfig | None = None) -> nn.Module:
    """Load a trained model (a harness submission) from a training output directory.

    Only mmbench's own model classes are built (a :class:`ContrastiveModel` or a
    :class:`~mmbench.models.vae.MultimodalVAE`, from the validated train config through
    :data:`~mmbench.models.trainable.MODEL_FAMILIES`; no code named by the files runs), and the
    weights are read with safetensors. The model gets a ``mmbench_source`` (directory, step,
    sha256 of the checkpoint and config) that ``evaluate`` records.

    Args:
        path: the ``out_dir`` of :func:`train` (or its ``checkpoint.safetensors``).
        device: where to put the model (``"auto"``: CUDA when available).
        expect: if given, raise unless the stored config's model/data fields match it.

    Raises:
        MMBenchError: not a training directory, no checkpoint yet, or an unreadable one;
            :class:`InvalidConfigError` when the checkpoint does not fit its config or ``expect``.

    Example:
        >>> vae = load_trained("runs/mopoe")          # encode(...), generate(...), sample(...)
    """
    out_dir = Path(path)
    if out_dir.is_file():
        out_dir = out_dir.parent
    meta = _read_config(out_dir)
    config, specs = _run_config(meta, out_dir)
    if expect is not None:
        _check_same(expect, config, out_dir)
    ckpt = out_dir / CHECKPOINT_FILE
    if not ckpt.is_file():
        raise MMBenchError(f"{out_dir} has a config but no {CHECKPOINT_FILE}: the run never reached its first checkpoint.")
    model = _build(config, specs, meta.get("dataset_id", "")).module
    tensors, info, sha = _read_checkpoint(ckpt)
    _load_state(model, tensors, ckpt)
    model.trained_steps = int(info.get("step", 0))  # type: ignore[assignment]
    model.mmbench_source = {  # type: ignore[assignment]
        "spec": str(path), "type": "training_run", "directory": str(out_dir.resolve()),
        "weights_file": CHECKPOINT_FILE, "weights_sha256": sha, "step": model.trained_steps,
        "metadata_sha256": hashlib.sha256((out_dir / CONFIG_FILE).read_bytes()).hexdigest(),
    }
    return model.to(resolve_device(device)).eval()


def _describe_change(key: str, old: Any, new: Any) -> str:
    """``key: checkpoint X vs requested Y``; for a mapping, only its differing entries."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return "; ".join(f"{key}.{k}: checkpoint {old.get(k)!r} vs requested {new.get(k)!r}" for k in keys)
    return f"{key}: checkpoint {old!r} vs requested {new!r}"


def _check_same(new: TrainConfig, old: TrainConfig, out_dir: Path, *, resuming: bool = False) -> None:
    a, b = new.to_dict(), old.to_dict()
    if resuming and a.get("lr_schedule") == "cosine" and a["steps"] != b.get("steps"):
        raise InvalidConfigError(
            f"The run in {out_dir} decays its learning rate (cosine) over steps={b.get('steps')}; resuming with "
            f"steps={a['steps']} would change the schedule it already followed. Resume with steps={b.get('steps')}, "
            "or train in another out_dir."
        )
    defaults = {**_FAMILY_DEFAULTS}
    diff = sorted(k for k in set(a) | set(b) if k not in _RESUMABLE_FIELDS and a.get(k, defaults.get(k)) != b.get(k, defaults.get(k)))
    if diff:
        details = "; ".join(_describe_change(k, b.get(k, defaults.get(k)), a.get(k, defaults.get(k))) for k in diff)
        raise InvalidConfigError(
            f"The checkpoint in {out_dir} was trained with a different config ({details}). Use another "
            "out_dir, or resume with the same model/data settings (only steps, val_every, "
            "checkpoint_every, log_every, name and recipe may change)."
        )


# ====================================================================== trainer
@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns."""

    model: nn.Module  # a ContrastiveModel or a MultimodalVAE (the harness model)
    history: list[dict[str, Any]]
    steps: int
    seconds: float
    out_dir: Path | None
    interrupted: bool = False
    signal: int | None = None  # the signal that stopped it (SIGINT 2, SIGTERM 15)

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else float("nan")


@contextlib.contextmanager
def _stop_on_signals(flag: dict[str, Any]) -> Iterator[None]:
    """The first SIGINT or SIGTERM sets ``flag["stop"]`` (the loop finishes its step, writes a
    checkpoint and returns); a second one raises ``KeyboardInterrupt`` at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in sigs}

    def handler(signum: int, frame: Any) -> None:
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"], flag["signal"] = True, signum
        logger.warning("Interrupted: finishing this step and writing a checkpoint (interrupt again to abort).")

    for sig in sigs:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def _tf32(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _build(config: TrainConfig, specs: Mapping[str, Any], dataset_id: str) -> Trainable:
    """A freshly initialised model of ``config``'s family on the CPU (seeded, global RNG untouched)."""
    family = MODEL_FAMILIES.get(config.model)
    if config.model == CONTRASTIVE:
        built = family.build(config.to_dict(), specs, dataset_id=dataset_id)
    else:
        built = family.build(dict(config.model_config), specs, dataset_id=dataset_id, seed=config.seed)
    return as_trainable(built)


def build_trainable(config: TrainConfig, *, device: str | torch.device | None = "cpu") -> Trainable:
    """A freshly initialised :class:`~mmbench.models.trainable.Trainable` for ``config`` on ``device``."""
    _, dataset_id, specs = _dataset_info(config)
    trainable = _build(config, specs, dataset_id)
    trainable.module.trained_steps = 0  # type: ignore[assignment]
    trainable.module.to(resolve_device(device))
    return trainable


def build_model(config: TrainConfig, *, device: str | torch.device | None = "cpu") -> nn.Module:
    """A freshly initialised model for ``config`` (seeded, without touching the global RNG): a
    :class:`ContrastiveModel` or a :class:`~mmbench.models.vae.MultimodalVAE`."""
    return build_trainable(config, device=device).module


def _optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    kw: dict[str, Any] = {"lr": config.lr}
    if device.type == "cuda":
        kw["fused"] = True
    else:
        kw["foreach"] = True
    if getattr(config, "optimizer", "adam") == "amsgrad":
        kw["amsgrad"] = True
    if config.weight_decay:
        return torch.optim.AdamW(model.parameters(), weight_decay=config.weight_decay, **kw)
    return torch.optim.Adam(model.parameters(), **kw)


def train(
    config: TrainConfig,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = "auto",
    resume: bool = True,
    progress: bool | None = None,
    prefetch: bool | None = None,
) -> TrainResult:
    """Train a baseline of any model family (contrastive or VAE).

    Args:
        config: the run.
        out_dir: where config, checkpoints and history go (``None``: keep in memory only).
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        resume: continue from ``out_dir``'s checkpoint when there is one (its config must match);
            a resumed run says so on the ``mmbench.progress`` logger.
        progress: show a tqdm bar (default: when stderr is a terminal).
        prefetch: generate batches in a background thread (default: on CUDA only; on a CPU
            the generator competes with the model for the same cores).

    Returns:
        A :class:`TrainResult`; ``interrupted=True`` if SIGINT (Ctrl-C) or SIGTERM stopped it (a
        checkpoint of the last completed step is in ``out_dir``).

    Raises:
        NonFiniteLossError: the loss became NaN/inf (the step is named; the update is not applied
            and the last checkpoint in ``out_dir`` is kept).
        InvalidConfigError: ``out_dir`` holds a run with another config.

    Example:
        >>> result = train(TrainConfig.preset("quick", dataset="numerical/multiview/multimodal-independent"),
        ...                out_dir="runs/m3di")
        >>> vae = train(TrainConfig.from_recipe("mopoe-polymnist-cpu"), out_dir="runs/mopoe").model
    """
    dev = resolve_device(device)
    out = Path(out_dir) if out_dir is not None else None
    builder, trainable, opt, start, history = _prepare(config, out, dev, resume=resume)
    use_prefetch = dev.type == "cuda" if prefetch is None else prefetch
    batches, val_inputs = _data_streams(config, builder, trainable, start=start, prefetch=use_prefetch)
    if config.compile:
        _compile(trainable.module)
    loop = _Loop(trainable, opt, config, out=out, device=dev, history=history, val_inputs=val_inputs)
    step, interrupted, seconds = _run_loop(loop, batches, start=start, progress=progress)
    model = trainable.module
    model.trained_steps = step  # type: ignore[assignment]
    if interrupted:
        logger.warning("Training interrupted at step %d; checkpoint in %s", step, out)
    model.eval()
    return TrainResult(model=model, history=loop.history, steps=step - start, seconds=seconds, out_dir=out, interrupted=interrupted,
                       signal=loop.stopped_by if interrupted else None)


def _prepare(config: TrainConfig, out: Path | None, dev: torch.device, *,
             resume: bool) -> tuple[Any, Trainable, torch.optim.Optimizer, int, list[dict[str, Any]]]:
    """Build the model and its optimiser, open (or resume) the run directory."""
    builder, dataset_id, specs = _dataset_info(config)
    resuming = _check_run_dir(out, config, resume=resume)  # before building: a mismatch fails at once
    trainable = _build(config, specs, dataset_id)
    model = trainable.module.to(dev)
    model.trained_steps = 0  # type: ignore[assignment]
    opt = _optimizer(model, config, dev)
    start, history = _open_run_dir(out, config, dataset_id, specs, trainable, opt, resuming=resuming)
    return builder, trainable, opt, start, history


def _data_streams(config: TrainConfig, builder: Any, trainable: Trainable, *, start: int,
                  prefetch: bool) -> tuple[Any, list[dict[str, np.ndarray]]]:
    """The training batches from step ``start`` on, and the fixed validation batches."""
    columns = list(trainable.input_columns)
    stream = _training_batches(config, builder, trainable.rows_per_step(config.batch_size), start=start, columns=columns)
    batches: Any = _Prefetcher(stream) if prefetch else stream
    n_val = trainable.rows_per_step(config.val_batch_size or config.batch_size)
    val_inputs = _validation_inputs(config, builder, columns, n_per=n_val) if config.val_every else []
    return batches, val_inputs


def _compile(module: nn.Module) -> None:
    """``torch.compile`` the per-modality networks (``encoders``, and ``decoders`` of a VAE)."""
    for attr in ("encoders", "decoders"):
        nets = getattr(module, attr, None)
        if isinstance(nets, nn.ModuleDict):
            for key in list(nets):
                nets[key] = torch.compile(nets[key])  # type: ignore[assignment]


def _run_loop(loop: _Loop, batches: Any, *, start: int, progress: bool | None) -> tuple[int, bool, float]:
    """Run ``loop`` under a progress bar (TF32 on CUDA); returns (last step, interrupted, seconds)."""
    config = loop.config
    bar = progress_bar(config.steps, desc=config.name or "train", unit="step", progress=progress, initial=start)
    t0 = time.perf_counter()
    try:
        with _tf32(loop.device.type == "cuda"):
            step, interrupted = loop.run(batches, start=start, bar=bar)
    finally:
        bar.close()
    return step, interrupted, time.perf_counter() - t0


def _check_run_dir(out: Path | None, config: TrainConfig, *, resume: bool) -> bool:
    """Refuse an ``out`` holding another run (or a checkpoint with ``resume=False``); whether to resume it."""
    if out is None or not (out / CONFIG_FILE).is_file():
        return False
    has_checkpoint = (out / CHECKPOINT_FILE).is_file()
    old, _ = _run_config(_read_config(out), out)
    _check_same(config, old, out, resuming=resume and has_checkpoint)
    if has_checkpoint and not resume:
        raise InvalidConfigError(f"{out} already holds a checkpoint; pass resume=True (drop --no-resume) or use another out_dir.")
    return has_checkpoint


def _open_run_dir(out: Path | None, config: TrainConfig, dataset_id: str, specs: Mapping[str, Any],
                  trainable: Trainable, opt: torch.optim.Optimizer, *, resuming: bool) -> tuple[int, list[dict[str, Any]]]:
    """Create ``out``, resume its checkpoint when ``resuming``, write config.json.

    Returns the step to start from and the history so far.
    """
    start, history = 0, []
    if out is None:
        return start, history
    out.mkdir(parents=True, exist_ok=True)
    if resuming:
        start, history = _resume(out, trainable.module, opt)
        report("%s: resuming the checkpoint in %s at step %d of %d", config.name or "train", out, start, config.steps)
    meta = _config_json(config, dataset_id, specs, trainable)
    _atomic_replace(out / CONFIG_FILE, lambda p: p.write_text(json.dumps(meta, indent=1)))
    return start, history


def _training_batches(config: TrainConfig, builder: Any, n_rows: int, *, start: int, columns: Sequence[str]) -> Iterator[dict[str, np.ndarray]]:
    """Batches from step ``start`` on: fresh sampler draws, or shuffled epochs of the built split."""
    if config.data == "sampler":
        return _sampler_batches(builder, n_rows, seed=config.seed, split=config.split, start=start)
    import mmbench

    ds = mmbench.load(config.dataset, split=config.split, **dict(config.dataset_overrides))
    return _dataset_batches(ds, n_rows, seed=config.seed, start=start, columns=columns)


class _Loop:
    """The optimisation loop of one run: steps, learning-rate schedule, loss records, checkpoints."""

    def __init__(self, trainable: Trainable, opt: torch.optim.Optimizer, config: TrainConfig, *, out: Path | None,
                 device: torch.device, history: list[dict[str, Any]], val_inputs: Sequence[Mapping[str, np.ndarray]]) -> None:
        self.trainable, self.model = trainable, trainable.module
        self.opt, self.config, self.out, self.device = opt, config, out, device
        self.history = history
        self.val_inputs = val_inputs
        self.amp = config.amp and device.type == "cuda"
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.scheduled = config.lr_schedule != "constant" or config.warmup_steps > 0
        self.columns = list(trainable.input_columns)
        self._running, self._n = 0.0, 0
        self._parts: dict[str, Tensor] = {}
        self._t0 = time.perf_counter()
        self.last_checkpoint: int | None = None

    def run(self, batches: Any, *, start: int, bar: Any) -> tuple[int, bool]:
        """Train from step ``start`` to ``config.steps``; returns (last step, interrupted).

        :attr:`stopped_by` is then the signal that interrupted it, if one did. A non-finite loss
        raises :class:`NonFiniteLossError` and writes no checkpoint (the last one is kept).
        """
        flag: dict[str, Any] = {"stop": False}
        self.flag = flag
        self.last_checkpoint = start if start else None
        step, interrupted, failed = start, False, False
        self.model.train()
        try:
            with _stop_on_signals(flag):
                while step < self.config.steps and not flag["stop"]:
                    self.step(next(batches), step + 1)
                    step += 1
                    self.record(step, bar)
                    bar.update(1)
                    if self.out is not None and self.config.checkpoint_every and step % self.config.checkpoint_every == 0:
                        self.checkpoint(step)
                        if bar.disable:  # no bar (not a terminal, --quiet): a line per checkpoint instead
                            self.report(step, start)
                interrupted = flag["stop"] and step < self.config.steps
        except KeyboardInterrupt as exc:
            interrupted = True
            flag.setdefault("signal", getattr(exc, "signum", signal.SIGINT))
        except NonFiniteLossError:
            failed = True
            raise
        finally:
            if self.out is not None and step > start and not failed:
                self.checkpoint(step)
        return step, interrupted

    def checkpoint(self, step: int) -> None:
        assert self.out is not None
        _save_checkpoint(self.out, self.model, self.opt, step, self.history)
        self.last_checkpoint = step

    def report(self, step: int, start: int) -> None:
        """One progress line: step, last losses, elapsed time and an ETA."""
        from mmbench.progress import eta_text

        elapsed = time.perf_counter() - self._t0
        last = next((h for h in reversed(self.history) if "loss" in h), {})
        val = next((h["val_loss"] for h in reversed(self.history) if "val_loss" in h), None)
        eta = eta_text(elapsed, step - start, self.config.steps - start)
        report("%s: step %d/%d, loss %s%s (%.0f s%s); checkpoint in %s", self.config.name or "train", step, self.config.steps,
               f"{last['loss']:.4f}" if "loss" in last else "-", f", val {val:.4f}" if val is not None else "",
               elapsed, f"; {eta}" if eta else "", self.out, topic="steps")

    @property
    def stopped_by(self) -> int | None:
        return getattr(self, "flag", {}).get("signal")

    def step(self, batch: Mapping[str, np.ndarray], step: int) -> None:
        """One optimiser step (1-based ``step``) on ``batch``; a non-finite loss is never applied."""
        inputs = _to_device(batch, self.columns, self.device)
        if self.scheduled:
            lr = self.config.lr_at(step)
            for group in self.opt.param_groups:
                group["lr"] = lr
        gen = step_generator(self.config.seed, step, self.device)
        loss, parts = self.trainable.training_loss(inputs, step=step, generator=gen, amp=self.amp)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLossError(self.nonfinite_message(step, value))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip, foreach=True)
        self.opt.step()
        self._running += value
        self._n += 1
        for key, v in parts.items():
            if key != "loss":
                self._parts[key] = self._parts.get(key, 0.0) + v.detach().float()

    def nonfinite_message(self, step: int, value: float) -> str:
        kept = (f"the checkpoint of step {self.last_checkpoint} in {self.out} is kept" if self.out is not None and self.last_checkpoint
                else "no checkpoint was written yet" if self.out is not None else "no out_dir was given")
        hint = " or warm up the KL term (model_config kl_warmup_steps)" if self.config.model != CONTRASTIVE else ""
        return (f"The training loss became {value} at step {step} ({self.config.model} model, lr "
                f"{self.opt.param_groups[0]['lr']:.3g}); training stopped without applying that update, and {kept}. "
                f"Lower lr, set grad_clip{hint}, then train again in a new out_dir.")

    def record(self, step: int, bar: Any) -> None:
        """Append the training-loss average (and the model's loss parts) every ``log_every`` steps
        and the validation loss every ``val_every``."""
        cfg = self.config
        validate = bool(cfg.val_every) and (step % cfg.val_every == 0 or step == cfg.steps)
        if step % cfg.log_every == 0 or step == cfg.steps:
            rec: dict[str, Any] = {"step": step, "loss": self._running / self._n}
            rec.update({k: float(v) / self._n for k, v in self._parts.items()})
            rec["time"] = time.perf_counter() - self._t0
            if validate:
                rec["val_loss"] = self.val_loss(step)
            self.history.append(rec)
            bar.set_postfix(loss=f"{rec['loss']:.4f}", **({"val": f"{rec['val_loss']:.4f}"} if "val_loss" in rec else {}))
            self._running, self._n, self._parts = 0.0, 0, {}
        elif validate:
            self.history.append({"step": step, "val_loss": self.val_loss(step), "time": time.perf_counter() - self._t0})

    def val_loss(self, step: int) -> float:
        return _val_loss(self.trainable, self.val_inputs, amp=self.amp, step=step, seed=self.config.seed)


def _resume(out: Path, model: nn.Module, opt: torch.optim.Optimizer) -> tuple[int, list[dict[str, Any]]]:
    path = out / CHECKPOINT_FILE
    tensors, meta, _ = _read_checkpoint(path)
    _load_state(model, tensors, path)
    dev = next(model.parameters()).device
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value.to(dev) if name != "step" else value
    for key, value in json.loads(meta.get("optim_scalars", "{}")).items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    try:
        opt.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    except (KeyError, ValueError) as exc:
        raise InvalidConfigError(f"The optimiser state in {path} does not fit this model ({exc}).") from exc
    history = []
    if (out / HISTORY_FILE).is_file():
        history = json.loads((out / HISTORY_FILE).read_text())
    step = int(meta.get("step", 0))
    return step, [h for h in history if h.get("step", 0) <= step]


def _validation_inputs(config: TrainConfig, builder: Any, mods: Sequence[str], *, n_per: int) -> list[dict[str, np.ndarray]]:
    """A fixed validation set: sampler batches of the ``val`` stream, or the built ``val`` split."""
    if config.data == "sampler":
        it = builder.sampler(n_per, seed=config.seed, split="val" if "val" in builder.split_names() else config.split)
        return [{m: b[m] for m in mods} for b, _ in zip(it, range(config.val_batches), strict=False)]
    if "val" not in builder.split_names():
        return []
    import mmbench

    ds = mmbench.load(config.dataset, split="val", **dict(config.dataset_overrides))
    return [{m: b[m] for m in mods} for b, _ in zip(ds.batches(n_per, drop_last=True, columns=mods), range(config.val_batches), strict=False)]


@torch.no_grad()
def _val_loss(trainable: Trainable, batches: Sequence[Mapping[str, np.ndarray]], *, amp: bool, step: int, seed: int) -> float:
    """Mean loss over the validation batches (eval mode; the same noise at every evaluation:
    the generator of step 0, which no training step uses)."""
    if not batches:
        return float("nan")
    model = trainable.module
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    try:
        vals = [float(trainable.training_loss(_to_device(b, list(b), dev), step=step, generator=step_generator(seed, 0, dev), amp=amp)[0])
                for b in batches]
    finally:
        model.train(was)
    return float(np.mean(vals))
