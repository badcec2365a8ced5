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


def test_same_suite_id_with_another_definition_gets_its_own_columns(results_dir, shared_cache, tmp_path):
    """Same id, same datasets, other probe settings: the columns are keyed by suite fingerprint too."""
    import shutil

    mixed = tmp_path / "mixed-suite"
    shutil.copytree(results_dir, mixed)
    other = _suite(600).to_dict()
    other["entries"][0]["metrics"][0] = {"name": "r2_linear", "params": {"n_fit": 300}}
    evaluate(ConstantEncoder(), Suite.from_dict(other), device="cpu", cache_dir=shared_cache, results_dir=mixed)
    lb = Leaderboard.from_dir(mixed)
    cols = [c for c in lb.columns["lb:v1"] if c.entry == "joint" and c.metric == "r2_linear"]
    assert len(cols) == 2 and cols[0].data_fingerprint == cols[1].data_fingerprint
    assert cols[0].suite_fingerprint != cols[1].suite_fingerprint
    md = lb.to_markdown()
    for c in cols:
        assert f"(suite {c.suite_fingerprint[:8]})" in md
    oracle_row = next(line for line in md.splitlines() if line.startswith("| oracle"))
    assert "–" in oracle_row  # the oracle was never scored under the other definition


def test_malformed_results_are_skipped_never_fatal(results_dir, tmp_path):
    import json
    import shutil

    from mmbench.harness.evaluate import RunResult

    bad = tmp_path / "malformed"
    shutil.copytree(results_dir, bad)
    good = json.loads(next(bad.glob("oracle*.json")).read_text())

    def variant(name, edit):
        d = json.loads(json.dumps(good))
        edit(d)
        (bad / f"{name}.json").write_text(json.dumps(d))

    variant("no_fingerprint", lambda d: d["entries"][0].pop("data_fingerprint"))
    variant("no_name", lambda d: d["model"].pop("name"))
    variant("suite_no_fp", lambda d: d["suite"].pop("fingerprint"))
    variant("mean_is_text", lambda d: d["entries"][0]["metrics"]["r2_linear"]["summary"]["identifiable"].update(mean="high"))
    variant("entries_not_list", lambda d: d.update(entries={"a": 1}))
    variant("metric_not_dict", lambda d: d["entries"][1]["metrics"].update(r2_linear=3))
    variant("values_bad", lambda d: d["entries"][1]["metrics"]["r2_linear"]["values"].update(x=[1]))
    results, skipped = load_results(bad)
    names = {p.name for p, _ in skipped}
    assert len(results) == 2 and len(names) == 7
    reasons = dict((p.name, why) for p, why in skipped)
    assert "entries[0]" in reasons["no_fingerprint.json"] and "data_fingerprint" in reasons["no_fingerprint.json"]
    assert "model" in reasons["no_name.json"] and "'name'" in reasons["no_name.json"]
    # In-memory results are validated too, and the output is still written.
    broken = RunResult({**good, "entries": [{"label": "joint"}]})
    lb = Leaderboard([*results, broken], skipped)
    assert len(lb.skipped) == 8 and any(str(p) == "<result 2>" for p, _ in lb.skipped)
    paths = lb.write(tmp_path / "lb")
    assert "## Skipped files" in paths["markdown"].read_text() and paths["html"].is_file() and paths["heatmaps"]


def test_two_checkpoints_with_one_card_are_two_rows(shared_cache, tmp_path):
    import hashlib

    import torch

    from mmbench.harness.protocols import WEIGHTS_FILE, load_model, save_model
    from mmbench.harness.submission import MLPSubmission

    out = tmp_path / "res"
    suite = Suite.from_dict({**_suite(600).to_dict(), "entries": [_suite(600).to_dict()["entries"][0]]})
    shas = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        enc = MLPSubmission(card={"name": "mlp", "revision": "1"}, layers={"x": [15, 8, 4], "t": [13, 8, 4]})
        ckpt = save_model(enc, tmp_path / f"ckpt{seed}", factory="mmbench.harness.submission:MLPSubmission", kwargs=enc.config)
        res = evaluate(load_model(ckpt), suite, device="cpu", cache_dir=shared_cache, results_dir=out)
        shas.append(hashlib.sha256((ckpt / WEIGHTS_FILE).read_bytes()).hexdigest())
        assert res.model_source["weights_sha256"] == shas[-1] and res.model_source["spec"] == str(ckpt)
    lb = Leaderboard.from_dir(out)
    assert len(lb.tables["lb:v1"]) == 2
    md = lb.to_markdown()
    for sha in shas:
        assert f"mlp@1 [weights {sha[:8]}]" in md
    assert len({p.name for p in lb.write(tmp_path / "lb")["heatmaps"]}) == 2


def test_not_applicable_entries_show_as_na(shared_cache, tmp_path):
    from mmbench.harness.protocols import ModelCard

    class TOnly(ConstantEncoder):
        def __init__(self):
            super().__init__()
            self.card = ModelCard(name="t-only", modalities=("t",))

    suite = Suite.from_dict({**_suite(600).to_dict(), "entries": [
        *_suite(600).to_dict()["entries"],
        {"dataset": "numerical/clica/sphere-uniform-vmf1:1.0.0", "label": "clica", "latents": ["z"], "metrics": ["r2_linear"],
         "overrides": {"split_sizes": {"train": 8, "val": 600, "test": 400}}}]})
    out = tmp_path / "res"
    for model in (LatentOracle(), TOnly()):
        evaluate(model, suite, device="cpu", cache_dir=shared_cache, results_dir=out)
    lb = Leaderboard.from_dir(out)
    md = lb.to_markdown()
    header = next(line for line in md.splitlines() if line.startswith("| model")).split("|")
    row = next(line for line in md.splitlines() if line.startswith("| t-only")).split("|")
    clica = header.index(next(h for h in header if "clica" in h))
    assert row[clica].strip() == "n/a" and "not applicable" in lb.to_html()
