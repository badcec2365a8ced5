"""Testing utilities shipped with mmbench: reusable builder tests, fake inputs, oracle models.

* :class:`BuilderTestCase` — subclass it in every builder's tests (pytest collects the inherited
  tests): registration, configs, schema, latent ranges, determinism across worker counts, split
  disjointness, golden fingerprints, bias effect, missing inputs.
* Oracle encoders (``LatentOracle``, ``ConstantEncoder``, ``NoiseEncoder``,
  ``ObservationEncoder``) and :func:`smoke_run`, which checks a submission on tiny mock data.
* Fake raw inputs in the real layouts: ``mmbench.testing.mnist``, :func:`write_fake_mpi3d`
  (``mmbench.testing.mpi3d``), ``mmbench.testing.m3di`` (the release archive),
  ``mmbench.testing.shapes`` (``.blend`` shape files); a local HTTP file server with
  byte ranges and dropped connections for download tests: ``mmbench.testing.http``.

Everything is imported on first use: torch for the oracles, and pytest only for
:class:`BuilderTestCase` — ``smoke_run`` and the oracles work with the plain install (no
``[dev]`` extra), which is what a model submitter has.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BuilderTestCase",
    "ConstantEncoder",
    "LatentOracle",
    "NoiseEncoder",
    "ObservationEncoder",
    "SmokeReport",
    "columns_fingerprint",
    "smoke_run",
    "write_fake_mpi3d",
]

_LAZY = {
    "BuilderTestCase": "mmbench.testing.builder_test",
    "columns_fingerprint": "mmbench.testing.fingerprints",
    "LatentOracle": "mmbench.testing.oracles",
    "ConstantEncoder": "mmbench.testing.oracles",
    "NoiseEncoder": "mmbench.testing.oracles",
    "ObservationEncoder": "mmbench.testing.oracles",
    "smoke_run": "mmbench.testing.smoke",
    "SmokeReport": "mmbench.testing.smoke",
    "write_fake_mpi3d": "mmbench.testing.mpi3d",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        try:
            module = importlib.import_module(_LAZY[name])
        except ModuleNotFoundError as exc:
            if exc.name != "pytest":
                raise
            raise ModuleNotFoundError(
                f"mmbench.testing.{name} is a pytest base class and needs pytest, which is not installed. "
                "Install the test extra: pip install 'mmbench[dev]' (smoke_run and the oracles need no pytest).",
                name="pytest",
            ) from None
        return getattr(module, name)
    raise AttributeError(f"module 'mmbench.testing' has no attribute {name!r}")
