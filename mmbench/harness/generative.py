"""Generative metrics: cross-modal coherence, unconditional coherence, importance-sampled log-likelihood.

These metrics score *generations*, not embeddings. Each is a pure function of the generations
(and the ground-truth labels), given the versioned per-modality digit classifiers of the dataset
(:class:`DigitClassifiers`, whose id and sha256 every result records); generation itself is the
model's (:meth:`mmbench.models.vae.model.MultimodalVAE.generate_subsets`).

* :func:`coherence_conditional` — the fraction of generated images whose predicted digit equals
  the digit of the conditioning tuple [thesis §2.5.2, Eq. 2.7], for every (subset → target) pair
  at once, aggregated as the papers report it: ``leave_one_out`` (input: all other modalities;
  aggregating models), ``pairwise`` (one input, every other target; MMVAE, MMVAE+) and
  ``by_num_inputs`` (mean over the subsets of each size and the targets outside them, the MoPoE
  paper's Fig. 5.1b / MultiVae's 1–4-input figures).
* :func:`coherence_unconditional` — the fraction of prior samples whose M generated modalities
  all receive the same predicted digit (no ground truth needed).
* :func:`log_likelihood` — ``log p(x̄) ≈ log (1/K) Σ_k exp(log w_k)``, importance sampling with
  the model's joint posterior given all modalities as the proposal [thesis A.5].

Chance levels are reported with every score: ``1/C`` for conditional coherence, ``C^{1−M}`` for
unconditional coherence (all ``M`` independent uniform guesses agree).

Example:
    >>> clf = DigitClassifiers.load("polymnist")
    >>> gens = model.generate_subsets(batch, subsets=enumerate_subsets(model.modalities))
    >>> coherence_conditional(gens, batch["latents.digit"], clf, subsets=subsets)["leave_one_out"]
    0.84
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from mmbench.errors import InvalidConfigError, MMBenchError, did_you_mean
from mmbench.registry import Registry

__all__ = [
    "GENERATIVE_METRICS",
    "DigitClassifiers",
    "coherence_conditional",
    "coherence_from_predictions",
    "coherence_matrix",
    "coherence_unconditional",
    "log_likelihood",
    "log_mean_exp",
    "summarize_coherence",
]

#: Metrics that need generations (or importance weights), by name, with their semantics. Kept apart
#: from the probe metrics of :data:`mmbench.harness.metrics.METRICS` until ``evaluate`` grows a
#: generation step; ``needs`` says what the evaluation must produce for each.
GENERATIVE_METRICS: Registry[Callable[..., Any]] = Registry("generative metric")


@dataclasses.dataclass(frozen=True)
class DigitClassifiers:
    """Per-modality digit classifiers and their provenance.

    Args:
        models: modality → a callable mapping a uint8 image batch ``(n, C, H, W)`` tensor to
            logits ``(n, C_classes)`` (an ``nn.Module``; on ``device``).
        id: what they are (``"digit-cnn-v1@polymnist:1.0.0~<config fingerprint>"``).
        sha256: modality → sha256 of the weights file (empty for in-memory test classifiers).
        accuracy: modality → test accuracy recorded when they were trained.
        num_classes: number of digit classes (chance level ``1/num_classes``).
        device: where the models run.
    """

    models: Mapping[str, Callable[[Any], Any]]
    id: str
    sha256: Mapping[str, str] = dataclasses.field(default_factory=dict)
    accuracy: Mapping[str, float] = dataclasses.field(default_factory=dict)
    num_classes: int = 10
    device: str = "cpu"

    @classmethod
    def load(cls, dataset: Any, *, device: str = "cpu", **builder_kwargs: Any) -> DigitClassifiers:
        """The classifiers ``mmbench train-classifiers`` saved with ``dataset`` (hashes checked).

        Raises:
            CacheError: none were trained for this dataset version/config (with the command to
                train them), or a file was modified.
        """
        from mmbench.models.classifiers import _resolve_builder, classifier_report, load_classifiers

        b = _resolve_builder(dataset, **builder_kwargs)
        report = classifier_report(b)
        models = load_classifiers(b, device=device)
        ident = f"{report['architecture']}@{report['dataset']}~{report['config_fingerprint']}"
        return cls(models=models, id=ident, sha256={m: f["sha256"] for m, f in report["files"].items()},
                   accuracy=dict(report.get("accuracy", {})), device=str(device))

    def provenance(self) -> dict[str, Any]:
        """What a result records: id, per-modality sha256 and accuracy."""
        return {"id": self.id, "sha256": dict(self.sha256), "accuracy": dict(self.accuracy)}

    def predict(self, modality: str, images: Any, *, batch_size: int | None = None) -> np.ndarray:
        """Predicted digits of images ``(..., C, H, W)`` (uint8, or floats in [0, 1]) → ``(...)`` int64.

        ``batch_size`` defaults to 64 images per pass on a CPU (activations stay in cache: measured
        about twice as fast per image as 512 for digit-cnn-v1) and 8,192 on an accelerator.
        """
        import torch

        if batch_size is None:
            batch_size = 64 if torch.device(self.device).type == "cpu" else 8192
        if modality not in self.models:
            raise MMBenchError(
                f"No digit classifier for modality {modality!r} ({self.id}); it has {sorted(self.models)}."
                f"{did_you_mean(modality, self.models)}"
            )
        x = to_uint8_images(images)
        lead, flat = x.shape[:-3], x.reshape(-1, *x.shape[-3:])
        model = self.models[modality]
        if hasattr(model, "eval"):
            model.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(flat), batch_size):
                chunk = torch.from_numpy(np.ascontiguousarray(flat[i : i + batch_size])).to(self.device)
                out.append(np.asarray(model(chunk).argmax(-1).cpu()))
        pred = np.concatenate(out) if out else np.zeros(0, np.int64)
        return pred.astype(np.int64).reshape(lead)


def to_uint8_images(images: Any) -> np.ndarray:
    """Images as uint8 numpy (floats are read as [0, 1] intensities: clamped, ×255, rounded)."""
    arr = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.floating):
        raise InvalidConfigError(f"Generated images must be uint8 or floats in [0, 1], got dtype {arr.dtype}.")
    return np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


# ============================================================================ conditional coherence
def _subsets(subsets: Sequence[Sequence[str]], modalities: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    out = []
    for s in subsets:
        names = (s,) if isinstance(s, str) else tuple(s)
        unknown = [m for m in names if m not in modalities]
        if not names or unknown:
            raise InvalidConfigError(
                f"Subset {list(names)} {'is empty' if not names else f'names unknown modalities {unknown}'}"
                f"{did_you_mean(str(unknown[0]), modalities) if unknown else ''}; the generations cover {list(modalities)}."
            )
        out.append(names)
    return tuple(out)


def coherence_matrix(predictions: Mapping[str, np.ndarray], labels: np.ndarray) -> np.ndarray:
    """``[S, T]`` accuracy of predicted digits ``predictions[target]`` (``[S, n]``) against ``labels`` (``[n]``)."""
    y = np.asarray(labels).reshape(-1)
    cols = []
    for target, pred in predictions.items():
        p = np.asarray(pred)
        if p.ndim != 2 or p.shape[1] != len(y):
            raise InvalidConfigError(f"Predictions for {target!r} have shape {p.shape}; expected (num_subsets, {len(y)}).")
        cols.append((p == y[None, :]).mean(axis=1))
    return np.stack(cols, axis=1)


def summarize_coherence(acc: np.ndarray, subsets: Sequence[Sequence[str]], targets: Sequence[str],
                        modalities: Sequence[str]) -> dict[str, Any]:
    """Aggregate an ``[S, T]`` coherence matrix the ways the papers report it.

    ``leave_one_out``: mean over every modality ``i`` of the entry with input ``modalities ∖ {i}``;
    ``pairwise``: mean over all ordered pairs ``j → i``, ``j ≠ i``; either is ``None`` unless every
    entry it needs was generated (``leave_one_out_per_target`` shows the ones that were).
    ``by_num_inputs[k]``: mean over the generated subsets of size ``k`` and targets outside them.
    """
    mods, index = tuple(modalities), {tuple(sorted(s)): i for i, s in enumerate(subsets)}
    tcol = {t: j for j, t in enumerate(targets)}

    def entry(source: Sequence[str], target: str) -> float | None:
        i = index.get(tuple(sorted(source)))
        return None if i is None or target not in tcol else float(acc[i, tcol[target]])

    loo = {t: entry([m for m in mods if m != t], t) for t in mods}
    pairs = [entry([s], t) for t in mods for s in mods if s != t]
    by_k: dict[int, list[float]] = {}
    for i, s in enumerate(subsets):
        for t in targets:
            if t not in s:
                by_k.setdefault(len(s), []).append(float(acc[i, tcol[t]]))
    return {
        "leave_one_out": _mean_or_none(list(loo.values())),
        "leave_one_out_per_target": loo,
        "pairwise": _mean_or_none(pairs),
        "by_num_inputs": {k: float(np.mean(v)) for k, v in sorted(by_k.items())},
        "matrix": [{"source": list(s), "target": t, "coherence": float(acc[i, j])}
                   for i, s in enumerate(subsets) for j, t in enumerate(targets)],
    }


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    return None if not values or any(v is None for v in values) else float(np.mean(values))  # type: ignore[arg-type]


@GENERATIVE_METRICS.register("coherence_conditional", higher_is_better=True, needs="conditional_generations",
                             main_key="leave_one_out", range=(0.0, 1.0))
def coherence_conditional(generations: Mapping[str, Any], labels: Any, classifiers: DigitClassifiers, *,
                          subsets: Sequence[Sequence[str]], modalities: Sequence[str] | None = None,
                          batch_size: int | None = None) -> dict[str, Any]:
    """Conditional coherence of generations from every subset, classified in one pass per target.

    Args:
        generations: target → images ``[S, n, C, H, W]`` generated from ``subsets[s]`` for the
            ``n`` tuples (uint8, or floats in [0, 1]).
        labels: the ``n`` tuples' ground-truth digits.
        classifiers: the dataset's digit classifiers.
        subsets: the conditioning subsets, in the order of the generations' first axis.
        modalities: all modalities of the model (default: the classifiers').
        batch_size: classifier batch size (default: :meth:`DigitClassifiers.predict`'s).

    Returns:
        ``leave_one_out``, ``leave_one_out_per_target``, ``pairwise``, ``by_num_inputs``,
        ``matrix`` (every subset → target), ``chance``, ``num_examples`` and ``classifiers``
        (id, sha256, accuracy).

    Example:
        >>> coherence_conditional({"m1": gen}, y, clf, subsets=[("m0",)])["pairwise"]
    """
    mods = tuple(modalities) if modalities is not None else tuple(classifiers.models)
    subs = _subsets(subsets, mods)
    y = np.asarray(labels).reshape(-1)
    for t in generations:
        shape = np.shape(generations[t])
        if len(shape) < 2 or shape[0] != len(subs) or shape[1] != len(y):
            raise InvalidConfigError(
                f"Generations of {t!r} have shape {shape}; expected ({len(subs)} subsets, {len(y)} examples, ...)."
            )
    predictions = {t: classifiers.predict(t, g, batch_size=batch_size) for t, g in generations.items()}
    return coherence_from_predictions(predictions, y, classifiers, subsets=subs, modalities=mods)


def coherence_from_predictions(predictions: Mapping[str, np.ndarray], labels: Any, classifiers: DigitClassifiers, *,
                               subsets: Sequence[Sequence[str]], modalities: Sequence[str]) -> dict[str, Any]:
    """:func:`coherence_conditional` from predicted digits ``predictions[target]`` (``[S, n]``).

    The streaming form: generate and classify one data batch at a time (``classifiers.predict``),
    concatenate the predictions along the examples axis, and score once — the generations of a
    whole test split never need to be held in memory.
    """
    mods = tuple(modalities)
    subs = _subsets(subsets, mods)
    y = np.asarray(labels).reshape(-1)
    acc = coherence_matrix(predictions, y)
    if acc.shape[0] != len(subs):
        raise InvalidConfigError(f"Predictions cover {acc.shape[0]} subsets, but {len(subs)} subsets were named.")
    out = summarize_coherence(acc, subs, tuple(predictions), mods)
    out.update({"chance": 1.0 / classifiers.num_classes, "num_examples": len(y), "classifiers": classifiers.provenance()})
    return out


# ============================================================================ unconditional coherence
@GENERATIVE_METRICS.register("coherence_unconditional", higher_is_better=True, needs="prior_samples",
                             main_key="coherence", range=(0.0, 1.0))
def coherence_unconditional(samples: Mapping[str, Any], classifiers: DigitClassifiers, *,
                            batch_size: int | None = None) -> dict[str, Any]:
    """Fraction of prior samples whose generated modalities all get the same predicted digit.

    Args:
        samples: modality → ``[n, C, H, W]`` images decoded from the same ``n`` prior draws.
        classifiers: the dataset's digit classifiers.

    Returns:
        ``coherence``, ``chance`` (``C^{1−M}``), ``digit_distribution`` (the frequency of each digit
        among the coherent samples: a model that always draws one digit is coherent but not
        diverse), ``num_samples`` and ``classifiers``.
    """
    mods = tuple(samples)
    if len(mods) < 2:
        raise InvalidConfigError(f"Unconditional coherence compares at least 2 modalities, got {list(mods)}.")
    preds = np.stack([classifiers.predict(m, samples[m], batch_size=batch_size).reshape(-1) for m in mods])  # [M, n]
    if len({p.shape for p in preds}) != 1:
        raise InvalidConfigError("Every modality needs the same number of samples.")
    agree = (preds == preds[:1]).all(axis=0)
    counts = np.bincount(preds[0][agree], minlength=classifiers.num_classes)
    return {
        "coherence": float(agree.mean()) if agree.size else float("nan"),
        "chance": float(classifiers.num_classes ** (1 - len(mods))),
        "digit_distribution": (counts / max(1, counts.sum())).round(6).tolist(),
        "num_samples": int(preds.shape[1]),
        "classifiers": classifiers.provenance(),
    }


# ============================================================================ log-likelihood
def log_mean_exp(log_w: Any, axis: int = 0) -> np.ndarray:
    """``log (1/K) Σ_k exp(log_w_k)`` along ``axis``, computed stably (float64)."""
    a = np.asarray(log_w.detach().cpu() if hasattr(log_w, "detach") else log_w, dtype=np.float64)
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.squeeze(top, axis=axis) + np.log(np.mean(np.exp(a - top), axis=axis))


@GENERATIVE_METRICS.register("log_likelihood", higher_is_better=True, needs="importance_weights",
                             main_key="log_likelihood", range=None)
def log_likelihood(model: Any, batches: Iterable[Mapping[str, Any]], *, num_samples: int = 12, seed: int = 0,
                   device: Any = None) -> dict[str, Any]:
    """Importance-sampled joint log-likelihood ``log p(x̄)`` per example, averaged over the data.

    Args:
        model: has ``log_importance_weights(batch, *, num_samples, generator) -> [K, n]``.
        batches: batches of every modality's column.
        num_samples: importance samples ``K`` per example (the MoPoE reference uses 12; the
            estimate is a lower bound in expectation that tightens as ``K`` grows).
        seed: seeds the ``torch.Generator`` (on the model's device) that draws the samples.
        device: the generator's device (default: the model's).

    Returns:
        ``log_likelihood`` (mean over examples, nats), ``std`` over examples, ``num_examples``,
        ``num_samples`` and the ``proposal``.
    """
    import torch

    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise InvalidConfigError(f"num_samples must be a positive integer, got {num_samples!r}.")
    dev = torch.device(device) if device is not None else getattr(model, "device", torch.device("cpu"))
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    values = [log_mean_exp(model.log_importance_weights(b, num_samples=num_samples, generator=gen), axis=0) for b in batches]
    ll = np.concatenate(values) if values else np.zeros(0)
    if not np.all(np.isfinite(ll)):
        raise MMBenchError(f"The log-likelihood estimate is not finite for {int((~np.isfinite(ll)).sum())} examples.")
    return {
        "log_likelihood": float(ll.mean()) if ll.size else float("nan"),
        "std": float(ll.std()) if ll.size else float("nan"),
        "num_examples": int(ll.size),
        "num_samples": num_samples,
        "proposal": "joint posterior given all modalities",
    }
