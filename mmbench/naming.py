"""Dataset identifiers: ``name[/config[~fingerprint]][:x.y.z]``.

Dataset names may themselves contain ``/`` (``numerical/misalignment``); which part is the
dataset and which the config is decided against the registry by :func:`resolve_id`.

``config~fingerprint`` (``joint~c32604f2``) is what ``Builder.id`` and ``Dataset.id`` report for
a named config changed by overrides: the hex prefix of the changed config's fingerprint.
``mmbench.load`` reopens such an id from the cache entry that holds it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection

from mmbench.errors import DatasetNotFoundError, InvalidIdError, did_you_mean
from mmbench.versioning import Version

__all__ = ["DatasetId", "parse_id", "resolve_id", "validate_name"]

_SEGMENT_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
_FINGERPRINT_RE = re.compile(r"^[0-9a-f]{8,16}$")


@dataclasses.dataclass(frozen=True)
class DatasetId:
    """A resolved dataset identifier."""

    name: str
    config: str | None = None
    version: Version | None = None
    #: hex prefix of an overridden config's fingerprint (the ``~…`` part), else ``None``
    fingerprint: str | None = None

    def __str__(self) -> str:
        text = self.name
        if self.config:
            text += f"/{self.config}"
        if self.fingerprint:
            text += f"~{self.fingerprint}"
        if self.version:
            text += f":{self.version}"
        return text


def validate_name(segment: str, *, what: str = "name") -> str:
    if not _SEGMENT_RE.match(segment):
        raise InvalidIdError(
            f"Invalid {what} {segment!r}: use lowercase letters, digits, '_' and '-', starting "
            "with a letter or digit (no '.', '..', spaces, slashes or path separators)."
        )
    return segment


def parse_id(text: str) -> tuple[tuple[str, ...], Version | None]:
    """Split an id into its ``/``-separated segments and an optional version, validating syntax."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidIdError(
            f"Invalid dataset id {text!r}: expected 'name[/config][:x.y.z]', e.g. "
            "'numerical/misalignment/joint:1.0.0'. Run `mmbench list` for the names."
        )
    body, sep, version_text = text.strip().partition(":")
    version = Version.parse(version_text) if sep else None
    if "\\" in body or body.startswith("/") or body.endswith("/") or "//" in body:
        raise InvalidIdError(
            f"Invalid dataset id {text!r}: ids are names, not paths (no leading/trailing '/', "
            "no '//' or '\\'). Expected 'name[/config][:x.y.z]'."
        )
    segments = tuple(body.split("/"))
    for i, seg in enumerate(segments):
        seg, tilde, fp = seg.partition("~")
        validate_name(seg, what=f"segment in dataset id {text!r}:")
        if tilde and (i != len(segments) - 1 or len(segments) < 2 or not _FINGERPRINT_RE.match(fp)):
            raise InvalidIdError(
                f"Invalid dataset id {text!r}: '~' may only follow the config name, with 8–16 "
                "lowercase hex digits of the config fingerprint, e.g. "
                "'numerical/misalignment/joint~c32604f2:1.0.0' (what Dataset.id reports for an overridden config)."
            )
    return segments, version


def resolve_id(text: str, known: Collection[str]) -> DatasetId:
    """Resolve ``text`` into dataset name, config and version using the registered names.

    The longest registered name that is a prefix of the id wins; one remaining segment is the
    config name.
    """
    segments, version = parse_id(text)
    *head, last = segments
    last, _, fp = last.partition("~")
    segments = (*head, last)
    for cut in range(len(segments), 0, -1):
        name = "/".join(segments[:cut])
        if name in known:
            rest = segments[cut:]
            if len(rest) > 1:
                raise InvalidIdError(
                    f"Invalid dataset id {text!r}: after the dataset {name!r} only one config "
                    f"name may follow, got {'/'.join(rest)!r}."
                )
            if fp and not rest:
                raise InvalidIdError(
                    f"Invalid dataset id {text!r}: '~{fp}' must follow a config name, e.g. "
                    f"'{name}/<config>~{fp}'."
                )
            return DatasetId(name, rest[0] if rest else None, version, fp or None)
    body = "/".join(segments)
    raise DatasetNotFoundError(
        f"Unknown dataset {body!r}.{did_you_mean(body, known)} Available datasets: "
        f"{', '.join(sorted(known))}. Run `mmbench list` to see them with their configs."
    )
