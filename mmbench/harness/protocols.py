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
  in ``model.safetensors`` (never a pickle: loading a submission must not execute its data);
* a training run directory written by ``mmbench train --out DIR`` (``config.json`` +
  ``checkpoint.safetensors``): it always builds mmbench's own model class of the run's family
  (a ``ContrastiveModel``, or a ``MultimodalVAE`` for the VAE families) from the validated train
  config, and reads the weights with safetensors.

A model may offer several representations of an input: its card's
``extra["representations"]`` maps each name to its dimension (MMVAE+: ``{"shared": 32,
"private": 32}``), and ``encode(batch, modality=m, part=name)`` returns that one;
``encode(batch, modality=m)`` is the first (the shared latent). :func:`representations` reads
them. A :class:`Generator` (a multimodal VAE) also has ``generate(batch, *, source, target,
generator=None)``; mmbench's VAEs add ``generate_subsets`` (every subset in one pass) and
``sample(n, *, generator)`` (unconditional), each with an explicit ``torch.Generator``.

A checkpoint directory is *data*, so by default the factory it names must be one of mmbench's own
model classes: a ``torch.nn.Module`` subclass defined in an ``mmbench.*`` module (e.g.
``mmbench.harness.submission:MLPSubmission``). Any other factory would run code chosen by whoever
wrote the JSON file; it is refused unless the caller opts in with ``trust_factory=True``
(``mmbench evaluate --trust-factory``), which is for checkpoints whose code you trust, as you
would trust ``--model package.module:object``. The weights file must exist and is always read
with safetensors.

Example:
    >>> class MyModel:
    ...     card = ModelCard(name="my-model", revision="1", modalities=("x", "t"), embedding_dim=8)
    ...     def encode(self, batch, *, modality):
    ...         return self.nets[modality](batch[modality])
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import inspect
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mmbench.core.storage import atomic_path, atomic_write
from mmbench.errors import InvalidConfigError, MMBenchError, SubmissionError
from mmbench.versioning import strict_fields, to_jsonable

if TYPE_CHECKING:
    from mmbench.core.latents import LatentSpec

__all__ = [
    "MODEL_FILE",
    "TRUSTED_FACTORY_PREFIX",
    "WEIGHTS_FILE",
    "Encoder",
    "EvalContext",
    "Generator",
    "ModelCard",
    "check_encoder",
    "is_generator",
    "load_model",
    "representations",
    "save_model",
]

MODEL_FILE = "mmbench_model.json"
WEIGHTS_FILE = "model.safetensors"
MODEL_FORMAT = "mmbench-model/1"
#: Factories of checkpoint directories loaded without ``trust_factory`` must live under this package.
TRUSTED_FACTORY_PREFIX = "mmbench"


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
        input_shapes: optional modality → per-example input shape the model takes (e.g.
            ``{"x1": (15,)}``); a suite entry whose modality has another shape is recorded as not
            applicable instead of failing in ``encode``. Empty: any shape.
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
    input_shapes: Mapping[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)
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
        shapes = self.input_shapes
        if not isinstance(shapes, Mapping) or not all(
            isinstance(m, str) and isinstance(v, list | tuple) and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in v)
            for m, v in shapes.items()
        ):
            raise InvalidConfigError(f"ModelCard.input_shapes must map modality names to shapes of positive ints, got {shapes!r}.")
        object.__setattr__(self, "input_shapes", {m: tuple(v) for m, v in shapes.items()})
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
        return cls(**strict_fields(cls, d, what="model card field"))


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


def representations(model: Any) -> dict[str, int | None]:
    """Representation name → dimension that ``model`` encodes (``encode(..., part=name)``).

    The card's ``extra["representations"]`` when it names some (e.g. MMVAE+'s shared and
    private latents), else the single ``{"shared": card.embedding_dim}`` that plain
    ``encode(batch, *, modality)`` returns.

    Example:
        >>> representations(mmvaeplus_model)
        {'shared': 32, 'private': 32}
    """
    card = getattr(model, "card", None)
    extra = getattr(card, "extra", None) or (card.get("extra") if isinstance(card, Mapping) else None) or {}
    reps = extra.get("representations") if isinstance(extra, Mapping) else None
    if isinstance(reps, Mapping) and reps:
        return {str(k): (int(v) if v is not None else None) for k, v in reps.items()}
    dim = getattr(card, "embedding_dim", None) if not isinstance(card, Mapping) else card.get("embedding_dim")
    return {"shared": dim}


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
def load_model(spec: str | os.PathLike[str], *, trust_factory: bool = False) -> Any:
    """Load a submission from ``package.module:object`` or a checkpoint directory.

    ``object`` may be an encoder instance or a class / zero-argument factory returning one
    (``a.b`` attribute paths are followed). The current directory is importable, as with
    ``python -m``. A directory must contain ``mmbench_model.json`` and ``model.safetensors``
    (see :func:`save_model`); weights are read with safetensors, never unpickled.

    The loaded model gets a ``mmbench_source`` attribute (the spec, and for a directory its
    factory and the sha256 of its weights and metadata files) that ``evaluate`` records, so a
    result says which checkpoint was scored.

    Args:
        spec: ``package.module:object`` or a checkpoint directory.
        trust_factory: let a checkpoint directory name a factory outside mmbench's own
            ``torch.nn.Module`` classes. That runs code chosen by the directory's JSON file: only
            for checkpoints you trust.

    Raises:
        SubmissionError: what could not be loaded, and what to do.

    Example:
        >>> model = load_model("mmbench.testing.oracles:LatentOracle")
        >>> model = load_model("runs/infonce-seed0")   # a directory written by save_model
    """
    text = os.fspath(spec)
    path = Path(text)
    if path.is_dir():
        return _load_dir(path, spec=text, trust_factory=trust_factory)
    module_name, sep, attr = text.partition(":")
    if not sep or not module_name or not attr:
        hint = " (it looks like a path, but no such directory exists)" if ("/" in text or os.sep in text) else ""
        raise SubmissionError(
            f"Cannot load model {text!r}{hint}: expected 'package.module:object' (an encoder, or a "
            f"class/factory returning one) or a directory containing {MODEL_FILE} and {WEIGHTS_FILE}."
        )
    try:
        module = _import_from_cwd(module_name)
    except ImportError as exc:
        raise SubmissionError(f"Cannot import module {module_name!r} for model {text!r}: {exc}.") from exc
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
    _set_source(obj, {"spec": text, "type": "object"})
    return obj


def _import_from_cwd(module_name: str) -> Any:
    """Import ``module_name`` with the current directory importable, as with ``python -m``."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    finally:
        if added:
            sys.path.remove(cwd)


def _set_source(model: Any, source: dict[str, Any]) -> None:
    """Attach ``mmbench_source`` where the object allows it (best effort: provenance, not protocol)."""
    with contextlib.suppress(AttributeError, TypeError):
        model.mmbench_source = source


class _Carded:
    """Attach a card from ``mmbench_model.json`` to a model object that has none.

    Methods that return the module itself in torch (``to``, ``cpu``, ``cuda``, ``eval``,
    ``train``, ``float``...) return the *wrapper* here, so the card survives ``model.to(device)``.
    """

    _CHAINABLE = frozenset({"to", "cpu", "cuda", "eval", "train", "float", "double", "half", "bfloat16", "requires_grad_"})

    def __init__(self, model: Any, card: ModelCard) -> None:
        self.model = model
        self.card = card

    def encode(self, batch: Mapping[str, Any], *, modality: str, context: EvalContext | None = None) -> Any:
        # The context goes only to a model whose encode takes it.
        if context is not None and accepts_context(self.model):
            return self.model.encode(batch, modality=modality, context=context)
        return self.model.encode(batch, modality=modality)

    def __getattr__(self, name: str) -> Any:
        if name == "model":  # not set yet (e.g. during copy/unpickling): never recurse
            raise AttributeError(name)
        attr = getattr(self.model, name)
        if name in self._CHAINABLE and callable(attr):
            def chained(*args: Any, **kwargs: Any) -> Any:
                out = attr(*args, **kwargs)
                if out is not self.model and out is not None:
                    self.model = out  # a method that returned a new object: keep wrapping it
                return self

            return chained
        return attr

    def __repr__(self) -> str:
        return f"_Carded({self.card.id!r}, {self.model!r})"


def _resolve_factory(factory_spec: Any, meta_path: Path, *, trust_factory: bool) -> Any:
    """Import the factory named in ``mmbench_model.json``; untrusted names are refused before import."""
    spec = factory_spec if isinstance(factory_spec, str) else ""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SubmissionError(
            f"{meta_path} names the factory {factory_spec!r}; expected 'package.module:Class', e.g. "
            "'mmbench.harness.submission:MLPSubmission'. Re-save the checkpoint with mmbench.harness.save_model."
        )
    in_mmbench = module_name == TRUSTED_FACTORY_PREFIX or module_name.startswith(TRUSTED_FACTORY_PREFIX + ".")
    refuse = (
        f"{meta_path} names the factory {spec!r}, which is not one of mmbench's own model classes "
        f"(a torch.nn.Module subclass defined under '{TRUSTED_FACTORY_PREFIX}.'). Loading it would run code chosen "
        "by the checkpoint's JSON file. Use an mmbench class such as 'mmbench.harness.submission:MLPSubmission', or, "
        "if you trust the code this checkpoint names, pass --trust-factory (load_model(..., trust_factory=True))."
    )
    if not trust_factory and not in_mmbench:
        raise SubmissionError(refuse)  # refused before the import: importing runs module code
    try:
        factory: Any = _import_from_cwd(module_name) if trust_factory else importlib.import_module(module_name)
        for part in attr.split("."):
            factory = getattr(factory, part)
    except (ImportError, AttributeError) as exc:
        raise SubmissionError(
            f"Cannot import the factory {spec!r} named in {meta_path}: {exc}. Check that the package that defines "
            "it is installed (and its version matches the one that saved the checkpoint)."
        ) from exc
    if not trust_factory:
        import torch

        owner = getattr(factory, "__module__", "") or ""
        if not (inspect.isclass(factory) and issubclass(factory, torch.nn.Module)
                and (owner == TRUSTED_FACTORY_PREFIX or owner.startswith(TRUSTED_FACTORY_PREFIX + "."))):
            raise SubmissionError(refuse)
    if not callable(factory):
        raise SubmissionError(f"The factory {spec!r} named in {meta_path} is a {type(factory).__name__}, not a class or function.")
    return factory


def _weights_file(meta: Mapping[str, Any], path: Path, meta_path: Path) -> Path:
    name = meta.get("weights", WEIGHTS_FILE)
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", "..") or not name.endswith(".safetensors"):
        raise SubmissionError(
            f"{meta_path} names the weights file {name!r}; expected the name of a '.safetensors' file inside {path} "
            f"(default {WEIGHTS_FILE!r}). Every checkpoint directory must hold its weights; re-save it with "
            "mmbench.harness.save_model."
        )
    weights_path = path / name
    if not weights_path.is_file():
        raise SubmissionError(
            f"{path} has no weights file {name!r} (named in {MODEL_FILE}). Copy the checkpoint's safetensors file "
            "there, or re-save it with mmbench.harness.save_model."
        )
    return weights_path


def _load_dir(path: Path, *, spec: str, trust_factory: bool = False) -> Any:
    """A checkpoint directory (``mmbench_model.json`` + weights) or a training run directory as a model."""
    import hashlib

    meta_path = path / MODEL_FILE
    if not meta_path.is_file():
        return _load_training_run(path)
    meta, meta_bytes, card = _read_model_meta(meta_path)
    factory_spec, kwargs = meta["factory"], meta.get("kwargs", {})
    factory = _resolve_factory(factory_spec, meta_path, trust_factory=trust_factory)
    weights_path = _weights_file(meta, path, meta_path)  # checked before any model is built
    model = _build_from_factory(factory, factory_spec, kwargs, path)
    data = _load_weights(model, weights_path, factory_spec)
    if callable(getattr(model, "eval", None)):
        model.eval()
    if getattr(model, "card", None) is None:
        model = _Carded(model, card)
    check_encoder(model)
    _set_source(model, {
        "spec": spec, "type": "checkpoint", "directory": str(path.resolve()), "factory": factory_spec,
        "weights_file": weights_path.name, "weights_sha256": hashlib.sha256(data).hexdigest(),
        "metadata_sha256": hashlib.sha256(meta_bytes).hexdigest(), "trusted_factory": bool(trust_factory),
    })
    return model


def _load_training_run(path: Path) -> Any:
    """An ``mmbench train --out DIR`` run: mmbench's own model class of its family (a contrastive
    model or a multimodal VAE, which is also a :class:`Generator`), safetensors weights."""
    from mmbench.models.train import is_training_run, load_trained

    if is_training_run(path):
        try:
            return load_trained(path, device="cpu")
        except MMBenchError as exc:
            raise SubmissionError(f"Cannot load the training run {path} as a model: {exc}") from exc
    raise SubmissionError(
        f"{path} is a directory but neither a checkpoint directory nor a training run. A checkpoint directory holds "
        f"{MODEL_FILE} (card, factory, kwargs) and {WEIGHTS_FILE} (write one with mmbench.harness.save_model(model, dir)); "
        "a training run (`mmbench train --out DIR`) holds config.json and checkpoint.safetensors."
    )


def _read_model_meta(meta_path: Path) -> tuple[dict[str, Any], bytes, ModelCard]:
    """``mmbench_model.json``: its content, its bytes (hashed into the provenance) and its card, validated."""
    try:
        meta_bytes = meta_path.read_bytes()
        meta = json.loads(meta_bytes)
        _, kwargs, card_dict = meta["factory"], meta.get("kwargs", {}), meta["card"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SubmissionError(f"{meta_path} is unreadable or lacks 'factory'/'card': {exc!r}.") from exc
    if meta.get("format", MODEL_FORMAT) != MODEL_FORMAT:
        raise SubmissionError(f"{meta_path} has format {meta.get('format')!r}; this mmbench reads {MODEL_FORMAT!r}.")
    if not isinstance(kwargs, Mapping):
        raise SubmissionError(f"{meta_path}: 'kwargs' must be a JSON object of keyword arguments for the factory, got {type(kwargs).__name__}.")
    if not isinstance(card_dict, Mapping):
        raise SubmissionError(f"{meta_path}: 'card' must be a JSON object of ModelCard fields, got {type(card_dict).__name__}.")
    try:
        card = ModelCard.from_dict(card_dict)
    except (InvalidConfigError, TypeError) as exc:
        raise SubmissionError(f"{meta_path} has an invalid card: {exc}") from exc
    return meta, meta_bytes, card


def _build_from_factory(factory: Any, factory_spec: str, kwargs: Mapping[str, Any], path: Path) -> Any:
    try:
        return factory(**kwargs)
    except Exception as exc:
        raise SubmissionError(
            f"Building the model of {path} with {factory_spec}(**kwargs) failed: {type(exc).__name__}: {exc}. "
            f"Check that 'kwargs' in {MODEL_FILE} match the factory's signature in this mmbench version (re-save the "
            "checkpoint with mmbench.harness.save_model if it was written by another version)."
        ) from exc


def _load_weights(model: Any, weights_path: Path, factory_spec: str) -> bytes:
    """Load the safetensors weights into ``model``; returns the bytes loaded (for their sha256)."""
    loader = getattr(model, "load_state_dict", None)
    if not callable(loader):
        raise SubmissionError(f"The model built by {factory_spec!r} has no load_state_dict(); cannot load {weights_path}.")
    from safetensors.torch import load as load_safetensors

    try:
        data = weights_path.read_bytes()  # hash exactly the bytes that are loaded
        state = load_safetensors(data)
    except Exception as exc:
        raise SubmissionError(
            f"Cannot read the weights {weights_path}: {type(exc).__name__}: {exc}. It must be a safetensors file "
            "(written by mmbench.harness.save_model); pickled checkpoints are never loaded."
        ) from exc
    try:
        loader(state)
    except Exception as exc:
        raise SubmissionError(
            f"The weights in {weights_path} do not fit the model built by {factory_spec}(**kwargs): "
            f"{type(exc).__name__}: {exc}. Check that 'kwargs' in {MODEL_FILE} describe the architecture that was saved."
        ) from exc
    return data


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
        >>> save_model(enc, "runs/mlp", factory="mmbench.harness.submission:MLPSubmission", kwargs=enc.config)
    """
    from safetensors.torch import save_file

    card = card or check_encoder(model)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": MODEL_FORMAT, "card": card.to_dict(), "factory": factory, "kwargs": to_jsonable(dict(kwargs or {})),
            "weights": WEIGHTS_FILE}
    text = json.dumps(meta, indent=1, sort_keys=True)  # serialise first: a failure leaves nothing
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp))
    atomic_write(out / MODEL_FILE, text)
    return out
