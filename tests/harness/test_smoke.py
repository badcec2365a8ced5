"""smoke_run: a quick protocol check on tiny mock data."""

from __future__ import annotations

import pytest

from mmbench.errors import SubmissionError
from mmbench.harness.protocols import ModelCard
from mmbench.testing.oracles import ConstantEncoder, LatentOracle
from mmbench.testing.smoke import smoke_run, smoke_suite


def test_smoke_suite_is_tiny():
    s = smoke_suite()
    assert s.seeds == (0,) and all(e.overrides["split_sizes"]["val"] == 256 for e in s.entries)
    assert all("n_fit" not in m.params for e in s.entries for m in e.metrics)


def test_smoke_run_passes_good_models(shared_cache):
    report = smoke_run(LatentOracle(), cache_dir=shared_cache)
    assert report.ok and all(o["status"] == "pass" for o in report.outcomes)
    assert "passed" in str(report)


def test_smoke_run_flags_bad_and_inapplicable_models(shared_cache):
    class Broken(ConstantEncoder):
        def encode(self, batch, *, modality):
            return super().encode(batch, modality=modality)[:, :0].reshape(-1)

    with pytest.raises(SubmissionError, match="Smoke run failed"):
        smoke_run(Broken(), cache_dir=shared_cache)
    report = smoke_run(Broken(), cache_dir=shared_cache, strict=False)
    assert not report.ok and all(o["status"] == "fail" and "2-D" in o["error"] for o in report.outcomes)

    class ImagesOnly(ConstantEncoder):
        def __init__(self):
            super().__init__()
            self.card = ModelCard(name="img", modalities=("image",))

    report = smoke_run(ImagesOnly(), cache_dir=shared_cache, strict=False)
    assert all(o["status"] == "n/a" for o in report.outcomes) and not report.ok


def test_smoke_report_reads_well_at_a_prompt(shared_cache):
    report = smoke_run(LatentOracle(), cache_dir=shared_cache)
    assert repr(report) == str(report) and repr(report).startswith("identifiability-numerical-smoke:v1 (smoke): 5 passed")
