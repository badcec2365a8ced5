"""Training of the contrastive baselines: config, model, trainer, checkpoints, ``mmbench train``.

A run is described by a frozen :class:`TrainConfig` (dataset id, encoder, loss, schedule). The
trainer draws batches from the dataset's infinite sampler (fresh data every step, as the
simulation papers) or iterates a built split, and writes to ``out_dir``:

* ``config.json`` — the train config, the resolved dataset id and the modality shapes;
* ``checkpoint.safetensors`` — model and optimiser tensors plus the step and history in its
  metadata, replaced atomically, so an interrupted run (Ctrl-C, crash) always leaves the last
  complete checkpoint;
* ``history.json`` — training / validation loss curve.

The trained :class:`ContrastiveModel` is a harness submission: it has a ``card`` and a batched
``encode(batch, *, modality) -> Tensor[n, d]``, and ``out_dir`` itself is a valid ``--model`` for
``mmbench evaluate`` (:func:`load_trained`: mmbench's own model class, safetensors weights only).
The command line is in :mod:`mmbench.models.train_cli`.

Example:
    >>> cfg = TrainConfig(dataset="numerical/multiview/multimodal-independent", steps=2000,
    ...                   batch_size=512, lr=1e-3)
    >>> result = train(cfg, out_dir="runs/m3di")
    >>> z = result.model.encode(batch, modality="x1")
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
from mmbench.progress import progress_bar, report
from mmbench.versioning import strict_fields

__all__ = [
    "PRESETS",
    "ContrastiveModel",
    "TrainConfig",
    "TrainResult",
    "build_model",
    "dataset_builder",
    "is_training_run",
    "load_trained",
    "preset_fields",
    "train",
]

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.safetensors"
HISTORY_FILE = "history.json"
FORMAT_VERSION = 1
LR_SCHEDULES = ("constant", "cosine")
# Fields that may differ when resuming (schedule/bookkeeping, not the model or the data).
_RESUMABLE_FIELDS = frozenset({"steps", "val_every", "checkpoint_every", "log_every", "name"})

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
        compile: ``torch.compile`` the encoders.
        name: free-form run name (used in the model card).
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataset_overrides", _frozen(dict(self.dataset_overrides)))
        object.__setattr__(self, "encoder_kwargs", _frozen(dict(self.encoder_kwargs)))
        object.__setattr__(self, "loss_kwargs", _frozen(dict(self.loss_kwargs)))
        if isinstance(self.encoder, Mapping):
            object.__setattr__(self, "encoder", {str(k): str(v) for k, v in self.encoder.items()})
        if self.modalities is not None:
            object.__setattr__(self, "modalities", tuple(self.modalities))
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

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

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


def _dataset_info(config: TrainConfig) -> tuple[Any, str, dict[str, tuple[int, ...]]]:
    """The builder, its resolved id and the shapes of the trained modalities."""
    b = dataset_builder(config.dataset, config.dataset_overrides)
    mods = b.modalities()
    chosen = list(config.modalities) if config.modalities is not None else list(mods)
    for m in chosen:
        if m not in mods:
            raise InvalidConfigError(
                f"Dataset {b.id!r} has no modality {m!r}.{did_you_mean(m, mods)} Its modalities: {list(mods)}."
            )
    if len(chosen) < 2:
        raise InvalidConfigError(f"Dataset {b.id!r} has modalities {list(mods)}; a contrastive model needs two or more.")
    return b, b.id, {m: tuple(mods[m].shape) for m in chosen}


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


def _config_json(config: TrainConfig, dataset_id: str, shapes: Mapping[str, Sequence[int]]) -> dict[str, Any]:
    import mmbench

    return {
        "format": FORMAT_VERSION,
        "mmbench_version": mmbench.__version__,
        "train_config": config.to_dict(),
        "dataset_id": dataset_id,
        "modality_shapes": {m: list(s) for m, s in shapes.items()},
    }


def _save_checkpoint(out_dir: Path, model: ContrastiveModel, opt: torch.optim.Optimizer, step: int, history: list[dict[str, Any]]) -> None:
    from safetensors.torch import save_file

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


def _load_state(model: ContrastiveModel, tensors: Mapping[str, Tensor], path: Path) -> None:
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


def load_trained(path: str | os.PathLike[str], *, device: str | torch.device | None = "cpu", expect: TrainConfig | None = None) -> ContrastiveModel:
    """Load a trained model (a harness submission) from a training output directory.

    Only mmbench's own :class:`ContrastiveModel` is built (from the validated train config; no
    code named by the files runs), and the weights are read with safetensors. The model gets a
    ``mmbench_source`` (directory, step, sha256 of the checkpoint and config) that ``evaluate``
    records.

    Args:
        path: the ``out_dir`` of :func:`train` (or its ``checkpoint.safetensors``).
        device: where to put the model (``"auto"``: CUDA when available).
        expect: if given, raise unless the stored config's model/data fields match it.

    Raises:
        MMBenchError: not a training directory, no checkpoint yet, or an unreadable one.
    """
    out_dir = Path(path)
    if out_dir.is_file():
        out_dir = out_dir.parent
    meta = _read_config(out_dir)
    try:
        config = TrainConfig.from_dict(meta["train_config"])
        shapes = meta["modality_shapes"]
    except (KeyError, TypeError) as exc:
        raise MMBenchError(f"{out_dir / CONFIG_FILE} is not the config of an mmbench training run (missing {exc}).") from exc
    if expect is not None:
        _check_same(expect, config, out_dir)
    model = ContrastiveModel(config, shapes, dataset_id=meta.get("dataset_id", ""))
    ckpt = out_dir / CHECKPOINT_FILE
    if not ckpt.is_file():
        raise MMBenchError(f"{out_dir} has a config but no {CHECKPOINT_FILE}: the run never reached its first checkpoint.")
    tensors, info, sha = _read_checkpoint(ckpt)
    _load_state(model, tensors, ckpt)
    model.trained_steps = int(info.get("step", 0))  # type: ignore[assignment]
    model.mmbench_source = {  # type: ignore[assignment]
        "spec": str(path), "type": "training_run", "directory": str(out_dir.resolve()),
        "weights_file": CHECKPOINT_FILE, "weights_sha256": sha, "step": model.trained_steps,
        "metadata_sha256": hashlib.sha256((out_dir / CONFIG_FILE).read_bytes()).hexdigest(),
    }
    return model.to(resolve_device(device)).eval()


def _check_same(new: TrainConfig, old: TrainConfig, out_dir: Path, *, resuming: bool = False) -> None:
    a, b = new.to_dict(), old.to_dict()
    if resuming and a.get("lr_schedule") == "cosine" and a["steps"] != b.get("steps"):
        raise InvalidConfigError(
            f"The run in {out_dir} decays its learning rate (cosine) over steps={b.get('steps')}; resuming with "
            f"steps={a['steps']} would change the schedule it already followed. Resume with steps={b.get('steps')}, "
            "or train in another out_dir."
        )
    diff = sorted(k for k in a if k not in _RESUMABLE_FIELDS and a[k] != b.get(k))
    if diff:
        details = "; ".join(f"{k}: checkpoint {b.get(k)!r} vs requested {a[k]!r}" for k in diff)
        raise InvalidConfigError(
            f"The checkpoint in {out_dir} was trained with a different config ({details}). Use another "
            "out_dir, or resume with the same model/data settings (only steps, val_every, "
            "checkpoint_every, log_every and name may change)."
        )


# ====================================================================== trainer
@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns."""

    model: ContrastiveModel
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


def build_model(config: TrainConfig, *, device: str | torch.device | None = "cpu") -> ContrastiveModel:
    """A freshly initialised model for ``config`` (seeded, without touching the global RNG)."""
    _, dataset_id, shapes = _dataset_info(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = ContrastiveModel(config, shapes, dataset_id=dataset_id)
    model.trained_steps = 0  # type: ignore[assignment]
    return model.to(resolve_device(device))


def _optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    kw: dict[str, Any] = {"lr": config.lr}
    if device.type == "cuda":
        kw["fused"] = True
    else:
        kw["foreach"] = True
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
    """Train a contrastive baseline.

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

    Example:
        >>> result = train(TrainConfig.preset("quick", dataset="numerical/multiview/multimodal-independent"),
        ...                out_dir="runs/m3di")
    """
    dev = resolve_device(device)
    builder, dataset_id, shapes = _dataset_info(config)
    out = Path(out_dir) if out_dir is not None else None
    model = build_model(config, device=dev)
    opt = _optimizer(model, config, dev)
    start, history = _open_run_dir(out, config, dataset_id, shapes, model, opt, resume=resume)
    mods = list(shapes)
    factor = 2 if model.loss_fn.needs_negatives else 1  # an independent negative batch doubles the rows
    use_prefetch = dev.type == "cuda" if prefetch is None else prefetch
    stream = _training_batches(config, builder, config.batch_size * factor, start=start, columns=mods)
    batches: Any = _Prefetcher(stream) if use_prefetch else stream
    n_val = (config.val_batch_size or config.batch_size) * factor
    val_inputs = _validation_inputs(config, builder, mods, n_per=n_val) if config.val_every else []
    if config.compile:
        for key in list(model.encoders):
            model.encoders[key] = torch.compile(model.encoders[key])  # type: ignore[assignment]
    loop = _Loop(model, opt, config, out=out, device=dev, history=history, val_inputs=val_inputs)
    bar = progress_bar(config.steps, desc=config.name or "train", unit="step", progress=progress, initial=start)
    t0 = time.perf_counter()
    try:
        with _tf32(dev.type == "cuda"):
            step, interrupted = loop.run(batches, start=start, bar=bar)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    model.trained_steps = step  # type: ignore[assignment]
    if interrupted:
        logger.warning("Training interrupted at step %d; checkpoint in %s", step, out)
    model.eval()
    return TrainResult(model=model, history=loop.history, steps=step - start, seconds=seconds, out_dir=out, interrupted=interrupted,
                       signal=loop.stopped_by if interrupted else None)


def _open_run_dir(out: Path | None, config: TrainConfig, dataset_id: str, shapes: Mapping[str, Sequence[int]],
                  model: ContrastiveModel, opt: torch.optim.Optimizer, *, resume: bool) -> tuple[int, list[dict[str, Any]]]:
    """Create ``out`` (or check it holds the same run), resume its checkpoint, write config.json.

    Returns the step to start from and the history so far.
    """
    start, history = 0, []
    if out is None:
        return start, history
    out.mkdir(parents=True, exist_ok=True)
    has_checkpoint = (out / CHECKPOINT_FILE).is_file()
    if (out / CONFIG_FILE).is_file():
        old = _read_config(out)
        _check_same(config, TrainConfig.from_dict(old["train_config"]), out, resuming=resume and has_checkpoint)
        if has_checkpoint and not resume:
            raise InvalidConfigError(f"{out} already holds a checkpoint; pass resume=True (drop --no-resume) or use another out_dir.")
        if has_checkpoint:
            start, history = _resume(out, model, opt)
            report("%s: resuming the checkpoint in %s at step %d of %d", config.name or "train", out, start, config.steps)
    _atomic_replace(out / CONFIG_FILE, lambda p: p.write_text(json.dumps(_config_json(config, dataset_id, shapes), indent=1)))
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

    def __init__(self, model: ContrastiveModel, opt: torch.optim.Optimizer, config: TrainConfig, *, out: Path | None,
                 device: torch.device, history: list[dict[str, Any]], val_inputs: Sequence[Mapping[str, np.ndarray]]) -> None:
        self.model, self.opt, self.config, self.out, self.device = model, opt, config, out, device
        self.history = history
        self.val_inputs = val_inputs
        self.amp = config.amp and device.type == "cuda"
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.scheduled = config.lr_schedule != "constant" or config.warmup_steps > 0
        self.mods = list(model.modality_shapes)
        self._running, self._n = 0.0, 0
        self._t0 = time.perf_counter()

    def run(self, batches: Any, *, start: int, bar: Any) -> tuple[int, bool]:
        """Train from step ``start`` to ``config.steps``; returns (last step, interrupted).

        :attr:`stopped_by` is then the signal that interrupted it, if one did.
        """
        flag: dict[str, Any] = {"stop": False}
        self.flag = flag
        step, interrupted = start, False
        self.model.train()
        try:
            with _stop_on_signals(flag):
                while step < self.config.steps and not flag["stop"]:
                    self.step(next(batches), step + 1)
                    step += 1
                    self.record(step, bar)
                    bar.update(1)
                    if self.out is not None and self.config.checkpoint_every and step % self.config.checkpoint_every == 0:
                        _save_checkpoint(self.out, self.model, self.opt, step, self.history)
                        if bar.disable:  # no bar (not a terminal, --quiet): a line per checkpoint instead
                            self.report(step, start)
                interrupted = flag["stop"] and step < self.config.steps
        except KeyboardInterrupt as exc:
            interrupted = True
            flag.setdefault("signal", getattr(exc, "signum", signal.SIGINT))
        finally:
            if self.out is not None and step > start:
                _save_checkpoint(self.out, self.model, self.opt, step, self.history)
        return step, interrupted

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
        """One optimiser step (1-based ``step``) on ``batch``."""
        inputs = _to_device(batch, self.mods, self.device)
        if self.scheduled:
            lr = self.config.lr_at(step)
            for group in self.opt.param_groups:
                group["lr"] = lr
        loss = self.model.loss(inputs, amp=self.amp)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip, foreach=True)
        self.opt.step()
        self._running += float(loss.detach())
        self._n += 1

    def record(self, step: int, bar: Any) -> None:
        """Append the training-loss average every ``log_every`` steps and the validation loss every ``val_every``."""
        cfg = self.config
        validate = bool(cfg.val_every) and (step % cfg.val_every == 0 or step == cfg.steps)
        if step % cfg.log_every == 0 or step == cfg.steps:
            if not math.isfinite(self._running):
                raise MMBenchError(f"The training loss became non-finite at step {step}; lower lr or enable grad_clip.")
            rec: dict[str, Any] = {"step": step, "loss": self._running / self._n, "time": time.perf_counter() - self._t0}
            if validate:
                rec["val_loss"] = _val_loss(self.model, self.val_inputs, amp=self.amp)
            self.history.append(rec)
            bar.set_postfix(loss=f"{rec['loss']:.4f}", **({"val": f"{rec['val_loss']:.4f}"} if "val_loss" in rec else {}))
            self._running, self._n = 0.0, 0
        elif validate:
            self.history.append({"step": step, "val_loss": _val_loss(self.model, self.val_inputs, amp=self.amp),
                                 "time": time.perf_counter() - self._t0})


def _resume(out: Path, model: ContrastiveModel, opt: torch.optim.Optimizer) -> tuple[int, list[dict[str, Any]]]:
    path = out / CHECKPOINT_FILE
    tensors, meta, _ = _read_checkpoint(path)
    _load_state(model, tensors, path)
    dev = model.device
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
def _val_loss(model: ContrastiveModel, batches: Sequence[Mapping[str, np.ndarray]], *, amp: bool) -> float:
    if not batches:
        return float("nan")
    was = model.training
    model.eval()
    try:
        vals = [float(model.loss(_to_device(b, list(b), model.device), amp=amp)) for b in batches]
    finally:
        model.train(was)
    return float(np.mean(vals))
