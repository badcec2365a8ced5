"""Ground-truth latent variables: what exists in a dataset, with its role and scope.

A :class:`LatentSpec` is the shared vocabulary between datasets and the harness: every dataset
declares its latents (kind, support, which modality sees them, and their role), so any model can
be scored on any dataset the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from mmbench.errors import ColumnNotFoundError, InvalidConfigError, NotFoundError, did_you_mean
from mmbench.versioning import strict_fields

__all__ = ["KINDS", "ROLES", "Latent", "LatentSpec", "LatentTable", "MarkdownTable"]

Kind = Literal["categorical", "discrete", "continuous"]
Role = Literal["content", "style", "specific", "nuisance"]
KINDS: tuple[str, ...] = ("categorical", "discrete", "continuous")
ROLES: tuple[str, ...] = ("content", "style", "specific", "nuisance")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Latent:
    """One ground-truth latent variable (possibly vector-valued).

    Args:
        name: column name (stored as ``latents.<name>``).
        kind: ``categorical`` (integer codes into ``support`` names), ``discrete`` (integers in
            the inclusive ``support`` bounds) or ``continuous`` (floats in ``support`` bounds,
            which may be infinite).
        support: category names, or ``(low, high)`` bounds.
        role: ``content`` (shared and invariant across modalities), ``style`` (shared but may
            change between modalities), ``specific`` (seen by one modality only) or ``nuisance``.
        scope: ``"shared"`` or the key of the one modality that sees it.
        dim: number of components (1 = scalar column of shape ``(n,)``).

    Example:
        >>> Latent(name="digit", kind="categorical", support=tuple("0123456789"), role="content")
    """

    name: str
    kind: Kind
    support: tuple[Any, ...]
    role: Role
    scope: str = "shared"
    dim: int = 1
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidConfigError(
                f"Latent {self.name!r}: kind {self.kind!r} is not one of {KINDS}."
            )
        if self.role not in ROLES:
            raise InvalidConfigError(
                f"Latent {self.name!r}: role {self.role!r} is not one of {ROLES}."
            )
        if not isinstance(self.dim, int) or self.dim < 1:
            raise InvalidConfigError(f"Latent {self.name!r}: dim must be a positive int, got {self.dim!r}.")
        object.__setattr__(self, "support", tuple(self.support))
        if self.kind == "categorical":
            if len(self.support) < 2:
                raise InvalidConfigError(
                    f"Latent {self.name!r}: a categorical latent needs at least 2 categories, "
                    f"got {self.support!r}."
                )
        elif len(self.support) != 2 or not self.support[0] <= self.support[1]:
            raise InvalidConfigError(
                f"Latent {self.name!r}: a {self.kind} latent needs (low, high) bounds with "
                f"low <= high, got {self.support!r}."
            )

    @property
    def shape(self) -> tuple[int, ...]:
        """Per-example shape of the stored column."""
        return () if self.dim == 1 else (self.dim,)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32 if self.kind == "continuous" else np.int64)

    @property
    def num_classes(self) -> int | None:
        if self.kind == "categorical":
            return len(self.support)
        if self.kind == "discrete":
            return int(self.support[1]) - int(self.support[0]) + 1
        return None

    @property
    def is_discrete(self) -> bool:
        return self.kind != "continuous"

    def check(self, values: np.ndarray, *, n: int | None = None) -> None:
        """Raise if ``values`` has the wrong shape or leaves the support."""
        values = np.asarray(values)
        expected = ((n if n is not None else len(values)), *self.shape)
        if values.shape != expected:
            raise InvalidConfigError(
                f"Latent {self.name!r}: expected values of shape {expected}, got {values.shape}."
            )
        if values.size == 0:
            return
        if self.kind == "categorical":
            low, high = 0, len(self.support) - 1
        else:
            low, high = self.support
        if self.kind == "continuous" and not np.isfinite(values).all():
            raise InvalidConfigError(f"Latent {self.name!r}: NaN or infinite values.")
        vmin, vmax = values.min(), values.max()
        if vmin < low or vmax > high:
            raise InvalidConfigError(
                f"Latent {self.name!r}: values span [{vmin}, {vmax}], outside its support "
                f"[{low}, {high}]."
            )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["support"] = [s if not isinstance(s, float) or np.isfinite(s) else repr(s) for s in self.support]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Latent:
        d = strict_fields(cls, d, what="latent field")
        d["support"] = tuple(float(s) if s in ("inf", "-inf") else s for s in d["support"])
        return cls(**d)


Sampler = Callable[[int, np.random.Generator], Mapping[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class LatentSpec:
    """The latents of a dataset, in order, plus how to sample them.

    Dependencies between latents (hue depends on position, style on content) live in the
    ``sampler``: a function ``(n, rng) -> {name: array}``.
    """

    latents: tuple[Latent, ...]
    sampler: Sampler | None = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "latents", tuple(self.latents))
        names = [lat.name for lat in self.latents]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise InvalidConfigError(f"Duplicate latent names: {sorted(dupes)}.")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(lat.name for lat in self.latents)

    def __getitem__(self, name: str) -> Latent:
        for lat in self.latents:
            if lat.name == name:
                return lat
        raise NotFoundError(f"No latent {name!r}.{did_you_mean(name, self.names)} Latents: {list(self.names)}.")

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __iter__(self) -> Iterator[Latent]:
        return iter(self.latents)

    def __len__(self) -> int:
        return len(self.latents)

    def select(self, *, role: str | None = None, scope: str | None = None) -> tuple[Latent, ...]:
        """Latents with the given role and/or scope."""
        return tuple(
            lat
            for lat in self.latents
            if (role is None or lat.role == role) and (scope is None or lat.scope == scope)
        )

    def sample(self, n: int, *, rng: np.random.Generator) -> LatentTable:
        """Draw ``n`` joint samples with the spec's sampler.

        Specs from ``Builder.latent_spec()`` sample; specs read back from ``dataset_info.json``
        describe the latents only (use ``mmbench.builder(ds.id).latent_spec()`` to sample).
        """
        if self.sampler is None:
            raise NotImplementedError(
                "This LatentSpec has no sampler (a spec read from a cache, or a builder that does not "
                "provide one). Sample from the builder's spec: mmbench.builder(id).latent_spec().sample(n, rng=rng)."
            )
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise InvalidConfigError(f"n must be a non-negative integer, got {n!r}.")
        columns = self.sampler(n, rng)
        table = LatentTable({name: columns[name] for name in self.names})
        self.check(table)
        return table

    def check(self, table: LatentTable | Mapping[str, np.ndarray]) -> None:
        n = len(next(iter(table.values()))) if len(table) else 0
        for lat in self.latents:
            if lat.name not in table:
                raise InvalidConfigError(f"Latent column {lat.name!r} is missing.")
            lat.check(table[lat.name], n=n)

    def to_dict(self) -> list[dict[str, Any]]:
        return [lat.to_dict() for lat in self.latents]

    @classmethod
    def from_dict(cls, items: Iterable[Mapping[str, Any]]) -> LatentSpec:
        return cls(tuple(Latent.from_dict(d) for d in items))

    def table(self) -> MarkdownTable:
        """A Markdown table of the latents (used by ``mmbench info`` and dataset cards).

        It is a ``str`` that a REPL shows as the table itself (and Jupyter renders as Markdown).
        """
        rows = ["| latent | kind | dim | support | scope | role |", "|---|---|---|---|---|---|"]
        for lat in self.latents:
            if lat.kind == "categorical":
                sup = f"{len(lat.support)} classes"
                if len(lat.support) <= 8:
                    sup += ": " + ", ".join(str(s) for s in lat.support)
            else:
                sup = f"[{lat.support[0]}, {lat.support[1]}]"
            rows.append(f"| {lat.name} | {lat.kind} | {lat.dim} | {sup} | {lat.scope} | {lat.role} |")
        return MarkdownTable("\n".join(rows))


class MarkdownTable(str):
    """A Markdown string whose ``repr`` is itself: ``spec.table()`` at a REPL prompt prints the table,
    not an escaped one-line string."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return str(self)


class LatentTable(Mapping[str, np.ndarray]):
    """Columnar latents: a mapping name → array whose first axis is the example axis."""

    def __init__(self, columns: Mapping[str, np.ndarray]) -> None:
        self._columns = {k: np.asarray(v) for k, v in columns.items()}
        lengths = {k: len(v) for k, v in self._columns.items()}
        if len(set(lengths.values())) > 1:
            raise InvalidConfigError(f"Latent columns differ in length: {lengths}.")

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self._columns[name]
        except KeyError:
            raise ColumnNotFoundError(
                f"No latent column {name!r}.{did_you_mean(name, self._columns)} "
                f"Columns: {list(self._columns)}."
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)

    @property
    def num_rows(self) -> int:
        return len(next(iter(self._columns.values()))) if self._columns else 0

    def take(self, index: np.ndarray | slice | Sequence[int]) -> LatentTable:
        return LatentTable({k: v[index] for k, v in self._columns.items()})

    def matrix(self, names: Sequence[str] | None = None) -> np.ndarray:
        """Stack the chosen columns into an ``(n, total_dim)`` float array."""
        names = list(names or self._columns)
        return np.concatenate(
            [self[n].reshape(self.num_rows, -1).astype(np.float64) for n in names], axis=1
        )

    def __repr__(self) -> str:
        cols = ", ".join(f"{k}{tuple(v.shape[1:]) or ''}" for k, v in self._columns.items())
        return f"LatentTable(n={self.num_rows}, [{cols}])"
