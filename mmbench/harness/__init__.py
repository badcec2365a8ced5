"""The evaluation harness: submission protocol, probes, metrics, suites, ``evaluate`` and the leaderboard.

Heavy parts (torch, scikit-learn, pillow) are imported on first use.

Example:
    >>> import mmbench
    >>> from mmbench.testing.oracles import LatentOracle
    >>> result = mmbench.evaluate(LatentOracle(), "identifiability-numerical:v1", results_dir="results")
    >>> # then: mmbench leaderboard results
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "METRICS",
    "METRIC_KINDS",
    "SUITES",
    "Encoder",
    "EvalContext",
    "Generator",
    "Leaderboard",
    "MetricSpec",
    "ModelCard",
    "ProbeData",
    "RunResult",
    "Suite",
    "SuiteEntry",
    "evaluate",
    "get_suite",
    "list_suites",
    "load_model",
    "make_probe",
    "register_suite",
    "save_model",
]

_LAZY = {
    "METRICS": "mmbench.harness.metrics",
    "METRIC_KINDS": "mmbench.harness.kinds",
    "ProbeData": "mmbench.harness.metrics",
    "SUITES": "mmbench.harness.suites",
    "MetricSpec": "mmbench.harness.suites",
    "Suite": "mmbench.harness.suites",
    "SuiteEntry": "mmbench.harness.suites",
    "get_suite": "mmbench.harness.suites",
    "list_suites": "mmbench.harness.suites",
    "register_suite": "mmbench.harness.suites",
    "Encoder": "mmbench.harness.protocols",
    "EvalContext": "mmbench.harness.protocols",
    "Generator": "mmbench.harness.protocols",
    "ModelCard": "mmbench.harness.protocols",
    "load_model": "mmbench.harness.protocols",
    "save_model": "mmbench.harness.protocols",
    "RunResult": "mmbench.harness.evaluate",
    "evaluate": "mmbench.harness.evaluate",
    "Leaderboard": "mmbench.harness.leaderboard",
    "make_probe": "mmbench.harness.probes",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mmbench.harness' has no attribute {name!r}")
