"""Frozen, keyword-only builder configurations with validation and canonical fingerprints.

Overrides have one meaning everywhere (``mmbench.load``/``builder`` keyword arguments, suite
entries, train configs, ``-o`` on the command line): a scalar or list replaces the field; a
mapping is **merged key by key** into the field's current mapping, and a key the mapping does not
have (a misspelt split) is an error with "Did you mean". To replace a mapping whole (add or drop
keys), wrap it in :class:`Replace` (``-o field:=JSON`` on the command line). See
:func:`merge_value` and :func:`combine_overrides`.

Example:
    >>> cfg = BuilderConfig()                       # splits train/val/test
    >>> cfg.replace(split_sizes={"train": 50}).split_sizes
    {'train': 50, 'val': 2000, 'test': 2000}
    >>> cfg.replace(split_sizes=Replace({"train": 50})).split_sizes
    {'train': 50}
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmbench.errors import (
    CacheError,
    InputsNotFoundError,
    InvalidConfigError,
    MMBenchError,
    did_you_mean,
)
from mmbench.versioning import fingerprint, strict_fields, to_jsonable

__all__ = [
    "REPLACE_KEY",
    "BuilderConfig",
    "FrozenDict",
    "Replace",
    "check_choice",
    "check_dir",
    "check_int",
    "check_number",
    "combine_overrides",
    "comma_list_hint",
    "merge_value",
]

_SPLIT_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class FrozenDict(dict):
    """A read-only, picklable dict (configs are frozen all the way down)."""

    def _readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("This mapping belongs to a frozen config; use config.replace(...) instead.")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))


# ---------------------------------------------------------------------------- override semantics
#: The JSON form of :class:`Replace`: ``{"$replace": {...}}`` (suite files, train configs).
REPLACE_KEY = "$replace"
#: What the keys of a mapping field are called in messages.
_KEY_NOUN = {"split_sizes": "split"}


class Replace(Mapping[str, Any]):
    """An override that replaces a mapping field whole instead of merging into it.

    It is itself the JSON form ``{"$replace": value}``, so it survives being written into a suite
    file or a train config and read back.

    Example:
        >>> mmbench.load("numerical/misalignment/joint", split="train", split_sizes=Replace({"train": 1000}))
    """

    def __init__(self, value: Mapping[str, Any]) -> None:
        if not isinstance(value, Mapping):
            raise InvalidConfigError(f"Replace(...) wraps a mapping (e.g. Replace({{'train': 1000}})), got {value!r}.")
        self.value = dict(value)

    def __getitem__(self, key: str) -> Any:
        if key != REPLACE_KEY:
            raise KeyError(key)
        return self.value

    def __iter__(self) -> Iterator[str]:
        return iter((REPLACE_KEY,))

    def __len__(self) -> int:
        return 1

    def __repr__(self) -> str:
        return f"Replace({self.value!r})"


def _replacement(value: Any) -> Mapping[str, Any] | None:
    """The mapping a :class:`Replace` (or its JSON form) carries, else ``None``."""
    if isinstance(value, Mapping) and len(value) == 1 and REPLACE_KEY in value:
        inner = value[REPLACE_KEY]
        if not isinstance(inner, Mapping):
            raise InvalidConfigError(f"{{{REPLACE_KEY!r}: ...}} must hold a mapping, got {inner!r}.")
        return inner
    return None


def merge_value(name: str, current: Any, value: Any) -> Any:
    """The new value of field ``name`` (currently ``current``) under the override ``value``.

    A mapping merges into a mapping key by key (recursively); a key ``current`` lacks raises
    :class:`InvalidConfigError` with "Did you mean" and the way to replace the mapping whole.
    :class:`Replace` replaces; anything else replaces.
    """
    whole = _replacement(value)
    if whole is not None:
        return dict(whole)
    if not (isinstance(value, Mapping) and isinstance(current, Mapping)):
        return value
    unknown = [k for k in value if k not in current]
    if unknown:
        noun = _KEY_NOUN.get(name, "key")
        bad = str(unknown[0])
        example = json.dumps({**{str(k): v for k, v in current.items()}, **{str(k): v for k, v in value.items()}}, default=str)
        raise InvalidConfigError(
            f"Unknown {noun} {bad!r} in {name}.{did_you_mean(bad, [str(k) for k in current])} "
            f"{name} has {', '.join(repr(str(k)) for k in current)}; an override merges into these key by key. "
            f"To add or drop {noun}s, replace the whole mapping: {name}=mmbench.Replace({example}) in Python, "
            f"-o '{name}:={example}' on the command line."
        )
    return {**current, **{k: merge_value(f"{name}.{k}", current[k], v) for k, v in value.items()}}


def combine_overrides(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides ``extra`` applied on top of overrides ``base`` (e.g. a suite entry's, then the CLI's).

    The result, applied to a config, equals applying ``base`` and then ``extra``: mappings combine
    key by key, a :class:`Replace` in ``extra`` wins, and a mapping merged into a ``base``
    :class:`Replace` stays a replacement (checked against the keys that replacement has).
    """
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        whole = _replacement(old) if old is not None else None
        if whole is not None and isinstance(value, Mapping) and _replacement(value) is None:
            out[key] = Replace(merge_value(key, whole, value))
        elif isinstance(old, Mapping) and isinstance(value, Mapping) and _replacement(value) is None:
            out[key] = combine_overrides(old, value)
        else:
            out[key] = value
    return out


def comma_list_hint(overrides: Mapping[str, Any]) -> str:
    """A hint for string values that look like a comma list (``selection=s1,s2``), else ``""``."""
    hints = []
    for key, value in overrides.items():
        if isinstance(value, str) and "," in value:
            items = [v.strip() for v in value.split(",")]
            hints.append(
                f" {key}={value!r} looks like a comma-separated list; lists are written in JSON: "
                f"-o '{key}={json.dumps(items)}' on the command line, {key}={tuple(items)!r} in Python."
            )
    return "".join(hints)


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidConfigError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
        raise InvalidConfigError(f"{name} must be in {bounds}, got {value!r}.")
    return int(value)


def check_number(
    name: str, value: Any, *, low: float | None = None, high: float | None = None, open_low: bool = False
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidConfigError(f"{name} must be a number, got {value!r} ({type(value).__name__}).")
    value = float(value)
    if not np.isfinite(value):
        raise InvalidConfigError(f"{name} must be finite, got {value!r}.")
    if low is not None and (value < low or (open_low and value == low)):
        op = ">" if open_low else ">="
        raise InvalidConfigError(f"{name} must be {op} {low}, got {value!r}.")
    if high is not None and value > high:
        raise InvalidConfigError(f"{name} must be <= {high}, got {value!r}.")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = tuple(choices)
    if value not in choices:
        raise InvalidConfigError(
            f"{name} must be one of {list(choices)}, got {value!r}.{did_you_mean(str(value), [str(c) for c in choices])}"
        )
    return value


def check_dir(name: str, value: Any) -> Path | None:
    """``value`` as a directory path (``~`` expanded), or ``None``; it need not exist yet.

    Refused, each with an :class:`~mmbench.errors.MMBenchError` naming ``name`` and the value:
    anything but a ``str`` or ``os.PathLike`` of ``str`` (``InvalidConfigError``); an empty string
    (it would silently mean the current directory); a path that is, or lies below, a regular file
    (``CacheError`` for ``cache_dir``, ``InputsNotFoundError`` otherwise), which would otherwise
    surface as a ``NotADirectoryError`` traceback halfway through a build.

    Example:
        >>> check_dir("cache_dir", "/tmp/mmbench-cache")
        PosixPath('/tmp/mmbench-cache')
    """
    if value is None:
        return None
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(text, str):
        raise InvalidConfigError(
            f"{name} must be a directory path (a str or pathlib.Path), got {value!r} ({type(value).__name__})."
        )
    if not text.strip():
        raise InvalidConfigError(
            f"{name} is empty ({text!r}): give a directory path ('.' for the current directory), or leave it "
            "out for the default."
        )
    if "\0" in text:
        raise InvalidConfigError(f"{name} {text!r} contains a NUL character, which no path may hold.")
    path = Path(text).expanduser()
    error: type[MMBenchError] = CacheError if name in ("cache_dir", "$MMBENCH_CACHE") else InputsNotFoundError
    for parent in (path, *path.parents):
        try:
            if not parent.exists():
                continue
            if parent.is_dir():
                break
        except OSError as exc:  # e.g. a name too long, or a directory we may not search
            raise error(f"{name} {text!r} cannot be used: {exc}.") from exc
        where = "is" if parent == path else f"lies below {str(parent)!r}, which is"
        raise error(
            f"{name} {text!r} {where} a regular file, not a directory. Give a directory path (it is "
            "created if missing)."
        )
    return path


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuilderConfig:
    """Base class of every builder's configuration.

    Subclasses add their own fields (keyword-only, with defaults) and validate them in
    :meth:`validate`. ``name`` and ``description`` label a config; every other field is data and
    enters the :attr:`fingerprint`, which names the cache directory.

    Args:
        name: the named config this one derives from (``None`` for a custom one).
        description: human-readable summary.
        seed: root seed; example ``i`` of split ``s`` is drawn from generators keyed on
            ``(seed, split, shard)``.
        split_sizes: number of examples per split.
        shard_size: examples per shard. Shard boundaries are part of the data (each shard has its
            own generator), so changing this changes the dataset.
    """

    LABEL_FIELDS: ClassVar[tuple[str, ...]] = ("name", "description")

    name: str | None = None
    description: str = ""
    seed: int = 0
    split_sizes: Mapping[str, int] = dataclasses.field(
        default_factory=lambda: FrozenDict(train=10_000, val=2_000, test=2_000)
    )
    shard_size: int | None = 100_000

    def __post_init__(self) -> None:
        check_int("seed", self.seed, low=0, high=2**63 - 1)
        if self.shard_size is not None:  # None: the builder sizes shards by bytes (image data)
            check_int("shard_size", self.shard_size, low=1)
        if not isinstance(self.split_sizes, Mapping) or not self.split_sizes:
            raise InvalidConfigError(
                f"split_sizes must be a non-empty mapping split → size, e.g. {{'train': 1000}}; "
                f"got {self.split_sizes!r}."
            )
        sizes = {}
        for split, size in self.split_sizes.items():
            if not isinstance(split, str) or not _SPLIT_RE.match(split):
                raise InvalidConfigError(
                    f"Invalid split name {split!r} in split_sizes: use lowercase letters, digits and '_', "
                    "starting with a letter (e.g. 'train', 'val', 'test')."
                )
            sizes[split] = check_int(f"split_sizes[{split!r}]", size, low=0)
        object.__setattr__(self, "split_sizes", FrozenDict(sizes))
        if not isinstance(self.description, str):  # it goes into dataset_info.json and the cards
            raise InvalidConfigError(
                f"description must be a string, got {self.description!r} ({type(self.description).__name__})."
            )
        if self.name is not None and not isinstance(self.name, str):
            raise InvalidConfigError(
                f"name must be a config name (a string) or None, got {self.name!r} ({type(self.name).__name__})."
            )
        if self.name is not None:
            from mmbench.errors import InvalidIdError
            from mmbench.naming import validate_name

            try:
                validate_name(self.name, what="config name")
            except InvalidIdError as exc:  # a bad field value: report it as a config error
                raise InvalidConfigError(str(exc)) from None
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):  # lists from JSON/CLI become tuples: hashable and frozen
                object.__setattr__(self, f.name, tuple(value))
            elif f.type in ("float", float) and isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
                # 10 and 10.0 (and -0.0 and 0.0) are the same config: one fingerprint, one cache
                object.__setattr__(self, f.name, float(value) + 0.0)
        self.validate()

    def validate(self) -> None:
        """Hook for subclasses: raise :class:`InvalidConfigError` on bad values."""

    def data(self) -> dict[str, Any]:
        """The fields that define the data (everything but the labels)."""
        return {
            f.name: to_jsonable(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name not in self.LABEL_FIELDS
        }

    def to_dict(self) -> dict[str, Any]:
        return {f.name: to_jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @property
    def fingerprint(self) -> str:
        return fingerprint({"class": type(self).__name__, "data": self.data()})

    def split_offsets(self) -> dict[str, int]:
        """The first row of each split when the splits are laid end to end in ``split_sizes``
        order (how a shared store holds the rows of every split)."""
        out, pos = {}, 0
        for split, n in self.split_sizes.items():
            out[split] = pos
            pos += n
        return out

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **overrides: Any) -> BuilderConfig:
        """A copy with some fields changed, with the override semantics of this module.

        A mapping merges into the field's mapping key by key (``split_sizes={"train": 50}``
        keeps val and test); :class:`Replace` replaces it whole. Unknown fields, and unknown keys
        inside a mapping, raise :class:`InvalidConfigError` with the valid choices; a value that
        fails validation and looks like a comma list gets a hint with the JSON list form.
        """
        strict_fields(type(self), overrides, what="config parameter", partial=True)
        values = {k: merge_value(k, getattr(self, k), v) for k, v in overrides.items()}
        try:
            return dataclasses.replace(self, **values)
        except InvalidConfigError as exc:
            hint = comma_list_hint(overrides)
            if not hint:
                raise
            raise type(exc)(f"{exc}{hint}") from exc
        except TypeError as exc:  # e.g. an unhashable or wrongly-typed value deep in a subclass
            raise InvalidConfigError(f"Invalid override for {type(self).__name__}: {exc}{comma_list_hint(overrides)}") from exc

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuilderConfig:
        return cls(**strict_fields(cls, data, what="config parameter"))
