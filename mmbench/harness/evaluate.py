"""``mmbench.evaluate``: score a submission on a suite and record the result with its provenance.

First every suite entry is checked (dataset id, config overrides, splits, latents, metrics, and
which modalities the model can encode), before any long work. An entry none of whose modalities
the model encodes is recorded as not applicable (``status: "n/a"`` with the reason) and the run
goes on. Then, for every applicable entry: load the probe-fit and score splits (building them on
first use), embed each modality the model supports in batches on the chosen device, validate every
batch the model returns, run every metric for every seed, and collect the values (mean ± std over
seeds) into a :class:`RunResult`. Nothing is written until the whole run has succeeded; the JSON
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

from mmbench.core.storage import atomic_write
from mmbench.errors import InvalidConfigError, MMBenchError, SubmissionError, did_you_mean
from mmbench.harness.metrics import METRICS, ProbeData
from mmbench.harness.probes import BACKENDS, resolve_device
from mmbench.harness.protocols import EvalContext, ModelCard, accepts_context, check_encoder
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


# ============================================================================ embedding
def _to_numpy(out: Any) -> np.ndarray:
    if hasattr(out, "detach"):  # torch tensor
        import torch

        out = out.detach()
        if out.dtype in (torch.float16, torch.bfloat16):  # numpy has no bfloat16
            out = out.float()
        return out.cpu().numpy()
    return np.asarray(out)


def _embed(model: Any, card: ModelCard, ds: Any, modality: str, *, device: Any, batch_size: int, n: int,
           ctx: EvalContext | None, latent_columns: Sequence[str], where: str) -> np.ndarray:
    import torch

    columns = [modality, *latent_columns]
    chunks: list[np.ndarray] = []
    dim = card.embedding_dim
    start = 0
    with torch.inference_mode():
        for b, batch in enumerate(ds.batches(batch_size, columns=columns)):
            if start >= n:
                break
            batch = {k: v[: n - start] for k, v in batch.items()}
            rows = len(batch[modality])
            tensors = {k: v if isinstance(v, list) else torch.as_tensor(np.array(v), device=device)  # captions stay str
                       for k, v in batch.items()}
            what = f"modality {modality!r}, {where}, batch {b} (rows {start}–{start + rows - 1})"
            try:
                out = model.encode(tensors, modality=modality, context=ctx) if ctx is not None else model.encode(tensors, modality=modality)
            except SubmissionError:
                raise
            except Exception as exc:
                raise SubmissionError(f"Model {card.id!r} raised {type(exc).__name__} in encode() on {what}: {exc}") from exc
            try:
                arr = _to_numpy(out)
            except Exception as exc:
                raise SubmissionError(f"Model {card.id!r} returned a {type(out).__name__} on {what}; expected a tensor or array of shape ({rows}, d).") from exc
            expected = f"({rows}, {dim if dim is not None else 'd'})"
            if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
                raise SubmissionError(f"Model {card.id!r} returned dtype {arr.dtype} on {what}; expected real numbers of shape {expected}.")
            if arr.ndim != 2:
                raise SubmissionError(f"Model {card.id!r} returned shape {tuple(arr.shape)} on {what}; expected a 2-D embedding of shape {expected}.")
            if arr.shape[0] != rows:
                raise SubmissionError(f"Model {card.id!r} returned {arr.shape[0]} embeddings for a batch of {rows} on {what}; expected shape {expected}.")
            if dim is not None and arr.shape[1] != dim:
                raise SubmissionError(f"Model {card.id!r} returned embeddings of size {arr.shape[1]} on {what}, but its card declares embedding_dim={dim}; expected shape {expected}.")
            if chunks and arr.shape[1] != chunks[0].shape[1]:
                raise SubmissionError(f"Model {card.id!r} returned embeddings of size {arr.shape[1]} on {what}, but {chunks[0].shape[1]} on earlier batches; the size must not change.")
            # Checked after the cast: finite float64 values beyond ±3.4e38 become inf in float32.
            with np.errstate(over="ignore", invalid="ignore"):
                arr32 = np.asarray(arr, dtype=np.float32)
            finite = np.isfinite(arr32)
            if not finite.all():
                bad = int((~finite).any(1).sum())
                if np.isfinite(arr).all():
                    raise SubmissionError(
                        f"Model {card.id!r} returned values beyond the float32 range (|x| > {float(np.finfo(np.float32).max):.3g}) "
                        f"in {bad} of {rows} embeddings on {what}; they become inf when cast to float32, which the harness "
                        "uses. Rescale (or normalise) the embeddings."
                    )
                raise SubmissionError(f"Model {card.id!r} returned NaN/inf in {bad} of {rows} embeddings on {what}; expected finite values.")
            chunks.append(arr32)
            start += rows
    if not chunks:
        raise InvalidConfigError(f"The {where} has no rows to embed.")
    return np.concatenate(chunks)


# ============================================================================ evaluate
def _split_meta(ds: Any, rows: int) -> dict[str, Any]:
    return {"name": ds.split, "fingerprint": ds.fingerprint, "num_examples": len(ds), "rows_used": rows}


def _stats(values: Sequence[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    mean = float(finite.mean()) if finite.size else None
    std = float(finite.std(ddof=1)) if finite.size > 1 else (0.0 if finite.size else None)
    return {"mean": mean, "std": std, "per_seed": [float(v) if np.isfinite(v) else None for v in arr]}


def evaluate(
    model: Any,
    suite: str | os.PathLike[str] | Suite | Mapping[str, Any],
    *,
    device: Any = None,
    seeds: Sequence[int] | None = None,
    backend: str = "torch",
    results_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 4096,
    cache_dir: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    dataset_overrides: Mapping[str, Any] | None = None,
    entries: Sequence[str] | None = None,
    model_source: Mapping[str, Any] | None = None,
) -> RunResult:
    """Score ``model`` on every entry of ``suite``; optionally save the result.

    Args:
        model: an :class:`~mmbench.harness.protocols.Encoder` (``card`` + ``encode``).
        suite: a suite id (``"identifiability-numerical:v1"``), a JSON file, a dict or a Suite.
        device: where batches are placed and torch probes run (``None`` = CUDA when available).
        seeds: probe seeds (default: the suite's); values are reported as mean ± std over them.
            Each seed draws its own probe-fit subsample where a metric's ``n_fit`` is below the
            rows embedded, and its own initialisation for stochastic probes.
        backend: probe implementation, ``"torch"`` (default; any device) or ``"sklearn"`` (CPU reference).
        results_dir: if given, the RunResult JSON is written there atomically after the run.
        batch_size: examples per ``encode`` call.
        cache_dir: dataset cache (default ``$MMBENCH_CACHE``).
        data_dir: where raw inputs (MNIST, archives) are looked for when a dataset is built.
        dataset_overrides: config overrides applied to every entry's dataset (e.g. smaller splits);
            they change the fingerprints, which the result records.
        entries: evaluate only the entries with these labels.
        model_source: how the model was obtained (recorded as ``model_source``); default: the
            ``mmbench_source`` attribute that :func:`~mmbench.harness.protocols.load_model` sets
            (the spec, and the sha256 of a checkpoint's weights).

    Returns:
        The :class:`RunResult`. An entry none of whose modalities the model encodes is recorded
        with ``status: "n/a"`` and the reason.

    Raises:
        InvalidConfigError, NotFoundError: a suite entry is invalid (unknown dataset, split,
            latent, override, or a metric that applies to none of its latents); raised before any
            dataset is built or model called.
        SubmissionError: the model broke the protocol (wrong shape, NaN, raised, ...); the message
            names the modality, split and batch. Also when no entry applies to the model.
            Nothing is written.

    Example:
        >>> from mmbench.testing.oracles import LatentOracle
        >>> r = mmbench.evaluate(LatentOracle(), "identifiability-numerical:v1", device="cpu", seeds=[0])
        >>> r.value("misalignment-joint", "identifiability_consistency")
        0.99
    """
    import mmbench

    t_run = time.perf_counter()
    card = check_encoder(model)
    suite_obj = get_suite(suite)
    if backend not in BACKENDS:
        raise InvalidConfigError(f"Unknown backend {backend!r}.{did_you_mean(backend, BACKENDS)} Choose one of {list(BACKENDS)}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidConfigError(f"batch_size must be a positive int, got {batch_size!r}.")
    seed_list = tuple(int(s) for s in (suite_obj.seeds if seeds is None else seeds))
    if not seed_list:
        raise InvalidConfigError("seeds must not be empty.")
    dev = resolve_device(device)
    todo = list(enumerate(suite_obj.entries))  # (position in the suite, entry): the position seeds the probes
    if entries is not None:
        labels = [e.label for e in suite_obj.entries]
        missing = [e for e in entries if e not in labels]
        if missing:
            raise InvalidConfigError(f"Unknown entry label(s) {missing}.{did_you_mean(missing[0], labels)} Entries: {labels}.")
        todo = [(i, e) for i, e in todo if e.label in entries]
    overrides = dict(dataset_overrides or {})
    # Everything that can be checked without data is checked first, so that a typo in the last
    # entry fails in seconds rather than after the first entries' probes.
    plans = [_plan_entry(entry, card, mmbench=mmbench, cache_dir=cache_dir, data_dir=data_dir, overrides=overrides)
             for _, entry in todo]
    if all(p["status"] == "n/a" for p in plans):
        reasons = "; ".join(f"{p['entry'].label}: {p['reason']}" for p in plans)
        raise SubmissionError(
            f"Model {card.id!r} encodes modalities {list(card.modalities)}, none of which is in any evaluated entry of "
            f"{suite_obj.id} ({reasons}). Add them to the card, or leave card.modalities empty for 'all'."
        )
    source = model_source if model_source is not None else getattr(model, "mmbench_source", None)
    with_ctx = accepts_context(model)
    out_entries = []
    for (index, entry), plan in zip(todo, plans, strict=True):
        if plan["status"] == "n/a":
            logger.info("entry %s: not applicable (%s)", entry.label, plan["reason"])
            out_entries.append({"label": entry.label, "dataset": entry.dataset, "status": "n/a", "reason": plan["reason"],
                                "modalities": [], "metrics": {}})
            continue
        out_entries.append(_evaluate_entry(model, card, entry, index, mmbench=mmbench, device=dev, seeds=seed_list,
                                           backend=backend, batch_size=batch_size, cache_dir=cache_dir, data_dir=data_dir,
                                           kw=plan["overrides"], with_ctx=with_ctx))
    created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    data = {
        "schema": RESULT_SCHEMA,
        "model": card.to_dict(),
        "model_source": dict(source) if isinstance(source, Mapping) else None,
        "suite": {"id": suite_obj.id, "name": suite_obj.name, "version": suite_obj.version,
                  "fingerprint": suite_obj.fingerprint, "definition": suite_obj.to_dict(),
                  "entries_evaluated": [e.label for _, e in todo]},
        "mmbench_version": mmbench.__version__,
        "created": created,
        "seeds": list(seed_list),
        "backend": backend,
        "device": str(dev),
        "dataset_overrides": to_jsonable(overrides),
        "hardware": hardware_info(dev),
        "timings": {"total_s": round(time.perf_counter() - t_run, 3)},
        "entries": out_entries,
    }
    result = RunResult(to_jsonable(data))
    if results_dir is not None:
        path = result.save(results_dir)
        logger.info("wrote %s", path)
    return result


def _plan_entry(entry: SuiteEntry, card: ModelCard, *, mmbench: Any, cache_dir: Any, data_dir: Any,
                overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one entry without building data; say whether the model applies to it."""
    kw = _merge_overrides(dict(entry.overrides), dict(overrides))
    where = f"Suite entry {entry.label!r} ({entry.dataset})"
    try:
        b = mmbench.builder(entry.dataset, cache_dir=cache_dir, data_dir=data_dir, **kw)
        for split in (entry.fit_split, entry.score_split):
            b.check_split(split)
        spec = b.latent_spec()
        dataset_modalities = list(b.modalities())
    except MMBenchError as exc:
        _reraise_with_context(exc, where)
    latent_names = list(entry.latents) if entry.latents is not None else list(spec.names)
    unknown = [n for n in latent_names if n not in spec.names]
    if unknown:
        raise InvalidConfigError(f"{where}: unknown latent(s) {unknown}.{did_you_mean(unknown[0], spec.names)} "
                                 f"The dataset has {list(spec.names)}.")
    kinds = {lat.name: lat.kind for lat in spec}
    for m in entry.metrics:
        meta = METRICS.metadata(m.name)  # unknown name → NotFoundError with "Did you mean"
        if meta.get("type") == "derived":
            continue
        applies = meta.get("kinds", ())
        if not any(kinds[n] in applies for n in latent_names):
            raise InvalidConfigError(
                f"{where}: metric {m.name!r} applies to {list(applies)} latents, but the entry's latents are "
                f"{ {n: kinds[n] for n in latent_names} }. Remove the metric or add latents it can score."
            )
    usable = [m for m in dataset_modalities if not card.modalities or m in card.modalities]
    if not usable:
        reason = (f"the model encodes modalities {list(card.modalities)}; the dataset has {dataset_modalities}")
        return {"entry": entry, "status": "n/a", "reason": reason, "overrides": kw}
    return {"entry": entry, "status": "ok", "reason": "", "overrides": kw}


def _reraise_with_context(exc: MMBenchError, where: str) -> NoReturn:
    """Re-raise ``exc`` (same type, so ``except DatasetNotFoundError`` still works) with the entry named."""
    try:
        new = type(exc)(f"{where}: {exc}")
    except Exception:
        raise exc from None
    raise new from exc


def _evaluate_entry(model: Any, card: ModelCard, entry: SuiteEntry, index: int, *, mmbench: Any, device: Any,
                    seeds: Sequence[int], backend: str, batch_size: int, cache_dir: Any, data_dir: Any,
                    kw: Mapping[str, Any], with_ctx: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    kw = dict(kw)
    logger.info("entry %s: loading %s", entry.label, entry.dataset)
    ds_fit = mmbench.load(entry.dataset, split=entry.fit_split, cache_dir=cache_dir, data_dir=data_dir, **kw)
    ds_score = mmbench.load(entry.dataset, split=entry.score_split, cache_dir=cache_dir, data_dir=data_dir, **kw)
    info = ds_score.info
    spec = ds_score.latent_spec
    t_load = time.perf_counter() - t0

    latent_names = list(entry.latents) if entry.latents is not None else list(spec.names)
    modalities = [m for m in ds_score.modalities if not card.modalities or m in card.modalities]
    n_fit = min(len(ds_fit), entry.n_fit or len(ds_fit))
    n_score = min(len(ds_score), entry.n_score or len(ds_score))
    gt_cols = [f"latents.{n}" for n in spec.names] if card.uses_ground_truth else []
    expected = tuple(info.expected_identifiable)

    # ---- embed
    t1 = time.perf_counter()
    emb: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for m in modalities:
        pair = []
        for ds, n in ((ds_fit, n_fit), (ds_score, n_score)):
            ctx = EvalContext(ds.id, ds.split, m, spec, expected, device) if with_ctx else None
            pair.append(_embed(model, card, ds, m, device=device, batch_size=batch_size, n=n, ctx=ctx,
                               latent_columns=gt_cols, where=f"split {ds.split!r} of {ds.id}"))
        if pair[0].shape[1] != pair[1].shape[1]:
            raise SubmissionError(
                f"Model {card.id!r} returned embeddings of size {pair[0].shape[1]} on split {ds_fit.split!r} but "
                f"{pair[1].shape[1]} on split {ds_score.split!r} of {ds_score.id} (modality {m!r}); a modality's "
                "embedding must have the same size on every split, or the probes fitted on one cannot score the other."
            )
        emb[m] = (pair[0], pair[1])
    t_embed = time.perf_counter() - t1

    lat_fit = ds_fit.latents(latent_names)
    lat_score = ds_score.latents(latent_names)
    kinds = {lat.name: lat.kind for lat in spec}

    # ---- metrics
    metrics_out: dict[str, Any] = {}
    per_seed_values: dict[str, dict[str, dict[str, list[float]]]] = {}
    for mi, mspec in enumerate(entry.metrics):
        meta = METRICS.metadata(mspec.name)
        if meta.get("type") == "derived":
            continue
        t2 = time.perf_counter()
        fn = METRICS.get(mspec.name)
        targets = [n for n in latent_names if kinds[n] in meta.get("kinds", ())]
        vals: dict[str, dict[str, list[float]]] = {m: {n: [] for n in targets} for m in modalities}
        cap = mspec.params.get("n_fit")
        fit_rows = n_fit if cap is None else min(int(cap), n_fit)
        # A deterministic probe on all the fit rows gives one number: compute it once. With a
        # subsample (n_fit below the rows embedded) every seed draws its own rows and is fitted.
        resampled = bool(meta.get("subsamples_fit", False)) and fit_rows < n_fit
        fit_each_seed = bool(meta.get("stochastic", True)) or resampled
        for mo, m in enumerate(modalities):
            if not targets:
                continue
            data = ProbeData(emb[m][0], emb[m][1], {n: lat_fit[n][:n_fit] for n in targets}, {n: lat_score[n][:n_score] for n in targets})
            cached: dict[str, float] | None = None
            for seed in seeds:
                if cached is None or fit_each_seed:
                    rng = np.random.default_rng([seed, index, mi, mo])
                    cached = fn(data, rng=rng, backend=backend, device=device, **dict(mspec.params))
                for n in targets:
                    vals[m][n].append(float(cached[n]))
        per_seed_values[mspec.name] = vals
        record = _metric_record(mspec, meta, vals, expected, seeds, time.perf_counter() - t2)
        record["fit_rows"] = fit_rows
        record["fit_sampling"] = "per_seed_subsample" if resampled else "all_rows"
        metrics_out[mspec.name] = record

    for mspec in entry.metrics:
        meta = METRICS.metadata(mspec.name)
        if meta.get("type") != "derived":
            continue
        t2 = time.perf_counter()
        params = dict(mspec.params)
        source = params.pop("source")
        fn = METRICS.get(mspec.name)
        src = per_seed_values[source]
        per_seed = []
        for k in range(len(seeds)):
            recovery = {m: {n: v[k] for n, v in lat.items()} for m, lat in src.items()}
            per_seed.append(fn(recovery, expected, **params))
        mean_recovery = {m: {n: float(np.mean(v)) for n, v in lat.items()} for m, lat in src.items()}
        table = fn(mean_recovery, expected, **params)
        metrics_out[mspec.name] = {
            "higher_is_better": meta["higher_is_better"], "params": to_jsonable(mspec.params), "main_key": meta["main_key"],
            "type": "derived", "source": source,
            "summary": {"score": _stats([r["score"] for r in per_seed]), "accuracy": _stats([r["accuracy"] for r in per_seed])},
            "table": table["table"], "expected": table["expected"],
            "seconds": round(time.perf_counter() - t2, 3),
        }

    content = {"dataset": ds_score.id, "config": info.config_fingerprint, "fit": ds_fit.fingerprint, "score": ds_score.fingerprint,
               "n_fit": n_fit, "n_score": n_score}
    return {
        "label": entry.label,
        "dataset": entry.dataset,
        "status": "ok",
        "dataset_id": ds_score.id,
        "dataset_version": info.version,
        "config_name": info.config_name,
        "config": info.config,
        "config_fingerprint": info.config_fingerprint,
        "content_fingerprint": info.content_fingerprint,
        "data_fingerprint": fingerprint(content),
        "splits": {"fit": _split_meta(ds_fit, n_fit), "score": _split_meta(ds_score, n_score)},
        "overrides": kw,
        "expected_identifiable": list(expected),
        "latents": [{"name": lat.name, "kind": lat.kind, "role": lat.role, "scope": lat.scope, "dim": lat.dim}
                    for lat in spec if lat.name in latent_names],
        "modalities": modalities,
        "embedding_dims": {m: int(emb[m][0].shape[1]) for m in modalities},
        "metrics": metrics_out,
        "timings": {"load_s": round(t_load, 3), "embed_s": round(t_embed, 3), "total_s": round(time.perf_counter() - t0, 3)},
    }


def _merge_overrides(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def _metric_record(mspec: Any, meta: Mapping[str, Any], vals: Mapping[str, Mapping[str, list[float]]],
                   expected: Sequence[str], seeds: Sequence[int], seconds: float) -> dict[str, Any]:
    exp = set(expected)
    summary: dict[str, Any] = {}
    groups = {"mean": lambda n: True, "identifiable": lambda n: n in exp, "non_identifiable": lambda n: n not in exp}
    for key, keep in groups.items():
        cells = [v for lat in vals.values() for n, v in lat.items() if keep(n)]
        if cells:
            summary[key] = _stats(np.mean(np.asarray(cells), axis=0))
    main = meta.get("main_key", "mean")
    if main not in summary:
        main = "mean"
    return {
        "higher_is_better": meta["higher_is_better"],
        "params": to_jsonable(mspec.params),
        "main_key": main,
        "type": "probe",
        "values": {m: {n: _stats(v) for n, v in lat.items()} for m, lat in vals.items()},
        "summary": summary,
        "seconds": round(seconds, 3),
    }

