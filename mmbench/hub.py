"""Parquet export with a dataset card, publishing to the Hugging Face Hub, and loading back.

* :func:`export` writes built configs of one dataset as Parquet shards,
  ``<config>/<split>-0000k-of-0000n.parquet``, plus a dataset card (``README.md``: the YAML
  ``configs:`` block, features, licence, an ``mmbench:`` block with versions, config JSON,
  fingerprints and input checksums), so that plain ``datasets.load_dataset(DIR_OR_REPO, CONFIG)``
  reads it. Images become the ``datasets`` ``Image`` feature (PNG bytes, which the Hub viewer
  shows), categorical latents ``ClassLabel``, every other column keeps its values exactly.
* :func:`publish` uploads one config to a Hub dataset repository in a single commit, then tags
  that commit ``<config>-v<version>``.
* :func:`load_from_hub` (``mmbench.load(..., source="hub")``) downloads a published config at a
  pinned revision, checks every column against the shard hashes recorded when it was built, and
  opens it as an ordinary :class:`~mmbench.core.dataset.Dataset` (memory-mapped, same API).

How each kind of column travels is one table, :data:`CODECS`, keyed by :func:`column_kind`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from mmbench.core.builder import (
    INFO_FILE,
    RESOURCES_FILE,
    SPLIT_INFO_FILE,
    Builder,
    DatasetInfo,
    Feature,
    default_cache_dir,
)
from mmbench.core.storage import atomic_path, atomic_write, clean_stale_tmp, sha256_array, tmp_path
from mmbench.errors import (
    DatasetNotFoundError,
    HubError,
    InvalidConfigError,
    InvalidIdError,
    MMBenchError,
    did_you_mean,
)
from mmbench.versioning import sha256_file

if TYPE_CHECKING:
    import datasets

    from mmbench.core.dataset import Dataset

__all__ = [
    "CODECS",
    "ColumnCodec",
    "ExportedConfig",
    "PublishResult",
    "column_kind",
    "decode_png",
    "encode_png",
    "export",
    "export_features",
    "hub_client",
    "hub_config_name",
    "load_from_hub",
    "publish",
    "version_tag",
]

logger = logging.getLogger(__name__)

REPO_TYPE = "dataset"
CARD_FILE = "README.md"
INFO_EXPORT_FILE = "mmbench_info.json"  # the build's DatasetInfo (no local paths), one per config
SAMPLES_FILE = "samples.png"
#: Raw (uncompressed) bytes per Parquet file: a few files per split, enough to keep every core busy.
FILE_BYTES = 128 << 20
#: Rows per Parquet row group: 100 for image datasets (what ``datasets`` uses, so the Hub viewer
#: pages quickly), else about 1 MiB of raw data.
IMAGE_GROUP_ROWS = 100
GROUP_BYTES = 1 << 20
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


# ============================================================================ column codecs
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


def _fixed_feature(name: str, feat: Feature, info: DatasetInfo) -> Any:
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


def _string_feature(name: str, feat: Feature, info: DatasetInfo) -> Any:
    import datasets

    return datasets.Value("string")


def _string_to_arrow(values: Any, name: str, feat: Feature, info: DatasetInfo) -> pa.Array:
    items = values.tolist() if isinstance(values, np.ndarray) else list(values)
    return pa.array([v.decode() if isinstance(v, bytes) else v for v in items], pa.string())


def _string_from_arrow(array: pa.Array, feat: Feature) -> np.ndarray:
    items = array.to_pylist()
    if None in items:
        raise HubError("A string column holds missing values: the data was modified.")
    out = np.array(items, dtype=feat.np_dtype) if items else np.zeros(0, feat.np_dtype)
    if out.dtype.kind == "U" and items and max(map(len, items)) > out.dtype.itemsize // 4:
        raise HubError(f"A string is longer than its column's {feat.dtype} allows: the data was modified.")
    return out


def _ragged_feature(name: str, feat: Feature, info: DatasetInfo) -> Any:
    import datasets

    return datasets.Sequence(datasets.Value("int32"))


def _ragged_to_arrow(values: Any, name: str, feat: Feature, info: DatasetInfo) -> pa.Array:
    """Token ids of variable length: a sequence of 1-D int arrays, or ``(padded, lengths)``."""
    if isinstance(values, tuple) and len(values) == 2:
        padded, lengths = np.asarray(values[0]), np.asarray(values[1], dtype=np.int64)
        flat = padded[np.arange(padded.shape[1]) < lengths[:, None]]
    else:
        seqs = [np.asarray(v).reshape(-1) for v in values]
        lengths = np.array([len(s) for s in seqs], np.int64)
        flat = np.concatenate(seqs) if seqs else np.zeros(0, np.int64)
    ids = flat.astype(np.int32)
    if not np.array_equal(ids, flat):
        raise InvalidConfigError(f"Column {name!r}: token ids must be integers within int32.")
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(ids))


def _ragged_from_arrow(array: pa.Array, feat: Feature) -> np.ndarray:
    offsets = array.offsets.to_numpy()
    values = array.values.to_numpy(zero_copy_only=False)
    out = np.empty(len(array), dtype=object)
    for i in range(len(array)):
        out[i] = values[offsets[i] : offsets[i + 1]]
    return out


@dataclasses.dataclass(frozen=True)
class ColumnCodec:
    """How one kind of column travels through Parquet and back.

    Attributes:
        feature: ``(name, feature, info) -> datasets`` feature of the exported column.
        to_arrow: ``(values of a batch, name, feature, info) -> pyarrow.Array`` in that feature's storage.
        from_arrow: ``(pyarrow.Array, feature) ->`` the values mmbench stores for those rows.
    """

    feature: Callable[[str, Feature, DatasetInfo], Any]
    to_arrow: Callable[[Any, str, Feature, DatasetInfo], pa.Array]
    from_arrow: Callable[[pa.Array, Feature], Any]


#: column kind (see :func:`column_kind`) → its codec. ``fixed`` columns use ``core.hf`` (scalars as
#: ``Value``, vectors as fixed-length lists, categorical latents as ``ClassLabel``).
CODECS: dict[str, ColumnCodec] = {
    "fixed": ColumnCodec(_fixed_feature, _fixed_to_arrow, _fixed_from_arrow),
    "image": ColumnCodec(_image_feature, _image_to_arrow, _image_from_arrow),
    "string": ColumnCodec(_string_feature, _string_to_arrow, _string_from_arrow),
    "ragged": ColumnCodec(_ragged_feature, _ragged_to_arrow, _ragged_from_arrow),
}


def column_kind(name: str, feat: Feature, info: DatasetInfo) -> str:
    """The :data:`CODECS` key of a column.

    ``image``: a uint8 image modality (CHW, HWC or HW); ``string``: a scalar text column (numpy
    ``<U``/``S``/object dtype); ``ragged``: variable-length token ids; ``fixed``: any other
    fixed-shape numeric column. (Ragged columns come with the core's second stage: their
    ``Feature`` maps to ``"ragged"`` here.)
    """
    modality = info.modalities.get(name)
    if (
        modality is not None and modality.kind == "image" and feat.np_dtype == np.uint8
        and image_layout(feat.shape) is not None
    ):
        return "image"
    if feat.np_dtype.kind in "USO" and feat.shape == ():
        return "string"
    return "fixed"


def export_features(info: DatasetInfo) -> datasets.Features:
    """The ``datasets.Features`` of an export: every column through its :data:`CODECS` entry."""
    import datasets

    return datasets.Features(
        {name: CODECS[column_kind(name, feat, info)].feature(name, feat, info) for name, feat in info.features.items()}
    )


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What a worker needs to turn rows of a split into Parquet (picklable, no ``datasets`` import)."""

    info: DatasetInfo
    kinds: dict[str, str]
    schema: pa.Schema
    group_rows: int
    file_rows: int

    def table(self, batch: Mapping[str, Any]) -> pa.Table:
        arrays = [
            CODECS[kind].to_arrow(batch[name], name, self.info.features[name], self.info)
            for name, kind in self.kinds.items()
        ]
        return pa.Table.from_arrays(arrays, schema=self.schema)


def _plan(info: DatasetInfo) -> _Plan:
    kinds = {name: column_kind(name, feat, info) for name, feat in info.features.items()}
    row_bytes = sum(
        64 if kinds[n] in ("string", "ragged") else int(np.prod(f.shape, dtype=np.int64)) * f.np_dtype.itemsize
        for n, f in info.features.items()
    )
    row_bytes = max(row_bytes, 1)
    if "image" in kinds.values():
        group = IMAGE_GROUP_ROWS
    else:
        group = int(np.clip(GROUP_BYTES // row_bytes, 1_000, 100_000))
    file_rows = max(group, FILE_BYTES // row_bytes // group * group)
    return _Plan(info, kinds, export_features(info).arrow_schema, group, file_rows)


def _file_bounds(n: int, file_rows: int) -> list[tuple[int, int]]:
    if n == 0:
        return [(0, 0)]  # one empty file: the split exists, and data_files patterns match something
    return [(start, min(start + file_rows, n)) for start in range(0, n, file_rows)]


def _write_parquet(ds: Dataset, start: int, stop: int, path: str, plan: _Plan) -> dict[str, int]:
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


# ============================================================================ export
@dataclasses.dataclass
class ExportedConfig:
    """One config's part of a card's metadata: its items in the YAML ``configs:`` and
    ``dataset_info:`` lists, and its entry in the ``mmbench:`` block."""

    name: str
    data_files: list[dict[str, str]]
    dataset_info: dict[str, Any]
    entry: dict[str, Any]


def version_tag(config: str, version: str) -> str:
    """The Hub tag of a published config version: ``<config>-v<x.y.z>`` (one per config, since
    configs are published one at a time and each publication is its own commit)."""
    return f"{config}-v{version}"


def hub_config_name(builder: Builder, name: str | None = None) -> str:
    """The config name of ``builder`` in an export: its own for a named config, ``name`` for an
    overridden (ad-hoc) one, which must be given."""
    from mmbench.naming import validate_name

    cls = type(builder)
    if name is None:
        if builder.is_named_config:
            return builder.config.name  # type: ignore[return-value]
        base = builder.config.name or "custom"
        raise InvalidConfigError(
            f"{builder.id} is an ad-hoc config (overrides {builder.overrides() or builder.config.to_dict()}), "
            f"so it has no name on the Hub. Name it: --name NAME (Python: name=...), e.g. "
            f"--name {base}-{builder.config.fingerprint[:8]}."
        )
    try:
        validate_name(name, what="config name (--name)")
    except InvalidIdError as exc:
        raise InvalidConfigError(str(exc)) from None
    if builder.is_named_config and name != builder.config.name:
        raise InvalidConfigError(
            f"{builder.id} is the named config {builder.config.name!r} and is exported under that name; "
            f"--name {name!r} is only for configs changed by overrides. Drop --name."
        )
    if not builder.is_named_config and name in cls.CONFIGS:
        raise InvalidConfigError(
            f"--name {name!r} is a named config of {cls.name!r}, but this config differs from it "
            f"(overrides {builder.overrides()}). Choose another name, e.g. {name}-{builder.config.fingerprint[:8]}."
        )
    return name


def input_checksums(inputs: Any) -> Any:
    """The machine-independent part of a build's recorded inputs: checksums, sizes, names and
    licences, without local paths (nested mappings kept where they hold any of those)."""
    if not isinstance(inputs, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, value in inputs.items():
        if isinstance(value, Mapping):
            sub = input_checksums(value)
            if sub:
                out[key] = sub
        elif key in ("sha256", "bytes", "license", "name") and isinstance(value, str | int):
            out[key] = value
    return out


def _builders(
    dataset: str | Builder | Sequence[str | Builder],
    *,
    cache_dir: str | os.PathLike[str] | None,
    data_dir: str | os.PathLike[str] | None,
    overrides: Mapping[str, Any],
) -> list[Builder]:
    import mmbench

    items = [dataset] if isinstance(dataset, str | Builder) else list(dataset)
    if not items:
        raise InvalidConfigError("Nothing to export: give at least one dataset id, e.g. 'polymnist/reference'.")
    if overrides and any(isinstance(x, Builder) for x in items):
        raise InvalidConfigError(f"Config overrides {sorted(overrides)} apply to dataset ids, not to Builder objects.")
    builders = [
        x if isinstance(x, Builder) else mmbench.builder(x, cache_dir=cache_dir, data_dir=data_dir, **overrides)
        for x in items
    ]
    names = sorted({b.name for b in builders})
    if len(names) > 1:
        raise InvalidConfigError(
            f"One export holds configs of one dataset (one card); got {names}. Export them to separate directories."
        )
    return builders


def _config_names(builders: Sequence[Builder], name: str | None) -> list[str]:
    if name is not None and len(builders) > 1:
        raise InvalidConfigError("--name names one overridden config; export several configs one id at a time.")
    names = [hub_config_name(b, name) for b in builders]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidConfigError(f"Config(s) {dupes} given twice; each config is exported once.")
    return names


def _is_export(path: Path) -> bool:
    card = path / CARD_FILE
    if not card.is_file():
        return False
    from mmbench.cards import read_card_metadata

    return "mmbench" in read_card_metadata(card.read_text(encoding="utf-8"))


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InvalidConfigError(f"--out {out} is a file; give a directory to export into.")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise InvalidConfigError(
                f"--out {out} is not empty. Pass --overwrite (Python: overwrite=True) to replace the export "
                "there, or choose a new directory."
            )
        if not _is_export(out):
            raise InvalidConfigError(
                f"--out {out} is not empty and is not an mmbench export (no {CARD_FILE} with an `mmbench:` "
                "block), so --overwrite will not delete it. Choose a new or empty directory."
            )


def export(
    dataset: str | Builder | Sequence[str | Builder],
    out: str | os.PathLike[str],
    *,
    name: str | None = None,
    overwrite: bool = False,
    splits: Sequence[str] | None = None,
    num_workers: int = 1,
    progress: bool | None = None,
    repo: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> Path:
    """Export built configs of one dataset to Parquet shards with a dataset card.

    Missing splits are built first. The directory is written under a temporary name and renamed
    into place when complete, so it never holds half an export.

    Args:
        dataset: a dataset id (``name[/config][:x.y.z]``), a :class:`Builder`, or several of
            either (configs of the same dataset; the first named default gets ``default: true``).
        out: the export directory: ``README.md`` and ``<config>/<split>-0000k-of-0000n.parquet``.
        name: the config name of an overridden (ad-hoc) config; required for one.
        overwrite: replace an existing export in ``out`` (a non-empty directory that is not an
            mmbench export is never replaced).
        splits: the splits to export (default: all).
        num_workers: processes that encode PNGs and write Parquet files in parallel.
        repo: the Hub repository named in the card's loading instructions.
        **overrides: config fields, as for :func:`mmbench.load`.

    Returns:
        ``out``.

    Example:
        >>> mmbench.hub.export("polymnist/reference", "export/polymnist", num_workers=4)
        >>> datasets.load_dataset("export/polymnist", "reference")["test"][0]["m0"]   # a PIL image
    """
    from mmbench.cards import write_hub_card

    builders = _builders(dataset, cache_dir=cache_dir, data_dir=data_dir, overrides=overrides)
    names = _config_names(builders, name)
    out = Path(out).expanduser().absolute()
    _check_out(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp(out.parent)
    trash = None
    try:
        with atomic_path(out) as staging:
            staging.mkdir()
            configs = [
                _export_config(b, cfg, staging / cfg, splits=splits, num_workers=num_workers, progress=progress)
                for b, cfg in zip(builders, names, strict=True)
            ]
            write_hub_card(staging, type(builders[0]), configs, repo=repo)
            if out.exists():  # --overwrite: the old export goes only once the new one is complete
                trash = tmp_path(out, "-old")
                os.rename(out, trash)
    except BaseException:
        if trash is not None and not out.exists():
            os.rename(trash, out)  # the swap failed: keep the old export
        raise
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
    return out


def _export_config(
    b: Builder, config: str, dest: Path, *, splits: Sequence[str] | None, num_workers: int, progress: bool | None
) -> ExportedConfig:
    """Write one config's Parquet files, its ``mmbench_info.json``, resources and sample grid."""
    from mmbench.cards import pick_sample_split, write_samples
    from mmbench.core.executors import run_tasks

    wanted = list(dict.fromkeys(b.check_split(s) for s in (b.split_names() if splits is None else splits)))
    todo = [s for s in wanted if not b.is_built(s)]
    if todo:
        b.build(todo, num_workers=num_workers, progress=progress)
    sets = {s: b.as_dataset(s) for s in wanted}
    info = dataclasses.replace(next(iter(sets.values())).info)
    info.splits = {s: info.splits[s] for s in wanted}
    plan = _plan(info)
    dest.mkdir()
    tasks, where = [], []
    for split, ds in sets.items():
        bounds = _file_bounds(len(ds), plan.file_rows)
        for k, (start, stop) in enumerate(bounds):
            tasks.append((ds, start, stop, str(dest / f"{split}-{k:05d}-of-{len(bounds):05d}.parquet"), plan))
            where.append(split)
    order = sorted(range(len(tasks)), key=lambda i: tasks[i][1] - tasks[i][2])  # largest first: balanced workers
    done = run_tasks(_write_parquet, [tasks[i] for i in order], num_workers=num_workers, progress=progress,
                     desc=f"export {b.name}/{config}")
    sizes: dict[str, dict[str, int]] = {s: {"num_examples": 0, "num_bytes": 0, "file_bytes": 0} for s in wanted}
    for i, result in zip(order, done, strict=True):
        for key, value in result.items():
            sizes[where[i]][key] += value
    root = next(iter(sets.values())).root
    if (root / RESOURCES_FILE).is_file():
        shutil.copyfile(root / RESOURCES_FILE, dest / RESOURCES_FILE)
    doc = info.to_json()
    doc["inputs"] = input_checksums(info.inputs)
    doc["content_fingerprint"] = info.content_fingerprint
    atomic_write(dest / INFO_EXPORT_FILE, json.dumps(doc, indent=1, ensure_ascii=False))
    samples = write_samples(sets[pick_sample_split(wanted)], dest / SAMPLES_FILE)
    return _exported(b, config, info, sizes, samples=samples is not None)


def _exported(
    b: Builder, config: str, info: DatasetInfo, sizes: Mapping[str, Mapping[str, int]], *, samples: bool
) -> ExportedConfig:
    import datasets

    features = datasets.DatasetInfo(features=export_features(info))._to_yaml_dict()["features"]
    entry: dict[str, Any] = {
        "id": info.id or b.id,
        "builder_version": info.version,
        "mmbench_version": info.mmbench_version,
        "config": info.config,
        "config_fingerprint": info.config_fingerprint,
        "content_fingerprint": info.content_fingerprint,
        "splits": {s: {"num_examples": int(v["num_examples"]), "fingerprint": info.splits[s]["fingerprint"]} for s, v in sizes.items()},
        "inputs": input_checksums(info.inputs),
        "resources_sha256": info.resources_sha256,
        "tag": version_tag(config, info.version),
        "samples": f"{config}/{SAMPLES_FILE}" if samples else None,
    }
    if not b.is_named_config:
        entry["base_config"] = b.config.name
        entry["overrides"] = b.overrides()
    return ExportedConfig(
        name=config,
        data_files=[{"split": s, "path": f"{config}/{s}-*"} for s in sizes],
        dataset_info={
            "config_name": config,
            "features": features,
            "splits": [{"name": s, "num_bytes": int(v["num_bytes"]), "num_examples": int(v["num_examples"])} for s, v in sizes.items()],
            "download_size": int(sum(v["file_bytes"] for v in sizes.values())),
            "dataset_size": int(sum(v["num_bytes"] for v in sizes.values())),
        },
        entry=entry,
    )


# ============================================================================ the Hub client
def hub_client(token: str | None = None) -> Any:
    """The Hub client: ``huggingface_hub.HfApi``. Tests replace this function with a stand-in."""
    from huggingface_hub import HfApi

    return HfApi(token=token)


def hub_token(*, required: bool) -> str | None:
    """The user's Hub token (``$HF_TOKEN`` or the one saved by ``hf auth login``); never printed."""
    from huggingface_hub import get_token

    token = get_token()
    if not token and required:
        raise HubError(
            "No Hugging Face token found. Publishing needs a token with write access: set the HF_TOKEN "
            "environment variable or run `hf auth login` (mmbench reads it from there and never prints "
            "or stores it). Create one at https://huggingface.co/settings/tokens."
        )
    return token or None


def _check_repo(repo: Any) -> str:
    if not isinstance(repo, str) or not _REPO_RE.match(repo) or ".." in repo:
        raise InvalidConfigError(
            f"Invalid Hub repository {repo!r}: expected ORG/NAME (letters, digits, '-', '_', '.'), e.g. 'my-lab/polymnist'."
        )
    return repo


_NETWORK_ERRORS = {"TransportError", "RequestError", "ConnectionError", "Timeout", "TimeoutException", "NetworkError"}


def _is_network_error(exc: BaseException) -> bool:
    # huggingface_hub has used requests, httpx and httpx2: match their transport errors by name.
    return isinstance(exc, ConnectionError | TimeoutError) or any(c.__name__ in _NETWORK_ERRORS for c in type(exc).__mro__)


def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "<token>") if token else text


def _translate(exc: Exception, action: str, repo: str, revision: str | None, token: str | None) -> HubError:
    """A :class:`HubError` that says what failed and what to do, for an error of the Hub client."""
    from huggingface_hub import errors as hf

    detail = _scrub(f"{type(exc).__name__}: {exc}".splitlines()[0], token)
    at = f" at revision {revision!r}" if revision else ""
    if isinstance(exc, hf.GatedRepoError):
        return HubError(f"{action}: {repo!r} is gated; accept its conditions on the Hub with the account of your token.")
    if isinstance(exc, hf.RepositoryNotFoundError):
        return HubError(
            f"{action}: the dataset repository {repo!r} was not found on the Hub (or it is private and the "
            "token cannot see it). Check ORG/NAME and the token's access; `mmbench publish --create` creates it."
        )
    if isinstance(exc, hf.RevisionNotFoundError):
        return HubError(f"{action}: {repo!r} has no revision {revision!r} (branch, tag or commit). Run "
                        f"`huggingface-cli` or see the repository's 'Files and versions' tab for its refs.")
    if isinstance(exc, hf.EntryNotFoundError):
        return HubError(f"{action}: a file is missing from {repo!r}{at} ({detail}).")
    if isinstance(exc, hf.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            return HubError(
                f"{action}: the Hub refused the token (HTTP {status}): it is invalid, expired, or has no write "
                f"access to {repo!r}. Set HF_TOKEN or run `hf auth login` with a write token."
            )
        return HubError(f"{action}: the Hub answered with an error ({detail}). Try again later.")
    if _is_network_error(exc):
        return HubError(
            f"{action}: could not reach the Hugging Face Hub ({detail}). Check the network connection "
            "(and HF_ENDPOINT / proxy settings), then run the command again."
        )
    raise exc


@contextlib.contextmanager
def _hub_errors(action: str, repo: str, *, revision: str | None = None, token: str | None = None) -> Iterator[None]:
    try:
        yield
    except MMBenchError:
        raise
    except Exception as exc:
        raise _translate(exc, action, repo, revision, token) from exc


def _remote_card(api: Any, repo: str, revision: str) -> str | None:
    """The README of ``repo`` at ``revision``, or ``None`` when it has none."""
    from huggingface_hub import errors as hf

    try:
        path = api.hf_hub_download(repo, CARD_FILE, repo_type=REPO_TYPE, revision=revision)
    except hf.EntryNotFoundError:
        return None
    return Path(path).read_text(encoding="utf-8")


# ============================================================================ publish
@dataclasses.dataclass(frozen=True)
class PublishResult:
    """What :func:`publish` did: the config, its tag, the tagged commit, and whether data was uploaded."""

    repo: str
    config: str
    tag: str
    commit: str
    uploaded: bool

    @property
    def url(self) -> str:
        return f"https://huggingface.co/datasets/{self.repo}/tree/{self.tag}"


def publish(
    dataset: str | Builder,
    repo: str,
    *,
    revision: str | None = None,
    name: str | None = None,
    create: bool = False,
    private: bool = False,
    num_workers: int = 1,
    progress: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> PublishResult:
    """Publish one config of a dataset to a Hub dataset repository and tag it with its version.

    The config is built if needed and exported (see :func:`export`); its files and the dataset
    card, regenerated with every config the repository already holds, go up in **one commit**
    on branch ``revision``; that commit is then tagged ``<config>-v<version>``. A commit either
    lands whole or not at all, and the tag is created only after it landed, so a failed upload
    leaves nothing half-tagged. Publishing the same data again uploads nothing (and adds a
    missing tag); a tag that already names other data is refused.

    The token comes from ``$HF_TOKEN`` or ``hf auth login``; it is never printed, logged or written.

    Args:
        dataset: a dataset id or a :class:`Builder`.
        repo: ``ORG/NAME`` of the Hub dataset repository.
        revision: the branch to commit to (default ``main``).
        name: the config's name on the Hub, required for an overridden (ad-hoc) config.
        create: create the repository if it does not exist (``private`` makes it private).
        **overrides: config fields, as for :func:`mmbench.load`.

    Example:
        >>> mmbench.hub.publish("polymnist/reference", "my-lab/polymnist", num_workers=4)
        PublishResult(repo='my-lab/polymnist', config='reference', tag='reference-v1.0.0', ...)
    """
    from mmbench.cards import read_card_metadata

    if not isinstance(dataset, str | Builder):
        raise InvalidConfigError("publish takes one dataset id: configs are published one at a time.")
    b = _builders(dataset, cache_dir=cache_dir, data_dir=data_dir, overrides=overrides)[0]
    config = hub_config_name(b, name)
    repo = _check_repo(repo)
    branch = revision or "main"
    token = hub_token(required=True)
    api = hub_client(token)
    head, tags = _repo_state(api, repo, branch, create=create, private=private, token=token)
    tag = version_tag(config, b.VERSION)
    with tempfile.TemporaryDirectory(prefix="mmbench-publish-") as tmp:
        staging = Path(tmp) / "export"
        export(b, staging, name=None if b.is_named_config else config, num_workers=num_workers, progress=progress, repo=repo)
        ours = _card_configs(read_card_metadata((staging / CARD_FILE).read_text(encoding="utf-8")))[config]
        if tag in tags:
            return _already_tagged(api, repo, ours, tag, tags[tag], token=token)
        with _hub_errors(f"Reading the card of {repo}", repo, revision=head, token=token):
            remote = _remote_card(api, repo, head)
        theirs = _remote_configs(remote, repo, type(b).name)
        same = config in theirs and _same_data(theirs[config], ours)
        commit = head if same else _commit(api, repo, branch, head, staging, type(b), theirs, ours, token=token)
    _tag(api, repo, tag, commit, ours, token=token)
    return PublishResult(repo=repo, config=config, tag=tag, commit=commit, uploaded=not same)


def _repo_state(
    api: Any, repo: str, branch: str, *, create: bool, private: bool, token: str
) -> tuple[str, dict[str, str]]:
    """The head commit of ``branch`` and the repository's tags (creating the repository if asked)."""
    from huggingface_hub import errors as hf

    action = f"Publishing to {repo}"
    with _hub_errors(action, repo, revision=branch, token=token):
        try:
            head = api.repo_info(repo, repo_type=REPO_TYPE, revision=branch).sha
        except hf.RevisionNotFoundError:
            raise HubError(
                f"{action}: the repository has no branch {branch!r}. Create it first "
                f"(huggingface_hub.HfApi().create_branch({repo!r}, branch={branch!r}, repo_type='dataset')) "
                "or omit --revision to publish to main."
            ) from None
        except hf.RepositoryNotFoundError:
            if not create:
                raise
            api.create_repo(repo, repo_type=REPO_TYPE, private=private, exist_ok=True)
            head = api.repo_info(repo, repo_type=REPO_TYPE, revision=branch).sha
        refs = api.list_repo_refs(repo, repo_type=REPO_TYPE)
    return head, {t.name: t.target_commit for t in refs.tags}


def _card_configs(meta: Mapping[str, Any]) -> dict[str, ExportedConfig]:
    """The configs a card's metadata describes, each with its three metadata items."""
    entries = (meta.get("mmbench") or {}).get("configs") or {}
    files = {c.get("config_name"): c.get("data_files", []) for c in meta.get("configs") or []}
    infos = {c.get("config_name"): c for c in meta.get("dataset_info") or [] if isinstance(c, Mapping)}
    return {
        name: ExportedConfig(name, list(files.get(name, [])), dict(infos.get(name, {"config_name": name})), dict(entry))
        for name, entry in entries.items()
    }


def _remote_configs(card: str | None, repo: str, dataset: str) -> dict[str, ExportedConfig]:
    from mmbench.cards import read_card_metadata

    if card is None:
        return {}
    meta = read_card_metadata(card)
    block = meta.get("mmbench")
    if not isinstance(block, Mapping):
        raise HubError(
            f"{repo} already has a {CARD_FILE} that mmbench did not write (no `mmbench:` block); publishing "
            "would replace it. Publish to a new or empty repository."
        )
    if block.get("dataset") != dataset:
        raise HubError(
            f"{repo} holds the mmbench dataset {block.get('dataset')!r}, not {dataset!r}: one repository "
            "holds the configs of one dataset. Publish to another repository."
        )
    return _card_configs(meta)


def _same_data(a: ExportedConfig, b: ExportedConfig) -> bool:
    keys = ("builder_version", "config_fingerprint", "content_fingerprint")
    return all(a.entry.get(k) == b.entry.get(k) for k in keys)


def _commit(
    api: Any,
    repo: str,
    branch: str,
    head: str,
    staging: Path,
    builder_cls: type[Builder],
    theirs: Mapping[str, ExportedConfig],
    ours: ExportedConfig,
    *,
    token: str,
) -> str:
    """Upload ``ours`` and the merged card in one commit on top of ``head``; return its sha."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    from mmbench.cards import hub_card

    configs = [c for name, c in theirs.items() if name != ours.name] + [ours]
    card = hub_card(builder_cls, configs, repo=repo)
    files = sorted(p for p in (staging / ours.name).iterdir() if p.is_file())
    ops: list[Any] = [CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=card.encode())]
    ops += [CommitOperationAdd(path_in_repo=f"{ours.name}/{p.name}", path_or_fileobj=str(p)) for p in files]
    action = f"Uploading {ours.name} to {repo}"
    with _hub_errors(action, repo, revision=branch, token=token):
        remote = api.list_repo_files(repo, repo_type=REPO_TYPE, revision=head)
        keep = {f"{ours.name}/{p.name}" for p in files}
        ops += [CommitOperationDelete(path_in_repo=f) for f in remote if f.startswith(f"{ours.name}/") and f not in keep]
        info = api.create_commit(
            repo, ops, commit_message=f"mmbench: publish {ours.entry['id']} as config {ours.name!r}",
            repo_type=REPO_TYPE, revision=branch, parent_commit=head,
        )
    return info.oid


def _tag(api: Any, repo: str, tag: str, commit: str, ours: ExportedConfig, *, token: str) -> None:
    try:
        with _hub_errors(f"Tagging {repo}", repo, token=token):
            api.create_tag(repo, tag=tag, revision=commit, repo_type=REPO_TYPE,
                           tag_message=f"{ours.entry['id']} (content {ours.entry['content_fingerprint']})")
    except HubError as exc:
        raise HubError(
            f"{exc} The data is on the Hub as commit {commit}, but it is not tagged {tag!r}. Run the same "
            "`mmbench publish` again: it uploads nothing and only adds the tag."
        ) from exc


def _already_tagged(api: Any, repo: str, ours: ExportedConfig, tag: str, commit: str, *, token: str) -> PublishResult:
    from mmbench.cards import read_card_metadata

    with _hub_errors(f"Reading the card of {repo} at {tag}", repo, revision=tag, token=token):
        card = _remote_card(api, repo, commit)
    theirs = _card_configs(read_card_metadata(card)) if card else {}
    if ours.name in theirs and _same_data(theirs[ours.name], ours):
        logger.info("%s is already published at %s (%s)", ours.entry["id"], tag, commit)
        return PublishResult(repo=repo, config=ours.name, tag=tag, commit=commit, uploaded=False)
    raise HubError(
        f"{repo} already has the tag {tag!r} (commit {commit}) for other data than {ours.entry['id']} "
        f"(content {ours.entry['content_fingerprint']}). A version names one set of values: bump the builder "
        "VERSION when data changes, or publish the changed config under another --name."
    )


# ============================================================================ load from the Hub
def load_from_hub(
    dataset_id: str,
    *,
    repo: str | None,
    revision: str | None = None,
    split: str | None = None,
    version: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    verify: str = "basic",
    source: str = "hub",
    overrides: Mapping[str, Any] | None = None,
) -> Dataset | dict[str, Dataset]:
    """A published config read back from the Hub, as the same :class:`Dataset` API as a local build.

    The files of the config at ``revision`` are downloaded once (into the Hugging Face cache),
    converted into an mmbench cache entry (``<cache>/_hub/<org>__<name>/<commit>/<config>/``),
    and every column is checked against the per-shard sha256 recorded when it was built: the
    data is byte-identical to a local build of the same config and version.

    Args:
        dataset_id: ``name[/config][:x.y.z]``; no config: the card's default; a version and no
            ``revision``: the tag ``<config>-v<x.y.z>``.
        repo: ``ORG/NAME`` of the Hub dataset repository.
        revision: a tag, branch or commit (default: the version's tag, else ``main``).
        split: one split, or ``None`` for a dict of every published split.

    Example:
        >>> ds = mmbench.load("polymnist/reference:1.0.0", source="hub", repo="my-lab/polymnist", split="test")
    """
    if source == "local":
        raise InvalidConfigError("repo= and revision= read a config published on the Hub: pass source='hub' too.")
    if source != "hub":
        raise InvalidConfigError(f"Unknown source {source!r}.{did_you_mean(str(source), ['local', 'hub'])} "
                                 "Choose 'local' (build or read the cache) or 'hub' (with repo='ORG/NAME').")
    if repo is None:
        raise InvalidConfigError("source='hub' needs repo='ORG/NAME' (CLI: --repo), the Hub dataset repository.")
    if overrides:
        raise InvalidConfigError(
            f"A published config is fixed: config overrides {sorted(overrides)} cannot apply to source='hub'. "
            "Publish the overridden config under its own name, or build it locally."
        )
    from mmbench.core.dataset import Dataset

    repo = _check_repo(repo)
    api = hub_client(hub_token(required=False))
    config, entry, sha = _published(api, repo, dataset_id, revision=revision, version=version)
    splits = list(entry["splits"])
    if split is not None and split not in splits:
        raise DatasetNotFoundError(f"{repo} publishes splits {splits} of {config!r}, not {split!r}.{did_you_mean(split, splits)}")
    # "_hub": no dataset's cache folder can have that name (dataset names start with a letter or digit)
    root = (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / "_hub"
    root = root / repo.replace("/", "__") / sha / config
    if not (root / INFO_FILE).is_file():
        with _hub_errors(f"Downloading {config} from {repo}", repo, revision=sha):
            snapshot = api.snapshot_download(repo, repo_type=REPO_TYPE, revision=sha, allow_patterns=[f"{config}/*"])
        _materialise(Path(snapshot) / config, root, source={"repo": repo, "revision": sha, "config": config})
    if split is not None:
        return Dataset.open(root, split, verify=verify)
    return {s: Dataset.open(root, s, verify=verify) for s in splits}


def _published(
    api: Any, repo: str, dataset_id: str, *, revision: str | None, version: str | None
) -> tuple[str, dict[str, Any], str]:
    """(config name, its card entry, the commit sha) of ``dataset_id`` in ``repo``."""
    from mmbench.builders import DATASETS
    from mmbench.naming import resolve_id
    from mmbench.versioning import Version

    sha, meta = _card_at(api, repo, revision or "main")
    block = meta.get("mmbench") if isinstance(meta.get("mmbench"), Mapping) else {}
    dataset = block.get("dataset")
    if not dataset:
        raise HubError(f"{repo} (revision {revision or 'main'}) has no mmbench dataset card: it was not published by mmbench.")
    did = resolve_id(dataset_id, {*DATASETS.names(), dataset})
    if did.name != dataset:
        raise DatasetNotFoundError(f"{repo} holds the dataset {dataset!r}, not {did.name!r}. Check the id or the repository.")
    wanted = Version.parse(version) if version is not None else did.version
    config = did.config or _default_config(meta)
    if revision is None and wanted is not None:
        revision = version_tag(config, str(wanted))
        sha, meta = _card_at(api, repo, revision, tags_of=config)
    entries = _card_configs(meta)
    if config not in entries:
        raise DatasetNotFoundError(
            f"{repo} (revision {revision or 'main'}) publishes no config {config!r} of {dataset!r}."
            f"{did_you_mean(config, entries)} Published: {sorted(entries) or 'none'}."
        )
    entry = entries[config].entry
    if wanted is not None and entry.get("builder_version") != str(wanted):
        raise DatasetNotFoundError(
            f"{repo} at revision {revision!r} has {dataset}/{config} version {entry.get('builder_version')}, "
            f"not {wanted}. Pass revision={version_tag(config, str(wanted))!r}, or leave the version out of the id."
        )
    logger.info("%s/%s from %s at %s (commit %s)", dataset, config, repo, revision or "main", sha)
    return config, entry, sha


def _card_at(api: Any, repo: str, revision: str, *, tags_of: str | None = None) -> tuple[str, dict[str, Any]]:
    """The commit sha of ``revision`` and the metadata of the card there."""
    from huggingface_hub import errors as hf

    from mmbench.cards import read_card_metadata

    action = f"Reading {repo} at {revision!r}"
    with _hub_errors(action, repo, revision=revision):
        try:
            sha = api.repo_info(repo, repo_type=REPO_TYPE, revision=revision).sha
        except hf.RevisionNotFoundError:
            if tags_of is None:
                raise
            refs = api.list_repo_refs(repo, repo_type=REPO_TYPE)
            tags = sorted(t.name for t in refs.tags if t.name.startswith(f"{tags_of}-v"))
            raise HubError(
                f"{repo} has no tag {revision!r}: that version of {tags_of!r} was not published there. "
                f"Published versions: {tags or 'none'}. Pass revision=... (a tag, branch or commit) to choose one."
            ) from None
        card = _remote_card(api, repo, sha)
    if card is None:
        raise HubError(f"{repo} has no {CARD_FILE} at {revision!r}: it holds no mmbench export.")
    return sha, read_card_metadata(card)


def _default_config(meta: Mapping[str, Any]) -> str:
    configs = [c for c in meta.get("configs") or [] if isinstance(c, Mapping)]
    for c in configs:
        if c.get("default"):
            return str(c["config_name"])
    if len(configs) == 1:
        return str(configs[0]["config_name"])
    raise DatasetNotFoundError(
        f"The id names no config and the card marks none as default; choose one of "
        f"{[c.get('config_name') for c in configs]} (e.g. 'name/config')."
    )


def _materialise(src: Path, root: Path, *, source: Mapping[str, str]) -> None:
    """Turn a downloaded config (Parquet files + ``mmbench_info.json``) into an mmbench cache entry,
    checking every column against its recorded shard hashes; written atomically."""
    info_path = src / INFO_EXPORT_FILE
    if not info_path.is_file():
        raise HubError(f"The published config has no {INFO_EXPORT_FILE} ({source}); it was not exported by mmbench.")
    doc = json.loads(info_path.read_text(encoding="utf-8"))
    info = DatasetInfo.from_json(doc)
    root.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp(root.parent)
    tmp = tmp_path(root)
    try:
        tmp.mkdir()
        if info.resources_sha256:
            if not (src / RESOURCES_FILE).is_file() or sha256_file(src / RESOURCES_FILE) != info.resources_sha256:
                raise HubError(f"The published {RESOURCES_FILE} of {source} is missing or does not match its sha256.")
            shutil.copyfile(src / RESOURCES_FILE, tmp / RESOURCES_FILE)
        from tqdm.auto import tqdm

        files = {split: sorted(src.glob(f"{split}-*.parquet")) for split in info.splits}
        with tqdm(total=sum(map(len, files.values())), desc=f"hub {source.get('config', '')}", unit="file",
                  disable=None) as bar:  # None: shown on a terminal only
            for split in info.splits:
                _materialise_split(files[split], tmp / split, split, info, source=source, bar=bar)
        doc["content_fingerprint"] = info.content_fingerprint
        atomic_write(tmp / INFO_FILE, json.dumps(doc, indent=1, ensure_ascii=False))
        try:
            os.rename(tmp, root)
        except OSError:
            if not (root / INFO_FILE).is_file():
                raise
            # another process materialised the same commit first; ours is identical
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _materialise_split(
    files: Sequence[Path], dest: Path, split: str, info: DatasetInfo, *, source: Mapping[str, str], bar: Any
) -> None:
    import pyarrow.parquet as pq

    n = int(info.splits[split]["num_examples"])
    kinds = {name: column_kind(name, feat, info) for name, feat in info.features.items()}
    unstorable = sorted(name for name, kind in kinds.items() if kind == "ragged")
    if unstorable:
        raise HubError(f"Columns {unstorable} are ragged token columns, which this mmbench's cache cannot store yet.")
    dest.mkdir()
    arrays = {
        name: np.lib.format.open_memmap(dest / f"{name}.npy", mode="w+", dtype=feat.np_dtype, shape=(n, *feat.shape))
        for name, feat in info.features.items()
    }
    pos = 0
    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096, columns=list(info.features)):
            m = batch.num_rows
            if pos + m > n:
                raise HubError(f"{path.name} ({source}) holds more rows than the {n} recorded for {split!r}.")
            for name, feat in info.features.items():
                arrays[name][pos : pos + m] = CODECS[kinds[name]].from_arrow(batch.column(name), feat)
            pos += m
        bar.update()
    if pos != n:
        raise HubError(f"The published {split!r} split of {source} has {pos} rows, expected {n}: files are missing.")
    shards = info.splits[split]["shards"]
    for name, arr in arrays.items():
        for k, shard in enumerate(shards):
            if sha256_array(arr[shard["start"] : shard["stop"]]) != shard["sha256"][name]:
                raise HubError(
                    f"Column {name!r} of {split!r} (shard {k}) from {source} differs from the data that was "
                    "built and hashed: the published files were modified or corrupted."
                )
        arr.flush()
    del arrays
    split_info = {
        **{k: info.splits[split][k] for k in ("num_examples", "fingerprint", "shards")},
        "files": {name: (dest / f"{name}.npy").stat().st_size for name in info.features},
        "config_fingerprint": info.config_fingerprint,
        "version": info.version,
        "source": dict(source),
    }
    atomic_write(dest / SPLIT_INFO_FILE, json.dumps(split_info, indent=1))
