"""The torch view of a loaded split (imported only when torch is wanted)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.utils.data

if TYPE_CHECKING:
    from mmbench.core.dataset import Dataset

__all__ = ["SortedBatchSampler", "TorchDataset"]


class SortedBatchSampler(torch.utils.data.BatchSampler):
    """A ``BatchSampler`` whose batches list their indices in ascending order.

    Batch membership is exactly that of ``BatchSampler``; sorting each batch makes the gather
    from the memory maps sequential, which is several times faster on large splits.
    """

    def __iter__(self):  # type: ignore[no-untyped-def]
        for batch in super().__iter__():
            yield sorted(batch)


class TorchDataset(torch.utils.data.Dataset):
    """Map-style torch dataset over a :class:`~mmbench.core.dataset.Dataset`.

    An integer index gives a dict of tensors for one example; a list/array/tensor of indices
    gives a dict of batched tensors, which is what :meth:`Dataset.dataloader` asks for through a
    batch sampler (one gather per column per batch, no per-example collate). Boolean columns
    become ``torch.bool``; string columns stay numpy arrays. Picklable for ``num_workers > 0``:
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
        out: dict[str, Any] = {}
        for name in self.columns:
            value = np.asarray(self.dataset.column(name)[index]).view(np.ndarray)
            if not value.flags.writeable:  # a view of the read-only map (int/slice): copy once
                value = value.copy()
            out[name] = value if value.dtype.kind in "US" else torch.from_numpy(value)
        return out
