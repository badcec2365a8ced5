"""The ``generative`` metric kind: metrics that need the model's generations, not the harness's embeddings.

Registered (lazily, by name) in :data:`~mmbench.harness.metrics.METRICS` with ``type="generative"``,
so that suites pin them like any metric, and run by :data:`GENERATIVE_KIND`, one step of
:func:`~mmbench.harness.evaluate.evaluate` (:mod:`mmbench.harness.kinds`):

* ``coherence_conditional`` — generate every modality from every conditioning subset (``subsets``:
  ``"all"`` 2^M − 1, or ``"leave_one_out_pairwise"``: the M singletons and the M leave-one-out
  subsets) for the score split's tuples, one posterior draw each, and classify them with the
  dataset's versioned digit classifiers: ``leave_one_out`` (main), ``pairwise``, ``inputs_k``
  (mean over the subsets of size ``k``) and the full matrix;
* ``coherence_unconditional`` — ``num_samples`` prior draws decoded into every modality: the
  fraction whose modalities all get the same digit;
* ``linear_probe_accuracy`` — a logistic-regression probe of the digit from each modality's
  posterior mean, separately for the shared latent (``shared``, main) and, for models with
  modality-specific latents (MMVAE+), the private one (``private``: leakage, lower is better);
* ``log_likelihood`` — the importance-sampled joint log-likelihood of the score split;
* ``fid`` — Fréchet Inception distance of prior samples to the score split, per modality, only
  when the Inception weights are available locally (never downloaded): otherwise the metric is
  recorded as ``status: "skipped"`` with the reason.

Every record carries its inputs (split, rows, subsets, samples) and, for the coherence metrics,
the classifiers' id and sha256. A model that is not a :class:`~mmbench.harness.protocols.Generator`
gets these metrics recorded as ``n/a`` with the reason.

What a model must expose (all with an explicit ``generator: torch.Generator``):
``generate_subsets(batch, *, subsets, targets, generator) -> {target: [S, n, ...]}`` (or
``generate(batch, *, source, target, generator)``, called per subset), ``sample(n, *, targets,
generator) -> {target: [n, ...]}``, ``log_importance_weights(batch, *, num_samples, generator) ->
[K, n]`` and ``encode(batch, *, modality, part)`` with ``card.extra["representations"]`` naming the
parts (``{"shared": d, "private": d'}``). A metric whose method is missing is ``n/a``.

Example:
    >>> suite = get_suite("polymnist-generative:v1")
    >>> r = mmbench.evaluate(vae, suite)
    >>> r.value("polymnist", "coherence_conditional")      # leave-one-out coherence
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import CacheError, InvalidConfigError, MMBenchError, SubmissionError
from mmbench.harness.kinds import (
    EntryContext,
    EntryPlan,
    EntryState,
    MetricKind,
    stats,
    status_record,
)
from mmbench.harness.metrics import METRICS, ProbeData
from mmbench.versioning import to_jsonable

__all__ = ["GENERATIVE_KIND", "GenerationData", "MetricNotApplicable", "MetricSkipped", "frechet_distance",
           "generate_from_subsets", "inception_features"]

#: Tuples per generation pass: S subsets × this many images per target are held at once.
GENERATION_BATCH = 256


class MetricNotApplicable(MMBenchError):
    """The model lacks what a generative metric needs (recorded as ``n/a`` with this message)."""


class MetricSkipped(MMBenchError):
    """An optional metric cannot run here (recorded as ``skipped`` with this message), e.g. FID without weights."""


# ============================================================================ inputs of a generative metric
@dataclasses.dataclass
class GenerationData:
    """What a generative metric gets: the model, the entry's splits and the dataset's classifiers.

    Args:
        model: the submission (a Generator).
        state: the entry's loaded splits and rows (:class:`~mmbench.harness.kinds.EntryState`).
        modalities: the dataset's modalities (all of which the model generates).
        device: where batches go.
        classifiers: returns the dataset's :class:`~mmbench.harness.generative.DigitClassifiers`
            (loaded once, on first call).
        status: shows progress text.
    """

    model: Any
    state: EntryState
    modalities: tuple[str, ...]
    device: Any
    classifiers: Callable[[], Any]
    status: Callable[[str], None] = lambda text: None
    cache: dict[Any, Any] = dataclasses.field(default_factory=dict)

    def split(self, which: str) -> tuple[Any, int]:
        """The ``"fit"`` or ``"score"`` dataset and its rows used."""
        st = self.state
        return (st.ds_score, st.n_score) if which == "score" else (st.ds_fit, st.n_fit)

    def rows(self, which: str = "score", cap: int | None = None) -> int:
        n = self.split(which)[1]
        return n if cap is None else min(int(cap), n)

    def batches(self, which: str = "score", *, rows: int | None = None, batch_size: int = GENERATION_BATCH,
                columns: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """The split's first ``rows`` examples (default: the entry's) as torch batches on the device."""
        from mmbench.core.torch_data import to_torch

        ds, _ = self.split(which)
        n, start = self.rows(which, rows), 0
        for batch in ds.batches(batch_size, columns=list(columns or self.modalities)):
            if start >= n:
                break
            batch = {k: v[: n - start] for k, v in batch.items()}
            start += len(next(iter(batch.values())))
            yield {k: to_torch(v, self.device) for k, v in batch.items()}

    def labels(self, latent: str, which: str = "score", rows: int | None = None) -> np.ndarray:
        ds, _ = self.split(which)
        if latent not in ds.latent_spec.names:
            raise InvalidConfigError(f"The dataset {ds.id} has no latent {latent!r}; it has {list(ds.latent_spec.names)}.")
        return np.asarray(ds.latents([latent])[latent][: self.rows(which, rows)]).reshape(-1)

    def generator(self, rng: np.random.Generator) -> Any:
        """A ``torch.Generator`` on the model's device, seeded from ``rng``."""
        import torch

        dev = getattr(self.model, "device", None) or self.device
        return torch.Generator(device=torch.device(dev)).manual_seed(int(rng.integers(2**62)))

    def method(self, name: str, metric: str) -> Callable[..., Any]:
        fn = getattr(self.model, name, None)
        if not callable(fn):
            raise MetricNotApplicable(f"{metric} needs the model's {name}(), which {type(self.model).__name__} does not have")
        return fn


def generates(model: Any) -> bool:
    """Whether ``model`` generates: a :class:`~mmbench.harness.protocols.Generator` (``generate``), or
    a model with the batched ``generate_subsets`` only."""
    return any(callable(getattr(model, name, None)) for name in ("generate", "generate_subsets"))


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def generate_from_subsets(model: Any, batch: Mapping[str, Any], subsets: Sequence[Sequence[str]], targets: Sequence[str],
                          generator: Any) -> dict[str, Any]:
    """target → ``[S, n, ...]`` generations of ``batch`` from every subset: the model's
    ``generate_subsets`` (one pass) when it has one, else ``generate`` per subset and target."""
    import torch

    n = len(next(iter(batch.values())))
    gen_kw = lambda fn: {"generator": generator} if _accepts(fn, "generator") else {}  # noqa: E731
    try:
        if callable(getattr(model, "generate_subsets", None)):
            out = model.generate_subsets(batch, subsets=[tuple(s) for s in subsets], targets=list(targets), **gen_kw(model.generate_subsets))
        else:
            out = {t: torch.stack([torch.as_tensor(model.generate(batch, source=list(s), target=t, **gen_kw(model.generate)))
                                   for s in subsets]) for t in targets}
    except MMBenchError:
        raise
    except Exception as exc:
        raise SubmissionError(f"The model raised {type(exc).__name__} while generating from subsets {list(subsets)[:3]}...: {exc}") from exc
    for t in targets:
        shape = tuple(np.shape(out.get(t))) if isinstance(out, Mapping) else ()
        if len(shape) < 2 or shape[:2] != (len(subsets), n):
            raise SubmissionError(f"The model's generations of {t!r} have shape {shape}; expected ({len(subsets)} subsets, {n} examples, ...).")
    return out


def _subsets(kind: str, modalities: Sequence[str]) -> list[tuple[str, ...]]:
    from mmbench.models.vae.distributions import enumerate_subsets

    if kind == "all":
        return [tuple(s) for s in enumerate_subsets(tuple(modalities))]
    if kind == "leave_one_out_pairwise":
        return [(m,) for m in modalities] + [tuple(o for o in modalities if o != m) for m in modalities if len(modalities) > 2]
    raise InvalidConfigError(f"coherence_conditional: subsets must be 'all' or 'leave_one_out_pairwise', got {kind!r}.")


# ============================================================================ the metrics
def coherence_conditional_metric(data: GenerationData, *, rng: np.random.Generator, backend: str = "torch",
                                 device: Any = None, subsets: str = "all", n_score: int | None = None,
                                 latent: str = "digit") -> dict[str, Any]:
    """Conditional coherence from every conditioning subset (streamed: generate, classify, drop)."""
    from mmbench.harness.generative import coherence_from_predictions

    mods, clf = data.modalities, data.classifiers()
    subs, gen = _subsets(subsets, mods), data.generator(rng)
    preds: dict[str, list[np.ndarray]] = {t: [] for t in mods}
    n = data.rows("score", n_score)
    for i, batch in enumerate(data.batches(rows=n)):
        data.status(f"coherence_conditional: {len(subs)} subsets, tuples {i * GENERATION_BATCH}/{n}")
        out = generate_from_subsets(data.model, batch, subs, mods, gen)
        for t in mods:
            preds[t].append(clf.predict(t, out[t]))
    res = coherence_from_predictions({t: np.concatenate(p, axis=1) for t, p in preds.items()}, data.labels(latent, rows=n), clf,
                                     subsets=subs, modalities=mods)
    scores = {"leave_one_out": res["leave_one_out"], "pairwise": res["pairwise"],
              **{f"inputs_{k}": v for k, v in res["by_num_inputs"].items()}}
    ds, _ = data.split("score")
    return {"scores": scores, "values": {t: {"leave_one_out": v} for t, v in res["leave_one_out_per_target"].items() if v is not None},
            "details": {"chance": res["chance"], "classifiers": res["classifiers"], "matrix": res["matrix"],
                        "inputs": {"split": ds.split, "rows": n, "subsets": [list(s) for s in subs], "targets": list(mods),
                                   "generation": "one posterior draw per tuple and subset, decoder mean", "labels": latent}}}


def coherence_unconditional_metric(data: GenerationData, *, rng: np.random.Generator, backend: str = "torch",
                                   device: Any = None, num_samples: int = 10_000) -> dict[str, Any]:
    """Fraction of ``num_samples`` prior draws whose generated modalities all get the same digit."""
    from mmbench.harness.generative import coherence_unconditional

    samples = _prior_samples(data, num_samples, rng, "coherence_unconditional")
    res = coherence_unconditional(samples, data.classifiers())
    return {"scores": {"coherence": res["coherence"]},
            "details": {"chance": res["chance"], "digit_distribution": res["digit_distribution"], "classifiers": res["classifiers"],
                        "inputs": {"num_samples": res["num_samples"], "targets": list(data.modalities),
                                   "generation": "one prior draw per sample, decoder mean"}}}


def _prior_samples(data: GenerationData, num_samples: int, rng: np.random.Generator, metric: str) -> dict[str, np.ndarray]:
    """``num_samples`` prior draws decoded into every modality (uint8 numpy), in chunks."""
    from mmbench.harness.generative import to_uint8_images

    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise InvalidConfigError(f"{metric}: num_samples must be a positive integer, got {num_samples!r}.")
    sample, gen = data.method("sample", metric), data.generator(rng)
    kw = {"generator": gen} if _accepts(sample, "generator") else {}
    chunks: dict[str, list[np.ndarray]] = {m: [] for m in data.modalities}
    for start in range(0, num_samples, GENERATION_BATCH):
        data.status(f"{metric}: prior samples {start}/{num_samples}")
        out = sample(min(GENERATION_BATCH, num_samples - start), targets=list(data.modalities), **kw)
        for m in data.modalities:
            chunks[m].append(to_uint8_images(out[m]))
    return {m: np.concatenate(c) for m, c in chunks.items()}


def linear_probe_accuracy(data: GenerationData, *, rng: np.random.Generator, backend: str = "torch", device: Any = None,
                          latent: str = "digit", n_fit: int | None = None, C: float = 1.0, max_iter: int = 1000) -> dict[str, Any]:
    """Logistic-regression accuracy of ``latent`` from each modality's posterior mean, per latent part.

    ``shared``: the shared latent (higher is better); ``private``: a model's modality-specific
    latent, where it has one (leakage of shared information: lower is better, chance ``1/C``).
    """
    fn = METRICS.get("acc_logistic")
    parts = _parts(data)
    y_fit, y_score = data.labels(latent, "fit"), data.labels(latent, "score")
    values: dict[str, dict[str, float]] = {m: {} for m in data.modalities}
    for part in parts:
        for m in data.modalities:
            z_fit, z_score = (_part_embedding(data, m, part, which) for which in ("fit", "score"))
            probe = ProbeData(z_fit, z_score, {latent: y_fit}, {latent: y_score})
            values[m][part] = float(fn(probe, rng=rng, backend=backend, device=device, n_fit=n_fit, C=C, max_iter=max_iter)[latent])
    scores = {part: float(np.mean([values[m][part] for m in data.modalities])) for part in parts}
    fit_ds, _ = data.split("fit")
    score_ds, _ = data.split("score")
    return {"scores": scores, "values": values,
            "details": {"chance": 1.0 / max(1, len(np.unique(y_score))), "parts": {p: int(d) for p, d in parts.items()},
                        "inputs": {"fit_split": fit_ds.split, "fit_rows": len(y_fit) if n_fit is None else min(n_fit, len(y_fit)),
                                   "score_split": score_ds.split, "score_rows": len(y_score), "embedding": "posterior mean per modality",
                                   "latent": latent}}}


def _parts(data: GenerationData) -> dict[str, int]:
    card = data.model.card
    reps = dict((card.extra or {}).get("representations") or {})
    if not reps:
        return {"shared": int(card.embedding_dim or 0)}
    if any(p != "shared" for p in reps) and not _accepts(data.model.encode, "part"):
        raise MetricNotApplicable(f"the card names latent parts {sorted(reps)}, but encode() takes no 'part' argument")
    return {str(p): int(d) for p, d in reps.items()}


def _part_embedding(data: GenerationData, modality: str, part: str, which: str) -> np.ndarray:
    """The posterior mean of one part given one modality on a split (cached across seeds)."""
    from mmbench.harness.embedding import _embed

    key = ("part", modality, part, which)
    if key not in data.cache:
        data.status(f"linear_probe_accuracy: embedding {modality} ({part}, {which})")
        model, card = data.model, data.model.card
        adapter = _PartEncoder(model, dataclasses.replace(card, embedding_dim=None), part)
        ds, n = data.split(which)
        data.cache[key] = _embed(adapter, adapter.card, ds, modality, device=data.device, batch_size=GENERATION_BATCH * 4,
                                 n=n, ctx=None, latent_columns=(), where=f"split {ds.split!r} of {ds.id} ({part} latent)")
    return data.cache[key]


class _PartEncoder:
    """``encode(batch, modality=m)`` of one latent part of a model whose encode takes ``part``."""

    def __init__(self, model: Any, card: Any, part: str) -> None:
        self.model, self.card, self.part = model, card, part

    def encode(self, batch: Mapping[str, Any], *, modality: str) -> Any:
        if self.part == "shared" and not _accepts(self.model.encode, "part"):
            return self.model.encode(batch, modality=modality)
        return self.model.encode(batch, modality=modality, part=self.part)


def log_likelihood_metric(data: GenerationData, *, rng: np.random.Generator, backend: str = "torch", device: Any = None,
                          num_samples: int = 12, n_score: int | None = None) -> dict[str, Any]:
    """Importance-sampled joint log-likelihood (nats per tuple) of the score split, ``num_samples`` per tuple."""
    from mmbench.harness.generative import log_likelihood

    data.method("log_importance_weights", "log_likelihood")
    n = data.rows("score", n_score)
    data.status(f"log_likelihood: {n} tuples × {num_samples} importance samples")
    dev = getattr(data.model, "device", None) or data.device
    res = log_likelihood(data.model, data.batches(rows=n, batch_size=64), num_samples=num_samples,
                         seed=int(rng.integers(2**62)), device=dev)
    ds, _ = data.split("score")
    return {"scores": {"log_likelihood": res["log_likelihood"]},
            "details": {"std_over_examples": res["std"], "inputs": {"split": ds.split, "rows": res["num_examples"],
                                                                    "num_samples": num_samples, "proposal": res["proposal"]}}}


# ============================================================================ FID (optional)
def inception_features(device: Any) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """The 2048-d pool features of pytorch-fid's InceptionV3 and what they are, from local files only.

    Raises:
        MetricSkipped: pytorch-fid is not installed, or its weights file is not in
            ``$TORCH_HOME/hub/checkpoints`` (mmbench never downloads it).
    """
    try:
        from pytorch_fid.inception import FID_WEIGHTS_URL, InceptionV3
    except ImportError:
        raise MetricSkipped("FID needs the Inception network of pytorch-fid, which is not installed (pip install "
                            "pytorch-fid, then put its weights file in $TORCH_HOME/hub/checkpoints); mmbench never "
                            "downloads weights") from None
    import torch

    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(FID_WEIGHTS_URL)
    if not path.is_file():
        raise MetricSkipped(f"FID needs the Inception weights {path.name} at {path}, which is not there; mmbench never "
                            f"downloads them (fetch {FID_WEIGHTS_URL} yourself and place it there)")
    net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(device).eval()
    sha = hashlib.sha256(path.read_bytes()).hexdigest()

    def features(images: np.ndarray) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(images), 200):
                x = torch.from_numpy(np.ascontiguousarray(images[i : i + 200])).to(device).float().div_(255.0)
                out.append(net(x)[0].flatten(1).cpu().numpy().astype(np.float64))
        return np.concatenate(out)

    return features, f"pytorch-fid InceptionV3 pool3, {path.name} sha256 {sha}"


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``a`` and ``b`` (``(n, d)`` each)."""
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        eps = np.eye(len(s1)) * 1e-6
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def fid_metric(data: GenerationData, *, rng: np.random.Generator, backend: str = "torch", device: Any = None,
               num_samples: int = 10_000) -> dict[str, Any]:
    """Unconditional FID per modality: ``num_samples`` prior samples against the score split's images."""
    features, ident = inception_features(data.device)  # MetricSkipped when the weights are not local
    samples = _prior_samples(data, num_samples, rng, "fid")
    ds, n = data.split("score")
    values = {}
    for m in data.modalities:
        data.status(f"fid: Inception features of {m}")
        real = np.asarray(ds.column(m)[:n])
        values[m] = {"fid": frechet_distance(features(real), features(samples[m]))}
    return {"scores": {"mean": float(np.mean([v["fid"] for v in values.values()]))}, "values": values,
            "details": {"features": ident, "inputs": {"num_samples": num_samples, "reference": f"{ds.split} split, {n} images per modality",
                                                      "generation": "one prior draw per sample, decoder mean"}}}


# ============================================================================ the kind (one evaluation step)
class GenerativeKind(MetricKind):
    """Generative metrics: generate (from every subset, from the prior), then score; every seed its own draws."""

    name, order = "generative", 50

    def check(self, plan: EntryPlan, specs: Sequence[Any]) -> str:
        names = [m.name for m in specs]
        if not generates(plan.model):
            return (f"the model is not a Generator (it has no generate()/generate_subsets()), and the generative "
                    f"metrics {names} score generations")
        missing = [m for m in plan.dataset_modalities if m not in plan.modalities]
        if missing:
            return (f"the generative metrics {names} need every modality of the dataset {list(plan.dataset_modalities)}, "
                    f"but the model does not take {missing} ({plan.reason or 'card modalities or input shapes'})")
        needing = [m.name for m in specs if METRICS.metadata(m.name).get("needs_classifiers")]
        if needing:
            _require_classifiers(plan, needing)
        return ""

    def run(self, ctx: EntryContext, state: EntryState, specs: Sequence[Any]) -> None:
        t0 = time.perf_counter()
        data = GenerationData(model=ctx.model, state=state, modalities=tuple(state.modalities), device=ctx.device,
                              classifiers=_classifier_loader(ctx, state),
                              status=lambda text: ctx.progress.status(state.entry.label, text))
        for mspec in specs:
            state.metrics[mspec.name] = self._metric(ctx, state, data, mspec)
        if _is_image_data(state):
            ctx.progress.status(state.entry.label, "a sample of conditional generations")
            state.extra["generations"] = generation_sample(data, np.random.default_rng([ctx.seeds[0], state.index, 2**31]))
        state.timings["generate_s"] = round(time.perf_counter() - t0, 3)

    def _metric(self, ctx: EntryContext, state: EntryState, data: GenerationData, mspec: Any) -> dict[str, Any]:
        t0 = time.perf_counter()
        fn, mi = METRICS.get(mspec.name), list(state.entry.metrics).index(mspec)
        outs = []
        try:
            for seed in ctx.seeds:
                ctx.progress.status(state.entry.label, f"{mspec.name}, seed {seed}")
                rng = np.random.default_rng([seed, state.index, mi])
                outs.append(fn(data, rng=rng, backend=ctx.backend, device=ctx.device, **dict(mspec.params)))
                ctx.progress.step()
        except MetricSkipped as exc:
            return status_record(mspec, "skipped", str(exc), self.name)
        except MetricNotApplicable as exc:
            return status_record(mspec, "n/a", str(exc), self.name)
        return generative_record(mspec, outs, time.perf_counter() - t0)


def _is_image_data(state: EntryState) -> bool:
    shapes = [tuple(spec.shape) for spec in state.ds_score.info.modalities.values()]
    return all(len(s) == 3 and s[0] in (1, 3) for s in shapes)


def generation_sample(data: GenerationData, rng: np.random.Generator, *, tuples: int = 8) -> dict[str, Any]:
    """A PNG (base64) of conditional generations of the first ``tuples`` score tuples, for the leaderboard.

    Three rows per modality ``t``: the data, ``t`` generated from all the other modalities
    (leave-one-out) and from the next modality alone; one column per tuple.
    """
    import base64
    import io

    from mmbench.harness.generative import to_uint8_images
    from mmbench.rendering.grid import grid_image

    mods = data.modalities
    loo = [tuple(o for o in mods if o != t) for t in mods]
    single = [(mods[(i + 1) % len(mods)],) for i in range(len(mods))]
    subsets = list(dict.fromkeys(loo + single))
    batch = next(data.batches(rows=tuples))
    out = generate_from_subsets(data.model, batch, subsets, mods, data.generator(rng))
    rows: dict[str, np.ndarray] = {}
    for i, t in enumerate(mods):
        rows[f"{t}: data"] = to_uint8_images(batch[t])
        rows[f"{t} | {'+'.join(loo[i]) if len(mods) <= 3 else 'others'}"] = to_uint8_images(out[t][subsets.index(loo[i])])
        rows[f"{t} | {single[i][0]}"] = to_uint8_images(out[t][subsets.index(single[i])])
    buf = io.BytesIO()
    grid_image(rows, zoom=1).save(buf, format="PNG", optimize=True)
    ds, _ = data.split("score")
    return {"png_base64": base64.b64encode(buf.getvalue()).decode("ascii"), "rows": list(rows), "tuples": len(batch[mods[0]]),
            "split": ds.split, "generation": "one posterior draw per tuple and subset, decoder mean"}


def generative_record(mspec: Any, outs: Sequence[Mapping[str, Any]], seconds: float) -> dict[str, Any]:
    """A generative metric's record: every score and value as mean ± std over seeds, plus the first
    seed's details (inputs, classifiers, coherence matrix)."""
    meta = METRICS.metadata(mspec.name)
    summary = {k: stats([_num(o["scores"].get(k)) for o in outs]) for k in outs[0]["scores"]}
    record: dict[str, Any] = {"higher_is_better": meta["higher_is_better"], "params": to_jsonable(mspec.params),
                              "main_key": meta.get("main_key", "mean"), "type": "generative", "summary": summary}
    if outs[0].get("values"):
        record["values"] = {g: {n: stats([_num(o["values"][g].get(n)) for o in outs]) for n in lat}
                            for g, lat in outs[0]["values"].items()}
    record.update(to_jsonable(outs[0].get("details", {})))
    record["seconds"] = round(seconds, 3)
    return record


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


# ============================================================================ classifiers
def _classifier_loader(ctx: EntryContext, state: EntryState) -> Callable[[], Any]:
    """Load the entry's digit classifiers on first use (hashes checked), once per entry."""
    loaded: list[Any] = []

    def load() -> Any:
        if not loaded:
            from mmbench.harness.generative import DigitClassifiers

            loaded.append(DigitClassifiers.load(state.builder, device=str(ctx.device)))
        return loaded[0]

    return load


def _require_classifiers(plan: EntryPlan, metrics: Sequence[str]) -> None:
    """Raise a clear error when the entry's dataset has no trained digit classifiers (at plan time)."""
    from mmbench.models.classifiers import classifier_report

    b = plan.builder
    image = [m for m, spec in plan.dataset_modalities.items() if getattr(spec, "kind", "") == "image"]
    if "digit" not in plan.latent_kinds or not image:
        raise InvalidConfigError(
            f"{plan.where}: {metrics} score generations with per-modality digit classifiers, which exist only for "
            "PolyMNIST-type datasets (image modalities and a 'digit' latent: polymnist, translated_polymnist); "
            f"{b.id} has modalities {list(plan.dataset_modalities)} and latents {list(plan.latent_kinds)}."
        )
    try:
        classifier_report(b)
    except CacheError as exc:
        trained = _trained_classifiers(Path(b.cache_dir))
        command = (b.build_command() or f"mmbench build {b.name}").replace("mmbench build", "mmbench train-classifiers", 1)
        raise MMBenchError(
            f"{plan.where}: {metrics} need the digit classifiers of {b.id}, and none are usable ({exc}) Datasets with "
            f"trained digit classifiers in {b.cache_dir}: {trained or 'none'}. Train this config's with `{command}`."
        ) from None


def _trained_classifiers(cache_dir: Path) -> list[str]:
    """Dataset ids whose digit classifiers are saved in ``cache_dir``."""
    import json

    out = []
    for p in sorted(cache_dir.glob("**/classifiers/classifiers.json")):
        try:
            out.append(str(json.loads(p.read_text()).get("dataset", p.parent.parent.name)))
        except (OSError, ValueError):
            continue
    return out


GENERATIVE_KIND = GenerativeKind()
