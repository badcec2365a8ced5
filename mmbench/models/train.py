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
``encode(batch, *, modality) -> Tensor[n, d]``.

Example:
    >>> cfg = TrainConfig(dataset="numerical/multiview/multimodal-independent", steps=2000,
    ...                   batch_size=512, lr=1e-3)
    >>> result = train(cfg, out_dir="runs/m3di")
    >>> z = result.model.encode(batch, modality="x1")
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmbench.core.storage import atomic_path
from mmbench.errors import InvalidConfigError, MMBenchError, SubmissionError, did_you_mean
from mmbench.models.encoders import ENCODERS, build_encoder
from mmbench.models.losses import LOSSES, ContrastiveLoss
from mmbench.versioning import strict_fields

__all__ = [
    "ContrastiveModel",
    "TrainConfig",
    "TrainResult",
    "add_train_parser",
    "build_model",
    "dataset_builder",
    "load_trained",
    "resolve_device",
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


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"`` → CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidConfigError(f"device={str(device)!r} was requested but CUDA is not available; use device='cpu'.")
    return dev


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


def _to_device(batch: Mapping[str, np.ndarray], modalities: Sequence[str], device: torch.device) -> dict[str, Tensor]:
    out = {}
    for m in modalities:
        arr = np.ascontiguousarray(batch[m])
        if not arr.flags.writeable:  # memory-mapped columns are read-only
            arr = arr.copy()
        t = torch.from_numpy(arr)
        if t.dtype == torch.float64:
            t = t.float()
        out[m] = t.to(device, non_blocking=True)
    return out


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


def _read_checkpoint(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except Exception as exc:
        raise MMBenchError(f"The checkpoint {path} is unreadable ({exc}). Delete it to train from scratch.") from exc
    return tensors, meta


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


def load_trained(path: str | os.PathLike[str], *, device: str | torch.device | None = "cpu", expect: TrainConfig | None = None) -> ContrastiveModel:
    """Load a trained model (a harness submission) from a training output directory.

    Args:
        path: the ``out_dir`` of :func:`train` (or its ``checkpoint.safetensors``).
        device: where to put the model (``"auto"``: CUDA when available).
        expect: if given, raise unless the stored config's model/data fields match it.
    """
    out_dir = Path(path)
    if out_dir.is_file():
        out_dir = out_dir.parent
    meta = _read_config(out_dir)
    config = TrainConfig.from_dict(meta["train_config"])
    if expect is not None:
        _check_same(expect, config, out_dir)
    model = ContrastiveModel(config, meta["modality_shapes"], dataset_id=meta.get("dataset_id", ""))
    ckpt = out_dir / CHECKPOINT_FILE
    if not ckpt.is_file():
        raise MMBenchError(f"{out_dir} has a config but no {CHECKPOINT_FILE}: the run never reached its first checkpoint.")
    tensors, info = _read_checkpoint(ckpt)
    _load_state(model, tensors, ckpt)
    model.trained_steps = int(info.get("step", 0))  # type: ignore[assignment]
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

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else float("nan")


@contextlib.contextmanager
def _sigint_to_flag(flag: dict[str, bool]) -> Iterator[None]:
    """First Ctrl-C sets ``flag["stop"]`` (the loop saves and stops); a second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if flag["stop"]:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        flag["stop"] = True
        logger.warning("Interrupted: finishing this step and writing a checkpoint (Ctrl-C again to abort).")

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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
    device: str | torch.device | None = None,
    resume: bool = True,
    progress: bool | None = None,
    prefetch: bool | None = None,
) -> TrainResult:
    """Train a contrastive baseline.

    Args:
        config: the run.
        out_dir: where config, checkpoints and history go (``None``: keep in memory only).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``... (default: CUDA when available).
        resume: continue from ``out_dir``'s checkpoint when there is one (its config must match).
        progress: show a tqdm bar (default: when stderr is a terminal).
        prefetch: generate batches in a background thread (default: on CUDA only; on a CPU
            the generator competes with the model for the same cores).

    Returns:
        A :class:`TrainResult`; ``interrupted=True`` if Ctrl-C stopped it (a checkpoint of the
        last completed step is in ``out_dir``).
    """
    import sys

    from tqdm.auto import tqdm

    dev = resolve_device(device)
    builder, dataset_id, shapes = _dataset_info(config)
    out = Path(out_dir) if out_dir is not None else None
    model = build_model(config, device=dev)
    opt = _optimizer(model, config, dev)
    start, history = 0, []
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if (out / CONFIG_FILE).is_file():
            old = _read_config(out)
            _check_same(config, TrainConfig.from_dict(old["train_config"]), out,
                        resuming=resume and (out / CHECKPOINT_FILE).is_file())
            if (out / CHECKPOINT_FILE).is_file() and resume:
                start, history = _resume(out, model, opt)
                logger.info("Resuming %s from step %d", out, start)
            elif (out / CHECKPOINT_FILE).is_file():
                raise InvalidConfigError(f"{out} already holds a checkpoint; pass resume=True (--resume) or use another out_dir.")
        _atomic_replace(out / CONFIG_FILE, lambda p: p.write_text(json.dumps(_config_json(config, dataset_id, shapes), indent=1)))

    mods = list(shapes)
    factor = 2 if model.loss_fn.needs_negatives else 1
    n_rows = config.batch_size * factor
    if config.data == "sampler":
        stream: Iterator[dict[str, np.ndarray]] = _sampler_batches(builder, n_rows, seed=config.seed, split=config.split, start=start)
    else:
        import mmbench

        ds = mmbench.load(config.dataset, split=config.split, **dict(config.dataset_overrides))
        stream = _dataset_batches(ds, n_rows, seed=config.seed, start=start, columns=mods)
    use_prefetch = dev.type == "cuda" if prefetch is None else prefetch
    batches: Any = _Prefetcher(stream) if use_prefetch else stream
    val_inputs = _validation_inputs(config, builder, mods, n_per=(config.val_batch_size or config.batch_size) * factor) if config.val_every else []
    amp = config.amp and dev.type == "cuda"
    compiled = model
    if config.compile:
        for key in list(model.encoders):
            model.encoders[key] = torch.compile(model.encoders[key])  # type: ignore[assignment]
    params = [p for p in model.parameters() if p.requires_grad]
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=config.steps, initial=start, disable=not show, desc=config.name or "train", dynamic_ncols=True)
    flag = {"stop": False}
    scheduled = config.lr_schedule != "constant" or config.warmup_steps > 0
    step, t0 = start, time.perf_counter()
    running, running_n = 0.0, 0
    interrupted = False
    model.train()
    try:
        with _sigint_to_flag(flag), _tf32(dev.type == "cuda"):
            while step < config.steps and not flag["stop"]:
                inputs = _to_device(next(batches), mods, dev)
                if scheduled:
                    lr = config.lr_at(step + 1)
                    for group in opt.param_groups:
                        group["lr"] = lr
                loss = compiled.loss(inputs, amp=amp)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, config.grad_clip, foreach=True)
                opt.step()
                step += 1
                running += float(loss.detach())
                running_n += 1
                if step % config.log_every == 0 or step == config.steps:
                    if not math.isfinite(running):
                        raise MMBenchError(f"The training loss became non-finite at step {step}; lower lr or enable grad_clip.")
                    rec: dict[str, Any] = {"step": step, "loss": running / running_n, "time": time.perf_counter() - t0}
                    if config.val_every and (step % config.val_every == 0 or step == config.steps):
                        rec["val_loss"] = _val_loss(model, val_inputs, amp=amp)
                    history.append(rec)
                    bar.set_postfix(loss=f"{rec['loss']:.4f}", **({"val": f"{rec['val_loss']:.4f}"} if "val_loss" in rec else {}))
                    running, running_n = 0.0, 0
                elif config.val_every and step % config.val_every == 0:
                    history.append({"step": step, "val_loss": _val_loss(model, val_inputs, amp=amp), "time": time.perf_counter() - t0})
                bar.update(1)
                if out is not None and config.checkpoint_every and step % config.checkpoint_every == 0:
                    _save_checkpoint(out, model, opt, step, history)
                if flag["stop"]:
                    interrupted = True
                    break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
        if out is not None and step > start:
            _save_checkpoint(out, model, opt, step, history)
    seconds = time.perf_counter() - t0
    model.trained_steps = step  # type: ignore[assignment]
    if interrupted:
        logger.warning("Training interrupted at step %d; checkpoint in %s", step, out)
    model.eval()
    return TrainResult(model=model, history=history, steps=step - start, seconds=seconds, out_dir=out, interrupted=interrupted)


def _resume(out: Path, model: ContrastiveModel, opt: torch.optim.Optimizer) -> tuple[int, list[dict[str, Any]]]:
    path = out / CHECKPOINT_FILE
    tensors, meta = _read_checkpoint(path)
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


# ====================================================================== CLI
def add_train_parser(sub: Any) -> None:
    """``mmbench train DATASET [options]``."""
    p = sub.add_parser("train", help="train a contrastive baseline on a dataset", description=(
        "Train a contrastive baseline. Defaults are the simulation papers' (7-layer MLPs, "
        "independent-negative L2 InfoNCE, batch 6144, Adam 1e-4, clip 2, 300k steps)."))
    p.add_argument("dataset", help="dataset id, e.g. numerical/multiview/multimodal-independent")
    p.add_argument("--out", required=True, help="output directory (config, checkpoint, history)")
    p.add_argument("-o", "--set", dest="overrides", action="append", metavar="KEY=VALUE",
                   help="dataset config override (JSON value), e.g. -o seed=1 (as in `mmbench build`)")
    p.add_argument("--config", default=None, help="a JSON file with TrainConfig fields (flags below override it)")
    p.add_argument("--encoder", default=None, choices=ENCODERS)
    p.add_argument("--width-scale", type=float, default=None, help="MLP hidden-width multiplier")
    p.add_argument("--norm", default=None, help="encoder output normalisation: none, sphere, sphere-fixed, box")
    p.add_argument("--shared-encoder", action="store_true", default=None, help="one encoder for all modalities")
    p.add_argument("--encoding-size", type=int, default=None)
    p.add_argument("--loss", default=None, choices=list(LOSSES))
    p.add_argument("--tau", type=float, default=None)
    p.add_argument("--learn-tau", action="store_true", default=None)
    p.add_argument("--similarity", default=None, choices=["cosine", "dot", "lp"])
    p.add_argument("--p", type=float, default=None, help="L_p distance exponent (lp similarity)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--lr-schedule", default=None, choices=LR_SCHEDULES, help="constant (default) or cosine decay")
    p.add_argument("--warmup-steps", type=int, default=None, help="linear learning-rate warm-up steps")
    p.add_argument("--grad-clip", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--data", choices=["sampler", "dataset"], default=None)
    p.add_argument("--val-every", type=int, default=None)
    p.add_argument("--checkpoint-every", type=int, default=None)
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--no-resume", action="store_true", help="refuse to continue an existing checkpoint")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the encoders")
    p.set_defaults(func=cmd_train)


def config_from_args(args: Any) -> TrainConfig:
    """The :class:`TrainConfig` of ``mmbench train`` arguments."""
    from mmbench.cli import parse_overrides

    base: dict[str, Any] = {}
    if args.config:
        try:
            base = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as exc:
            raise InvalidConfigError(f"Cannot read the train config {args.config!r}: {exc}") from exc
        base = base.get("train_config", base)
    base["dataset"] = args.dataset
    overrides = parse_overrides(args.overrides)
    if overrides:
        base["dataset_overrides"] = {**base.get("dataset_overrides", {}), **overrides}
    simple = {"encoder": "encoder", "shared_encoder": "shared_encoder", "encoding_size": "encoding_size",
              "loss": "loss", "batch_size": "batch_size", "steps": "steps", "lr": "lr", "grad_clip": "grad_clip",
              "lr_schedule": "lr_schedule", "warmup_steps": "warmup_steps",
              "seed": "seed", "data": "data", "val_every": "val_every", "checkpoint_every": "checkpoint_every",
              "compile": "compile"}
    for attr, field in simple.items():
        if getattr(args, attr) is not None:
            base[field] = getattr(args, attr)
    enc_kw = dict(base.get("encoder_kwargs", {}))
    if args.width_scale is not None:
        enc_kw["width_scale"] = args.width_scale
    if args.norm is not None:
        enc_kw["norm"] = args.norm
    base["encoder_kwargs"] = enc_kw
    loss_kw = dict(base.get("loss_kwargs", {}))
    for attr, key in (("tau", "tau"), ("learn_tau", "learn_tau"), ("similarity", "similarity"), ("p", "p")):
        if getattr(args, attr) is not None:
            loss_kw[key] = getattr(args, attr)
    base["loss_kwargs"] = loss_kw
    return TrainConfig.from_dict(base)


def cmd_train(args: Any) -> int:
    config = config_from_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = train(config, out_dir=args.out, device=args.device, resume=not args.no_resume,
                   progress=False if args.no_progress else None)
    last = next((h for h in reversed(result.history) if "loss" in h), {})
    state = "interrupted" if result.interrupted else "done"
    print(f"{state}: {result.steps} steps in {result.seconds:.1f} s ({result.steps_per_second:.2f} steps/s); "
          f"last loss {last.get('loss', float('nan')):.4f}; checkpoint in {args.out}")
    return 130 if result.interrupted else 0
