"""The exception hierarchy of mmbench.

Every error the library raises on purpose is an :class:`MMBenchError`. Each subclass also
inherits the builtin exception it refines, so ``except KeyError`` or ``except ValueError`` keep
working for callers who do not know mmbench. Messages name the bad value, the valid choices and
what to do next.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "CacheError",
    "ChecksumError",
    "ColumnNotFoundError",
    "DatasetNotFoundError",
    "ExecutorError",
    "HubError",
    "InputsNotFoundError",
    "InvalidConfigError",
    "InvalidIdError",
    "MMBenchError",
    "NotFoundError",
    "SubmissionError",
    "did_you_mean",
]


class MMBenchError(Exception):
    """Root of every error raised by mmbench."""

    def __str__(self) -> str:  # KeyError quotes its message; we never want that
        return str(self.args[0]) if self.args else self.__class__.__name__


class NotFoundError(MMBenchError, KeyError):
    """A name looked up in a registry (dataset, metric, suite, ...) does not exist."""


class DatasetNotFoundError(NotFoundError):
    """An unknown dataset, config or version."""


class ColumnNotFoundError(NotFoundError):
    """An unknown column of a loaded dataset, or latent of a latent table."""


class InvalidIdError(MMBenchError, ValueError):
    """A malformed identifier, e.g. ``"numerical/../x"`` or ``"polymnist:1.0"``."""


class InvalidConfigError(MMBenchError, ValueError):
    """A builder configuration or override with an invalid value."""


class InputsNotFoundError(MMBenchError, FileNotFoundError):
    """Raw inputs (MNIST files, archives, meshes) could not be found or fetched."""


class ChecksumError(MMBenchError, ValueError):
    """A file's checksum does not match the recorded one."""


class CacheError(MMBenchError, OSError):
    """The dataset cache is corrupt, partial or unusable."""


class ExecutorError(MMBenchError, RuntimeError):
    """A shard-generation executor is unknown, not installed, or failed."""


class SubmissionError(MMBenchError, RuntimeError):
    """A submitted model violated the harness protocol."""


class HubError(MMBenchError, RuntimeError):
    """Publishing to or reading from the Hugging Face Hub failed (token, repository, network, data)."""


def did_you_mean(name: str, choices: Iterable[str], *, n: int = 3) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choices, or an empty string."""
    close = difflib.get_close_matches(str(name), list(choices), n=n, cutoff=0.5)
    if not close:
        return ""
    if len(close) == 1:
        return f" Did you mean {close[0]!r}?"
    return " Did you mean one of " + ", ".join(repr(c) for c in close) + "?"
