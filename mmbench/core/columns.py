"""Column values in memory and on disk: fixed arrays, UTF-8 strings, ragged integer sequences.

A ``string`` or ``ragged`` column is stored as two memory-mappable ``.npy`` files: ``offsets``
(``n + 1`` int64, example ``i`` is ``values[offsets[i]:offsets[i + 1]]``) and ``values``
(UTF-8 bytes as uint8, or the integers). Readers (:class:`StringColumn`, :class:`RaggedColumn`,
:class:`StoreColumn`) give random access and whole-batch gathers with no per-example file I/O.

In a batch, a string column is a ``list[str]``; a ragged column is a padded integer array
``(batch, max_length)`` (padding value 0) plus ``"<name>.lengths"`` (int64).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from mmbench.core.info import Feature
from mmbench.errors import InvalidConfigError, MMBenchError

__all__ = [
    "PAD_VALUE",
    "Ragged",
    "RaggedColumn",
    "StoreColumn",
    "StringColumn",
    "VarValues",
    "lengths_key",
    "to_var_values",
]

#: Value that pads ragged sequences in a batch (the ``{pad}`` id of a :class:`Vocabulary`).
PAD_VALUE = 0


def lengths_key(name: str) -> str:
    """The batch key of a ragged column's sequence lengths."""
    return f"{name}.lengths"


@dataclasses.dataclass(frozen=True, eq=False)
class Ragged:
    """Variable-length integer sequences in two arrays: sequence ``i`` is ``values[offsets[i]:offsets[i+1]]``.

    ``values`` are integers (token ids: int32), ``offsets`` int64 of length ``n + 1`` starting at
    0 (the layout of a ragged column on disk: two memory-mappable ``.npy`` files). What a
    builder's ``generate`` returns for a ragged column (a list of 1-D arrays works too).

    Example:
        >>> Ragged.from_sequences([[3, 4, 1], [5, 1]]).lengths
        array([3, 2])
    """

    values: np.ndarray
    offsets: np.ndarray

    def __post_init__(self) -> None:
        values = np.asarray(self.values)
        offsets = np.asarray(self.offsets)
        if values.ndim != 1 or values.dtype.kind not in "iu" or offsets.ndim != 1 or offsets.dtype.kind not in "iu":
            raise InvalidConfigError(
                f"Ragged needs 1-D integer values and offsets, got {values.dtype}{values.shape} and "
                f"{offsets.dtype}{offsets.shape}."
            )
        if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(values) or np.any(np.diff(offsets) < 0):
            raise InvalidConfigError(
                f"Ragged offsets must start at 0, never decrease and end at len(values) = {len(values)}; "
                f"got {len(offsets)} offsets from {offsets[:1].tolist()} to {offsets[-1:].tolist()}."
            )
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "offsets", offsets.astype(np.int64, copy=False))

    @classmethod
    def from_lengths(cls, values: np.ndarray, lengths: np.ndarray) -> Ragged:
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(values, offsets)

    @classmethod
    def from_sequences(cls, seqs: Iterable[Sequence[int] | np.ndarray], dtype: Any = np.int64) -> Ragged:
        arrays = [np.asarray(s, dtype=dtype).reshape(-1) for s in seqs]
        lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
        values = np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype)
        return cls.from_lengths(values, lengths)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        if not -len(self) <= i < len(self):
            raise IndexError(f"Sequence {i} out of range for {len(self)} sequences.")
        i %= len(self)
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def take(self, index: Any) -> Ragged:
        """The sequences at ``index`` (an integer array), gathered without a Python loop."""
        index = np.asarray(index, dtype=np.int64)
        starts = self.offsets[:-1][index]
        lengths = self.offsets[1:][index] - starts
        offsets = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # position k of the output reads starts[row(k)] + (k - offsets[row(k)])
        gather = np.arange(offsets[-1], dtype=np.int64) + np.repeat(starts - offsets[:-1], lengths)
        return Ragged(self.values[gather], offsets)

    def tolist(self) -> list[list[int]]:
        return [s.tolist() for s in np.split(self.values, self.offsets[1:-1])]

    def pad(self, length: int | None = None, *, pad_id: int = 0, truncate: bool = False) -> np.ndarray:
        """A ``(n, length)`` array (the values' dtype), sequences left-aligned and filled with ``pad_id``.

        ``length`` defaults to the longest sequence. A longer sequence raises unless
        ``truncate=True`` (which cuts it, dropping its end, ``{eos}`` included).
        """
        lengths = self.lengths
        longest = int(lengths.max()) if len(lengths) else 0
        length = longest if length is None else int(length)
        if longest > length and not truncate:
            raise InvalidConfigError(
                f"A sequence has {longest} ids, more than length={length}. Pass a larger length, or "
                "truncate=True to cut sequences."
            )
        out = np.full((len(self), length), pad_id, dtype=self.values.dtype)
        kept = np.minimum(lengths, length)
        rows = np.repeat(np.arange(len(self)), kept)
        cols = np.arange(int(kept.sum())) - np.repeat(np.cumsum(kept) - kept, kept)
        src = np.repeat(self.offsets[:-1], kept) + cols
        out[rows, cols] = self.values[src]
        return out


@dataclasses.dataclass(frozen=True)
class VarValues:
    """A checked string or ragged shard: ``values`` (uint8 bytes or integers) and ``lengths``."""

    values: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.lengths)

    def sha256(self) -> str:
        """Hash of lengths and values: independent of where the shard sits in the column."""
        h = hashlib.sha256(self.lengths.astype("<i8", copy=False).tobytes())
        h.update(np.ascontiguousarray(self.values).view(np.uint8))
        return h.hexdigest()


def to_var_values(value: Any, feat: Feature, n: int, *, where: str) -> VarValues:
    """Check a generated string/ragged column and convert it to :class:`VarValues`.

    Strings: a list/tuple/array of ``str`` (numpy ``<U`` or object arrays work). Ragged: a
    :class:`Ragged` or a sequence of 1-D integer arrays, whose values must fit ``feat.dtype``.
    """
    if feat.layout == "string":
        return _strings(value, n, where=where)
    ragged = value if isinstance(value, Ragged) else _as_ragged(value, where=where)
    lengths = np.asarray(ragged.lengths)
    values = np.asarray(ragged.values).reshape(-1)
    if lengths.shape != (n,) or lengths.dtype.kind not in "iu" or (lengths < 0).any():
        raise MMBenchError(f"{where}: ragged lengths must be {n} non-negative integers, got {lengths.shape} {lengths.dtype}.")
    if int(lengths.sum()) != len(values):
        raise MMBenchError(f"{where}: ragged lengths sum to {int(lengths.sum())} but there are {len(values)} values.")
    if values.dtype.kind not in "iu":
        raise MMBenchError(f"{where}: a ragged column holds integers, got dtype {values.dtype}.")
    target = feat.np_dtype
    if len(values) and not np.can_cast(values.dtype, target):
        info = np.iinfo(target)
        if values.min() < info.min or values.max() > info.max:
            raise MMBenchError(f"{where}: values in [{values.min()}, {values.max()}] do not fit dtype {target}.")
    return VarValues(values.astype(target, copy=False), lengths.astype(np.int64, copy=False))


def _strings(value: Any, n: int, *, where: str) -> VarValues:
    if isinstance(value, np.ndarray) and value.dtype.kind == "U":
        items: Sequence[Any] = value.reshape(-1).tolist()
    elif isinstance(value, list | tuple | np.ndarray):
        items = list(value)
    else:
        raise MMBenchError(f"{where}: a string column must be a list of str, got {type(value).__name__}.")
    if len(items) != n:
        raise MMBenchError(f"{where}: a string column has {len(items)} values, expected {n}.")
    try:
        encoded = [s.encode("utf-8") for s in items if isinstance(s, str)]
    except UnicodeEncodeError as exc:
        raise MMBenchError(f"{where}: a string is not valid Unicode ({exc}).") from exc
    if len(encoded) != n:
        bad = next(s for s in items if not isinstance(s, str))
        raise MMBenchError(f"{where}: a string column holds only str values, got {bad!r} ({type(bad).__name__}).")
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=n)
    return VarValues(np.frombuffer(b"".join(encoded), dtype=np.uint8), lengths)


def _as_ragged(value: Any, *, where: str) -> Ragged:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise MMBenchError(f"{where}: a ragged column must be a Ragged or a list of integer arrays, got {type(value).__name__}.")
    try:
        seqs = [np.asarray(s) for s in value]
    except (TypeError, ValueError) as exc:
        raise MMBenchError(f"{where}: a ragged column must be a list of integer arrays ({exc}).") from exc
    for s in seqs:
        if s.ndim != 1 or (s.size and s.dtype.kind not in "iu"):
            raise MMBenchError(f"{where}: each ragged sequence must be a 1-D integer array, got {s.shape} {s.dtype}.")
    return Ragged.from_sequences(seqs, dtype=np.result_type(*[s.dtype for s in seqs if s.size] or [np.int64]))


# ====================================================================== readers
class _VarColumn:
    """Offsets + values memory maps of one string or ragged column of a split."""

    def __init__(self, offsets: np.ndarray, values: np.ndarray) -> None:
        self.offsets = offsets
        self.values = values

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def shape(self) -> tuple[int]:
        return (len(self),)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def _bounds(self, key: Any) -> tuple[np.ndarray, np.ndarray]:
        n = len(self)
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step == 1:
                return self.offsets[start:stop], self.offsets[start + 1 : stop + 1]
            key = np.arange(start, stop, step)
        idx = np.asarray(key, dtype=np.int64)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"Index out of range for a column of {n} examples.")
        idx = np.where(idx < 0, idx + n, idx)
        return self.offsets[idx], self.offsets[idx + 1]

    def _item_bounds(self, i: Any) -> tuple[int, int]:
        i = int(i)
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"Index {i} out of range for a column of {n} examples.")
        i %= n
        return int(self.offsets[i]), int(self.offsets[i + 1])


class StringColumn(_VarColumn):
    """A split's string column: ``col[i]`` is a ``str``, ``col[a:b]`` / ``col[idx]`` a ``list[str]``."""

    def __getitem__(self, key: Any) -> str | list[str]:
        if isinstance(key, int | np.integer):
            a, b = self._item_bounds(key)
            return self.values[a:b].tobytes().decode("utf-8")
        starts, stops = self._bounds(key)
        if len(starts) == 0:
            return []
        if isinstance(key, slice) and key.step in (None, 1):  # one contiguous read
            base = int(starts[0])
            data = self.values[base : int(stops[-1])].tobytes()
            return [data[a - base : b - base].decode("utf-8") for a, b in zip(starts.tolist(), stops.tolist(), strict=True)]
        values = self.values
        return [values[a:b].tobytes().decode("utf-8") for a, b in zip(starts.tolist(), stops.tolist(), strict=True)]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.array(self[:], dtype=dtype if dtype is not None else object)


class RaggedColumn(_VarColumn):
    """A split's ragged column: ``col[i]`` is a 1-D array; :meth:`padded` gathers a batch."""

    def __getitem__(self, key: Any) -> np.ndarray | list[np.ndarray]:
        if isinstance(key, int | np.integer):
            a, b = self._item_bounds(key)
            return np.array(self.values[a:b])
        starts, stops = self._bounds(key)
        return [np.array(self.values[a:b]) for a, b in zip(starts.tolist(), stops.tolist(), strict=True)]

    def padded(self, key: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(padded, lengths)`` for the rows ``key``: a ``(batch, max_length)`` array padded with
        :data:`PAD_VALUE`, and the int64 lengths. One vectorised gather, no per-row Python."""
        starts, stops = self._bounds(key)
        lengths = (stops - starts).astype(np.int64)
        width = int(lengths.max()) if len(lengths) else 0
        cols = np.arange(width, dtype=np.int64)
        mask = cols[None, :] < lengths[:, None]
        if isinstance(key, slice) and len(starts):  # contiguous: gather from one slice
            base = int(starts[0])
            chunk = np.asarray(self.values[base : int(stops[-1])])
            pos = np.where(mask, starts[:, None] - base + cols[None, :], 0)
            out = chunk[pos] if chunk.size else np.zeros(pos.shape, dtype=self.values.dtype)
        else:
            pos = np.where(mask, starts[:, None] + cols[None, :], 0)
            out = np.asarray(self.values)[pos] if len(self.values) else np.zeros(pos.shape, dtype=self.values.dtype)
        out[~mask] = PAD_VALUE
        return out, lengths


class StoreColumn:
    """A column whose rows live in a shared store: ``col[key]`` is ``store[index[key]]``.

    Behaves like the fixed array it stands for (``shape``, ``dtype``, ``len``, indexing by int,
    slice or integer array). A slice whose index run is contiguous in the store is a zero-copy
    view; other keys gather the store rows in one pass (near-sequential when the split's index
    is ascending, as builders should store it).
    """

    def __init__(self, store: np.ndarray, index: np.ndarray) -> None:
        self.store = store
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.store.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.store.dtype

    @property
    def ndim(self) -> int:
        return self.store.ndim

    def __getitem__(self, key: Any) -> np.ndarray:
        rows = self.index[key]
        if np.ndim(rows) == 0:
            return self.store[int(rows)]
        rows = np.array(rows, dtype=np.intp)  # in memory, not a view of the index file
        if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and (np.diff(rows) == 1).all():
            return self.store[int(rows[0]) : int(rows[-1]) + 1]  # a contiguous run: no copy
        # One gather, no sort-and-scatter (measured slower): ascending rows, which builders
        # should store (a split's rows in store order), read the store almost sequentially.
        return self.store[rows].view(np.ndarray)  # an in-memory array, not a np.memmap

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self[:]
        return arr if dtype is None else arr.astype(dtype)
