"""Suites: frozen, versioned lists of (dataset id@version, metrics with pinned parameters, sizes, seeds).

A suite is data. The built-in ones are the dictionaries in :data:`SUITE_DATA`, registered as
``name:vN``; a suite can also be read from a JSON file of the same shape (``Suite.from_json``,
or ``--suite path.json`` on the command line) or registered with :func:`register_suite`. A
published suite version never changes: a change makes ``:v2``. Every result records the suite's
:attr:`Suite.fingerprint`, and a suite whose id is registered with a *different* definition is
refused (by :func:`get_suite` and :func:`register_suite`), so that no two benchmarks share a name.

Example:
    >>> suite = get_suite("identifiability-numerical:v1")
    >>> [e.label for e in suite.entries]
    ['multiview', 'misalignment-joint', ...]
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmbench.errors import InvalidConfigError, NotFoundError
from mmbench.harness.metrics import METRICS
from mmbench.registry import Registry
from mmbench.versioning import fingerprint, strict_fields, to_jsonable

__all__ = [
    "SUITES",
    "SUITE_COST",
    "SUITE_DATA",
    "MetricSpec",
    "Suite",
    "SuiteEntry",
    "describe_suite",
    "get_suite",
    "list_suites",
    "register_suite",
    "suites_for_dataset",
]

_SUITE_ID_RE = re.compile(r"^([a-z0-9][a-z0-9_\-]*):v([1-9]\d*)$")
_COMMON = ("rng", "backend", "device")  # supplied by the harness, never pinned by a suite


def _freeze(obj: Any) -> Any:
    """JSON-able, hashable-friendly copy: mappings → sorted dicts, sequences → tuples."""
    if isinstance(obj, Mapping):
        return {str(k): _freeze(v) for k, v in sorted(obj.items())}
    if isinstance(obj, list | tuple):
        return tuple(_freeze(v) for v in obj)
    return obj


@dataclasses.dataclass(frozen=True, kw_only=True)
class MetricSpec:
    """A metric name plus its pinned parameters (validated against the metric's signature)."""

    name: str
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        fn = METRICS.get(self.name)  # unknown name → NotFoundError with "Did you mean"
        object.__setattr__(self, "params", _freeze(self.params))
        meta = METRICS.metadata(self.name)
        if meta.get("type") == "derived":
            allowed = {"source", *(p for p in inspect.signature(fn).parameters if p not in ("recovery", "expected"))}
            if "source" not in self.params:
                raise InvalidConfigError(f"Metric {self.name!r} needs a 'source' parameter: the probe metric whose per-latent recovery it checks, e.g. 'r2_kernel'.")
        else:
            sig = inspect.signature(fn).parameters
            if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values()):
                allowed = set(self.params)
            else:
                allowed = {p for p in sig if p != "data" and p not in _COMMON}
        unknown = set(self.params) - allowed
        bad_common = set(self.params) & set(_COMMON)
        if unknown or bad_common:
            raise InvalidConfigError(
                f"Metric {self.name!r}: unknown or harness-owned parameter(s) {sorted(unknown | bad_common)}. "
                f"Parameters a suite can pin: {sorted(allowed - set(_COMMON))}."
            )

    @classmethod
    def parse(cls, item: str | Mapping[str, Any] | MetricSpec) -> MetricSpec:
        if isinstance(item, MetricSpec):
            return item
        if isinstance(item, str):
            return cls(name=item)
        if isinstance(item, Mapping) and "name" in item:
            return cls(name=item["name"], params=item.get("params", {}))
        raise InvalidConfigError(f"A suite metric is a name or {{'name': ..., 'params': {{...}}}}; got {item!r}.")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": to_jsonable(self.params)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class SuiteEntry:
    """One dataset of a suite and what to measure on it.

    Args:
        dataset: full id with version, ``name/config:x.y.z``.
        metrics: metric names or :class:`MetricSpec` s.
        label: short display name (default: the id without version).
        overrides: dataset config overrides (e.g. ``{"split_sizes": {...}}``); they change the
            dataset fingerprint, which every result records.
        fit_split, score_split: probes are fitted on the first and scored on the second.
        n_fit, n_score: rows used from each split (``None`` = all); a metric may cap further.
        latents: latents to score (``None`` = all of the dataset's).
    """

    dataset: str
    metrics: tuple[MetricSpec, ...]
    label: str = ""
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    fit_split: str = "val"
    score_split: str = "test"
    n_fit: int | None = None
    n_score: int | None = None
    latents: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        from mmbench.naming import parse_id

        _, version = parse_id(self.dataset)
        if version is None:
            raise InvalidConfigError(
                f"Suite entry {self.dataset!r} must pin a dataset version ('name/config:x.y.z'), so that results stay comparable."
            )
        metrics = tuple(MetricSpec.parse(m) for m in self.metrics)
        if not metrics:
            raise InvalidConfigError(f"Suite entry {self.dataset!r} lists no metrics.")
        names = [m.name for m in metrics]
        if len(set(names)) != len(names):
            raise InvalidConfigError(f"Suite entry {self.dataset!r} lists a metric twice: {names}. Names are never overloaded.")
        for m in metrics:
            src = m.params.get("source")
            if METRICS.metadata(m.name).get("type") == "derived" and src not in names:
                raise InvalidConfigError(
                    f"Suite entry {self.dataset!r}: {m.name!r} reads the recovery of {src!r}, which the entry does not compute. Add it to the metrics."
                )
        object.__setattr__(self, "metrics", metrics)
        object.__setattr__(self, "overrides", _freeze(self.overrides))
        object.__setattr__(self, "label", self.label or self.dataset.split(":")[0])
        if self.latents is not None:
            object.__setattr__(self, "latents", tuple(self.latents))
        for f in ("n_fit", "n_score"):
            v = getattr(self, f)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 2):
                raise InvalidConfigError(f"Suite entry {self.dataset!r}: {f} must be an int >= 2 or None, got {v!r}.")
        if self.fit_split == self.score_split:
            raise InvalidConfigError(f"Suite entry {self.dataset!r}: probes must be scored on another split than they are fitted on (both {self.fit_split!r}).")

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset, "label": self.label, "metrics": [m.to_dict() for m in self.metrics],
            "overrides": to_jsonable(self.overrides), "fit_split": self.fit_split, "score_split": self.score_split,
            "n_fit": self.n_fit, "n_score": self.n_score, "latents": list(self.latents) if self.latents is not None else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SuiteEntry:
        d = strict_fields(cls, d, what="suite entry field")
        d["metrics"] = tuple(MetricSpec.parse(m) for m in d.get("metrics", ()))
        return cls(**d)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Suite:
    """A frozen, versioned benchmark: entries + seeds. Identified as ``name:vN``.

    Args:
        main_metric: the metric whose main summary, averaged over the entries, ranks models on the
            leaderboard (:attr:`main_score_metric`). ``None``: the first metric every entry has,
            a derived one (agreement with the theory) before probe metrics.
    """

    name: str
    version: int
    entries: tuple[SuiteEntry, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    description: str = ""
    main_metric: str | None = None

    def __post_init__(self) -> None:
        if not _SUITE_ID_RE.match(f"{self.name}:v{self.version}"):
            raise InvalidConfigError(f"Invalid suite name/version {self.name!r} v{self.version!r}: use lowercase 'name' and an int version >= 1.")
        object.__setattr__(self, "entries", tuple(e if isinstance(e, SuiteEntry) else SuiteEntry.from_dict(e) for e in self.entries))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if not self.entries:
            raise InvalidConfigError(f"Suite {self.id!r} has no entries.")
        if not self.seeds:
            raise InvalidConfigError(f"Suite {self.id!r} has no seeds.")
        labels = [e.label for e in self.entries]
        if len(set(labels)) != len(labels):
            raise InvalidConfigError(f"Suite {self.id!r}: entry labels must be unique, got {labels}.")
        if self.main_metric is not None:
            missing = [e.label for e in self.entries if self.main_metric not in [m.name for m in e.metrics]]
            if missing:
                raise InvalidConfigError(f"Suite {self.id!r}: main_metric {self.main_metric!r} is not computed by entries {missing}.")

    @property
    def id(self) -> str:
        return f"{self.name}:v{self.version}"

    @property
    def main_score_metric(self) -> str | None:
        """The metric that ranks models: :attr:`main_metric`, else the first metric of every entry
        (derived ones first); ``None`` when the entries share no metric."""
        if self.main_metric is not None:
            return self.main_metric
        common = [m.name for m in self.entries[0].metrics if all(m.name in [n.name for n in e.metrics] for e in self.entries)]
        derived = [n for n in common if METRICS.metadata(n).get("type") == "derived"]
        return (derived or common or [None])[0]

    @property
    def fingerprint(self) -> str:
        """Hash of the full definition: two suites with the same id and fingerprint measure the same thing."""
        return fingerprint(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "version": self.version, "description": self.description,
               "seeds": list(self.seeds), "entries": [e.to_dict() for e in self.entries]}
        if self.main_metric is not None:  # absent when unset: older suites keep their fingerprints
            out["main_metric"] = self.main_metric
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Suite:
        d = strict_fields(cls, d, what="suite field")
        if isinstance(d.get("version"), str):
            d["version"] = int(str(d["version"]).lstrip("v"))
        d["entries"] = tuple(SuiteEntry.from_dict(e) for e in d.get("entries", ()))
        return cls(**d)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> Suite:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise InvalidConfigError(f"Cannot read suite file {path}: {exc}") from exc
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> Suite:
        return dataclasses.replace(self, **changes)


# ============================================================================ built-in suites (data)
_KERNEL = {"name": "r2_kernel", "params": {"n_fit": 4096}}
_CONSISTENCY = {"name": "identifiability_consistency", "params": {"source": "r2_kernel", "threshold": 0.5}}
_MCC_MLP = {"name": "mcc_matthews", "params": {"probe": "mlp"}}
_MCC_CONSISTENCY = {"name": "identifiability_consistency", "params": {"source": "mcc_matthews", "threshold": 0.5}}

SUITE_DATA: dict[str, dict[str, Any]] = {
    "identifiability-numerical:v1": {
        "name": "identifiability-numerical",
        "version": 1,
        "description": (
            "Numerical identifiability testbed: per-latent R² (linear, and RBF kernel ridge with the papers' "
            "3-fold grid on 4,096 probe-fit rows) from every modality's embedding, scored on the test split, "
            "and agreement with the theory's identifiable set. Multiview (Daunhawer et al. 2023), "
            "misalignment joint / selection / perturbation biases (Cai et al. 2025) and cl-ica (Zimmermann "
            "et al. 2021, with mcc_corr)."
        ),
        "seeds": [0, 1, 2],
        "entries": [
            {"dataset": "numerical/multiview/multimodal-independent:1.0.0", "label": "multiview",
             "metrics": ["r2_linear", _KERNEL, _CONSISTENCY]},
            {"dataset": "numerical/misalignment/joint:1.0.0", "label": "misalignment-joint",
             "metrics": ["r2_linear", _KERNEL, _CONSISTENCY]},
            {"dataset": "numerical/misalignment/selection-5:1.0.0", "label": "misalignment-selection-5",
             "metrics": ["r2_linear", _KERNEL, _CONSISTENCY]},
            {"dataset": "numerical/misalignment/perturbation-3:1.0.0", "label": "misalignment-perturbation-3",
             "metrics": ["r2_linear", _KERNEL, _CONSISTENCY]},
            {"dataset": "numerical/clica/sphere-uniform-vmf1:1.0.0", "label": "clica-sphere-vmf1",
             "metrics": ["r2_linear", "mcc_corr", _KERNEL, _CONSISTENCY], "latents": ["z"]},
        ],
    },
    "misalignment-mpi3d:v1": {
        "name": "misalignment-mpi3d",
        "version": 1,
        "description": (
            "MPI3D-Complex with text (Cai et al. 2025, §5.2): the multiclass MCC of a 2-layer MLP classifier (sklearn "
            "MLPClassifier defaults) for every factor — the five semantic ones, the arm position and the caption "
            "template — from the image and from the text embedding, fitted on the val split and scored on test, "
            "and agreement with the theory's identifiable set (the mentioned, never-misreported factors), for the "
            "selection and perturbation settings of Table 7 (perturbation-1 is the data of selection-5: left out)."
        ),
        "seeds": [0, 1, 2],
        "entries": [
            {"dataset": f"mpi3d_complex_text/{setting}:1.0.0", "label": f"mpi3d-{setting}",
             "metrics": [_MCC_MLP, _MCC_CONSISTENCY]}
            for setting in (*(f"selection-{k}" for k in range(1, 6)), *(f"perturbation-{k}" for k in range(2, 6)))
        ],
    },
}


def _quick(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry of the quick suite: 2-layer mixing, 4,096 fit / 4,096 score rows, kernel ridge on 2,048."""
    metrics = [{"name": "r2_kernel", "params": {"n_fit": 2048}} if m == _KERNEL else m for m in entry["metrics"]]
    return {**entry, "metrics": metrics, "overrides": {"mixing_layers": 2, "split_sizes": {"val": 4096, "test": 4096}}}


SUITE_DATA["identifiability-numerical-quick:v1"] = {
    "name": "identifiability-numerical-quick",
    "version": 1,
    "description": (
        "Quick tier for iterating on a CPU; NOT the papers' protocol and not comparable with "
        "identifiability-numerical:v1. The same entries and metrics, but every dataset uses 2-layer mixing MLPs "
        "(the data of `mmbench train --preset quick` and `mmbench reproduce --quick`), one seed, probes fitted on "
        "4,096 rows (kernel ridge on 2,048) and scored on 4,096."
    ),
    "seeds": [0],
    "main_metric": "identifiability_consistency",
    "entries": [_quick(e) for e in SUITE_DATA["identifiability-numerical:v1"]["entries"]],
}

_GENERATIVE_METRICS = [
    {"name": "acc_logistic"},
    {"name": "coherence_conditional", "params": {"subsets": "all"}},
    {"name": "coherence_unconditional", "params": {"num_samples": 10_000}},
    {"name": "linear_probe_accuracy", "params": {"n_fit": 500}},
    {"name": "log_likelihood", "params": {"num_samples": 12}},
    {"name": "fid", "params": {"num_samples": 10_000}},
]

SUITE_DATA["polymnist-generative:v1"] = {
    "name": "polymnist-generative",
    "version": 1,
    "description": (
        "Multimodal VAEs on PolyMNIST (5 modalities; thesis §2.5, MoPoE and MMVAE+ reference protocols): conditional "
        "coherence of every modality generated from every subset of the others (leave-one-out, pairwise, by number of "
        "inputs) on the whole test split, unconditional coherence of 10,000 prior samples, both scored by the dataset's "
        "versioned digit classifiers (`mmbench train-classifiers polymnist`); digit accuracy of a logistic probe from the "
        "shared and, for MMVAE+, the private latents (500 probe-fit rows, the MoPoE reference's); the joint "
        "log-likelihood with 12 importance samples; FID of 10,000 prior samples when the Inception weights are "
        "available locally (else recorded as skipped). acc_logistic (every val row) is the probe metric any encoder "
        "gets, so contrastive models appear beside the VAEs; generative metrics are n/a for models that do not generate."
    ),
    "seeds": [0],
    "main_metric": "coherence_conditional",
    "entries": [{"dataset": "polymnist/reference:1.0.1", "label": "polymnist", "latents": ["digit"],
                 "metrics": _GENERATIVE_METRICS}],
}


def _quick_generative(metric: dict[str, Any]) -> dict[str, Any]:
    """A metric of the quick generative suite: 1,000 samples instead of 10,000."""
    params = dict(metric.get("params", {}))
    if "num_samples" in params and params["num_samples"] > 1000:
        params["num_samples"] = 1000
    return {**metric, "params": params}


SUITE_DATA["polymnist-generative-quick:v1"] = {
    "name": "polymnist-generative-quick",
    "version": 1,
    "description": (
        "Quick tier of polymnist-generative:v1 for a CPU; NOT comparable with it: the same metrics on the first 1,000 "
        "val (probe-fit) and 1,000 test tuples, 1,000 prior samples for unconditional coherence and FID."
    ),
    "seeds": [0],
    "main_metric": "coherence_conditional",
    "entries": [{"dataset": "polymnist/reference:1.0.1", "label": "polymnist", "latents": ["digit"], "n_fit": 1000, "n_score": 1000,
                 "metrics": [_quick_generative(m) for m in _GENERATIVE_METRICS]}],
}

#: Measured wall time of a whole suite (informational; not part of a suite's definition).
SUITE_COST: dict[str, str] = {
    "identifiability-numerical:v1": "8.2 min for LatentOracle on 2 idle CPU cores, nearly all in the 30 kernel-ridge "
                                    "fits on 4,096 rows (benchmarks/RESULTS.md)",
    "identifiability-numerical-quick:v1": "79-158 s for LatentOracle on a 2-core machine shared with other jobs, its "
                                          "datasets built on first use included; 37 s for a model applicable to one entry",
}

SUITE_COST["polymnist-generative:v1"] = (
    "not measured end to end (no real MNIST on the build machine); estimate for MoPoE (latent 512) on one CPU core: "
    "≈ 540 CPU-s for conditional coherence of the 10,000 test tuples from all 31 subsets (benchmarks/bench_vae.py "
    "--part coherence, 1 thread: 541 s per 10k tuples, the reference-style loop 659 s), ≈ 200 s for the log-likelihood "
    "(12 samples), under a minute for the rest: ≈ 13-15 CPU-minutes per model; seconds on a GPU"
)
SUITE_COST["polymnist-generative-quick:v1"] = "≈ 1/10 of polymnist-generative:v1 (1,000 tuples and samples): ≈ 1.5 CPU-minutes per model"

SUITES: Registry[Suite] = Registry("suite")


def _register_builtin() -> None:
    """Build and register the suites of :data:`SUITE_DATA` (on first use, not at import)."""
    for suite_id, data in SUITE_DATA.items():
        if suite_id not in SUITES:
            suite = Suite.from_dict(data)
            if suite.id != suite_id:
                raise InvalidConfigError(f"SUITE_DATA key {suite_id!r} does not match its suite id {suite.id!r}.")
            SUITES.register(suite_id, suite)


def _check_id_collision(suite: Suite, what: str) -> None:
    """Refuse ``suite`` if its id is registered with a different definition."""
    _register_builtin()
    if suite.id not in SUITES:
        return
    known = SUITES.get(suite.id)
    if known.fingerprint != suite.fingerprint:
        mine, theirs = suite.to_dict(), known.to_dict()
        diff = [k for k in theirs if mine.get(k) != theirs.get(k)]
        raise InvalidConfigError(
            f"{what} is named {suite.id!r}, but a different suite is registered under that id (fingerprint "
            f"{known.fingerprint} vs {suite.fingerprint}; differing field(s): {diff}). A suite id names one frozen "
            f"definition, so results stay comparable: give yours another name or version (e.g. "
            f"'{suite.name}-custom:v1'), or use the registered suite {suite.id!r} as it is."
        )


def register_suite(suite: Suite | Mapping[str, Any] | str | os.PathLike[str]) -> Suite:
    """Register a suite (a Suite, a dict or a JSON file) under its id; return it.

    Registering the same definition again is a no-op; a different definition under a registered
    id raises :class:`~mmbench.errors.InvalidConfigError`.
    """
    if isinstance(suite, str | os.PathLike) and not (os.fspath(suite).endswith(".json") or Path(suite).is_file()):
        raise InvalidConfigError(f"register_suite needs a Suite, a dict or a JSON file, got {os.fspath(suite)!r} (not a file).")
    obj = get_suite(suite)  # refuses an id registered with another definition
    if obj.id not in SUITES:
        SUITES.register(obj.id, obj)
    return SUITES.get(obj.id)


def list_suites() -> list[str]:
    """Ids of the registered suites (``name:vN``)."""
    _register_builtin()
    return SUITES.names()


def get_suite(suite: str | os.PathLike[str] | Suite | Mapping[str, Any]) -> Suite:
    """A :class:`Suite` from an id (``name:vN``), a JSON file path, a dict, or a Suite.

    A bare name without ``:vN`` is refused: results must say which version they measured. A
    suite given by value (file, dict, Suite) whose id is registered with a different definition is
    refused too (:class:`~mmbench.errors.InvalidConfigError`).
    """
    if isinstance(suite, Suite):
        _check_id_collision(suite, "The given suite")
        return suite
    if isinstance(suite, Mapping):
        obj = Suite.from_dict(suite)
        _check_id_collision(obj, "The given suite")
        return obj
    text = os.fspath(suite)
    if text.endswith(".json") or Path(text).is_file():
        obj = Suite.from_json(text)
        _check_id_collision(obj, f"The suite file {text}")
        return obj
    _register_builtin()
    if text not in SUITES:
        versions = [s for s in SUITES.names() if s.split(":")[0] == text]
        if versions:
            raise NotFoundError(f"Suite {text!r} needs a version: one of {versions}.")
    return SUITES.get(text)


# ============================================================================ listing
def describe_suite(suite: Suite) -> str:
    """A few lines about ``suite``: entries (dataset, overrides, metrics, probe sizes), seeds,
    the main score, the number of probe fits and generative runs, and the measured cost (``mmbench suites``)."""
    head = f"{suite.id}  ({len(suite.entries)} entries, seeds {list(suite.seeds)}, ranked by {suite.main_score_metric or '-'})"
    lines = [head, "  " + suite.description] if suite.description else [head]
    fits = runs = 0
    for e in suite.entries:
        entry_lines, entry_fits, entry_runs = _describe_entry(e, len(suite.seeds))
        lines += entry_lines
        fits, runs = fits + entry_fits, runs + entry_runs
    work = f"{fits} probe fits" + (f" and {runs} generative metric runs" if runs else "")
    lines.append(f"  cost: {work} per model; measured: {SUITE_COST.get(suite.id, 'not measured')}")
    return "\n".join(lines)


def _describe_entry(e: SuiteEntry, n_seeds: int) -> tuple[list[str], int, int]:
    """Two lines about one entry, its probe fits and its generative metric runs (all modalities encoded)."""
    import mmbench
    from mmbench.harness.kinds import kind_of, probe_units

    b = mmbench.builder(e.dataset, **dict(e.overrides))
    sizes = b.config.split_sizes
    n_fit = min(sizes[e.fit_split], e.n_fit or sizes[e.fit_split])
    n_score = min(sizes[e.score_split], e.n_score or sizes[e.score_split])
    spec, modalities = b.latent_spec(), list(b.modalities())
    names = list(e.latents) if e.latents is not None else list(spec.names)
    probes = [m for m in e.metrics if kind_of(m.name) == "probe"]
    fits = probe_units(probes, modalities, names, {lat.name: lat.kind for lat in spec}, n_fit, n_seeds) - 2 * len(modalities)
    runs = n_seeds * sum(kind_of(m.name) == "generative" for m in e.metrics)
    metrics = ", ".join(m.name + (f"({', '.join(f'{k}={v}' for k, v in m.params.items() if k != 'source')})"
                                  if any(k != "source" for k in m.params) else "") for m in e.metrics)
    return [f"  - {e.label}: {e.dataset}" + (f" with {json.dumps(to_jsonable(e.overrides))}" if e.overrides else ""),
            f"      probes fit on {e.fit_split} ({n_fit} rows), scored on {e.score_split} ({n_score} rows); {metrics}"], max(fits, 0), runs


def _generative_fields(config: Any) -> dict[str, Any]:
    """A config's data fields apart from split sizes and shard boundaries: its generative process."""
    return {k: v for k, v in config.data().items() if k not in ("split_sizes", "shard_size")}


def suites_for_dataset(builder: Any) -> list[tuple[str, str]]:
    """``(suite id, entry label)`` of the registered suite entries whose dataset is ``builder``'s
    generative process (same dataset, version and config apart from split sizes and shards)."""
    import mmbench

    want = (builder.name, builder.VERSION, _generative_fields(builder.config))
    out = []
    for suite_id in list_suites():
        for e in SUITES.get(suite_id).entries:
            b = mmbench.builder(e.dataset, **dict(e.overrides))
            if (b.name, b.VERSION, _generative_fields(b.config)) == want:
                out.append((suite_id, e.label))
    return out
