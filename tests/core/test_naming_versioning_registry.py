from __future__ import annotations

import pytest

import mmbench
from mmbench.errors import DatasetNotFoundError, InvalidIdError, MMBenchError, NotFoundError
from mmbench.naming import DatasetId, parse_id, resolve_id
from mmbench.registry import Registry
from mmbench.versioning import Version, canonical_json, fingerprint, to_jsonable

KNOWN = ["polymnist", "numerical/misalignment", "numerical/clica"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("polymnist", DatasetId("polymnist")),
        ("polymnist:1.2.3", DatasetId("polymnist", None, Version(1, 2, 3))),
        ("numerical/misalignment", DatasetId("numerical/misalignment")),
        ("numerical/misalignment/joint", DatasetId("numerical/misalignment", "joint")),
        ("numerical/misalignment/joint:1.0.0", DatasetId("numerical/misalignment", "joint", Version(1, 0, 0))),
    ],
)
def test_resolve_id(text: str, expected: DatasetId) -> None:
    assert resolve_id(text, KNOWN) == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    "bad",
    ["", "  ", "../etc", "/abs/path", "numerical//clica", "a\\b", "Polymnist", "poly mnist", "polymnist:1.0",
     "polymnist:v1", "numerical/..", "numerical/./x", "polymnist/"],
)
def test_malformed_ids_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidIdError) as err:
        parse_id(bad)
    assert repr(bad.strip()) in str(err.value) or "Invalid" in str(err.value)


def test_unknown_dataset_suggests() -> None:
    with pytest.raises(DatasetNotFoundError, match="Did you mean 'polymnist'"):
        resolve_id("polymnsit", KNOWN)
    with pytest.raises(KeyError):  # also a KeyError for callers who do not know mmbench
        resolve_id("nope", KNOWN)
    with pytest.raises(InvalidIdError, match="only one config"):
        resolve_id("numerical/misalignment/joint/extra", KNOWN)


def test_load_errors_name_the_choices() -> None:
    with pytest.raises(DatasetNotFoundError, match="Available configs: joint"):
        mmbench.builder("numerical/misalignment/nope")
    with pytest.raises(DatasetNotFoundError, match="this mmbench builds version 1.0.0"):
        mmbench.builder("numerical/misalignment/joint:9.9.9")
    with pytest.raises(DatasetNotFoundError, match="Unknown split 'tset' for .*Did you mean 'test'"):
        mmbench.load("numerical/misalignment", split="tset", split_sizes={"test": 10})
    with pytest.raises(DatasetNotFoundError, match="asks for version"):
        mmbench.builder("numerical/misalignment:1.0.0", version="2.0.0")


def test_version_parse_and_order() -> None:
    assert Version.parse("1.10.0") > Version.parse("1.9.9")
    assert str(Version.parse(" 0.1.2 ")) == "0.1.2"
    for bad in ("1.0", "01.0.0", "1.0.0-rc1", "x"):
        with pytest.raises(InvalidIdError):
            Version.parse(bad)


def test_canonical_json_and_fingerprint() -> None:
    a = {"b": (1, 2.5), "a": {"y": None, "x": float("inf")}}
    b = {"a": {"x": float("inf"), "y": None}, "b": [1, 2.5]}
    assert canonical_json(a) == canonical_json(b) == '{"a":{"x":"inf","y":null},"b":[1,2.5]}'
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint({"seed": 0}) != fingerprint({"seed": 1})
    with pytest.raises(TypeError):
        canonical_json({"f": object()})


def test_versions_are_json_text_also_inside_dataclasses() -> None:
    assert to_jsonable(Version(1, 2, 3)) == "1.2.3"
    assert to_jsonable(DatasetId("polymnist", None, Version(1, 0, 0))) == {
        "name": "polymnist", "config": None, "version": "1.0.0", "fingerprint": None}
    assert canonical_json({"v": Version(0, 1, 0)}) == '{"v":"0.1.0"}'


def test_public_api_names_resolve() -> None:
    import typing

    assert "evaluate" in mmbench.__all__
    for name in mmbench.__all__:
        assert getattr(mmbench, name) is not None, name
    from mmbench.harness.evaluate import evaluate

    assert mmbench.evaluate is evaluate
    # load's return type follows split: one Dataset for a split, a dict for split=None
    overloads = typing.get_overloads(mmbench.load)
    assert [(f.__annotations__["split"], f.__annotations__["return"]) for f in overloads] == [
        ("str", "Dataset"), ("None", "dict[str, Dataset]")]


def test_registry_lazy_targets_and_suggestions() -> None:
    reg: Registry = Registry("metric")
    reg.register("joinpath", "os.path:join", higher_is_better=True)

    @reg.register("double")
    def double(x: int) -> int:
        return 2 * x

    import os.path

    assert reg.get("joinpath") is os.path.join
    assert reg.get("double")(2) == 4
    assert reg.metadata("joinpath") == {"higher_is_better": True}
    assert reg.names() == ["double", "joinpath"] and "double" in reg and len(reg) == 2
    with pytest.raises(NotFoundError, match="Did you mean 'double'"):
        reg.get("doubel")
    with pytest.raises(MMBenchError, match="already registered"):
        reg.register("double", len)
    reg.register("broken", "mmbench.no_such_module:x")
    with pytest.raises(MMBenchError, match="could not be imported"):
        reg.get("broken")
    reg.freeze()
    with pytest.raises(MMBenchError, match="frozen"):
        reg.register("new", len)


def test_overridden_config_ids() -> None:
    did = resolve_id("numerical/misalignment/joint~c32604f2:1.0.0", KNOWN)
    assert did == DatasetId("numerical/misalignment", "joint", Version(1, 0, 0), "c32604f2")
    assert str(did) == "numerical/misalignment/joint~c32604f2:1.0.0"
    assert resolve_id("numerical/misalignment/joint", KNOWN).fingerprint is None
    for bad in ("numerical/misalignment~c32604f2", "numerical/misalignment/joint~xyz", "numerical/joint~c32604f2/x",
                "numerical/misalignment/joint~c326", "polymnist~c32604f2"):
        with pytest.raises(InvalidIdError):
            resolve_id(bad, KNOWN)


def test_strict_fields() -> None:
    from mmbench.errors import InvalidConfigError
    from mmbench.versioning import strict_fields

    assert strict_fields(Version, {"major": 1, "minor": 2, "patch": 3}) == {"major": 1, "minor": 2, "patch": 3}
    with pytest.raises(InvalidConfigError, match=r"Unknown field 'pach' for Version\. Did you mean 'patch'\? "
                                                 r"Valid fields: major, minor, patch\."):
        strict_fields(Version, {"major": 1, "minor": 2, "pach": 3})
    with pytest.raises(InvalidConfigError, match=r"Unknown parts 'a', 'b' for Version"):
        strict_fields(Version, {"a": 1, "b": 2}, what="part")
    with pytest.raises(InvalidConfigError, match=r"Version needs the field\(s\) 'patch'"):
        strict_fields(Version, {"major": 1, "minor": 2})
    assert strict_fields(Version, {"minor": 2}, partial=True) == {"minor": 2}
    with pytest.raises(InvalidConfigError, match="mapping"):
        strict_fields(Version, [("major", 1)])


def _from_dict_sites() -> list[tuple[object, dict[str, object], str]]:
    from mmbench.builders.numerical import MisalignmentConfig
    from mmbench.core.latents import Latent
    from mmbench.harness.protocols import ModelCard
    from mmbench.harness.suites import Suite, SuiteEntry
    from mmbench.models.train import TrainConfig

    return [
        (MisalignmentConfig.from_dict, {"seed": 1, "bogus": 1}, "config parameter"),
        (lambda d: mmbench.builder("numerical/misalignment/joint", **d), {"bogus": 1}, "config parameter"),
        (Latent.from_dict, {"name": "a", "kind": "continuous", "support": [0, 1], "bogus": 1}, "latent field"),
        (ModelCard.from_dict, {"name": "m", "bogus": 1}, "model card field"),
        (SuiteEntry.from_dict, {"dataset": "numerical/clica", "bogus": 1}, "suite entry field"),
        (Suite.from_dict, {"name": "s", "version": 1, "entries": [], "bogus": 1}, "suite field"),
        (TrainConfig.from_dict, {"bogus": 1}, "TrainConfig field"),
    ]


def test_every_from_dict_rejects_unknown_keys_the_same_way() -> None:
    from mmbench.errors import InvalidConfigError

    for from_dict, data, what in _from_dict_sites():
        with pytest.raises(InvalidConfigError, match=rf"Unknown {what} 'bogus' for \w+\..* Valid {what}s: "):
            from_dict(data)  # type: ignore[operator]
