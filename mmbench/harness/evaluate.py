"""``mmbench.evaluate``: score a submission on a suite and record the result with its provenance.

First every suite entry is checked (dataset id, config overrides, splits, latents, metrics, and
which modalities the model can encode or generate), before any long work. An entry to which no
kind of its metrics applies is recorded as not applicable (``status: "n/a"`` with the reason) and
the run goes on. Then, for every applicable entry: *load* the probe-fit and score splits (building
them on first use); run one step per kind of its metrics (:mod:`mmbench.harness.kinds`): *probe*
(embed each modality the model supports in batches on the chosen device, validate every batch,
fit and score probes), *generative* (generate from every subset and from the prior, classify,
score; :mod:`mmbench.harness.generative_metrics`) and *derived*, every seed each; then *record*
the values (mean ± std over seeds) in a :class:`RunResult`. Nothing is written until the whole run has succeeded; the JSON
file then appears atomically in the results directory.

Seeds: a probe metric whose ``n_fit`` is below the rows embedded from the fit split fits each seed
on its own random subsample (drawn from the seed), and stochastic probes (MLPs) also get their own
initialisation; a deterministic probe on all the fit rows gives one number, computed once and
reported for every seed (std 0).

Example:
    >>> from mmbench.testing.oracles import LatentOracle
    >>> result = mmbench.evaluate(LatentOracle(), "identifiability-numerical:v1", device="cpu")
    >>> result.save("results/")
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import platform
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from mmbench.core.config import combine_overrides
from mmbench.core.storage import atomic_write
from mmbench.devices import resolve_device
from mmbench.errors import InvalidConfigError, MMBenchError, SubmissionError, did_you_mean
from mmbench.harness.embedding import _checked_embedding, _embed, _to_numpy  # noqa: F401  (re-exported)
from mmbench.harness.kinds import EntryContext, EntryPlan, EntryState, kinds_of
from mmbench.harness.probes import BACKENDS
from mmbench.harness.protocols import ModelCard, accepts_context, check_encoder
from mmbench.harness.suites import Suite, SuiteEntry, get_suite
from mmbench.versioning import fingerprint, to_jsonable

__all__ = ["RESULT_SCHEMA", "RunResult", "evaluate", "hardware_info", "validate_result_data"]

logger = logging.getLogger(__name__)

RESULT_SCHEMA = "mmbench.run_result/1"


# ============================================================================ result
@dataclasses.dataclass
class RunResult:
    """The outcome of one ``evaluate`` run: a JSON document with accessors.

    Attributes:
        data: the JSON-serialisable document: ``schema``, ``model`` (card), ``suite`` (id, version,
            fingerprint, definition), ``mmbench_version``, ``created``, ``seeds``, ``backend``,
            ``device``, ``hardware``, ``timings``, ``model_source`` (the ``--model`` spec and, for a
            checkpoint directory, the sha256 of its weights; ``None`` for an object passed in
            directly) and ``entries`` (one per suite entry, with ``status`` ``"ok"`` or ``"n/a"``
            (+ ``reason``), dataset versions and fingerprints, and ``metrics``: name → per
            modality → per latent ``{"mean", "std", "per_seed"}`` plus ``summary``).
        path: where it was saved, if it was.
    """

    data: dict[str, Any]
    path: Path | None = None

    @property
    def model(self) -> ModelCard:
        return ModelCard.from_dict(self.data["model"])

    @property
    def suite_id(self) -> str:
        return self.data["suite"]["id"]

    @property
    def entries(self) -> list[dict[str, Any]]:
        return self.data["entries"]

    def entry(self, label: str) -> dict[str, Any]:
        for e in self.entries:
            if e["label"] == label:
                return e
        raise KeyError(f"No entry {label!r} in this result; entries: {[e['label'] for e in self.entries]}.")

    @property
    def model_source(self) -> dict[str, Any] | None:
        """How the scored model was loaded (``spec``, and ``weights_sha256`` for a checkpoint)."""
        return self.data.get("model_source")

    def value(self, label: str, metric: str, modality: str | None = None, latent: str | None = None) -> float:
        """Mean over seeds of one number; without ``modality``/``latent``, the metric's main summary.

        Example:
            >>> result.value("misalignment-joint", "r2_kernel", "x", "s3")
            0.998
        """
        e = self.entry(label)
        if e.get("status") == "n/a":
            raise KeyError(f"Entry {label!r} was not applicable to this model: {e.get('reason', '')}")
        if metric not in e["metrics"]:
            raise KeyError(f"Entry {label!r} has no metric {metric!r}.{did_you_mean(metric, e['metrics'])} Metrics: {list(e['metrics'])}.")
        m = e["metrics"][metric]
        if modality is None:
            return float(m["summary"][m["main_key"]]["mean"])
        return float(m["values"][modality][latent]["mean"])

    def to_json(self) -> str:
        return json.dumps(self.data, indent=1, sort_keys=False, allow_nan=False)

    def filename(self) -> str:
        card, suite = self.data["model"], self.data["suite"]
        try:
            stamp = datetime.datetime.fromisoformat(self.data["created"]).strftime("%Y%m%dT%H%M%SZ")
        except (KeyError, ValueError):
            stamp = "undated"
        # A content hash keeps two runs finishing in the same second apart.
        raw = f"{card['name']}@{card['revision']}__{suite['id']}__{stamp}__{fingerprint(self.data)[:6]}"
        return re.sub(r"[^A-Za-z0-9_.@\-]+", "_", raw) + ".json"

    def save(self, results_dir: str | os.PathLike[str]) -> Path:
        """Write ``<results_dir>/<model>@<rev>__<suite>__<time>.json`` atomically (temp file + rename)."""
        out = Path(results_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / self.filename()
        text = self.to_json()  # serialise first: a failure leaves nothing behind
        atomic_write(path, text)
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RunResult:
        """Read and validate a result file (:func:`validate_result_data`).

        Raises:
            ValueError: the file is not JSON, or not a complete RunResult; the message names the
                file and the first missing or ill-typed field.
        """
        p = Path(path)
        data = json.loads(p.read_text())
        try:
            validate_result_data(data)
        except ValueError as exc:
            raise ValueError(f"{p}: {exc}") from None
        return cls(data, p)

    def summary_table(self) -> str:
        """A short Markdown table: entry × metric main summary (mean ± std)."""
        rows = ["| entry | metric | value |", "|---|---|---|"]
        for e in self.entries:
            if e.get("status") == "n/a":
                rows.append(f"| {e['label']} | n/a | {e.get('reason', '')} |")
                continue
            for name, m in e["metrics"].items():
                s = m["summary"].get(m["main_key"]) or {}
                rows.append(f"| {e['label']} | {name} ({m['main_key']}) | {_fmt(s.get('mean'))} ± {_fmt(s.get('std'))} |")
        return "\n".join(rows)


def _fmt(v: Any) -> str:
    return "nan" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.3f}"


# ============================================================================ validation
def _is_number(v: Any) -> bool:
    return v is None or (isinstance(v, int | float) and not isinstance(v, bool))


def _need(obj: Any, key: str, kind: type | tuple[type, ...], where: str, *, nonempty: bool = False) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ValueError(f"{where} lacks the {key!r} field of a RunResult.")
    v = obj[key]
    if not isinstance(v, kind) or (isinstance(v, bool) and kind is not bool):
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ValueError(f"{where}.{key} must be a {want}, got {type(v).__name__}.")
    if nonempty and not v:
        raise ValueError(f"{where}.{key} must not be empty.")
    return v


def _check_stats(stats: Any, where: str) -> None:
    if not isinstance(stats, dict):
        raise ValueError(f"{where} must be an object with 'mean' and 'std', got {type(stats).__name__}.")
    for k in ("mean", "std"):
        if not _is_number(stats.get(k)):
            raise ValueError(f"{where}.{k} must be a number or null, got {stats.get(k)!r}.")


def validate_result_data(data: Any) -> None:
    """Check that ``data`` is a RunResult the leaderboard can use; raise ``ValueError`` otherwise.

    Checked: the schema tag; ``model.name`` / ``model.revision``; ``suite.id`` and
    ``suite.fingerprint``; and for every entry its ``label``, and (unless ``status`` is ``"n/a"``)
    ``dataset_id``, ``data_fingerprint`` and every metric's ``summary`` / ``values`` numbers.
    The message names the first bad field, e.g. ``entries[0].data_fingerprint``.
    """
    if not isinstance(data, dict) or data.get("schema") != RESULT_SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"not an mmbench RunResult (schema {got!r}, expected {RESULT_SCHEMA!r}).")
    model = _need(data, "model", dict, "result")
    _need(model, "name", str, "model", nonempty=True)
    if not isinstance(model.get("revision", ""), str):
        raise ValueError(f"model.revision must be a string, got {type(model['revision']).__name__}.")
    suite = _need(data, "suite", dict, "result")
    _need(suite, "id", str, "suite", nonempty=True)
    _need(suite, "fingerprint", str, "suite", nonempty=True)
    source = data.get("model_source")
    if source is not None and not isinstance(source, dict):
        raise ValueError(f"result.model_source must be an object or null, got {type(source).__name__}.")
    entries = _need(data, "entries", list, "result")
    for i, e in enumerate(entries):
        where = f"entries[{i}]"
        if not isinstance(e, dict):
            raise ValueError(f"{where} must be an object, got {type(e).__name__}.")
        _need(e, "label", str, where, nonempty=True)
        status = e.get("status", "ok")
        if status not in ("ok", "n/a"):
            raise ValueError(f"{where}.status must be 'ok' or 'n/a', got {status!r}.")
        if status == "n/a":
            continue
        _need(e, "dataset_id", str, where, nonempty=True)
        _need(e, "data_fingerprint", str, where, nonempty=True)
        metrics = _need(e, "metrics", dict, where)
        for name, m in metrics.items():
            mw = f"{where}.metrics.{name}"
            if not isinstance(m, dict):
                raise ValueError(f"{mw} must be an object, got {type(m).__name__}.")
            if not isinstance(m.get("main_key", "mean"), str):
                raise ValueError(f"{mw}.main_key must be a string, got {m['main_key']!r}.")
            for key, stats in _need(m, "summary", dict, mw).items():
                _check_stats(stats, f"{mw}.summary.{key}")
            values = m.get("values", {})
            if not isinstance(values, dict):
                raise ValueError(f"{mw}.values must be an object, got {type(values).__name__}.")
            for modality, lat in values.items():
                if not isinstance(lat, dict):
                    raise ValueError(f"{mw}.values.{modality} must be an object, got {type(lat).__name__}.")
                for latent, stats in lat.items():
                    _check_stats(stats, f"{mw}.values.{modality}.{latent}")


# ============================================================================ provenance
def hardware_info(device: Any = None) -> dict[str, Any]:
    """Machine, OS, Python and library versions, and the accelerator used."""
    import sklearn
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "scikit_learn": sklearn.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if device is not None and str(device).startswith("cuda") and torch.cuda.is_available():
        info["accelerator"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


# ============================================================================ evaluate
def _split_meta(ds: Any, rows: int) -> dict[str, Any]:
    return {"name": ds.split, "fingerprint": ds.fingerprint, "num_examples": len(ds), "rows_used": rows}


def evaluate(
    model: Any,
    suite: str | os.PathLike[str] | Suite | Mapping[str, Any],
    *,
    device: Any = "auto",
    seeds: Sequence[int] | None = None,
    backend: str = "torch",
    results_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 4096,
    cache_dir: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    dataset_overrides: Mapping[str, Any] | None = None,
    entries: Sequence[str] | None = None,
    model_source: Mapping[str, Any] | None = None,
    progress: bool | None = None,
) -> RunResult:
    """Score ``model`` on every entry of ``suite``; optionally save the result.

    Args:
        model: an :class:`~mmbench.harness.protocols.Encoder` (``card`` + ``encode``); for
            generative metrics also a Generator (:mod:`mmbench.harness.generative_metrics` lists
            the methods each metric uses).
        suite: a suite id (``"identifiability-numerical:v1"``), a JSON file, a dict or a Suite.
        device: where batches are placed and torch probes run: ``"auto"`` (CUDA when available,
            else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` (:func:`mmbench.devices.resolve_device`).
        seeds: probe seeds (default: the suite's); values are reported as mean ± std over them.
            Each seed draws its own probe-fit subsample where a metric's ``n_fit`` is below the
            rows embedded, and its own initialisation for stochastic probes.
        backend: probe implementation, ``"torch"`` (default; any device) or ``"sklearn"`` (CPU reference).
        results_dir: if given, the RunResult JSON is written there atomically after the run.
        batch_size: examples per ``encode`` call.
        cache_dir: dataset cache (default ``$MMBENCH_CACHE``).
        data_dir: where raw inputs (MNIST, archives) are looked for when a dataset is built.
        dataset_overrides: config overrides applied to every entry's dataset on top of the
            entry's own (mappings merge key by key, :mod:`mmbench.core.config`); they change the
            fingerprints, which the result records.
        entries: evaluate only the entries with these labels.
        model_source: how the model was obtained (recorded as ``model_source``); default: the
            ``mmbench_source`` attribute that :func:`~mmbench.harness.protocols.load_model` sets
            (the spec, and the sha256 of a checkpoint's weights).
        progress: a bar over embeddings and probe fits with an ETA (default: when stderr is a
            terminal). One line per finished entry always goes to the ``mmbench.progress`` logger.

    Returns:
        The :class:`RunResult`. An entry none of whose modalities the model encodes (by name, and
        by shape when the card declares ``input_shapes``) is recorded with ``status: "n/a"`` and
        the reason.

    Raises:
        InvalidConfigError, NotFoundError: a suite entry is invalid (unknown dataset, split,
            latent, override, or a metric that applies to none of its latents) or the device is
            unavailable; raised before any dataset is built or model called.
        MMBenchError: a coherence metric on a dataset config without trained digit classifiers
            (with the datasets that have them and the command that trains them); before any work.
        SubmissionError: the model broke the protocol (wrong shape, NaN, raised, ...); the message
            names the modality, split and batch. Also when no entry applies to the model.
            Nothing is written.

    Example:
        >>> from mmbench.testing.oracles import LatentOracle
        >>> r = mmbench.evaluate(LatentOracle(), "identifiability-numerical-quick:v1")
        >>> r.value("misalignment-joint", "identifiability_consistency")
        0.99
    """
    import mmbench

    t_run = time.perf_counter()
    card = check_encoder(model)
    suite_obj = get_suite(suite)
    seed_list, dev = _run_settings(suite_obj, seeds=seeds, backend=backend, batch_size=batch_size, device=device)
    todo = _selected_entries(suite_obj, entries)
    overrides = dict(dataset_overrides or {})
    # Everything that can be checked without data is checked first, so that a typo in the last
    # entry fails in seconds rather than after the first entries' probes.
    plans = [_plan_entry(entry, card, model=model, mmbench=mmbench, cache_dir=cache_dir, data_dir=data_dir, overrides=overrides,
                         seeds=seed_list) for _, entry in todo]
    _require_applicable(plans, card, suite_obj)
    ctx = EntryContext(model=model, card=card, mmbench=mmbench, device=dev, seeds=seed_list, backend=backend,
                       batch_size=batch_size, cache_dir=cache_dir, data_dir=data_dir, with_ctx=accepts_context(model),
                       progress=_Progress([p["units"] for p in plans], progress=progress))
    out_entries = _run_entries(ctx, todo, plans)
    source = model_source if model_source is not None else getattr(model, "mmbench_source", None)
    result = RunResult(to_jsonable(_result_document(card, suite_obj, todo, out_entries, source=source, seeds=seed_list, backend=backend,
                                                    device=dev, overrides=overrides, seconds=time.perf_counter() - t_run)))
    if results_dir is not None:
        path = result.save(results_dir)
        logger.info("wrote %s", path)
    return result


def _run_entries(ctx: EntryContext, todo: Sequence[tuple[int, SuiteEntry]], plans: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every entry's record, in order (``n/a`` entries recorded with the reason), with progress."""
    out_entries = []
    try:
        for (index, entry), plan in zip(todo, plans, strict=True):
            if plan["status"] == "n/a":
                out_entries.append({"label": entry.label, "dataset": entry.dataset, "status": "n/a", "reason": plan["reason"],
                                    "modalities": [], "metrics": {}})
            else:
                out_entries.append(_evaluate_entry(ctx, entry, index, plan))
            ctx.progress.entry_done(out_entries[-1])
    finally:
        ctx.progress.close()
    return out_entries


def _run_settings(suite: Suite, *, seeds: Sequence[int] | None, backend: str, batch_size: Any, device: Any) -> tuple[tuple[int, ...], Any]:
    """Checked seeds and device (the run's settings that do not depend on the entries)."""
    if backend not in BACKENDS:
        raise InvalidConfigError(f"Unknown backend {backend!r}.{did_you_mean(backend, BACKENDS)} Choose one of {list(BACKENDS)}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidConfigError(f"batch_size must be a positive int, got {batch_size!r}.")
    seed_list = tuple(int(s) for s in (suite.seeds if seeds is None else seeds))
    if not seed_list:
        raise InvalidConfigError("seeds must not be empty.")
    return seed_list, resolve_device(device)


def _selected_entries(suite: Suite, labels: Sequence[str] | None) -> list[tuple[int, SuiteEntry]]:
    """(position in the suite, entry) of the entries to run; the position seeds the probes."""
    todo = list(enumerate(suite.entries))
    if labels is None:
        return todo
    known = [e.label for e in suite.entries]
    missing = [e for e in labels if e not in known]
    if missing:
        raise InvalidConfigError(f"Unknown entry label(s) {missing}.{did_you_mean(missing[0], known)} Entries: {known}.")
    return [(i, e) for i, e in todo if e.label in labels]


def _require_applicable(plans: Sequence[dict[str, Any]], card: ModelCard, suite: Suite) -> None:
    if all(p["status"] == "n/a" for p in plans):
        reasons = "; ".join(f"{p['entry'].label}: {p['reason']}" for p in plans)
        if any(p["kinds"].get("generative") for p in plans):
            raise SubmissionError(
                f"Model {card.id!r} applies to no evaluated entry of {suite.id} ({reasons}). Probe metrics need a modality "
                "the model encodes (card.modalities; empty for 'all'); generative metrics need a model that generates."
            )
        raise SubmissionError(
            f"Model {card.id!r} encodes modalities {list(card.modalities)}, none of which is in any evaluated entry of "
            f"{suite.id} ({reasons}). Add them to the card, or leave card.modalities empty for 'all'."
        )


def _result_document(card: ModelCard, suite: Suite, todo: Sequence[tuple[int, SuiteEntry]], out_entries: list[dict[str, Any]], *,
                     source: Any, seeds: Sequence[int], backend: str, device: Any, overrides: Mapping[str, Any],
                     seconds: float) -> dict[str, Any]:
    import mmbench

    return {
        "schema": RESULT_SCHEMA,
        "model": card.to_dict(),
        "model_source": dict(source) if isinstance(source, Mapping) else None,
        "suite": {"id": suite.id, "name": suite.name, "version": suite.version,
                  "fingerprint": suite.fingerprint, "definition": suite.to_dict(),
                  "entries_evaluated": [e.label for _, e in todo]},
        "mmbench_version": mmbench.__version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seeds": list(seeds),
        "backend": backend,
        "device": str(device),
        "dataset_overrides": to_jsonable(overrides),
        "hardware": hardware_info(device),
        "timings": {"total_s": round(seconds, 3)},
        "entries": out_entries,
    }


def _plan_entry(entry: SuiteEntry, card: ModelCard, *, model: Any, mmbench: Any, cache_dir: Any, data_dir: Any,
                overrides: Mapping[str, Any], seeds: Sequence[int]) -> dict[str, Any]:
    """Validate one entry without building data; say which kinds of its metrics apply to the model
    (``kinds``: kind → ``""`` or why not), and how much work it is (``units``, for the progress bar)."""
    kw = combine_overrides(entry.overrides, overrides)
    facts = _entry_facts(entry, card, model, mmbench=mmbench, kw={"cache_dir": cache_dir, "data_dir": data_dir, **kw},
                         n_seeds=len(seeds))
    kinds = {kind.name: kind.check(facts, kind.specs(entry)) for kind in kinds_of(entry)}
    applies = [name for name, why in kinds.items() if not why and name != "derived"]
    reason = "; ".join(dict.fromkeys(why for why in kinds.values() if why))
    units = sum(k.units(facts, k.specs(entry)) for k in kinds_of(entry) if not kinds[k.name]) if applies else 0
    return {"entry": entry, "status": "ok" if applies else "n/a", "reason": "" if applies else reason, "overrides": kw,
            "modalities": facts.modalities, "kinds": kinds, "units": units}


def _entry_facts(entry: SuiteEntry, card: ModelCard, model: Any, *, mmbench: Any, kw: Mapping[str, Any],
                 n_seeds: int) -> EntryPlan:
    """The entry's builder, latents and modalities, checked (unknown dataset, split or latent: an error naming the entry)."""
    where = f"Suite entry {entry.label!r} ({entry.dataset})"
    try:
        b = mmbench.builder(entry.dataset, **kw)
        for split in (entry.fit_split, entry.score_split):
            b.check_split(split)
        spec = b.latent_spec()
        dataset_modalities = b.modalities()
    except MMBenchError as exc:
        _reraise_with_context(exc, where)
    latent_names = list(entry.latents) if entry.latents is not None else list(spec.names)
    unknown = [n for n in latent_names if n not in spec.names]
    if unknown:
        raise InvalidConfigError(f"{where}: unknown latent(s) {unknown}.{did_you_mean(unknown[0], spec.names)} "
                                 f"The dataset has {list(spec.names)}.")
    usable, reason = _usable_modalities(card, dataset_modalities)
    n_fit = min(b.config.split_sizes[entry.fit_split], entry.n_fit or b.config.split_sizes[entry.fit_split])
    return EntryPlan(entry=entry, where=where, builder=b, card=card, model=model, latent_names=latent_names,
                     latent_kinds={lat.name: lat.kind for lat in spec}, dataset_modalities=dataset_modalities,
                     modalities=usable, reason=reason, n_fit=n_fit, n_seeds=n_seeds)

def _usable_modalities(card: ModelCard, dataset_modalities: Mapping[str, Any]) -> tuple[list[str], str]:
    """The dataset's modalities the model encodes (by name, and by input shape if the card gives
    one), and why none is when none is."""
    named = [m for m in dataset_modalities if not card.modalities or m in card.modalities]
    usable = [m for m in named if m not in card.input_shapes or tuple(card.input_shapes[m]) == tuple(dataset_modalities[m].shape)]
    if usable:
        return usable, ""
    if not named:
        return [], f"the model encodes modalities {list(card.modalities)}; the dataset has {list(dataset_modalities)}"
    shapes = {m: tuple(dataset_modalities[m].shape) for m in named}
    return [], f"the model takes inputs of shape {dict(card.input_shapes)}; the dataset's are {shapes}"


def _reraise_with_context(exc: MMBenchError, where: str) -> NoReturn:
    """Re-raise ``exc`` (same type, so ``except DatasetNotFoundError`` still works) with the entry named."""
    try:
        new = type(exc)(f"{where}: {exc}")
    except Exception:
        raise exc from None
    raise new from exc


class _Progress:
    """Evaluation progress: a bar over embeddings and probe fits (on a terminal) and one line per
    finished entry (always, on the ``mmbench.progress`` logger), both with an ETA."""

    def __init__(self, units: Sequence[int], *, progress: bool | None) -> None:
        from mmbench.progress import progress_bar

        self.units, self.total = list(units), sum(units)
        self.done_entries, self.done_units = 0, 0
        self.t0 = time.perf_counter()
        self.show = progress
        self.bar = progress_bar(self.total, desc="evaluate", unit="step", progress=progress)

    def status(self, entry: str, what: str) -> None:
        self.bar.set_postfix_str(f"entry {self.done_entries + 1}/{len(self.units)} {entry} · {what}", refresh=True)

    def step(self, n: int = 1) -> None:
        self.bar.update(n)

    def entry_done(self, record: Mapping[str, Any]) -> None:
        from mmbench.progress import eta_text, report

        self.done_units += self.units[self.done_entries]
        self.done_entries += 1
        self.bar.n = self.done_units  # fits skipped for a latent kind still count as done
        self.bar.refresh()
        head = f"[{self.done_entries}/{len(self.units)}] {record['label']}"
        if record.get("status") == "n/a":
            report("%s: not applicable (%s)", head, record.get("reason", ""))
            return
        scores = ", ".join(f"{name} {_fmt((m['summary'].get(m['main_key']) or {}).get('mean'))}"
                           for name, m in record["metrics"].items())
        eta = eta_text(time.perf_counter() - self.t0, self.done_units, self.total)
        report("%s: %s (%.1f s%s)", head, scores, record["timings"]["total_s"], f"; {eta}" if eta else "")

    def close(self) -> None:
        self.bar.close()



def _evaluate_entry(ctx: EntryContext, entry: SuiteEntry, index: int, plan: Mapping[str, Any]) -> dict[str, Any]:
    """The entry's record: load its splits, then one step per kind of its metrics (embed or
    generate, and score; derive), then record (:mod:`mmbench.harness.kinds`)."""
    t0 = time.perf_counter()
    state = _load_step(ctx, entry, index, plan)
    for kind in kinds_of(entry):
        specs, why = kind.specs(entry), plan["kinds"][kind.name]
        if why:
            state.metrics.update(kind.not_applicable(specs, why))
        else:
            kind.run(ctx, state, specs)
    return _record_step(state, plan, time.perf_counter() - t0)


def _load_step(ctx: EntryContext, entry: SuiteEntry, index: int, plan: Mapping[str, Any]) -> EntryState:
    """Load (building on first use) the probe-fit and score splits of the entry."""
    t0 = time.perf_counter()
    ctx.progress.status(entry.label, "loading data")
    logger.info("entry %s: loading %s", entry.label, entry.dataset)
    load = {"cache_dir": ctx.cache_dir, "data_dir": ctx.data_dir, "progress": ctx.progress.show, **plan["overrides"]}
    ds_fit = ctx.mmbench.load(entry.dataset, split=entry.fit_split, **load)
    ds_score = ctx.mmbench.load(entry.dataset, split=entry.score_split, **load)
    spec = ds_score.latent_spec
    state = EntryState(entry=entry, index=index, ds_fit=ds_fit, ds_score=ds_score, spec=spec,
                       latent_names=list(entry.latents) if entry.latents is not None else list(spec.names),
                       modalities=list(plan["modalities"]), expected=tuple(ds_score.info.expected_identifiable),
                       n_fit=min(len(ds_fit), entry.n_fit or len(ds_fit)), n_score=min(len(ds_score), entry.n_score or len(ds_score)),
                       builder=ctx.mmbench.builder(entry.dataset, cache_dir=ctx.cache_dir, data_dir=ctx.data_dir, **plan["overrides"]))
    state.timings["load_s"] = round(time.perf_counter() - t0, 3)
    return state


def _record_step(state: EntryState, plan: Mapping[str, Any], seconds: float) -> dict[str, Any]:
    """The entry's record in the RunResult: dataset provenance, rows used, and every metric's record."""
    ds_fit, ds_score, info = state.ds_fit, state.ds_score, state.ds_score.info
    content = {"dataset": ds_score.id, "config": info.config_fingerprint, "fit": ds_fit.fingerprint, "score": ds_score.fingerprint,
               "n_fit": state.n_fit, "n_score": state.n_score}
    timings = {"load_s": state.timings.get("load_s", 0.0), "embed_s": state.timings.get("embed_s", 0.0),
               **{k: v for k, v in state.timings.items() if k not in ("load_s", "embed_s")}, "total_s": round(seconds, 3)}
    return {
        "label": state.entry.label,
        "dataset": state.entry.dataset,
        "status": "ok",
        "dataset_id": ds_score.id,
        "dataset_version": info.version,
        "config_name": info.config_name,
        "config": info.config,
        "config_fingerprint": info.config_fingerprint,
        "content_fingerprint": info.content_fingerprint,
        "data_fingerprint": fingerprint(content),
        "splits": {"fit": _split_meta(ds_fit, state.n_fit), "score": _split_meta(ds_score, state.n_score)},
        "overrides": to_jsonable(plan["overrides"]),
        "expected_identifiable": list(state.expected),
        "latents": [{"name": lat.name, "kind": lat.kind, "role": lat.role, "scope": lat.scope, "dim": lat.dim}
                    for lat in state.spec if lat.name in state.latent_names],
        "modalities": list(state.modalities),
        "embedding_dims": dict(state.embedding_dims),
        "metrics": state.metrics,
        **state.extra,
        "timings": timings,
    }
