"""Seeded fuzz of bad inputs: ``mmbench.load``, ``mmbench.builder`` and the CLI fail only with
``MMBenchError`` subclasses (the CLI: a non-zero exit and no traceback), with a message that names
the bad field or value, and before anything is built.
"""

from __future__ import annotations

import contextlib
import io
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import mmbench
from mmbench import Replace
from mmbench.builders import DATASETS
from mmbench.cli import main
from mmbench.core.builder import Builder
from mmbench.core.config import check_dir
from mmbench.errors import (
    CacheError,
    ExecutorError,
    InputsNotFoundError,
    InvalidConfigError,
    MMBenchError,
)

N_API = 800  # load + builder calls
N_CLI = 300  # command lines


class _Unprintable:
    def __repr__(self) -> str:
        return "<unprintable thing>"


#: Values that no parameter accepts (every parameter is a str, path, number, bool or mapping).
WRONG_TYPES: list[Any] = [
    object(), _Unprintable(), {1, 2}, complex(1, 2), b"\x00bytes", bytearray(b"x"), [[["deep"]]],
    (lambda: 0), type, Ellipsis, float("nan"), float("inf"),
]
BAD_IDS: list[Any] = [
    "", " ", "nope", "numerical", "numerical/", "numerical//joint", "../etc/passwd", "numerical/misalignment/nope",
    "numerical/misalignment/joint:1.0", "numerical/misalignment/joint:9.0.0", "numerical/misalignment/joint:x.y.z",
    "numerical/misalignment/joint~", "numerical/misalignment/joint~zz", "numerical/misalignment/joint~0123abcd",
    "numerical/misalignment/joint/extra", "NUMERICAL/MISALIGNMENT", "polymnist:1.0.0:1.0.0", "numérical",
    "numerical\x00/misalignment", "a" * 500, "numerical/misalignment/joint:01.0.0", "polymnist/nope",
    3, None, 1.5, ["numerical/misalignment"], {"id": 1}, b"polymnist",
]
GOOD_IDS = ["numerical/misalignment/joint", "numerical/clica", "numerical/multiview", "polymnist",
            "numerical/misalignment/joint:1.0.0"]


def _bad_value(rng: random.Random, pool: list[Any]) -> Any:
    return rng.choice(pool + WRONG_TYPES)


def _bad_override(rng: random.Random, dataset_id: str) -> tuple[str, Any]:
    """A config field with a value of the wrong type or out of range, or an unknown field."""
    name = dataset_id.split(":")[0]
    cls = DATASETS.get("/".join(name.split("/")[:2]) if name.startswith("numerical") else name.split("/")[0])
    fields = list(cls.CONFIG_CLASS.field_names())
    if rng.random() < 0.1:
        return rng.choice(["not_a_field", "Seed", "split-sizes", "seed ", ""]), 1
    field = rng.choice(fields)
    per_field: dict[str, list[Any]] = {
        "seed": [-1, 1.5, "1", True, 2**64],
        "name": [3, "", "Bad Name", "a/b", ["joint"], "x" * 300],
        "description": [3, ["a"], {"a": 1}],
        "split_sizes": [Replace({}), {"train": -1}, {"Train": 1}, {"train": 1.5}, {"": 1}, {3: 1}, "train=1", [("train", 1)],
                        {"train": "10"}, {"train": True}],
        "shard_size": [0, -1, 1.5, "10", True],
        "backgrounds": ["", " ", "no-such-set", 3],
        "mnist": ["", "nope", 3],
    }
    return field, _bad_value(rng, per_field.get(field, ["", "definitely-not-valid"]))


def _cases(rng: random.Random, cache: Path, afile: Path) -> Iterator[tuple[str, Callable[[], Any], list[str]]]:
    """(description, call, the words one of which the message must contain)."""
    bad_dirs: list[Any] = ["", afile, afile / "below", str(afile / "x" / "y"), 3, 1.5, ["a"], {"a": 1}, b"bytes", True]
    for i in range(N_API):
        api = rng.choice(["load", "builder"])
        fn = getattr(mmbench, api)
        kwargs: dict[str, Any] = {"cache_dir": cache}
        dataset_id: Any = rng.choice(GOOD_IDS)
        kind = rng.choice(["id", "cache_dir", "data_dir", "version", "override", "override", "override"]
                          + (["split", "num_workers", "executor", "verify", "progress", "force_rebuild"] * 2
                             if api == "load" else []))
        if kind == "id":
            dataset_id = _bad_value(rng, BAD_IDS)
            words = ["dataset id", *_printed(dataset_id)]
        elif kind == "override":
            key, value = _bad_override(rng, dataset_id)
            kwargs[key] = value
            words = [key.strip() or "parameter", *_printed(value)]
        else:
            value = {
                "cache_dir": lambda: rng.choice(bad_dirs),
                "data_dir": lambda: rng.choice(bad_dirs),
                "version": lambda: _bad_value(rng, ["1.0", "9.9.9", "", "v1.0.0", "latest"]),
                "split": lambda: _bad_value(rng, ["", "Train", "validation", "all", "train[:10]"]),
                "num_workers": lambda: rng.choice([0, -1, 1.5, "2", True, None]),
                "executor": lambda: _bad_value(rng, ["", "proc", "threads", "Process", None]),
                "verify": lambda: _bad_value(rng, ["", "Full", "fast", None, True]),
                "progress": lambda: rng.choice(["yes", "", 1, 0, [], 1.5]),
                "force_rebuild": lambda: rng.choice(["yes", "", 1, 0, None, 1.5]),
            }[kind]()
            if kind == "data_dir" and value == "":
                value = afile / "missing"  # "" is checked once below; a missing data_dir only matters to builders with inputs
            kwargs[kind] = value
            words = [kind, *_printed(value)]
        if kind == "data_dir" and not _data_dir_is_wrong(kwargs["data_dir"]):
            continue  # a data_dir that does not exist is fine until a builder needs raw inputs
        yield f"#{i} mmbench.{api}({dataset_id!r}, {kwargs!r})", (lambda f=fn, d=dataset_id, k=kwargs: f(d, **k)), words


def _data_dir_is_wrong(value: Any) -> bool:
    return not isinstance(value, str | Path) or value == "" or not Path(value).parent.is_dir() or Path(value).is_file()


def _printed(value: Any) -> list[str]:
    """How a message may quote ``value``: its repr, its text (if it has some), or its parts
    (``numerical/misalignment/joint:9.0.0`` → ``9.0.0``)."""
    out = []
    with contextlib.suppress(Exception):
        out.append(repr(value)[:40])
        text = str(value)
        if len(text.strip()) >= 2:
            out.append(text[:40])
            if isinstance(value, str):
                out += [p for p in re.split(r"[:/~]", text) if len(p) >= 2]
    if isinstance(value, str) and not value.strip():
        out.append("empty")
    return out


@pytest.fixture
def no_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad inputs must fail before any data is made: generating a shard or the frozen resources
    (a builder's two pieces of real work) fails the test."""

    def refuse(self: Builder, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{self.id} started making data for a bad input")

    for name in DATASETS.names():
        monkeypatch.setattr(DATASETS.get(name), "generate", refuse)
        monkeypatch.setattr(DATASETS.get(name), "prepare", refuse)


def test_bad_api_inputs_raise_mmbench_errors(tmp_path: Path, no_builds: None) -> None:
    rng = random.Random(20260901)
    afile = tmp_path / "a-file"
    afile.write_text("not a directory")
    checked = 0
    for label, call, words in _cases(rng, tmp_path / "cache", afile):
        try:
            call()
        except MMBenchError as exc:
            msg = str(exc)
            assert any(w.lower() in msg.lower() for w in words), f"{label}: the message names neither {words}: {msg}"
        except Exception as exc:  # anything else escaping is the bug this test exists for
            raise AssertionError(f"{label} raised {type(exc).__name__}: {exc}") from exc
        else:
            raise AssertionError(f"{label} was accepted")
        checked += 1
    assert checked >= 700


def _cli_cases(rng: random.Random, afile: Path) -> Iterator[tuple[list[str], list[str]]]:
    for _ in range(N_CLI):
        command = rng.choice(["info", "build", "show"])
        dataset_id = rng.choice(GOOD_IDS)
        args = [command, dataset_id]
        kind = rng.choice(["id", "cache", "data", "override", "override", "options"])
        if kind == "id":
            bad = rng.choice([i for i in BAD_IDS if isinstance(i, str) and "\x00" not in i])
            args[1], words = bad, ["dataset id", *_printed(bad)]
        elif kind in ("cache", "data"):
            bad = rng.choice([str(afile), str(afile / "below"), ""])
            args += [f"--{kind}-dir", bad]
            words = [f"{kind}_dir", f"{kind}-dir", *_printed(bad)]
        elif kind == "override":
            key, value = _bad_override(rng, dataset_id)
            if not isinstance(value, str | int) or isinstance(value, bool):
                value = "[[1]]"  # a JSON value that no field takes (`nan` would be the string 'nan')
            raw = value if isinstance(value, str) else repr(value)
            args += ["-o", f"{key}={raw}"]
            words = [key.strip() or "override", *_printed(raw), *_printed(value)]
        else:
            if command == "build":
                option = rng.choice([["--workers", rng.choice(["0", "-1", "x"])], ["--executor", "threads"],
                                     ["--split", rng.choice(["Train", "nope", ""])]])
            elif command == "show":
                option = rng.choice([["--split", rng.choice(["Train", "nope", ""])], ["-n", "x"]])
            else:
                option = ["--bogus-option"]
            args += option
            words = [option[0].lstrip("-"), *_printed(option[-1]), "split"]
        yield args, words


def test_bad_cli_inputs_exit_cleanly(tmp_path: Path, no_builds: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    afile = tmp_path / "a-file"
    afile.write_text("not a directory")
    monkeypatch.setenv("MMBENCH_CACHE", str(tmp_path / "cache"))
    for args, words in _cli_cases(rng, afile):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(args)
            except SystemExit as exc:  # argparse's own usage errors: exit 2 with a message
                code = exc.code
        msg = err.getvalue()
        assert code not in (0, None), f"mmbench {args} exited 0"
        assert "Traceback" not in msg, f"mmbench {args} printed a traceback:\n{msg}"
        assert any(w.lower() in msg.lower() for w in words if w), f"mmbench {args}: message names neither {words}: {msg}"


# ------------------------------------------------------------------ the cases found by review, one by one


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"cache_dir": 3}, InvalidConfigError, ["cache_dir", "3"]),
        ({"data_dir": 3.5}, InvalidConfigError, ["data_dir", "3.5"]),
        ({"cache_dir": b"/tmp"}, InvalidConfigError, ["cache_dir", "b'/tmp'"]),
        ({"cache_dir": ""}, InvalidConfigError, ["cache_dir", "empty"]),
        ({"data_dir": "  "}, InvalidConfigError, ["data_dir", "empty"]),
        ({"description": object()}, InvalidConfigError, ["description", "object"]),
        ({"name": 3}, InvalidConfigError, ["name", "3"]),
        ({"name": "Bad Name"}, InvalidConfigError, ["name", "'Bad Name'"]),
        ({"split_sizes": {3: 10}}, InvalidConfigError, ["split_sizes", "3"]),
    ],
)
def test_review_cases_name_field_and_value(kwargs: dict[str, Any], error: type, words: list[str], tmp_path: Path) -> None:
    kwargs.setdefault("cache_dir", tmp_path)
    with pytest.raises(error) as exc:
        mmbench.builder("numerical/misalignment/joint", **kwargs)
    assert all(w in str(exc.value) for w in words), str(exc.value)


def test_empty_backgrounds_is_not_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmbench.testing.mnist import write_fake_backgrounds

    write_fake_backgrounds(tmp_path)  # five images in the current directory: "" must not pick them up
    monkeypatch.chdir(tmp_path)
    for value in ("", "   "):
        with pytest.raises(InvalidConfigError, match="backgrounds must be .* got an empty string"):
            mmbench.builder("polymnist", cache_dir=tmp_path / "cache", backgrounds=value)


def test_paths_below_a_regular_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "a-file"
    afile.write_text("x")
    with pytest.raises(CacheError, match="lies below .*a-file.*regular file"):
        mmbench.builder("numerical/misalignment/joint", cache_dir=afile / "cache")
    with pytest.raises(CacheError, match="cache_dir .* is a regular file"):
        mmbench.builder("numerical/misalignment/joint", cache_dir=afile)
    with pytest.raises(InputsNotFoundError, match="data_dir"):
        mmbench.builder("numerical/misalignment/joint", cache_dir=tmp_path, data_dir=afile / "mnist")
    monkeypatch.setenv("MMBENCH_CACHE", str(afile / "cache"))
    with pytest.raises(CacheError, match=r"\$MMBENCH_CACHE"):
        mmbench.builder("numerical/misalignment/joint")
    monkeypatch.delenv("MMBENCH_CACHE")
    assert main(["build", "numerical/misalignment/joint", "--cache-dir", str(afile / "below")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error: cache_dir" in err and "regular file" in err


def test_check_dir_accepts_paths_that_do_not_exist_yet(tmp_path: Path) -> None:
    assert check_dir("cache_dir", None) is None
    assert check_dir("cache_dir", tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert check_dir("cache_dir", str(tmp_path)) == tmp_path
    assert check_dir("data_dir", "~/x") == Path.home() / "x"


@pytest.mark.parametrize(
    ("option", "error"),
    [
        ({"num_workers": 0}, ExecutorError),
        ({"num_workers": "2"}, ExecutorError),
        ({"executor": "threads"}, ExecutorError),
        ({"progress": "yes"}, ExecutorError),
        ({"force_rebuild": "no"}, InvalidConfigError),
        ({"split": ["train"]}, InvalidConfigError),
        ({"verify": None}, InvalidConfigError),
    ],
)
def test_load_checks_options_on_a_cache_hit_too(
    option: dict[str, Any], error: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Builder, "is_built", lambda self, split: True)  # every split "cached"
    monkeypatch.setattr(Builder, "as_dataset", lambda self, split, **kw: f"dataset {split}")
    assert mmbench.load("numerical/misalignment/joint", split="train", cache_dir=tmp_path) == "dataset train"
    with pytest.raises(error, match=re.escape(repr(next(iter(option.values()))))):
        mmbench.load("numerical/misalignment/joint", cache_dir=tmp_path, **{"split": "train", **option})
