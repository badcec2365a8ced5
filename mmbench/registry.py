"""A generic, lazily-resolving registry with "Did you mean" errors.

Targets are registered either as objects or as ``"package.module:attribute"`` strings that are
imported on first use, so that registering every dataset costs nothing at import time.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from mmbench.errors import MMBenchError, NotFoundError, did_you_mean

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """Name → object mapping with lazy ``"module:attr"`` targets.

    Example:
        >>> metrics: Registry[Callable] = Registry("metric")
        >>> metrics.register("r2_linear", "mmbench.harness.metrics:r2_linear")
        >>> "r2_linear" in metrics
        True
    """

    def __init__(self, kind: str, *, error: type[NotFoundError] = NotFoundError) -> None:
        self.kind = kind
        self._error = error
        self._targets: dict[str, T | str] = {}
        self._metadata: dict[str, dict[str, Any]] = {}
        self._frozen = False

    def register(self, name: str, target: T | str | None = None, **metadata: Any) -> Any:
        """Register ``target`` under ``name``; without a target, return a decorator."""
        if target is None:

            def decorator(obj: T) -> T:
                self.register(name, obj, **metadata)
                return obj

            return decorator
        if self._frozen:
            raise MMBenchError(f"The {self.kind} registry is frozen; cannot register {name!r}.")
        if name in self._targets and self._targets[name] is not target:
            raise MMBenchError(
                f"A {self.kind} named {name!r} is already registered "
                f"(to {self._describe(self._targets[name])}). Choose another name."
            )
        self._targets[name] = target
        self._metadata[name] = dict(metadata)
        return target

    def get(self, name: str) -> T:
        """Return the object registered as ``name``, importing it if it was given lazily."""
        try:
            target = self._targets[name]
        except KeyError:
            raise self._error(self.not_found_message(name)) from None
        if isinstance(target, str):
            target = self._import(name, target)
            self._targets[name] = target
        return target  # type: ignore[return-value]

    def metadata(self, name: str) -> dict[str, Any]:
        """The keyword metadata given at registration (e.g. ``higher_is_better``)."""
        if name not in self._targets:
            raise self._error(self.not_found_message(name))
        return dict(self._metadata[name])

    def not_found_message(self, name: str) -> str:
        names = sorted(self._targets)
        listing = ", ".join(names) if len(names) <= 30 else ", ".join(names[:30]) + ", ..."
        return (
            f"Unknown {self.kind} {name!r}.{did_you_mean(name, names)} "
            f"Available: {listing or '(none registered)'}."
        )

    def freeze(self) -> None:
        """Forbid further registrations (used by tests and by frozen suites)."""
        self._frozen = True

    def names(self) -> list[str]:
        return sorted(self._targets)

    def items(self) -> Iterator[tuple[str, T]]:
        for name in self.names():
            yield name, self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._targets)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"

    @staticmethod
    def _describe(target: object) -> str:
        return target if isinstance(target, str) else getattr(target, "__qualname__", repr(target))

    def _import(self, name: str, target: str) -> T:
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
            obj = module
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise MMBenchError(
                f"The {self.kind} {name!r} is registered to {target!r}, which could not be "
                f"imported: {exc}. Check that its optional dependencies are installed."
            ) from exc
        return obj  # type: ignore[return-value]

