"""Hugging Face ``datasets`` features and Arrow tables for mmbench columns."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from mmbench.core.columns import lengths_key
from mmbench.core.info import DatasetInfo, Feature

__all__ = ["arrow_table", "hf_features"]


def _value_type(dtype: np.dtype) -> str:
    if dtype == np.bool_:
        return "bool"
    if dtype.kind in "US":
        return "string"
    return dtype.name


def hf_feature(name: str, feat: Feature, info: DatasetInfo) -> object:
    import datasets

    if feat.layout == "string":
        return datasets.Value("string")
    if feat.layout == "ragged":
        return datasets.Sequence(datasets.Value(feat.np_dtype.name))
    if name.startswith("latents.") and len(feat.shape) == 0:
        lat = info.latents[name.removeprefix("latents.")]
        if lat.kind == "categorical":
            return datasets.ClassLabel(names=[str(s) for s in lat.support])
    leaf: object = datasets.Value(_value_type(feat.np_dtype))
    for size in reversed(feat.shape):
        leaf = datasets.Sequence(leaf, length=size)
    return leaf


def hf_features(info: DatasetInfo) -> object:
    """``datasets.Features`` for every column: scalars as ``Value``, vectors/images as fixed-length
    sequences, categorical latents as ``ClassLabel`` with their category names."""
    import datasets

    return datasets.Features({name: hf_feature(name, feat, info) for name, feat in info.features.items()})


def _to_arrow(arr: np.ndarray) -> pa.Array:
    if arr.ndim == 1:
        return pa.array(arr.astype(str) if arr.dtype.kind == "S" else arr)
    flat = _to_arrow(np.ascontiguousarray(arr).reshape(arr.shape[0] * arr.shape[1], *arr.shape[2:]))
    return pa.FixedSizeListArray.from_arrays(flat, arr.shape[1])


def _ragged_to_arrow(padded: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """A list array from a padded batch: the valid prefix of each row, no per-row Python."""
    mask = np.arange(padded.shape[1])[None, :] < lengths[:, None]
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(padded[mask]))


def arrow_table(batch: Mapping[str, object], info: DatasetInfo) -> pa.Table:
    """A ``pyarrow.Table`` of one batch (as :meth:`Dataset.batches` gives it), column order as
    in ``info.features``."""
    columns = {}
    for name, feat in info.features.items():
        if feat.layout == "string":
            columns[name] = pa.array(batch[name], type=pa.string())
        elif feat.layout == "ragged":
            columns[name] = _ragged_to_arrow(np.asarray(batch[name]), np.asarray(batch[lengths_key(name)]))
        else:
            columns[name] = _to_arrow(np.asarray(batch[name]))
    return pa.table(columns)
