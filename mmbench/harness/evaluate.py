"""``mmbench.evaluate``: score a submission on a suite and record the result with its provenance.

For every suite entry: load the probe-fit and score splits (building them on first use), embed
each modality the model supports in batches on the chosen device, validate every batch the model
returns, run every metric for every seed, and collect the values (mean ± std over seeds) into a
:class:`RunResult`. Nothing is written until the whole run has succeeded; the JSON file then
appears atomically in the results directory.

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
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import InvalidConfigError, SubmissionError
from mmbench.harness.metrics import METRICS, ProbeData
from mmbench.harness.probes import BACKENDS, resolve_device
from mmbench.harness.protocols import EvalContext, ModelCard, accepts_context, check_encoder
from mmbench.harness.suites import Suite, SuiteEntry, get_suite
from mmbench.versioning import fingerprint, to_jsonable

__all__ = ["RESULT_SCHEMA", "RunResult", "evaluate", "hardware_info"]

logger = logging.getLogger(__name__)

RESULT_SCHEMA = "mmbench.run_result/1"


# ============================================================================ result
@dataclasses.dataclass
class RunResult:
    """The outcome of one ``evaluate`` run: a JSON document with accessors.

    Attributes:
        data: the JSON-serialisable document: ``schema``, ``model`` (card), ``suite`` (id, version,
            fingerprint, definition), ``mmbench_version``, ``created``, ``seeds``, ``backend``,
            ``device``, ``hardware``, ``timings`` and ``entries`` (one per suite entry, with dataset
            versions and fingerprints, and ``metrics``: name → per modality → per latent
            ``{"mean", "std", "per_seed"}`` plus ``summary``).
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

    def value(self, label: str, metric: str, modality: str | None = None, latent: str | None = None) -> float:
        """Mean over seeds of one number; without ``modality``/``latent``, the metric's main summary.

        Example:
            >>> result.value("misalignment-joint", "r2_kernel", "x", "s3")
            0.998
        """
        m = self.entry(label)["metrics"][metric]
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
        tmp = out / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.write_text(text)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RunResult:
        """Read a result file; raises ``ValueError`` if it is not a valid RunResult."""
        p = Path(path)
        data = json.loads(p.read_text())
        if not isinstance(data, dict) or data.get("schema") != RESULT_SCHEMA:
            raise ValueError(f"{p} is not an mmbench RunResult (schema {data.get('schema') if isinstance(data, dict) else None!r}, expected {RESULT_SCHEMA!r}).")
        for key in ("model", "suite", "entries"):
            if key not in data:
                raise ValueError(f"{p} lacks the {key!r} field of a RunResult.")
        return cls(data, p)

    def summary_table(self) -> str:
        """A short Markdown table: entry × metric main summary (mean ± std)."""
        rows = ["| entry | metric | value |", "|---|---|---|"]
        for e in self.entries:
            for name, m in e["metrics"].items():
                s = m["summary"].get(m["main_key"]) or {}
                rows.append(f"| {e['label']} | {name} ({m['main_key']}) | {_fmt(s.get('mean'))} ± {_fmt(s.get('std'))} |")
        return "\n".join(rows)


def _fmt(v: Any) -> str:
    return "nan" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.3f}"


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
            tensors = {k: torch.as_tensor(np.array(v), device=device) for k, v in batch.items()}
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
            if not np.isfinite(arr).all():
                bad = int((~np.isfinite(arr)).any(1).sum())
                raise SubmissionError(f"Model {card.id!r} returned NaN/inf in {bad} of {rows} embeddings on {what}; expected finite values.")
            chunks.append(np.asarray(arr, dtype=np.float32))
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
    dataset_overrides: Mapping[str, Any] | None = None,
    entries: Sequence[str] | None = None,
) -> RunResult:
    """Score ``model`` on every entry of ``suite``; optionally save the result.

    Args:
        model: an :class:`~mmbench.harness.protocols.Encoder` (``card`` + ``encode``).
        suite: a suite id (``"identifiability-numerical:v1"``), a JSON file, a dict or a Suite.
        device: where batches are placed and torch probes run (``None`` = CUDA when available).
        seeds: probe seeds (default: the suite's); values are reported as mean ± std over them.
        backend: probe implementation, ``"torch"`` (default; any device) or ``"sklearn"`` (CPU reference).
        results_dir: if given, the RunResult JSON is written there atomically after the run.
        batch_size: examples per ``encode`` call.
        cache_dir: dataset cache (default ``$MMBENCH_CACHE``).
        dataset_overrides: config overrides applied to every entry's dataset (e.g. smaller splits);
            they change the fingerprints, which the result records.
        entries: evaluate only the entries with these labels.

    Returns:
        The :class:`RunResult`.

    Raises:
        SubmissionError: the model broke the protocol (wrong shape, NaN, raised, ...); the message
            names the modality, split and batch. Nothing is written.

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
        raise InvalidConfigError(f"Unknown backend {backend!r}; choose one of {list(BACKENDS)}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidConfigError(f"batch_size must be a positive int, got {batch_size!r}.")
    seed_list = tuple(int(s) for s in (suite_obj.seeds if seeds is None else seeds))
    if not seed_list:
        raise InvalidConfigError("seeds must not be empty.")
    dev = resolve_device(device)
    todo = list(suite_obj.entries)
    if entries is not None:
        labels = [e.label for e in todo]
        missing = [e for e in entries if e not in labels]
        if missing:
            from mmbench.errors import did_you_mean

            raise InvalidConfigError(f"Unknown entry label(s) {missing}.{did_you_mean(missing[0], labels)} Entries: {labels}.")
        todo = [e for e in todo if e.label in entries]
    with_ctx = accepts_context(model)
    out_entries = [
        _evaluate_entry(model, card, entry, i, mmbench=mmbench, device=dev, seeds=seed_list, backend=backend,
                        batch_size=batch_size, cache_dir=cache_dir, overrides=dataset_overrides or {}, with_ctx=with_ctx)
        for i, entry in enumerate(todo)
    ]
    created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    data = {
        "schema": RESULT_SCHEMA,
        "model": card.to_dict(),
        "suite": {"id": suite_obj.id, "name": suite_obj.name, "version": suite_obj.version,
                  "fingerprint": suite_obj.fingerprint, "definition": suite_obj.to_dict(),
                  "entries_evaluated": [e.label for e in todo]},
        "mmbench_version": mmbench.__version__,
        "created": created,
        "seeds": list(seed_list),
        "backend": backend,
        "device": str(dev),
        "dataset_overrides": to_jsonable(dict(dataset_overrides or {})),
        "hardware": hardware_info(dev),
        "timings": {"total_s": round(time.perf_counter() - t_run, 3)},
        "entries": out_entries,
    }
    result = RunResult(to_jsonable(data))
    if results_dir is not None:
        path = result.save(results_dir)
        logger.info("wrote %s", path)
    return result


def _evaluate_entry(model: Any, card: ModelCard, entry: SuiteEntry, index: int, *, mmbench: Any, device: Any,
                    seeds: Sequence[int], backend: str, batch_size: int, cache_dir: Any, overrides: Mapping[str, Any],
                    with_ctx: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    kw = _merge_overrides(dict(entry.overrides), dict(overrides))
    logger.info("entry %s: loading %s", entry.label, entry.dataset)
    ds_fit = mmbench.load(entry.dataset, split=entry.fit_split, cache_dir=cache_dir, **kw)
    ds_score = mmbench.load(entry.dataset, split=entry.score_split, cache_dir=cache_dir, **kw)
    info = ds_score.info
    spec = ds_score.latent_spec
    t_load = time.perf_counter() - t0

    latent_names = list(entry.latents) if entry.latents is not None else list(spec.names)
    unknown = [n for n in latent_names if n not in spec.names]
    if unknown:
        raise InvalidConfigError(f"Suite entry {entry.label!r}: unknown latent(s) {unknown}; {entry.dataset} has {list(spec.names)}.")
    modalities = [m for m in ds_score.modalities if not card.modalities or m in card.modalities]
    if not modalities:
        raise SubmissionError(
            f"Model {card.id!r} encodes modalities {list(card.modalities)}, none of which is in {entry.dataset} "
            f"(modalities {ds_score.modalities}). Add them to the card, or leave card.modalities empty for 'all'."
        )
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
        stochastic = meta.get("stochastic", True)
        for mo, m in enumerate(modalities):
            if not targets:
                continue
            data = ProbeData(emb[m][0], emb[m][1], {n: lat_fit[n][:n_fit] for n in targets}, {n: lat_score[n][:n_score] for n in targets})
            cached: dict[str, float] | None = None
            for seed in seeds:
                if cached is None or stochastic:
                    rng = np.random.default_rng([seed, index, mi, mo])
                    cached = fn(data, rng=rng, backend=backend, device=device, **dict(mspec.params))
                for n in targets:
                    vals[m][n].append(float(cached[n]))
        per_seed_values[mspec.name] = vals
        metrics_out[mspec.name] = _metric_record(mspec, meta, vals, expected, seeds, time.perf_counter() - t2)

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

