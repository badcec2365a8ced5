"""The torch view of a loaded split (imported only when torch is wanted)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.utils.data

if TYPE_CHECKING:
    from mmbench.core.dataset import Dataset

__all__ = ["IndexBatchSampler", "TorchDataset"]


class IndexBatchSampler(torch.utils.data.Sampler):
    """Yields whole batches of indices as numpy arrays (for ``DataLoader(batch_size=None)``).

    Shuffled, each epoch draws a fresh permutation from ``default_rng([seed, epoch])`` and each
    batch lists its indices in ascending order, so the gather from the memory maps is sequential.
    No per-index Python objects are made, unlike ``BatchSampler`` over a ``RandomSampler``.
    """

    def __init__(self, n: int, batch_size: int, *, shuffle: bool, seed: int = 0, drop_last: bool = False) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            from mmbench.errors import InvalidConfigError

            raise InvalidConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
        self.n, self.batch_size, self.shuffle, self.seed, self.drop_last = n, batch_size, shuffle, seed, drop_last
        self.epoch = 0

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def __iter__(self):  # type: ignore[no-untyped-def]
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
            self.epoch += 1
        else:
            order = np.arange(self.n)
        stop = self.n - self.n % self.batch_size if self.drop_last else self.n
        for start in range(0, stop, self.batch_size):
            batch = order[start : start + self.batch_size]
            yield np.sort(batch) if self.shuffle else batch


class TorchDataset(torch.utils.data.Dataset):
    """Map-style torch dataset over a :class:`~mmbench.core.dataset.Dataset`.

    An integer index gives a dict of tensors for one example; a list/array/tensor of indices
    gives a dict of batched tensors, which is what :meth:`Dataset.dataloader` asks for through a
    batch sampler (one gather per column per batch, no per-example collate). Boolean columns
    become ``torch.bool``; string columns stay ``str`` / ``list[str]``; a ragged column gives a
    padded tensor plus ``<name>.lengths``. Picklable for ``num_workers > 0``:
    workers re-open the memory maps.
    """

    def __init__(self, dataset: Dataset, columns: Sequence[str] | None = None) -> None:
        self.dataset = dataset
        self.columns = list(columns or dataset.column_names)
        for name in self.columns:
            dataset.column(name)  # fail early on a bad column name

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: Any) -> dict[str, Any]:
        if isinstance(index, torch.Tensor):
            index = index.numpy()
        elif isinstance(index, list):
            index = np.asarray(index, dtype=np.int64)
        if isinstance(index, int | np.integer):
            example = self.dataset[int(index)]
            return {name: _tensor(example[name]) for name in self.columns}
        from mmbench.core.dataset import _gather

        batch = _gather({name: self.dataset.column(name) for name in self.columns}, index)
        return {name: _tensor(value) for name, value in batch.items()}


def _tensor(value: Any) -> Any:
    """A tensor for numeric values; strings (a ``str`` or a list of them) are passed as they are."""
    if isinstance(value, str | list):
        return value
    value = np.asarray(value).view(np.ndarray)
    if value.dtype.kind in "USO":
        return value
    if not value.flags.writeable:  # a view of the read-only map (int/slice): copy once
        value = value.copy()
    return torch.from_numpy(value)
