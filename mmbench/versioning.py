"""Semantic versions, canonical JSON and content fingerprints.

Versions follow the TensorFlow-Datasets meaning: PATCH = the same decoded data, MINOR = new
columns only, MAJOR = some existing value changed.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from functools import total_ordering
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import InvalidConfigError, InvalidIdError, did_you_mean

__all__ = ["Version", "canonical_json", "fingerprint", "sha256_file", "strict_fields", "to_jsonable"]

_VERSION_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


@total_ordering
@dataclasses.dataclass(frozen=True)
class Version:
    """A ``MAJOR.MINOR.PATCH`` version.

    Example:
        >>> Version.parse("1.2.0") > Version.parse("1.1.9")
        True
    """

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str | Version) -> Version:
        if isinstance(text, Version):
            return text
        match = _VERSION_RE.match(str(text).strip())
        if not match:
            raise InvalidIdError(
                f"Invalid version {text!r}: expected MAJOR.MINOR.PATCH with three non-negative "
                "integers, e.g. '1.0.0'."
            )
        return cls(*(int(g) for g in match.groups()))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return (self.major, self.minor, self.patch) < (other.major, other.minor, other.patch)


def to_jsonable(obj: Any) -> Any:
    """Convert configs, tuples, numpy scalars/arrays, paths and enums into plain JSON values."""
    if isinstance(obj, Version):  # before the dataclass branch: a version is its "x.y.z" text
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, set | frozenset):
        return sorted(to_jsonable(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)  # JSON has no inf/nan; keep them distinguishable
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"Cannot convert {type(obj).__name__} to canonical JSON: {obj!r}")


def strict_fields(
    cls: type,
    data: Any,
    *,
    what: str = "field",
    names: Iterable[str] | None = None,
    partial: bool = False,
) -> dict[str, Any]:
    """``dict(data)``, checked to be keyword arguments of the dataclass ``cls``: the one strict
    ``from_dict`` check of mmbench (configs, cards, suites, latents read back from JSON or given
    as overrides).

    Args:
        cls: the dataclass (its init fields are the valid keys, unless ``names`` is given).
        data: the mapping to check.
        what: what a key is called in messages (``"config parameter"``, ``"suite field"``).
        names: the valid keys, if not ``cls``'s fields.
        partial: allow required fields to be missing (changes applied to an existing object).

    Raises:
        InvalidConfigError: ``data`` is not a mapping, has keys ``cls`` does not take (named,
            with the nearest valid key and all valid keys) or lacks required ones.

    Example:
        >>> strict_fields(Version, {"major": 1, "minor": 0, "patch": 0, "pach": 1})
        Traceback (most recent call last):
        mmbench.errors.InvalidConfigError: Unknown field 'pach' for Version. Did you mean 'patch'? Valid fields: major, minor, patch.
    """
    owner = cls.__name__
    if not isinstance(data, Mapping):
        raise InvalidConfigError(f"A {owner} is read from a mapping (a JSON object) of {what}s, got {data!r:.200}.")
    fields = [f for f in dataclasses.fields(cls) if f.init]
    valid = list(names) if names is not None else [f.name for f in fields]
    unknown = [k for k in data if k not in valid]
    if unknown:
        hint = did_you_mean(str(unknown[0]), valid) if len(unknown) == 1 else ""
        plural = "s" if len(unknown) > 1 else ""
        raise InvalidConfigError(
            f"Unknown {what}{plural} {', '.join(repr(k) for k in unknown)} for {owner}.{hint} "
            f"Valid {what}s: {', '.join(valid)}."
        )
    if not partial:
        required = [
            f.name for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
        ]
        missing = [k for k in required if k not in data]
        if missing:
            raise InvalidConfigError(f"{owner} needs the {what}(s) {', '.join(map(repr, missing))}, which are missing.")
    return dict(data)


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, ASCII only."""
    return json.dumps(to_jsonable(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def fingerprint(obj: Any, *, length: int = 16) -> str:
    """A short sha256 hex digest of the canonical JSON of ``obj``."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def sha256_file(
    path: str | Path, *, chunk: int = 1 << 22, progress: Callable[[int], object] | None = None
) -> str:
    """sha256 of a file, read in chunks (never whole); ``progress(n)`` is told each chunk's size."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
            if progress is not None:
                progress(len(block))
    return h.hexdigest()
