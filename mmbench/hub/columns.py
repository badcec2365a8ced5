"""How each kind of column travels through Parquet and back: one table, :data:`CODECS`.

A column's kind (:func:`column_kind`, from the core's :attr:`Feature.layout`) picks its codec:
``image`` (uint8 image modalities, also those kept in a shared store, become the ``datasets``
``Image`` feature, lossless PNG bytes that the Hub viewer shows), ``string`` (string columns:
UTF-8 captions, ``Value("string")``), ``ragged`` (token ids of varying length, a sequence of the
column's integer dtype) or ``fixed`` (every other fixed-shape column, through
:mod:`mmbench.core.hf`: scalars as ``Value``, vectors as fixed-length lists, categorical latents as
``ClassLabel``). Each codec writes a batch as :meth:`Dataset.batches` gives it and reads Arrow back
into what the core's writer stores (:func:`mmbench.core.build.write_shard`). A new kind of column
is one more entry in :data:`CODECS` and one more rule in :func:`column_kind`.

:func:`write_parquet` is the worker of an export: one Parquet file of a split's rows.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from mmbench.core.columns import Ragged, VarValues, lengths_key, to_var_values
from mmbench.core.info import DatasetInfo, Feature
from mmbench.errors import HubError, InvalidConfigError

if TYPE_CHECKING:
    import datasets

    from mmbench.core.dataset import Dataset

__all__ = [
    "CODECS",
    "ColumnCodec",
    "column_kind",
    "decode_png",
    "encode_png",
    "export_features",
    "image_layout",
    "write_parquet",
]

#: Raw (uncompressed) bytes per Parquet file: a few files per split, enough to keep every core busy.
FILE_BYTES = 128 << 20
#: Rows per Parquet row group: 100 for image datasets (what ``datasets`` uses, so the Hub viewer
#: pages quickly), else about 1 MiB of raw data.
IMAGE_GROUP_ROWS = 100
GROUP_BYTES = 1 << 20


def image_layout(shape: Sequence[int]) -> str | None:
    """How an image column lays out one image: ``"chw"`` (mmbench's convention), ``"hwc"`` or
    ``"hw"``; ``None`` when the shape is no image."""
    shape = tuple(shape)
    if len(shape) == 2:
        return "hw"
    if len(shape) == 3 and shape[0] in (1, 3, 4):
        return "chw"
    if len(shape) == 3 and shape[-1] in (1, 3, 4):
        return "hwc"
    return None


def _png_shape(shape: Sequence[int], layout: str) -> tuple[int, ...]:
    """Shape of one decoded PNG (``H × W`` grey, else ``H × W × C``) for a column's image shape."""
    hwc = (*shape[1:], shape[0]) if layout == "chw" else tuple(shape)
    return hwc[:2] if len(hwc) == 3 and hwc[2] == 1 else hwc


def encode_png(images: np.ndarray, layout: str) -> list[bytes]:
    """Lossless PNG bytes of a batch of uint8 images laid out as ``layout`` (see :func:`image_layout`).

    Pillow encodes (adaptive row filters, zlib); one call per image is unavoidable with any PNG
    codec, so exports spread the images over processes instead.
    """
    from PIL import Image

    x = np.asarray(images)
    if layout == "chw":
        x = np.moveaxis(x, 1, -1)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    out = []
    for img in x:
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def decode_png(blobs: Sequence[bytes], shape: Sequence[int], layout: str) -> np.ndarray:
    """The ``(n, *shape)`` uint8 array that :func:`encode_png` encoded (exactly the same pixels)."""
    from PIL import Image

    expected = _png_shape(shape, layout)
    pixels = np.empty((len(blobs), *expected), np.uint8)
    for i, blob in enumerate(blobs):
        with Image.open(io.BytesIO(blob)) as img:
            arr = np.asarray(img)
        if arr.shape != expected or arr.dtype != np.uint8:
            raise HubError(
                f"An image decodes to {arr.shape} {arr.dtype}, expected {expected} uint8: the Parquet "
                "data was not written by mmbench export, or was modified."
            )
        pixels[i] = arr
    if len(expected) == 2 and len(shape) == 3:
        pixels = pixels[:, None] if layout == "chw" else pixels[..., None]
    elif layout == "chw":
        pixels = np.moveaxis(pixels, -1, 1)
    return np.ascontiguousarray(pixels)


def _only(info: DatasetInfo, name: str) -> DatasetInfo:
    return dataclasses.replace(info, features={name: info.features[name]})


def _core_feature(name: str, feat: Feature, info: DatasetInfo) -> Any:
    """The core's ``datasets`` feature (:func:`mmbench.core.hf.hf_feature`): fixed columns as
    ``Value``/fixed-length lists/``ClassLabel``, strings as ``Value("string")``, ragged columns as
    sequences of their integer dtype."""
    from mmbench.core.hf import hf_feature

    return hf_feature(name, feat, info)


def _fixed_to_arrow(values: Any, name: str, feat: Feature, info: DatasetInfo) -> pa.Array:
    from mmbench.core.hf import arrow_table

    return arrow_table({name: np.asarray(values)}, _only(info, name)).column(0).combine_chunks()


def _fixed_from_arrow(array: pa.Array, feat: Feature) -> np.ndarray:
    n = len(array)
    flat = array
    for _ in feat.shape:
        flat = flat.flatten()  # one nesting level of a fixed-size list (respects slicing)
    if array.null_count or flat.null_count:
        raise HubError(f"A column of shape {feat.shape} holds missing values: the data was modified.")
    values = flat.to_numpy(zero_copy_only=False)
    if values.size != n * int(np.prod(feat.shape, dtype=np.int64)):
        raise HubError(f"A column holds {values.size} values for {n} rows of shape {feat.shape}.")
    return values.astype(feat.np_dtype, copy=False).reshape(n, *feat.shape)


def _image_feature(name: str, feat: Feature, info: DatasetInfo) -> Any:
    import datasets

    return datasets.Image()


def _image_to_arrow(values: Any, name: str, feat: Feature, info: DatasetInfo) -> pa.Array:
    blobs = encode_png(np.asarray(values), image_layout(feat.shape) or "hw")
    return pa.StructArray.from_arrays(
        [pa.array(blobs, pa.binary()), pa.nulls(len(blobs), pa.string())], names=["bytes", "path"]
    )


def _image_from_arrow(array: pa.Array, feat: Feature) -> np.ndarray:
    blobs = array.field("bytes")
    if blobs.null_count:
        raise HubError("An image column holds an image without bytes (a path-only image): not an mmbench export.")
    return decode_png(blobs.to_pylist(), feat.shape, image_layout(feat.shape) or "hw")


def _string_to_arrow(values: Any, name: str, feat: Feature, info: DatasetInfo) -> pa.Array:
    """A batch of a string column (``list[str]``, as :meth:`Dataset.batches` gives it)."""
    return pa.array(list(values), pa.string())


def _var_values(offsets: np.ndarray, data: np.ndarray, dtype: np.dtype, what: str) -> VarValues:
    """The rows ``data[offsets[i]:offsets[i + 1]]`` as the core writes them (values and int64 lengths)."""
    values = data[int(offsets[0]) : int(offsets[-1])]
    if values.dtype != dtype:
        cast = values.astype(dtype)
        if not np.array_equal(cast, values):
            raise HubError(f"A {what} column holds values outside its dtype {dtype}: the data was modified.")
        values = cast
    return VarValues(np.ascontiguousarray(values), np.diff(offsets).astype(np.int64))


def _string_from_arrow(array: pa.Array, feat: Feature) -> VarValues:
    """UTF-8 bytes and lengths straight from the Arrow buffers (checked UTF-8, no per-row Python)."""
    if array.null_count:
        raise HubError("A string column holds missing values: the data was modified.")
    try:
        array.validate(full=True)
    except pa.ArrowInvalid as exc:
        raise HubError(f"A string column holds invalid UTF-8 ({exc}): the data was modified.") from None
    wide = pa.types.is_large_string(array.type)
    _, offsets, data = array.buffers()
    offsets = np.frombuffer(offsets, np.int64 if wide else np.int32)[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    return _var_values(offsets, data, np.dtype(np.uint8), "string")


def _ragged_to_arrow(values: Any, name: str, feat: Feature, info: DatasetInfo) -> pa.Array:
    """Integer sequences of varying length: ``(padded, lengths)`` (a batch of :meth:`Dataset.batches`),
    a :class:`~mmbench.core.columns.Ragged`, or a sequence of 1-D arrays; stored as ``feat.dtype``."""
    if isinstance(values, tuple) and len(values) == 2:
        padded, lengths = np.asarray(values[0]), np.asarray(values[1], dtype=np.int64)
        ragged = Ragged.from_lengths(padded[np.arange(padded.shape[1]) < lengths[:, None]], lengths)
    else:
        ragged = values if isinstance(values, Ragged) else Ragged.from_sequences(values)  # int64: checked below
    checked = to_var_values(ragged, feat, len(ragged), where=f"Column {name!r}")
    if len(checked.values) >= 2**31:
        raise InvalidConfigError(f"Column {name!r}: a batch of {len(checked.values)} values needs 64-bit offsets.")
    offsets = np.zeros(len(checked) + 1, np.int32)
    np.cumsum(checked.lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(checked.values))


def _ragged_from_arrow(array: pa.Array, feat: Feature) -> VarValues:
    if array.null_count or array.values.null_count:
        raise HubError("A token column holds missing values: the data was modified.")
    offsets = array.offsets.to_numpy()
    return _var_values(offsets, array.values.to_numpy(zero_copy_only=False), feat.np_dtype, "token")


@dataclasses.dataclass(frozen=True)
class ColumnCodec:
    """How one kind of column travels through Parquet and back.

    Attributes:
        feature: ``(name, feature, info) -> datasets`` feature of the exported column.
        to_arrow: ``(values of a batch, name, feature, info) -> pyarrow.Array`` in that feature's storage.
        from_arrow: ``(pyarrow.Array, feature) ->`` the rows as the core's writer takes them
            (:func:`mmbench.core.build.write_shard`): an ``(n, *shape)`` array of the feature's
            dtype for fixed and image columns, :class:`~mmbench.core.columns.VarValues` for string
            and ragged ones.
    """

    feature: Callable[[str, Feature, DatasetInfo], Any]
    to_arrow: Callable[[Any, str, Feature, DatasetInfo], pa.Array]
    from_arrow: Callable[[pa.Array, Feature], Any]


#: column kind (see :func:`column_kind`) → its codec. ``fixed`` columns use ``core.hf`` (scalars as
#: ``Value``, vectors as fixed-length lists, categorical latents as ``ClassLabel``).
CODECS: dict[str, ColumnCodec] = {
    "fixed": ColumnCodec(_core_feature, _fixed_to_arrow, _fixed_from_arrow),
    "image": ColumnCodec(_image_feature, _image_to_arrow, _image_from_arrow),
    "string": ColumnCodec(_core_feature, _string_to_arrow, _string_from_arrow),
    "ragged": ColumnCodec(_core_feature, _ragged_to_arrow, _ragged_from_arrow),
}


def column_kind(name: str, feat: Feature, info: DatasetInfo) -> str:
    """The :data:`CODECS` key of a column, from its layout (:attr:`Feature.layout`).

    ``string``: a string column (UTF-8 captions); ``ragged``: integer sequences of varying length
    (token ids); ``image``: a fixed uint8 image modality (CHW, HWC or HW), whether stored in the
    split or in a shared store (``Feature.store``: an export holds the images, not the store
    indices); ``fixed``: any other fixed-shape column.
    """
    if feat.layout in ("string", "ragged"):
        return feat.layout
    modality = info.modalities.get(name)
    if (
        modality is not None and modality.kind == "image" and feat.np_dtype == np.uint8
        and image_layout(feat.shape) is not None
    ):
        return "image"
    return "fixed"


def export_features(info: DatasetInfo) -> datasets.Features:
    """The ``datasets.Features`` of an export: every column through its :data:`CODECS` entry."""
    import datasets

    return datasets.Features(
        {name: CODECS[column_kind(name, feat, info)].feature(name, feat, info) for name, feat in info.features.items()}
    )


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a worker needs to turn rows of a split into Parquet (picklable, no ``datasets`` import)."""

    info: DatasetInfo
    kinds: dict[str, str]
    schema: pa.Schema
    group_rows: int
    file_rows: int

    def table(self, batch: Mapping[str, Any]) -> pa.Table:
        """A batch of :meth:`Dataset.batches` form (``list[str]``; padded ids plus lengths) as Arrow."""
        arrays = [
            CODECS[kind].to_arrow(
                (batch[name], batch[lengths_key(name)]) if kind == "ragged" else batch[name],
                name, self.info.features[name], self.info,
            )
            for name, kind in self.kinds.items()
        ]
        return pa.Table.from_arrays(arrays, schema=self.schema)


def plan(info: DatasetInfo) -> Plan:
    kinds = {name: column_kind(name, feat, info) for name, feat in info.features.items()}
    row_bytes = sum(
        # the rows themselves (store-backed columns are exported as their rows, not as indices)
        64 * f.np_dtype.itemsize if f.layout != "fixed" else int(np.prod(f.shape, dtype=np.int64)) * f.np_dtype.itemsize
        for n, f in info.features.items()
    )
    row_bytes = max(row_bytes, 1)
    if "image" in kinds.values():
        group = IMAGE_GROUP_ROWS
    else:
        group = int(np.clip(GROUP_BYTES // row_bytes, 1_000, 100_000))
    file_rows = max(group, FILE_BYTES // row_bytes // group * group)
    return Plan(info, kinds, export_features(info).arrow_schema, group, file_rows)


def file_bounds(n: int, file_rows: int) -> list[tuple[int, int]]:
    if n == 0:
        return [(0, 0)]  # one empty file: the split exists, and data_files patterns match something
    return [(start, min(start + file_rows, n)) for start in range(0, n, file_rows)]


def write_parquet(ds: Dataset, start: int, stop: int, path: str, plan: Plan) -> dict[str, int]:
    """Worker: rows ``[start, stop)`` of ``ds`` into one Parquet file, one row group per chunk."""
    import pyarrow.parquet as pq

    num_bytes = 0
    with pq.ParquetWriter(path, plan.schema) as writer:
        for a in range(start, stop, plan.group_rows):
            table = plan.table(ds[a : min(a + plan.group_rows, stop)])
            num_bytes += table.nbytes
            writer.write_table(table)
        if start == stop:
            writer.write_table(plan.schema.empty_table())
    return {"num_examples": stop - start, "num_bytes": num_bytes, "file_bytes": os.path.getsize(path)}
