"""Content fingerprints of loaded datasets, for golden-data tests (no pytest needed)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mmbench.core.dataset import Dataset

__all__ = ["columns_fingerprint"]


def columns_fingerprint(ds: Dataset, columns: Iterable[str] | None = None) -> str:
    """sha256 (16 hex) over the raw bytes of the chosen columns, in name order.

    A string or ragged column contributes its offsets and its values (UTF-8 bytes or integers).
    """
    h = hashlib.sha256()
    for name in sorted(columns if columns is not None else ds.column_names):
        col = ds.column(name)
        h.update(name.encode())
        parts = (col.offsets, col.values) if hasattr(col, "offsets") and hasattr(col, "values") else (col,)
        for part in parts:
            arr = np.ascontiguousarray(part)
            h.update(str(arr.dtype).encode())
            h.update(arr.reshape(-1).view(np.uint8))
    return h.hexdigest()[:16]
