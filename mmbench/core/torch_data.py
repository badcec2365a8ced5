"""The torch view of a loaded split (imported only when torch is wanted)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.utils.data

if TYPE_CHECKING:
    from mmbench.core.dataset import Dataset

__all__ = ["IndexBatchSampler", "TorchDataset", "to_torch"]


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
            return {name: to_torch(example[name]) for name in self.columns}
        from mmbench.core.dataset import _gather

        batch = _gather({name: self.dataset.column(name) for name in self.columns}, index)
        return {name: to_torch(value) for name, value in batch.items()}


def to_torch(value: Any, device: Any = None, *, float32: bool = False) -> Any:
    """A batch value as a tensor on ``device``: numeric arrays become tensors (read-only memory
    maps are copied once; ``float32`` casts float64), while strings (a ``str``, a list of them, or
    a string array) are handed over untouched. The one conversion used by ``.torch()``, the
    harness and the trainer."""
    if isinstance(value, str | list | tuple):
        return value
    value = np.asarray(value).view(np.ndarray)
    if value.dtype.kind in "USO":
        return value
    # a view of a read-only memory map is copied once; torch needs writable, contiguous memory
    value = np.array(value) if not value.flags.writeable else np.ascontiguousarray(value)
    t = torch.from_numpy(value)
    if float32 and t.dtype == torch.float64:
        t = t.float()
    return t if device is None else t.to(device, non_blocking=True)
