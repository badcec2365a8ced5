"""Testing utilities shipped with mmbench: reusable builder tests, fake inputs, oracle models.

* :class:`BuilderTestCase` — subclass it in every builder's tests (pytest collects the inherited
  tests): registration, configs, schema, latent ranges, determinism across worker counts, split
  disjointness, golden fingerprints, bias effect, missing inputs.
* Oracle encoders (``LatentOracle``, ``ConstantEncoder``, ``NoiseEncoder``,
  ``ObservationEncoder``) and :func:`smoke_run`, which checks a submission on tiny mock data.
* Fake raw inputs in the real layouts: ``mmbench.testing.mnist``; a local HTTP file server with
  byte ranges and dropped connections for download tests: ``mmbench.testing.http``.

Heavy parts (torch) are imported on first use.
"""

from __future__ import annotations

from typing import Any

from mmbench.testing.builder_test import BuilderTestCase, columns_fingerprint

__all__ = [
    "BuilderTestCase",
    "ConstantEncoder",
    "LatentOracle",
    "NoiseEncoder",
    "ObservationEncoder",
    "SmokeReport",
    "columns_fingerprint",
    "smoke_run",
]

_LAZY = {
    "LatentOracle": "mmbench.testing.oracles",
    "ConstantEncoder": "mmbench.testing.oracles",
    "NoiseEncoder": "mmbench.testing.oracles",
    "ObservationEncoder": "mmbench.testing.oracles",
    "smoke_run": "mmbench.testing.smoke",
    "SmokeReport": "mmbench.testing.smoke",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mmbench.testing' has no attribute {name!r}")
