"""Leaderboard: Markdown, HTML, heatmaps; fingerprints never merged; corrupt files skipped."""

from __future__ import annotations

import pytest
from PIL import Image

from mmbench.harness.evaluate import evaluate
from mmbench.harness.leaderboard import Leaderboard, load_results
from mmbench.harness.suites import Suite
from mmbench.testing.oracles import ConstantEncoder, LatentOracle


def _suite(val: int) -> Suite:
    return Suite.from_dict({"name": "lb", "version": 1, "seeds": [0], "entries": [
        {"dataset": "numerical/misalignment/joint:1.0.0", "label": "joint",
         "overrides": {"split_sizes": {"train": 8, "val": val, "test": 400}},
         "metrics": ["r2_linear", {"name": "identifiability_consistency", "params": {"source": "r2_linear"}}]},
        {"dataset": "numerical/misalignment/selection-3:1.0.0", "label": "selection-3",
         "overrides": {"split_sizes": {"train": 8, "val": val, "test": 400}}, "metrics": ["r2_linear"]},
    ]})


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory, shared_cache):
    out = tmp_path_factory.mktemp("lb-results")
    for model in (LatentOracle(), ConstantEncoder()):
        evaluate(model, _suite(600), device="cpu", cache_dir=shared_cache, results_dir=out)
    return out


def test_markdown_and_html(results_dir, tmp_path):
    lb = Leaderboard.from_dir(results_dir)
    md = lb.to_markdown()
    assert "## lb:v1" in md and "oracle-identifiable@1 (oracle)" in md and "constant@1" in md
    assert "joint · r2_linear ↑" in md and "joint · identifiability_consistency ↑" in md
    oracle_row = next(line for line in md.splitlines() if line.startswith("| oracle"))
    const_row = next(line for line in md.splitlines() if line.startswith("| constant"))
    assert oracle_row.split("|")[2].strip().startswith("1.000")
    assert const_row.split("|")[2].strip().startswith("0.000")
    page = lb.to_html()
    assert page.startswith("<!DOCTYPE html>") and "<script>" in page and "addEventListener" in page
    assert "data fingerprint" in page and "<script src" not in page and "<link" not in page  # self-contained
    paths = lb.write(tmp_path / "lb")
    assert paths["markdown"].read_text() == md and paths["html"].is_file()
    names = [p.name for p in paths["heatmaps"]]
    assert any("oracle-identifiable@1" in n and "numerical_misalignment" in n and "r2_linear" in n for n in names)
    img = Image.open(paths["heatmaps"][0])
    assert img.format == "PNG" and img.size[0] > 200 and img.size[1] > 100


def test_different_fingerprints_get_different_columns(results_dir, shared_cache, tmp_path):
    import shutil

    mixed = tmp_path / "mixed"
    shutil.copytree(results_dir, mixed)
    evaluate(ConstantEncoder(), _suite(500), device="cpu", cache_dir=shared_cache, results_dir=mixed)
    lb = Leaderboard.from_dir(mixed)
    cols = [c for c in lb.columns["lb:v1"] if c.entry == "joint" and c.metric == "r2_linear"]
    assert len(cols) == 2 and cols[0].data_fingerprint != cols[1].data_fingerprint
    md = lb.to_markdown()
    for c in cols:
        assert f"[{c.data_fingerprint[:8]}]" in md
    oracle_row = next(line for line in md.splitlines() if line.startswith("| oracle"))
    assert "–" in oracle_row  # the oracle has no value in the other fingerprint's column


def test_corrupt_and_foreign_json_are_skipped(results_dir, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(results_dir, bad)
    (bad / "truncated.json").write_text('{"schema": "mmbench.run_result/1", "model": {')
    (bad / "other.json").write_text('{"hello": 1}')
    (bad / "binary.json").write_bytes(b"\xff\xfe\x00")
    results, skipped = load_results(bad)
    assert len(results) == 2 and {p.name for p, _ in skipped} == {"truncated.json", "other.json", "binary.json"}
    lb = Leaderboard(results, skipped)
    assert "## Skipped files" in lb.to_markdown() and "truncated.json" in lb.to_html()


def test_empty_and_missing_dirs(tmp_path):
    assert "No results" in Leaderboard.from_dir(tmp_path).to_markdown()
    with pytest.raises(Exception, match="does not exist"):
        Leaderboard.from_dir(tmp_path / "nope")
