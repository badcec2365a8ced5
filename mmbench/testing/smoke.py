"""``smoke_run(model)``: check a submission against the harness protocol on tiny data, in seconds.

Every entry of a suite is evaluated on a miniature copy of its dataset (a few hundred examples,
one seed, probes with minimal iterations). The numbers mean nothing; what is checked is that the
model loads, encodes every modality it declares, returns well-formed embeddings and survives the
whole pipeline — the pre-submission check (as MTEB's ``mock_run``).

Example:
    >>> from mmbench.testing.smoke import smoke_run
    >>> report = smoke_run(my_model)          # raises SubmissionError on a protocol violation
    >>> print(report)
    identifiability-numerical:v1 (smoke): 5 passed, 0 failed, 0 not applicable
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from typing import Any

from mmbench.errors import MMBenchError, SubmissionError
from mmbench.harness.suites import MetricSpec, Suite, get_suite

__all__ = ["SmokeReport", "smoke_run", "smoke_suite"]

_TINY_SPLITS = {"train": 8, "val": 256, "test": 128}
_FAST = {"r2_mlp": {"max_iter": 3}, "acc_mlp": {"max_iter": 3}}


def smoke_suite(suite: str | os.PathLike[str] | Suite | Mapping[str, Any] = "identifiability-numerical:v1") -> Suite:
    """A miniature copy of ``suite``: tiny splits, one seed, cheap probe settings."""
    base = get_suite(suite)
    entries = []
    for e in base.entries:
        metrics = []
        for m in e.metrics:
            params = {k: v for k, v in m.params.items() if k not in ("n_fit", "n_score")}
            params.update(_FAST.get(m.name, {}))
            if m.name == "mcc_matthews" and params.get("probe") == "mlp":
                params["max_iter"] = 3
            metrics.append(MetricSpec(name=m.name, params=params))
        overrides = {**dict(e.overrides), "split_sizes": {**_TINY_SPLITS, e.fit_split: 256, e.score_split: 128}}
        entries.append(dataclasses.replace(e, metrics=tuple(metrics), overrides=overrides, n_fit=None, n_score=None))
    return Suite(name=f"{base.name}-smoke", version=base.version, entries=tuple(entries), seeds=(0,),
                 description=f"Smoke-test miniature of {base.id}.")


@dataclasses.dataclass(repr=False)
class SmokeReport:
    """Per-entry outcome: ``"pass"``, ``"fail"`` (with the error) or ``"n/a"`` (no shared modality).

    Its ``repr`` is the readable report, so ``smoke_run(model)`` at a REPL prompt shows it.
    """

    suite: str
    outcomes: list[dict[str, Any]]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(o["status"] != "fail" for o in self.outcomes) and any(o["status"] == "pass" for o in self.outcomes)

    def __str__(self) -> str:
        counts = {s: sum(o["status"] == s for o in self.outcomes) for s in ("pass", "fail", "n/a")}
        lines = [f"{self.suite} (smoke): {counts['pass']} passed, {counts['fail']} failed, {counts['n/a']} not applicable "
                 f"in {self.seconds:.1f} s"]
        lines += [f"  {o['entry']}: {o['status']}" + (f" — {o['error']}" if o.get("error") else "")
                  + (f" ({o['reason']})" if o.get("reason") else "") for o in self.outcomes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


def smoke_run(model: Any, suite: str | os.PathLike[str] | Suite | Mapping[str, Any] = "identifiability-numerical:v1", *,
              device: Any = "auto", strict: bool = True, cache_dir: str | os.PathLike[str] | None = None,
              data_dir: str | os.PathLike[str] | None = None, trust_factory: bool = False) -> SmokeReport:
    """Run ``model`` through a miniature of ``suite`` and report per entry.

    Args:
        model: the submission (``card`` + ``encode``), or what ``mmbench evaluate --model`` takes:
            ``package.module:object``, a checkpoint directory or a training run directory.
        suite: the suite to imitate (default ``identifiability-numerical:v1``).
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        strict: raise :class:`~mmbench.errors.SubmissionError` if any entry fails, or if none applies.
        cache_dir: dataset cache for the tiny builds.
        data_dir: where raw inputs (MNIST, archives) are looked for.
        trust_factory: as ``mmbench evaluate --trust-factory`` for a checkpoint directory.

    Returns:
        A :class:`SmokeReport`.
    """
    import mmbench
    from mmbench.devices import resolve_device
    from mmbench.harness.evaluate import _usable_modalities, evaluate
    from mmbench.harness.protocols import check_encoder, load_model

    t0 = time.perf_counter()
    device = resolve_device(device)
    if isinstance(model, str | os.PathLike):
        model = load_model(model, trust_factory=trust_factory)
        if callable(getattr(model, "to", None)) and callable(getattr(model, "parameters", None)):
            model = model.to(device)
    card = check_encoder(model)
    mini = smoke_suite(suite)
    outcomes = []
    for entry in mini.entries:
        outcome: dict[str, Any] = {"entry": entry.label, "dataset": entry.dataset}
        usable, reason = _usable_modalities(card, mmbench.builder(entry.dataset, data_dir=data_dir, **dict(entry.overrides)).modalities())
        if not usable:
            outcome.update(status="n/a", reason=reason)
            outcomes.append(outcome)
            continue
        try:
            evaluate(model, mini, device=device, entries=[entry.label], cache_dir=cache_dir, data_dir=data_dir)
            outcome["status"] = "pass"
        except MMBenchError as exc:
            outcome.update(status="fail", error=f"{type(exc).__name__}: {exc}")
        outcomes.append(outcome)
    report = SmokeReport(mini.id, outcomes, time.perf_counter() - t0)
    if strict and not report.ok:
        raise SubmissionError(f"Smoke run failed for {card.id!r}:\n{report}")
    return report

