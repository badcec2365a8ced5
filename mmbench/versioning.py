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
from collections.abc import Mapping
from functools import total_ordering
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.errors import InvalidIdError

__all__ = ["Version", "canonical_json", "fingerprint", "sha256_file", "to_jsonable"]

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


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, ASCII only."""
    return json.dumps(to_jsonable(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def fingerprint(obj: Any, *, length: int = 16) -> str:
    """A short sha256 hex digest of the canonical JSON of ``obj``."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def sha256_file(path: str | Path, *, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
