"""Metric kinds: the steps ``evaluate`` runs on one suite entry, one step per kind of metric.

The evaluation of an entry is a pipeline (:func:`mmbench.harness.evaluate._evaluate_entry`):
*load* the probe-fit and score splits, then one step per metric kind the entry uses, in the kinds'
``order``, then *record*. A kind owns everything between load and record for its metrics: what it
needs from the model (embeddings, generations), scoring every seed, and its checks at plan time
(before any data is built). The built-in kinds, registered in :data:`METRIC_KINDS`:

* ``probe`` — embed every modality the model encodes, fit and score probes
  (:mod:`mmbench.harness.metrics`);
* ``generative`` — ask a :class:`~mmbench.harness.protocols.Generator` for generations (from every
  subset, from the prior), importance weights or part-wise embeddings, and score them
  (:mod:`mmbench.harness.generative_metrics`);
* ``derived`` — metrics computed from other metrics' per-seed values (after the others).

A metric declares its kind as ``type=`` when it is registered in
:data:`~mmbench.harness.metrics.METRICS`. A new kind of metric is a new :class:`MetricKind`
registered here, not another branch in ``evaluate``. A kind that does not apply to the model (a
``generative`` metric for a plain encoder) records its metrics as ``status: "n/a"`` with the reason;
when no kind of an entry applies, the whole entry is ``n/a``.

Example:
    >>> [k.name for k in kinds_of(entry)]
    ['probe', 'generative', 'derived']
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mmbench.errors import InvalidConfigError, SubmissionError
from mmbench.harness.metrics import METRICS, ProbeData
from mmbench.harness.protocols import EvalContext, ModelCard
from mmbench.registry import Registry
from mmbench.versioning import to_jsonable

__all__ = ["METRIC_KINDS", "EntryContext", "EntryPlan", "EntryState", "MetricKind", "kind_of", "kinds_of", "stats"]


# ============================================================================ shared state
@dataclasses.dataclass
class EntryContext:
    """What every entry of one run shares: the model, the settings and the progress display."""

    model: Any
    card: ModelCard
    mmbench: Any
    device: Any
    seeds: tuple[int, ...]
    backend: str
    batch_size: int
    cache_dir: Any
    data_dir: Any
    with_ctx: bool
    progress: Any


@dataclasses.dataclass
class EntryPlan:
    """Facts about one entry known before any data is built (what the kinds check at plan time)."""

    entry: Any
    where: str
    builder: Any
    card: ModelCard
    model: Any
    latent_names: list[str]
    latent_kinds: dict[str, str]
    dataset_modalities: Mapping[str, Any]
    modalities: list[str]  # the dataset's modalities the model encodes
    reason: str  # why it encodes none, when it encodes none
    n_fit: int
    n_seeds: int


@dataclasses.dataclass
class EntryState:
    """One entry between load and record: its data, and what the steps have produced so far."""

    entry: Any
    index: int
    ds_fit: Any
    ds_score: Any
    spec: Any
    latent_names: list[str]
    modalities: list[str]
    expected: tuple[str, ...]
    n_fit: int
    n_score: int
    builder: Any = None  # the entry's dataset builder (classifiers are saved with the data)
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: metric → modality → latent → per-seed values (what derived metrics read)
    per_seed: dict[str, Any] = dataclasses.field(default_factory=dict)
    embedding_dims: dict[str, int] = dataclasses.field(default_factory=dict)
    #: further fields of the entry's record that a step adds (e.g. ``generations``: a PNG sample)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)

    def latents(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The entry's latents on the fit and score rows."""
        lat_fit, lat_score = self.ds_fit.latents(self.latent_names), self.ds_score.latents(self.latent_names)
        return ({n: lat_fit[n][: self.n_fit] for n in self.latent_names}, {n: lat_score[n][: self.n_score] for n in self.latent_names})


def stats(values: Sequence[float]) -> dict[str, Any]:
    """``{"mean", "std", "per_seed"}`` of per-seed values (non-finite ones are left out of mean and std)."""
    arr = np.asarray(values, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    mean = float(finite.mean()) if finite.size else None
    std = float(finite.std(ddof=1)) if finite.size > 1 else (0.0 if finite.size else None)
    return {"mean": mean, "std": std, "per_seed": [float(v) if np.isfinite(v) else None for v in arr]}


# ============================================================================ the kind interface
def kind_of(metric: str) -> str:
    """The kind of a registered metric (``type`` in its metadata; ``"probe"`` when unset)."""
    return str(METRICS.metadata(metric).get("type", "probe"))


class MetricKind:
    """One step of an entry's evaluation: the metrics of one kind, from model output to records.

    Subclasses set ``name`` (the ``type`` its metrics declare) and ``order`` (steps run by
    increasing order; a kind that reads other metrics' values runs after them), and implement
    :meth:`run`; :meth:`check` and :meth:`units` have defaults.
    """

    name: str = ""
    order: int = 0

    def specs(self, entry: Any) -> list[Any]:
        """The entry's metrics of this kind."""
        return [m for m in entry.metrics if kind_of(m.name) == self.name]

    def check(self, plan: EntryPlan, specs: Sequence[Any]) -> str:
        """Validate ``specs`` for the entry (raise on a bad suite); return why the kind does not
        apply to the model (``""``: it applies)."""
        return ""

    def units(self, plan: EntryPlan, specs: Sequence[Any]) -> int:
        """Work units of this step for the progress bar (one per metric per seed by default)."""
        return len(specs) * plan.n_seeds

    def run(self, ctx: EntryContext, state: EntryState, specs: Sequence[Any]) -> None:
        """Compute the metrics and put their records into ``state.metrics``."""
        raise NotImplementedError

    def not_applicable(self, specs: Sequence[Any], reason: str) -> dict[str, Any]:
        """Records of metrics this kind cannot compute for this model."""
        return {m.name: status_record(m, "n/a", reason, self.name) for m in specs}


def status_record(mspec: Any, status: str, reason: str, kind: str) -> dict[str, Any]:
    """The record of a metric that was not computed (``status`` ``"n/a"`` or ``"skipped"``, and why)."""
    meta = METRICS.metadata(mspec.name)
    return {"higher_is_better": meta["higher_is_better"], "params": to_jsonable(mspec.params),
            "main_key": meta.get("main_key", "mean"), "type": kind, "status": status, "reason": reason, "summary": {}}


METRIC_KINDS: Registry[MetricKind] = Registry("metric kind")


def kinds_of(entry: Any) -> list[MetricKind]:
    """The kinds of the entry's metrics, in the order their steps run."""
    names = dict.fromkeys(kind_of(m.name) for m in entry.metrics)
    return sorted((METRIC_KINDS.get(n) for n in names), key=lambda k: k.order)


# ============================================================================ probe
def fits_each_seed(meta: Mapping[str, Any], params: Mapping[str, Any], n_fit: int) -> bool:
    """Whether a probe metric is fitted once per seed: stochastic probes, and subsamples below the rows embedded.

    A deterministic probe on all the fit rows gives one number, computed once for every seed.
    """
    cap = params.get("n_fit")
    resampled = bool(meta.get("subsamples_fit", False)) and cap is not None and int(cap) < n_fit
    return bool(meta.get("stochastic", True)) or resampled


class ProbeKind(MetricKind):
    """Probe metrics: embed (fit and score split, every modality the model encodes), then fit and score probes."""

    name, order = "probe", 0

    def check(self, plan: EntryPlan, specs: Sequence[Any]) -> str:
        kinds = plan.latent_kinds
        for m in specs:
            applies = METRICS.metadata(m.name).get("kinds", ())
            if not any(kinds[n] in applies for n in plan.latent_names):
                raise InvalidConfigError(
                    f"{plan.where}: metric {m.name!r} applies to {list(applies)} latents, but the entry's latents are "
                    f"{ {n: kinds[n] for n in plan.latent_names} }. Remove the metric or add latents it can score."
                )
        return "" if plan.modalities else plan.reason

    def units(self, plan: EntryPlan, specs: Sequence[Any]) -> int:
        """Embeddings (fit and score per modality) plus probe fits."""
        return probe_units(specs, plan.modalities, plan.latent_names, plan.latent_kinds, plan.n_fit, plan.n_seeds)

    def run(self, ctx: EntryContext, state: EntryState, specs: Sequence[Any]) -> None:
        t0 = time.perf_counter()
        emb = embed_entry(ctx, state)
        state.timings["embed_s"] = round(time.perf_counter() - t0, 3)
        state.embedding_dims = {m: int(emb[m][0].shape[1]) for m in state.modalities}
        records, per_seed = probe_metrics(ctx, state, specs, emb)
        state.metrics.update(records)
        state.per_seed.update(per_seed)


def probe_units(specs: Sequence[Any], modalities: Sequence[str], latent_names: Sequence[str], kinds: Mapping[str, str],
                n_fit: int, n_seeds: int) -> int:
    """Embeddings (fit and score per modality) plus the probe fits of ``specs``."""
    units = 2 * len(modalities)
    for m in specs:
        meta = METRICS.metadata(m.name)
        if not any(kinds[n] in meta.get("kinds", ()) for n in latent_names):
            continue
        units += len(modalities) * (n_seeds if fits_each_seed(meta, m.params, n_fit) else 1)
    return units


def embed_entry(ctx: EntryContext, state: EntryState) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(fit, score) embeddings of every modality; the two must have the same width."""
    from mmbench.harness.embedding import _embed

    spec, label = state.spec, state.entry.label
    gt_cols = [f"latents.{n}" for n in spec.names] if ctx.card.uses_ground_truth else []
    emb: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for m in state.modalities:
        pair = []
        for ds, n in ((state.ds_fit, state.n_fit), (state.ds_score, state.n_score)):
            ctx.progress.status(label, f"embedding {m} ({ds.split})")
            ectx = EvalContext(ds.id, ds.split, m, spec, state.expected, ctx.device) if ctx.with_ctx else None
            pair.append(_embed(ctx.model, ctx.card, ds, m, device=ctx.device, batch_size=ctx.batch_size, n=n, ctx=ectx,
                               latent_columns=gt_cols, where=f"split {ds.split!r} of {ds.id}"))
            ctx.progress.step()
        if pair[0].shape[1] != pair[1].shape[1]:
            raise SubmissionError(
                f"Model {ctx.card.id!r} returned embeddings of size {pair[0].shape[1]} on split {state.ds_fit.split!r} but "
                f"{pair[1].shape[1]} on split {state.ds_score.split!r} of {state.ds_score.id} (modality {m!r}); a modality's "
                "embedding must have the same size on every split, or the probes fitted on one cannot score the other."
            )
        emb[m] = (pair[0], pair[1])
    return emb


def probe_metrics(ctx: EntryContext, state: EntryState, specs: Sequence[Any],
                  emb: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every probe metric of the entry, per modality and seed: the records and the per-seed values."""
    kinds = {lat.name: lat.kind for lat in state.spec}
    y_fit, y_score = state.latents()
    metrics_out: dict[str, Any] = {}
    per_seed_values: dict[str, dict[str, dict[str, list[float]]]] = {}
    for mspec in specs:
        mi = list(state.entry.metrics).index(mspec)  # the metric's position seeds its probes
        meta = METRICS.metadata(mspec.name)
        t2 = time.perf_counter()
        targets = [n for n in state.latent_names if kinds[n] in meta.get("kinds", ())]
        vals: dict[str, dict[str, list[float]]] = {m: {n: [] for n in targets} for m in emb}
        for mo, m in enumerate(emb):
            if targets:
                data = ProbeData(emb[m][0], emb[m][1], {n: y_fit[n] for n in targets}, {n: y_score[n] for n in targets})
                _probe_seeds(ctx, state, mspec, meta, data, vals[m], (mi, mo), what=f"{mspec.name} on {m}")
        per_seed_values[mspec.name] = vals
        record = _metric_record(mspec, meta, vals, state.expected, time.perf_counter() - t2)
        cap = mspec.params.get("n_fit")
        record["fit_rows"] = fit_rows = state.n_fit if cap is None else min(int(cap), state.n_fit)
        record["fit_sampling"] = ("per_seed_subsample" if (bool(meta.get("subsamples_fit", False)) and fit_rows < state.n_fit)
                                  else "all_rows")
        metrics_out[mspec.name] = record
    return metrics_out, per_seed_values


def _probe_seeds(ctx: EntryContext, state: EntryState, mspec: Any, meta: Mapping[str, Any], data: ProbeData,
                 out: dict[str, list[float]], key: tuple[int, int], *, what: str) -> None:
    """One probe metric on one modality for every seed (fitted once when every seed would give the same number)."""
    fn = METRICS.get(mspec.name)
    fit_each_seed = fits_each_seed(meta, mspec.params, state.n_fit)
    cached: dict[str, float] | None = None
    for seed in ctx.seeds:
        if cached is None or fit_each_seed:
            ctx.progress.status(state.entry.label, f"{what}, seed {seed}")
            rng = np.random.default_rng([seed, state.index, *key])
            cached = fn(data, rng=rng, backend=ctx.backend, device=ctx.device, **dict(mspec.params))
            ctx.progress.step()
        for n in out:
            out[n].append(float(cached[n]))


def _metric_record(mspec: Any, meta: Mapping[str, Any], vals: Mapping[str, Mapping[str, list[float]]],
                   expected: Sequence[str], seconds: float) -> dict[str, Any]:
    exp = set(expected)
    summary: dict[str, Any] = {}
    groups = {"mean": lambda n: True, "identifiable": lambda n: n in exp, "non_identifiable": lambda n: n not in exp}
    for key, keep in groups.items():
        cells = [v for lat in vals.values() for n, v in lat.items() if keep(n)]
        if cells:
            summary[key] = stats(np.mean(np.asarray(cells), axis=0))
    main = meta.get("main_key", "mean")
    if main not in summary:
        main = "mean"
    return {
        "higher_is_better": meta["higher_is_better"],
        "params": to_jsonable(mspec.params),
        "main_key": main,
        "type": "probe",
        "values": {m: {n: stats(v) for n, v in lat.items()} for m, lat in vals.items()},
        "summary": summary,
        "seconds": round(seconds, 3),
    }


# ============================================================================ derived
class DerivedKind(MetricKind):
    """Metrics computed from other metrics' per-latent values (e.g. ``identifiability_consistency``)."""

    name, order = "derived", 100

    def units(self, plan: EntryPlan, specs: Sequence[Any]) -> int:
        return 0

    def run(self, ctx: EntryContext, state: EntryState, specs: Sequence[Any]) -> None:
        for mspec in specs:
            t2 = time.perf_counter()
            meta = METRICS.metadata(mspec.name)
            params = dict(mspec.params)
            source = params.pop("source")
            if source not in state.per_seed:  # its source metric did not apply to this model
                state.metrics[mspec.name] = status_record(mspec, "n/a", f"its source metric {source!r} was not computed", self.name)
                continue
            fn = METRICS.get(mspec.name)
            src = state.per_seed[source]
            per_seed = []
            for k in range(len(ctx.seeds)):
                recovery = {m: {n: v[k] for n, v in lat.items()} for m, lat in src.items()}
                per_seed.append(fn(recovery, state.expected, **params))
            mean_recovery = {m: {n: float(np.mean(v)) for n, v in lat.items()} for m, lat in src.items()}
            table = fn(mean_recovery, state.expected, **params)
            state.metrics[mspec.name] = {
                "higher_is_better": meta["higher_is_better"], "params": to_jsonable(mspec.params), "main_key": meta["main_key"],
                "type": "derived", "source": source,
                "summary": {"score": stats([r["score"] for r in per_seed]), "accuracy": stats([r["accuracy"] for r in per_seed])},
                "table": table["table"], "expected": table["expected"],
                "seconds": round(time.perf_counter() - t2, 3),
            }


METRIC_KINDS.register("probe", ProbeKind())
METRIC_KINDS.register("derived", DerivedKind())
METRIC_KINDS.register("generative", "mmbench.harness.generative_metrics:GENERATIVE_KIND")
