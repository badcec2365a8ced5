"""The torch view of a loaded split (imported only when torch is wanted)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.utils.data

if TYPE_CHECKING:
    from mmbench.core.dataset import Dataset

__all__ = ["TorchDataset"]


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
            value = np.array(self.dataset.column(name)[index])  # a private, writable copy
            out[name] = value if value.dtype.kind in "US" else torch.from_numpy(value)
        return out
