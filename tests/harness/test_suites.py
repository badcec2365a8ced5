"""Suites are frozen, versioned data."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mmbench.errors import InvalidConfigError, NotFoundError
from mmbench.harness.suites import SUITE_DATA, MetricSpec, Suite, SuiteEntry, get_suite, list_suites


def test_builtin_suite():
    assert "identifiability-numerical:v1" in list_suites()
    suite = get_suite("identifiability-numerical:v1")
    assert suite.id == "identifiability-numerical:v1" and suite.seeds == (0, 1, 2)
    assert all(":" in e.dataset for e in suite.entries)  # versions pinned
    assert get_suite("identifiability-numerical:v1").fingerprint == suite.fingerprint
    with pytest.raises(dataclasses.FrozenInstanceError):
        suite.version = 2  # type: ignore[misc]


def test_suite_is_data_json_round_trip(tmp_path):
    suite = get_suite("identifiability-numerical:v1")
    path = tmp_path / "s.json"
    path.write_text(json.dumps(suite.to_dict()))
    again = get_suite(path)
    assert again == suite and again.fingerprint == suite.fingerprint
    assert Suite.from_dict(SUITE_DATA["identifiability-numerical:v1"]) == suite


def test_unknown_names_say_did_you_mean():
    with pytest.raises(NotFoundError, match="Did you mean one of 'identifiability-numerical:v1'"):
        get_suite("identifiability-numericl:v1")
    with pytest.raises(NotFoundError, match="needs a version"):
        get_suite("identifiability-numerical")
    with pytest.raises(NotFoundError, match="Did you mean one of 'r2_kernel'"):
        MetricSpec(name="r2_kernal")


def test_entry_validation():
    with pytest.raises(InvalidConfigError, match="version"):
        SuiteEntry(dataset="numerical/clica", metrics=("r2_linear",))
    with pytest.raises(InvalidConfigError, match="gammas"):
        SuiteEntry(dataset="numerical/clica:1.0.0", metrics=({"name": "r2_kernel", "params": {"gama": [1]}},))
    with pytest.raises(InvalidConfigError, match="harness-owned"):
        SuiteEntry(dataset="numerical/clica:1.0.0", metrics=({"name": "r2_kernel", "params": {"device": "cuda"}},))
    with pytest.raises(InvalidConfigError, match="source"):
        SuiteEntry(dataset="numerical/clica:1.0.0", metrics=("r2_linear", "identifiability_consistency"))
    with pytest.raises(InvalidConfigError, match="does not compute"):
        SuiteEntry(dataset="numerical/clica:1.0.0", metrics=("r2_linear", {"name": "identifiability_consistency", "params": {"source": "r2_kernel"}}))
    with pytest.raises(InvalidConfigError, match="twice"):
        SuiteEntry(dataset="numerical/clica:1.0.0", metrics=("r2_linear", "r2_linear"))
    with pytest.raises(InvalidConfigError, match="another split"):
        SuiteEntry(dataset="numerical/clica:1.0.0", metrics=("r2_linear",), fit_split="val", score_split="val")
    with pytest.raises(InvalidConfigError, match="unique"):
        Suite(name="s", version=1, entries=(SuiteEntry(dataset="numerical/clica:1.0.0", metrics=("r2_linear",)),) * 2)
    with pytest.raises(InvalidConfigError, match="Unknown suite field"):
        Suite.from_dict({"name": "s", "version": 1, "entries": [], "extra": 1})


def test_an_id_names_one_definition(tmp_path):
    """A suite file reusing a registered id with other probe settings is refused, not merged."""
    from mmbench.harness.suites import register_suite

    real = get_suite("identifiability-numerical:v1")
    fake = real.to_dict()
    fake["entries"][0]["metrics"][1] = {"name": "r2_kernel", "params": {"n_fit": 64}}
    path = tmp_path / "fake.json"
    path.write_text(json.dumps(fake))
    for given in (path, fake, Suite.from_dict(fake)):
        with pytest.raises(InvalidConfigError, match=r"different suite is registered.*another name or version"):
            get_suite(given)
    path.write_text(json.dumps(real.to_dict()))
    assert get_suite(path) == real  # the same definition from a file is fine

    mine = {**fake, "name": "test-register-custom"}
    assert register_suite(mine).id == "test-register-custom:v1" and "test-register-custom:v1" in list_suites()
    assert register_suite(mine) == get_suite("test-register-custom:v1")  # again: a no-op
    with pytest.raises(InvalidConfigError, match="fingerprint"):
        register_suite({**mine, "seeds": [7]})
    with pytest.raises(InvalidConfigError, match="not a file"):
        register_suite("identifiability-numerical:v1")
