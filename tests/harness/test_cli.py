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
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in md.splitlines() if line.startswith("| ")]
    header = rows[0][3:]  # after #, model and the main score
    oracle, const = (next(r for r in rows if r[1].startswith(name)) for name in ("oracle", "constant"))
    assert (oracle[0], const[0]) == ("1", "2")  # ranked by the main score
    cells = lambda row: row[3:]  # noqa: E731
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
    assert "Did you mean one of 'identifiability-numerical:v1'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_cli_scores_a_cardless_checkpoint_with_trust_factory(tmp_path, shared_cache, capsys, monkeypatch):
    """A checkpoint whose model has no card (the card is in mmbench_model.json) survives model.to(device)."""
    import hashlib
    import sys

    from mmbench.harness.protocols import WEIGHTS_FILE, ModelCard, save_model
    from tests.harness.test_protocols import CARDLESS

    (tmp_path / "cardless_cli_net.py").write_text(CARDLESS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import cardless_cli_net

    try:
        ckpt = save_model(cardless_cli_net.Net(k=2), tmp_path / "ckpt", factory="cardless_cli_net:Net", kwargs={"k": 2},
                          card=ModelCard(name="cardless", revision="3", embedding_dim=2))
        suite_file = tmp_path / "one.json"
        suite = tiny_suite(seeds=(0,)).to_dict()
        suite["entries"] = [{**suite["entries"][1], "metrics": [{"name": "r2_linear", "params": {}}]}]  # clica only
        suite_file.write_text(json.dumps(suite))
        args = ["evaluate", "--model", str(ckpt), "--suite", str(suite_file), "--results-dir", str(tmp_path / "res"),
                "--device", "cpu", "--cache-dir", str(shared_cache)]
        assert main(args) == 1
        assert "--trust-factory" in capsys.readouterr().err
        assert main([*args, "--trust-factory"]) == 0, capsys.readouterr().err
    finally:
        sys.modules.pop("cardless_cli_net", None)
    (path,) = (tmp_path / "res").glob("*.json")
    data = json.loads(path.read_text())
    assert data["model"]["name"] == "cardless"
    src = data["model_source"]
    assert src["spec"] == str(ckpt) and src["type"] == "checkpoint" and src["trusted_factory"] is True
    assert src["weights_sha256"] == hashlib.sha256((ckpt / WEIGHTS_FILE).read_bytes()).hexdigest()


def test_evaluate_shows_progress_and_one_line_per_entry(tmp_path, shared_cache, capsys):
    """Not a terminal: no bar, but a line per finished entry on stderr, even without -v; -o merges
    into the suite entry's own overrides (val changed, test kept)."""
    suite_file = tmp_path / "tiny.json"
    suite_file.write_text(json.dumps(tiny_suite(seeds=(0,)).to_dict()))
    rc = main(["evaluate", "--model", "mmbench.testing.oracles:LatentOracle", "--suite", str(suite_file), "--results-dir",
               str(tmp_path / "r"), "--cache-dir", str(shared_cache), "-o", "split_sizes.val=1024", "--entry", "joint"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "[1/1] joint: r2_linear 1.000" in err and "it/s" not in err  # the line, and no bar off a terminal
    data = json.loads(next((tmp_path / "r").glob("*.json")).read_text())
    assert data["entries"][0]["overrides"]["split_sizes"] == {"train": 8, "val": 1024, "test": 768}


def test_evaluate_progress_bar_when_asked(shared_cache, capsys):
    from mmbench.harness.evaluate import evaluate
    from mmbench.testing.oracles import LatentOracle

    evaluate(LatentOracle(), tiny_suite(seeds=(0,)), device="cpu", cache_dir=shared_cache, entries=["clica"], progress=True)
    err = capsys.readouterr().err
    assert "evaluate" in err and "100%" in err and "clica" in err


def test_verbose_after_the_command_shows_the_models_traceback(tmp_path, shared_cache, capsys, monkeypatch):
    (tmp_path / "broken_model.py").write_text(
        "from mmbench.harness.protocols import ModelCard\n"
        "class Broken:\n"
        "    card = ModelCard(name='broken')\n"
        "    def encode(self, batch, *, modality):\n"
        "        return helper(batch)\n"
        "def helper(batch):\n"
        "    raise ValueError('my own bug')\n"
        "model = Broken()\n"
    )
    monkeypatch.chdir(tmp_path)
    suite_file = tmp_path / "tiny.json"
    suite_file.write_text(json.dumps(tiny_suite(seeds=(0,)).to_dict()))
    args = ["evaluate", "--model", "broken_model:model", "--suite", str(suite_file), "--cache-dir", str(shared_cache),
            "--results-dir", str(tmp_path / "r")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "raised ValueError in encode()" in err and "run with -v" in err and "Traceback" not in err
    assert main([*args, "-v"]) == 1  # -v after the command
    err = capsys.readouterr().err
    assert "Traceback" in err and 'line 7, in helper' in err and "ValueError: my own bug" in err


def test_suites_command_lists_entries_and_cost(capsys):
    assert main(["suites"]) == 0
    out = capsys.readouterr().out
    assert "identifiability-numerical-quick:v1" in out and "identifiability-numerical:v1" in out
    assert "NOT the papers' protocol" in out and "probe fits per model" in out and "ranked by identifiability_consistency" in out
    assert main(["suites", "identifiability-numerical-quick:v1"]) == 0
    assert "identifiability-numerical:v1 " not in capsys.readouterr().out
