"""The trainable-model protocol: what one trainer needs from any model, and the registry of families.

A model the trainer can optimise computes its own loss from a batch, so contrastive models and
VAEs share one trainer (seeding, checkpoints, resume, schedules, Ctrl-C safety):

* ``family`` — the name it is registered under in :data:`MODEL_FAMILIES` (``"contrastive"``,
  ``"mopoe"``, ...), recorded in checkpoints so the model can be rebuilt;
* ``module`` — the ``torch.nn.Module`` whose parameters are optimised and whose ``state_dict`` is
  checkpointed (the model itself, or the wrapped model of an adapter: its keys never change);
* ``input_columns`` — the dataset columns a training batch must hold;
* ``rows_per_step(batch_size)`` — rows the trainer draws per step (a contrastive loss with an
  independent negative batch draws twice the batch);
* ``training_loss(batch, *, step, generator, amp)`` — the scalar loss to minimise and detached
  0-d tensors to log (converted to floats by the trainer at its logging period, so a CUDA run
  does not synchronise every step);
* ``model_config()`` — the JSON config that :meth:`ModelFamily.build` turns back into the same
  architecture;
* ``card`` — the harness :class:`~mmbench.harness.protocols.ModelCard`.

:func:`kl_warmup` is the β/KL warm-up schedule and :func:`step_generator` the per-step random
stream: both pure functions of the step, so a resumed run continues exactly where it stopped.

Example:
    >>> model = MODEL_FAMILIES.get("mopoe").build({"kind": "mopoe", "latent_dim": 8}, shapes)
    >>> loss, logs = model.training_loss(batch, step=1, generator=step_generator(0, 1))
    >>> loss.backward()
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from mmbench.errors import InvalidConfigError, SubmissionError
from mmbench.registry import Registry

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn

__all__ = [
    "MODEL_FAMILIES",
    "WARMUP_SHAPES",
    "ContrastiveTrainable",
    "ModelFamily",
    "Trainable",
    "as_trainable",
    "checkpoint_meta",
    "kl_warmup",
    "rebuild",
    "step_generator",
]

WARMUP_SHAPES = ("linear", "cosine")


@runtime_checkable
class Trainable(Protocol):
    """A model that computes its own training loss (see the module docstring)."""

    family: str

    @property
    def module(self) -> nn.Module: ...

    @property
    def input_columns(self) -> tuple[str, ...]: ...

    @property
    def card(self) -> Any: ...

    def rows_per_step(self, batch_size: int) -> int: ...

    def training_loss(self, batch: Mapping[str, Tensor], *, step: int, generator: torch.Generator | None = None,
                      amp: bool = False) -> tuple[Tensor, dict[str, Tensor]]: ...

    def model_config(self) -> dict[str, Any]: ...


@dataclasses.dataclass(frozen=True)
class ModelFamily:
    """A registered model family.

    Args:
        name: registry name, recorded in checkpoints.
        build: ``build(config, modalities, *, dataset_id="", seed=None)`` → a :class:`Trainable` on
            the CPU, initialised from ``seed`` (``None``: the family's default);
            ``config`` is :meth:`Trainable.model_config`'s JSON, ``modalities`` maps each modality
            to its per-example shape or to a ``{"shape": ..., "dtype": ...}`` spec.
        description: one line for listings.
        reference: paper / code the family implements.
    """

    name: str
    build: Callable[..., Trainable]
    description: str = ""
    reference: str = ""


#: Model families by name; targets are imported on first use (no torch import at registration).
MODEL_FAMILIES: Registry[ModelFamily] = Registry("model family")
MODEL_FAMILIES.register("contrastive", "mmbench.models.trainable:CONTRASTIVE")
for _kind in ("mvae", "mmvae", "mopoe", "mmvaeplus"):
    MODEL_FAMILIES.register(_kind, f"mmbench.models.vae.model:FAMILIES.{_kind}")


def kl_warmup(step: int, warmup_steps: int, *, start: float = 0.0, shape: str = "linear") -> float:
    """Factor of β at optimiser step ``step`` (1-based): ``start`` → 1 over ``warmup_steps``.

    A pure function of the step (a resumed run follows the same schedule); ``warmup_steps = 0``
    is a constant 1.

    Args:
        step: optimiser step, 1-based (step 0 = before training: ``start``).
        warmup_steps: length of the warm-up.
        start: factor at step 0, in [0, 1].
        shape: ``"linear"`` or ``"cosine"`` (half-cosine ease-in).

    Example:
        >>> [kl_warmup(s, 4) for s in (0, 1, 2, 4, 9)]
        [0.0, 0.25, 0.5, 1.0, 1.0]
    """
    from mmbench.core.config import check_choice, check_int, check_number

    check_int("warmup_steps", warmup_steps, low=0)
    check_number("The warm-up start factor", start, low=0.0, high=1.0)
    check_choice("The warm-up shape", shape, WARMUP_SHAPES)
    if warmup_steps == 0:
        return 1.0
    t = min(max(step, 0), warmup_steps) / warmup_steps
    if shape == "cosine":
        t = 0.5 * (1.0 - math.cos(math.pi * t))
    return start + (1.0 - start) * t


def step_generator(seed: int, step: int, device: torch.device | str | None = "cpu") -> torch.Generator:
    """The ``torch.Generator`` of optimiser step ``step`` of a run seeded ``seed`` (on ``device``).

    Its seed is drawn from ``numpy.random.SeedSequence([seed, step])``: a pure function of
    ``(seed, step)``, so a resumed run draws the same noise as an uninterrupted one.
    """
    import torch

    state = np.random.SeedSequence([int(seed), int(step)]).generate_state(2, dtype=np.uint32)
    gen = torch.Generator(device=torch.device(device) if device is not None else "cpu")
    gen.manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)
    return gen


# ============================================================================ contrastive adapter
class ContrastiveTrainable:
    """A :class:`~mmbench.models.train.ContrastiveModel` seen through the :class:`Trainable` protocol.

    A thin adapter: the wrapped model is the ``module`` (its ``state_dict`` keys, hence existing
    checkpoints, are unchanged), its loss is ``model.loss(batch, amp=amp)`` (the contrastive loss
    draws no random numbers, so ``step`` and ``generator`` are unused), and its config is the
    run's ``TrainConfig``. Phase 2 may move these few members onto ``ContrastiveModel`` itself.
    """

    family = "contrastive"

    def __init__(self, model: Any) -> None:
        self.model = model

    @property
    def module(self) -> nn.Module:
        return self.model

    @property
    def input_columns(self) -> tuple[str, ...]:
        return tuple(self.model.modalities)

    @property
    def card(self) -> Any:
        return self.model.card

    def rows_per_step(self, batch_size: int) -> int:
        return batch_size * (2 if self.model.loss_fn.needs_negatives else 1)

    def training_loss(self, batch: Mapping[str, Tensor], *, step: int, generator: torch.Generator | None = None,
                      amp: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
        del step, generator  # deterministic given the batch
        loss = self.model.loss({m: batch[m] for m in self.input_columns}, amp=amp)
        return loss, {"loss": loss.detach()}

    def model_config(self) -> dict[str, Any]:
        return self.model.config.to_dict()


def _build_contrastive(config: Mapping[str, Any], modalities: Mapping[str, Any], *, dataset_id: str = "",
                       seed: int | None = None) -> ContrastiveTrainable:
    """Rebuild a contrastive model from its ``TrainConfig`` dict (initialised from ``config["seed"]``;
    ``seed``, when given, must equal it)."""
    import torch

    from mmbench.models.train import ContrastiveModel, TrainConfig

    cfg = TrainConfig.from_dict(config)
    if seed is not None and seed != cfg.seed:
        raise InvalidConfigError(f"A contrastive model is seeded by its TrainConfig (seed={cfg.seed}); got seed={seed}.")
    shapes = {m: tuple(spec["shape"]) if isinstance(spec, Mapping) else tuple(spec) for m, spec in modalities.items()}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = ContrastiveModel(cfg, shapes, dataset_id=dataset_id)
    return ContrastiveTrainable(model)


CONTRASTIVE = ModelFamily(
    name="contrastive", build=_build_contrastive,
    description="Per-modality encoders trained with a contrastive loss (InfoNCE, NT-Xent, L_p InfoNCE).",
    reference="Daunhawer et al. ICLR 2023; Zimmermann et al. ICML 2021; Cai et al. 2025",
)


def checkpoint_meta(model: Trainable) -> dict[str, Any]:
    """What a checkpoint's ``config.json`` records so that :func:`rebuild` can recreate ``model``:
    ``{"family", "config", "modalities": {name: {"shape", "dtype"}}, "dataset_id", "seed"}``."""
    module = model.module
    specs = getattr(module, "specs", None)
    if specs is not None:
        modalities = {m: s.to_dict() for m, s in specs.items()}
    else:  # a contrastive model knows its shapes only
        modalities = {m: {"shape": list(s), "dtype": "float32"} for m, s in module.modality_shapes.items()}
    config = model.model_config()
    return {"family": model.family, "config": config, "modalities": modalities,
            "dataset_id": getattr(module, "dataset_id", ""), "seed": getattr(module, "seed", config.get("seed", 0))}


def rebuild(meta: Mapping[str, Any]) -> Trainable:
    """A freshly initialised model from :func:`checkpoint_meta`'s record (weights not loaded).

    A training ``config.json`` written before the protocol existed (``train_config`` and
    ``modality_shapes``, no ``model``) is a contrastive run and is rebuilt as one, so existing
    checkpoints keep loading: their ``model.*`` tensors fit ``rebuild(meta).module``.
    """
    model_meta = meta.get("model")
    if model_meta is None:
        if "train_config" not in meta or "modality_shapes" not in meta:
            raise SubmissionError("This config.json names no model family and is not a contrastive run's (train_config + modality_shapes).")
        model_meta = {"family": "contrastive", "config": meta["train_config"], "modalities": meta["modality_shapes"],
                      "dataset_id": meta.get("dataset_id", "")}
    family = MODEL_FAMILIES.get(str(model_meta["family"]))
    kwargs: dict[str, Any] = {"dataset_id": model_meta.get("dataset_id", "")}
    if model_meta.get("seed") is not None:
        kwargs["seed"] = model_meta["seed"]
    return family.build(model_meta["config"], model_meta["modalities"], **kwargs)


def as_trainable(model: Any) -> Trainable:
    """``model`` if it implements :class:`Trainable`, a :class:`ContrastiveTrainable` for a
    ``ContrastiveModel``; otherwise :class:`SubmissionError` naming what is missing."""
    if isinstance(model, Trainable):
        return model
    from mmbench.models.train import ContrastiveModel

    if isinstance(model, ContrastiveModel):
        return ContrastiveTrainable(model)
    missing = [name for name in ("family", "module", "input_columns", "card", "rows_per_step", "training_loss", "model_config")
               if not hasattr(model, name)]
    raise SubmissionError(
        f"{type(model).__name__} cannot be trained by mmbench: it lacks {missing} of the Trainable protocol "
        "(mmbench.models.trainable.Trainable)."
    )
