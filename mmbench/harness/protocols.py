"""What a submission is: a :class:`ModelCard` plus a batched ``encode`` (and optionally ``generate``).

No subclassing is required: any object with a ``card`` attribute and an
``encode(batch, *, modality)`` method is an :class:`Encoder` (structural typing, as MTEB's
``EncoderProtocol``). ``batch`` is a dict of torch tensors on the evaluation device — the
modality's column (e.g. ``batch["x"]`` of shape ``(n, 15)``) — and ``encode`` returns a
``(n, d)`` tensor or array. Models whose ``encode`` also accepts a ``context`` keyword receive an
:class:`EvalContext` (dataset id, split, latent spec, ...).

Submissions are loaded from the command line by :func:`load_model`:

* ``package.module:object`` — an encoder instance, or a class / zero-argument factory that
  returns one;
* a directory holding ``mmbench_model.json`` (card + factory + keyword arguments) and the weights
  in ``model.safetensors`` (never a pickle: loading a submission must not execute its data).

Example:
    >>> class MyModel:
    ...     card = ModelCard(name="my-model", revision="1", modalities=("x", "t"), embedding_dim=8)
    ...     def encode(self, batch, *, modality):
    ...         return self.nets[modality](batch[modality])
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mmbench.errors import InvalidConfigError, SubmissionError
from mmbench.versioning import to_jsonable

if TYPE_CHECKING:
    from mmbench.core.latents import LatentSpec

__all__ = [
    "MODEL_FILE",
    "WEIGHTS_FILE",
    "Encoder",
    "EvalContext",
    "Generator",
    "ModelCard",
    "check_encoder",
    "is_generator",
    "load_model",
    "save_model",
]

MODEL_FILE = "mmbench_model.json"
WEIGHTS_FILE = "model.safetensors"
MODEL_FORMAT = "mmbench-model/1"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelCard:
    """What a submitted model is.

    Args:
        name: model name (shown on the leaderboard).
        revision: a version, commit or checkpoint tag; one leaderboard row per (name, revision).
        modalities: modality keys the model can encode; empty = every modality of a dataset.
        embedding_dim: the size ``d`` of every embedding, or ``None`` when it varies by dataset.
        trained_on: dataset ids the model was trained on (``"numerical/misalignment/joint:1.0.0"``).
        description: free text.
        reference: a URL or citation.
        uses_ground_truth: an *oracle*: the harness also passes the ``latents.<name>`` columns in
            every batch. Oracles are for testing metrics and are marked on the leaderboard.
        extra: any further JSON-serialisable metadata (hyper-parameters, training steps, ...).

    Example:
        >>> ModelCard(name="infonce-mlp", revision="seed0", modalities=("x", "t"), embedding_dim=10)
    """

    name: str
    revision: str = "unversioned"
    modalities: tuple[str, ...] = ()
    embedding_dim: int | None = None
    trained_on: tuple[str, ...] = ()
    description: str = ""
    reference: str = ""
    uses_ground_truth: bool = False
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidConfigError(f"ModelCard.name must be a non-empty string, got {self.name!r}.")
        if not isinstance(self.revision, str) or not self.revision:
            raise InvalidConfigError(f"ModelCard.revision must be a non-empty string, got {self.revision!r}.")
        for field in ("modalities", "trained_on"):
            value = getattr(self, field)
            if isinstance(value, str):
                value = (value,)
            value = tuple(value)
            if not all(isinstance(v, str) for v in value):
                raise InvalidConfigError(f"ModelCard.{field} must be strings, got {value!r}.")
            object.__setattr__(self, field, value)
        dim = self.embedding_dim
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise InvalidConfigError(f"ModelCard.embedding_dim must be a positive int or None, got {dim!r}.")
        try:
            object.__setattr__(self, "extra", to_jsonable(dict(self.extra)))
        except TypeError as exc:
            raise InvalidConfigError(f"ModelCard.extra must be JSON-serialisable: {exc}") from exc

    @property
    def id(self) -> str:
        """``name@revision``."""
        return f"{self.name}@{self.revision}"

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelCard:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise InvalidConfigError(f"Unknown ModelCard field(s) {sorted(unknown)}; valid fields: {sorted(known)}.")
        return cls(**d)


@dataclasses.dataclass(frozen=True)
class EvalContext:
    """Optional information for ``encode(batch, *, modality, context)``."""

    dataset: str
    split: str
    modality: str
    latent_spec: LatentSpec
    expected_identifiable: tuple[str, ...]
    device: Any = None


@runtime_checkable
class Encoder(Protocol):
    """A submission: a card and a batched encoder (no subclassing needed)."""

    card: ModelCard

    def encode(self, batch: Mapping[str, Any], *, modality: str) -> Any:
        """Embed one batch of one modality: ``(n, ...)`` inputs → ``(n, d)`` tensor or array."""
        ...


@runtime_checkable
class Generator(Protocol):
    """Optional: a model that generates one modality from others (cross-modal generation)."""

    card: ModelCard

    def generate(self, batch: Mapping[str, Any], *, source: Sequence[str], target: str) -> Any:
        """Generate modality ``target`` for every example of ``batch`` given the ``source`` modalities."""
        ...


def is_generator(model: Any) -> bool:
    """Whether ``model`` offers the optional :class:`Generator` interface."""
    return callable(getattr(model, "generate", None))


def check_encoder(model: Any) -> ModelCard:
    """Validate the protocol (card + encode) and return the card (a dict card is converted).

    Raises:
        SubmissionError: what is missing and how to fix it.
    """
    card = getattr(model, "card", None)
    if card is None:
        raise SubmissionError(
            f"The submitted object {type(model).__name__!r} has no 'card' attribute. Give it "
            "card = mmbench.harness.ModelCard(name=..., revision=..., modalities=(...), embedding_dim=...)."
        )
    if isinstance(card, Mapping):
        try:
            card = ModelCard.from_dict(card)
        except (InvalidConfigError, TypeError) as exc:
            raise SubmissionError(f"The model's card is invalid: {exc}") from exc
    if not isinstance(card, ModelCard):
        raise SubmissionError(f"The model's card must be a ModelCard (or a dict of its fields), got {type(card).__name__}.")
    if not callable(getattr(model, "encode", None)):
        raise SubmissionError(
            f"The submitted model {card.id!r} has no callable 'encode'. Implement "
            "encode(self, batch, *, modality) -> tensor of shape (n, d)."
        )
    return card


def accepts_context(model: Any) -> bool:
    """Whether ``model.encode`` takes a ``context`` keyword (or ``**kwargs``)."""
    try:
        params = inspect.signature(model.encode).parameters
    except (TypeError, ValueError):
        return False
    return "context" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


# ============================================================================ loading & saving
def load_model(spec: str | os.PathLike[str]) -> Any:
    """Load a submission from ``package.module:object`` or a checkpoint directory.

    ``object`` may be an encoder instance or a class / zero-argument factory returning one
    (``a.b`` attribute paths are followed). The current directory is importable, as with
    ``python -m``. A directory must contain ``mmbench_model.json`` and ``model.safetensors``
    (see :func:`save_model`); weights are read with safetensors, never unpickled.

    Example:
        >>> model = load_model("mmbench.testing.oracles:LatentOracle")
        >>> model = load_model("runs/infonce-seed0")   # a directory written by save_model
    """
    text = os.fspath(spec)
    path = Path(text)
    if path.is_dir():
        return _load_dir(path)
    module_name, sep, attr = text.partition(":")
    if not sep or not module_name or not attr:
        hint = " (it looks like a path, but no such directory exists)" if ("/" in text or os.sep in text) else ""
        raise SubmissionError(
            f"Cannot load model {text!r}{hint}: expected 'package.module:object' (an encoder, or a "
            f"class/factory returning one) or a directory containing {MODEL_FILE} and {WEIGHTS_FILE}."
        )
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SubmissionError(f"Cannot import module {module_name!r} for model {text!r}: {exc}.") from exc
    finally:
        if added:
            sys.path.remove(cwd)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            from mmbench.errors import did_you_mean

            listing = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
            raise SubmissionError(f"Module {module_name!r} has no attribute {attr!r}.{did_you_mean(part, names)} Available: {listing}.")
        obj = getattr(obj, part)
    if inspect.isclass(obj) or (callable(obj) and not callable(getattr(obj, "encode", None))):
        try:
            obj = obj()
        except TypeError as exc:
            raise SubmissionError(
                f"{text!r} is a class or factory; it must be callable with no arguments to be loaded from "
                f"the command line ({exc}). Expose a configured instance instead, e.g. model = MyModel(...)."
            ) from exc
    check_encoder(obj)
    return obj


class _Carded:
    """Attach a card from ``mmbench_model.json`` to a model object that has none."""

    def __init__(self, model: Any, card: ModelCard) -> None:
        self.model = model
        self.card = card

    def encode(self, batch: Mapping[str, Any], *, modality: str, **kwargs: Any) -> Any:
        return self.model.encode(batch, modality=modality, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


def _load_dir(path: Path) -> Any:
    meta_path = path / MODEL_FILE
    if not meta_path.is_file():
        raise SubmissionError(
            f"{path} is a directory but has no {MODEL_FILE}. A checkpoint directory holds {MODEL_FILE} "
            f"(card, factory, kwargs) and {WEIGHTS_FILE}; write one with mmbench.harness.save_model(model, dir)."
        )
    try:
        meta = json.loads(meta_path.read_text())
        factory_spec, kwargs, card_dict = meta["factory"], meta.get("kwargs", {}), meta["card"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SubmissionError(f"{meta_path} is unreadable or lacks 'factory'/'card': {exc!r}.") from exc
    if meta.get("format", MODEL_FORMAT) != MODEL_FORMAT:
        raise SubmissionError(f"{meta_path} has format {meta.get('format')!r}; this mmbench reads {MODEL_FORMAT!r}.")
    card = ModelCard.from_dict(card_dict)
    module_name, _, attr = str(factory_spec).partition(":")
    try:
        factory: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            factory = getattr(factory, part)
    except (ImportError, AttributeError) as exc:
        raise SubmissionError(f"Cannot import the factory {factory_spec!r} named in {meta_path}: {exc}.") from exc
    model = factory(**kwargs)
    weights_path = path / meta.get("weights", WEIGHTS_FILE)
    if weights_path.is_file():
        from safetensors.torch import load_file

        state = load_file(str(weights_path))
        loader = getattr(model, "load_state_dict", None)
        if loader is None:
            raise SubmissionError(f"The model built by {factory_spec!r} has no load_state_dict(); cannot load {weights_path}.")
        loader(state)
    elif meta.get("weights", WEIGHTS_FILE):
        raise SubmissionError(f"{path} has no weights file {weights_path.name!r}.")
    if hasattr(model, "eval"):
        model.eval()
    if getattr(model, "card", None) is None:
        model = _Carded(model, card)
    check_encoder(model)
    return model


def save_model(model: Any, directory: str | os.PathLike[str], *, factory: str, kwargs: Mapping[str, Any] | None = None,
               card: ModelCard | None = None) -> Path:
    """Write a checkpoint directory that :func:`load_model` reads: JSON metadata + safetensors weights.

    Args:
        model: a ``torch.nn.Module`` encoder (its ``state_dict`` is saved).
        directory: created if needed; files are written atomically.
        factory: ``"package.module:callable"`` that rebuilds the model from ``kwargs``.
        kwargs: JSON-serialisable keyword arguments for ``factory``.
        card: defaults to ``model.card``.

    Example:
        >>> save_model(enc, "runs/mlp", factory="mmbench.harness.submission:MLPEncoder", kwargs=enc.config)
    """
    from safetensors.torch import save_file

    card = card or check_encoder(model)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": MODEL_FORMAT, "card": card.to_dict(), "factory": factory, "kwargs": to_jsonable(dict(kwargs or {})),
            "weights": WEIGHTS_FILE}
    tmp_w = out / f".{WEIGHTS_FILE}.tmp-{os.getpid()}"
    tmp_m = out / f".{MODEL_FILE}.tmp-{os.getpid()}"
    try:
        save_file(state, str(tmp_w))
        tmp_m.write_text(json.dumps(meta, indent=1, sort_keys=True))
        os.replace(tmp_w, out / WEIGHTS_FILE)
        os.replace(tmp_m, out / MODEL_FILE)
    finally:
        tmp_w.unlink(missing_ok=True)
        tmp_m.unlink(missing_ok=True)
    return out
