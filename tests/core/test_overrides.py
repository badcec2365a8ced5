"""One override semantics everywhere: Python keyword arguments, -o on every command, suite entries
and train configs. Mappings merge key by key, Replace replaces, unknown keys are errors."""

from __future__ import annotations

import json

import pytest

import mmbench
from mmbench import Replace
from mmbench.cli import main, parse_overrides
from mmbench.core.config import BuilderConfig, combine_overrides, merge_value
from mmbench.errors import InvalidConfigError

ID = "numerical/misalignment/joint"
DEFAULT = {"train": 100_000, "val": 20_480, "test": 20_480}


def test_a_mapping_merges_and_replace_replaces() -> None:
    cfg = BuilderConfig()
    assert dict(cfg.replace(split_sizes={"train": 50}).split_sizes) == {"train": 50, "val": 2000, "test": 2000}
    assert dict(cfg.replace(split_sizes=Replace({"train": 50})).split_sizes) == {"train": 50}
    assert dict(cfg.replace(split_sizes={"$replace": {"train": 50}}).split_sizes) == {"train": 50}  # the JSON form
    assert merge_value("x", {"a": {"b": 1, "c": 2}}, {"a": {"b": 5}}) == {"a": {"b": 5, "c": 2}}  # recursively
    assert merge_value("x", (1, 2), [3]) == [3]  # a list is a value, not a mapping


def test_python_and_cli_give_one_id_for_one_intent(tmp_path, capsys) -> None:
    kw = mmbench.builder(ID, split_sizes={"train": 1000})
    assert dict(kw.config.split_sizes) == {**DEFAULT, "train": 1000}
    dotted = mmbench.builder(ID, **parse_overrides(["split_sizes.train=1000"]))
    whole = mmbench.builder(ID, **parse_overrides(['split_sizes={"train": 1000}']))
    assert kw.id == dotted.id == whole.id
    replaced = mmbench.builder(ID, **parse_overrides(['split_sizes:={"train": 1000}']))
    assert replaced.id == mmbench.builder(ID, split_sizes=Replace({"train": 1000})).id != kw.id
    assert replaced.split_names() == ("train",)
    # the same on the command line (info prints the resolved splits)
    assert main(["info", ID, "-o", "split_sizes.train=1000", "--cache-dir", str(tmp_path)]) == 0
    assert "'train': 1000, 'val': 20480, 'test': 20480" in capsys.readouterr().out


@pytest.mark.parametrize("spell", [["-o", "split_sizes.trian=100"], ["-o", 'split_sizes={"trian": 100}']])
def test_an_unknown_split_is_an_error_with_did_you_mean(spell, tmp_path, capsys) -> None:
    assert main(["build", ID, *spell, "--cache-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "Unknown split 'trian' in split_sizes. Did you mean 'train'?" in err and "split_sizes:=" in err
    with pytest.raises(InvalidConfigError, match="Did you mean 'train'") as exc:
        mmbench.builder(ID, split_sizes={"trian": 100})
    assert "mmbench.Replace(" in str(exc.value)
    assert not any(tmp_path.rglob("trian*"))  # nothing was built


def test_a_comma_list_gets_the_json_hint(tmp_path, capsys) -> None:
    assert main(["build", "numerical/misalignment", "-o", "selection=s1,s2", "--cache-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "Unknown latent 's1,s2'" in err and """-o 'selection=["s1", "s2"]'""" in err
    with pytest.raises(InvalidConfigError, match=r"selection=\('s1', 's2'\) in Python"):
        mmbench.builder("numerical/misalignment", selection="s1,s2")


def test_combine_overrides_is_applying_one_after_the_other() -> None:
    suite = {"split_sizes": {"train": 8, "val": 600, "test": 400}, "seed": 1}
    cli = parse_overrides(["split_sizes.val=2048"])
    combined = combine_overrides(suite, cli)
    assert combined == {"split_sizes": {"train": 8, "val": 2048, "test": 400}, "seed": 1}
    base = mmbench.builder(ID).config
    assert base.replace(**suite).replace(**cli).fingerprint == base.replace(**combined).fingerprint
    # a mapping merged into a replacement stays a replacement, checked against its keys
    kept = combine_overrides({"split_sizes": Replace({"val": 10, "test": 10})}, {"split_sizes": {"val": 20}})
    assert dict(base.replace(**kept).split_sizes) == {"val": 20, "test": 10}
    with pytest.raises(InvalidConfigError, match="Unknown split 'train'"):
        combine_overrides({"split_sizes": Replace({"val": 10})}, {"split_sizes": {"train": 5}})


def test_replace_survives_json_in_train_configs_and_suites() -> None:
    from mmbench.harness.suites import SuiteEntry
    from mmbench.models.train import TrainConfig

    cfg = TrainConfig(dataset=ID, dataset_overrides={"split_sizes": Replace({"train": 64, "val": 64})})
    again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again.dataset_overrides == {"split_sizes": {"$replace": {"train": 64, "val": 64}}}
    assert mmbench.builder(ID, **again.dataset_overrides).split_names() == ("train", "val")
    entry = SuiteEntry(dataset=f"{ID}:1.0.0", metrics=("r2_linear",), overrides={"split_sizes": Replace({"val": 9, "test": 9})})
    back = SuiteEntry.from_dict(json.loads(json.dumps(entry.to_dict())))
    assert set(mmbench.builder(back.dataset, **back.overrides).split_names()) == {"val", "test"}


def test_bad_override_syntax() -> None:
    with pytest.raises(mmbench.MMBenchError, match="KEY=VALUE"):
        parse_overrides(["seed"])
    with pytest.raises(mmbench.MMBenchError, match="must be a JSON object"):
        parse_overrides(["split_sizes:=5"])
    with pytest.raises(InvalidConfigError, match="wraps a mapping"):
        Replace([1, 2])  # type: ignore[arg-type]
