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


def _row(md: str, model: str) -> list[str]:
    """The cells of the Markdown row of ``model`` (# | model | score | columns...)."""
    return next(line for line in md.splitlines() if line.startswith("| ") and line.split("|")[2].strip().startswith(model)).split("|")


def test_markdown_and_html(results_dir, tmp_path):
    lb = Leaderboard.from_dir(results_dir)
    md = lb.to_markdown()
    assert "## lb:v1" in md and "oracle-identifiable@1 (oracle)" in md and "constant@1" in md
    assert "joint · r2_linear ↑" in md and "joint · identifiability_consistency ↑" in md
    oracle_row, const_row = _row(md, "oracle"), _row(md, "constant")
    assert oracle_row[4].strip() == "1.000 ± 0.000" and const_row[4].strip() == "0.000 ± 0.000"  # ± on every value
    page = lb.to_html()
    assert page.startswith("<!DOCTYPE html>") and "<script>" in page and "addEventListener" in page
    assert "data fingerprint" in page and "<script src" not in page and "stylesheet" not in page  # self-contained
    assert page.count("data:image/png;base64,") == len(lb.heatmaps()) > 0  # heatmaps embedded
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
    assert "–" in "|".join(_row(md, "oracle")[4:])  # the oracle has no value in the other fingerprint's column


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
    assert "–" in "|".join(_row(md, "oracle")[4:])  # the oracle was never scored under the other definition


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
    header = next(line for line in md.splitlines() if line.startswith("| # | model")).split("|")
    row = _row(md, "t-only")
    clica = header.index(next(h for h in header if "clica" in h))
    assert row[clica].strip() == "n/a" and "not applicable" in lb.to_html()


def test_rows_ranked_by_the_main_score_and_repeated_runs_resolved(results_dir, shared_cache, tmp_path):
    """The oracle ranks first whatever the file order; a second run of one model is one row that says so."""
    import shutil

    again = tmp_path / "again"
    shutil.copytree(results_dir, again)
    evaluate(ConstantEncoder(), _suite(600), device="cpu", cache_dir=shared_cache, results_dir=again)  # newest
    lb = Leaderboard.from_dir(again)
    rows = list(lb.tables["lb:v1"].values())
    assert [r.model["name"] for r in rows] == ["oracle-identifiable", "constant"]
    assert lb.main_scores["lb:v1"].metric == "r2_linear"  # the metric every entry has
    assert rows[0].score > rows[1].score and len(rows[1].results) == 2
    md = lb.to_markdown()
    assert _row(md, "oracle")[1].strip() == "1" and _row(md, "constant")[1].strip() == "2"
    assert "constant@1 · 2 runs, latest shown" in md and "Ranked by the main score: mean of r2_linear" in md
    page = lb.to_html()
    assert "2 runs, latest shown" in page and "Ranked by the main score" in page


def test_suite_main_score_metric():
    from mmbench.harness.suites import get_suite

    assert get_suite("identifiability-numerical:v1").main_score_metric == "identifiability_consistency"
    quick = get_suite("identifiability-numerical-quick:v1")
    assert quick.main_metric == "identifiability_consistency" and quick.seeds == (0,)
    assert "NOT the papers' protocol" in quick.description
    assert "main_metric" not in get_suite("identifiability-numerical:v1").to_dict()  # v1's fingerprint unchanged


def test_leaderboard_page_in_chromium(results_dir, tmp_path, chromium_page):
    """The written page in a real headless browser: no console errors, ranked rows, sorting with the
    best first on the first click, row expansion, and every embedded heatmap decoded."""
    paths = Leaderboard.from_dir(results_dir).write(tmp_path / "lb")
    page, errors = chromium_page(paths["html"])

    def models() -> list[str]:
        return page.eval_on_selector_all("#t0 tbody tr.r td:nth-child(2)", "els => els.map(e => e.textContent)")

    assert models()[0].startswith("oracle") and page.inner_text("#t0 tbody tr.r td:nth-child(1)") == "1"
    page.click("#t0 th[data-k='1']")  # model name, A→Z
    assert models()[0].startswith("constant")
    r2 = page.locator("#t0 th", has_text="joint · r2_linear")
    r2.click()  # ↑ column: the first click puts the best (highest) first
    assert models()[0].startswith("oracle") and "desc" in r2.get_attribute("class")
    r2.click()
    assert models()[0].startswith("constant")
    detail = page.locator("#t0 tbody tr.d").first
    assert detail.is_hidden()
    page.locator("#t0 tbody tr.r").first.click()
    assert detail.is_visible() and "runs" in detail.inner_text()
    images = page.eval_on_selector_all("div.maps img", "els => els.map(i => [i.complete, i.naturalWidth])")
    assert images and all(done and width > 200 for done, width in images)
    assert errors == []


def test_heatmap_panels_are_wide_enough_for_their_headings() -> None:
    """One latent per modality (PolyMNIST's digit): the panels' headings must not overlap."""
    from mmbench.harness.leaderboard import _HeatmapLayout, panel_heading, render_heatmap

    mods = [f"modality-{i}" for i in range(5)]
    entry = {"label": "e", "expected_identifiable": ["digit"],
             "metrics": {"acc": {"values": {m: {"digit": {"mean": 0.5}} for m in mods}}}}
    lay = _HeatmapLayout([entry], mods, ["digit"], "", 46)
    assert lay.panel_w >= lay.width(panel_heading(mods[0]), lay.font) > 46
    img = render_heatmap([entry], "acc")
    assert img.size[0] >= lay.row_w + 5 * lay.panel_w
