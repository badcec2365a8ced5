"""The issue's "done when": oracle + constant evaluated from the CLI give a leaderboard (MD + HTML + PNG)."""

from __future__ import annotations

import json

from mmbench.cli import main
from tests.harness.conftest import tiny_suite


def test_cli_evaluate_and_leaderboard(tmp_path, shared_cache, capsys):
    suite_file = tmp_path / "tiny.json"
    suite_file.write_text(json.dumps(tiny_suite(seeds=(0,)).to_dict()))
    results = tmp_path / "results"
    for model in ("mmbench.testing.oracles:LatentOracle", "mmbench.testing.oracles:ConstantEncoder"):
        rc = main(["evaluate", "--model", model, "--suite", str(suite_file), "--results-dir", str(results),
                   "--device", "cpu", "--cache-dir", str(shared_cache)])
        assert rc == 0
    files = sorted(results.glob("*.json"))
    assert len(files) == 2
    data = json.loads(files[0].read_text())
    for key in ("model", "suite", "mmbench_version", "seeds", "hardware", "timings", "entries"):
        assert key in data
    assert all(e["content_fingerprint"] and e["dataset_version"] == "1.0.0" for e in data["entries"])

    (results / "broken.json").write_text("{not json")
    capsys.readouterr()
    assert main(["leaderboard", str(results)]) == 0
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "broken.json" in captured.err
    out = results / "leaderboard"
    md = (out / "leaderboard.md").read_text()
    oracle = next(line for line in md.splitlines() if line.startswith("| oracle"))
    const = next(line for line in md.splitlines() if line.startswith("| constant"))
    cells = lambda row: [c.strip() for c in row.split("|")[2:-1]]  # noqa: E731
    header = [c.strip() for c in next(line for line in md.splitlines() if line.startswith("| model")).split("|")[2:-1]]
    for h, o, c in zip(header, cells(oracle), cells(const), strict=True):
        assert float(o.split()[0]) >= 0.95, h
        if "consistency" not in h:
            assert float(c.split()[0]) <= 0.1, h
    assert (out / "leaderboard.html").read_text().startswith("<!DOCTYPE html>")
    assert list((out / "heatmaps").glob("*.png"))


def test_cli_errors_are_clean(tmp_path, capsys):
    assert main(["evaluate", "--model", "mmbench.testing.oracles:LatentOracl", "--suite", "identifiability-numerical:v1",
                 "--results-dir", str(tmp_path)]) == 1
    assert "Did you mean 'LatentOracle'" in capsys.readouterr().err
    assert main(["evaluate", "--model", "mmbench.testing.oracles:ConstantEncoder", "--suite", "identifiability-numerica:v1",
                 "--results-dir", str(tmp_path)]) == 1
    assert "Did you mean 'identifiability-numerical:v1'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
