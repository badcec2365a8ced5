"""Testing utilities shipped with mmbench: reusable builder tests, fake inputs, oracle models.

* :class:`BuilderTestCase` — subclass it in every builder's tests (pytest collects the inherited
  tests): registration, configs, schema, latent ranges, determinism across worker counts, split
  disjointness, golden fingerprints, bias effect, missing inputs.
* Fake raw inputs in the real layouts (``mmbench.testing.mnist``) and oracle encoders
  (``mmbench.testing.oracles``) live in submodules, imported on demand.
"""

from __future__ import annotations

from mmbench.testing.builder_test import BuilderTestCase, columns_fingerprint

__all__ = ["BuilderTestCase", "columns_fingerprint"]
