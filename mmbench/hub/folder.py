"""Export built configs of one dataset to a folder: Parquet shards and a dataset card.

The folder is what a Hub dataset repository holds: ``README.md`` (the card, whose YAML
``configs:`` block tells ``datasets.load_dataset`` where each config's splits are) and per config
``<config>/<split>-0000k-of-0000n.parquet``, ``mmbench_info.json`` (the build's ``DatasetInfo``,
without local paths), ``resources.safetensors``, ``artifacts/<name>`` (the files the dataset
carries, e.g. a vocabulary) and ``samples.png``.

A column kept in a shared store (``Feature.store``) is exported as its rows (images), not as the
store indices the split holds; its recorded shard hashes are of those indices, so the export also
records, per shard, the sha256 of the rows themselves (``materialised_sha256`` beside ``sha256``
in each shard of ``mmbench_info.json``), which :func:`mmbench.load` with ``source="hub"`` checks.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmbench.core.builder import RESOURCES_FILE, Builder, DatasetInfo
from mmbench.core.storage import (
    ARTIFACTS_DIR,
    atomic_path,
    atomic_write,
    clean_stale_tmp,
    sha256_array,
    tmp_path,
)
from mmbench.errors import InvalidConfigError, InvalidIdError
from mmbench.hub.columns import export_features, file_bounds, plan, write_parquet

__all__ = [
    "CARD_FILE",
    "MATERIALISED_KEY",
    "ExportedConfig",
    "card_configs",
    "export",
    "hub_config_name",
    "input_checksums",
    "version_tag",
]

if TYPE_CHECKING:
    from mmbench.core.dataset import Dataset

CARD_FILE = "README.md"
INFO_EXPORT_FILE = "mmbench_info.json"  # the build's DatasetInfo (no local paths), one per config
SAMPLES_FILE = "samples.png"
#: Key of a shard in ``mmbench_info.json`` holding ``{column: sha256}`` of the exported rows of its
#: store-backed columns (whose ``sha256`` is that of the store indices).
MATERIALISED_KEY = "materialised_sha256"


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


def builders_of(
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

    builders = builders_of(dataset, cache_dir=cache_dir, data_dir=data_dir, overrides=overrides)
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
    layout = plan(info)
    dest.mkdir()
    tasks, where = [], []
    for split, ds in sets.items():
        bounds = file_bounds(len(ds), layout.file_rows)
        for k, (start, stop) in enumerate(bounds):
            tasks.append((ds, start, stop, str(dest / f"{split}-{k:05d}-of-{len(bounds):05d}.parquet"), layout))
            where.append(split)
    order = sorted(range(len(tasks)), key=lambda i: tasks[i][1] - tasks[i][2])  # largest first: balanced workers
    done = run_tasks(write_parquet, [tasks[i] for i in order], num_workers=num_workers, progress=progress,
                     desc=f"export {b.name}/{config}")
    sizes: dict[str, dict[str, int]] = {s: {"num_examples": 0, "num_bytes": 0, "file_bytes": 0} for s in wanted}
    for i, result in zip(order, done, strict=True):
        for key, value in result.items():
            sizes[where[i]][key] += value
    first = next(iter(sets.values()))
    if (first.root / RESOURCES_FILE).is_file():
        shutil.copyfile(first.root / RESOURCES_FILE, dest / RESOURCES_FILE)
    _export_artifacts(first, dest / ARTIFACTS_DIR)
    _record_store_rows(info, sets, num_workers=num_workers, progress=progress)
    doc = info.to_json()
    doc["inputs"] = input_checksums(info.inputs)
    doc["content_fingerprint"] = info.content_fingerprint
    atomic_write(dest / INFO_EXPORT_FILE, json.dumps(doc, indent=1, ensure_ascii=False))
    samples = write_samples(sets[pick_sample_split(wanted)], dest / SAMPLES_FILE)
    return _exported(b, config, info, sizes, samples=samples is not None)


def _export_artifacts(ds: Dataset, dest: Path) -> None:
    """The files the dataset carries, each read back against its recorded sha256."""
    for name in ds.artifacts:
        dest.mkdir(exist_ok=True)
        (dest / name).write_bytes(ds.artifact(name))


def store_row_hashes(ds: Dataset, names: Sequence[str]) -> list[dict[str, str]]:
    """Worker: per recorded shard of ``ds``, the sha256 of the rows (not the store indices) of the
    store-backed columns ``names``, as the fixed column they become when read back."""
    return [
        {name: sha256_array(ds[name][shard["start"] : shard["stop"]]) for name in names}
        for shard in ds.info.splits[ds.split]["shards"]
    ]


def _record_store_rows(info: DatasetInfo, sets: Mapping[str, Dataset], *, num_workers: int,
                       progress: bool | None) -> None:
    """Add :data:`MATERIALISED_KEY` to every shard of ``info.splits`` (when a column lives in a store)."""
    from mmbench.core.executors import run_tasks

    names = [name for name, feat in info.features.items() if feat.store is not None]
    if not names:
        return
    tasks = [(ds, names) for ds in sets.values()]
    hashed = run_tasks(store_row_hashes, tasks, num_workers=num_workers, progress=progress, desc="hash store rows")
    for split, hashes in zip(sets, hashed, strict=True):
        shards = [{**shard, MATERIALISED_KEY: h} for shard, h in zip(info.splits[split]["shards"], hashes, strict=True)]
        info.splits[split] = {**info.splits[split], "shards": shards}


def _exported(
    b: Builder, config: str, info: DatasetInfo, sizes: Mapping[str, Mapping[str, int]], *, samples: bool
) -> ExportedConfig:
    import datasets

    # the YAML form of Features that push_to_hub writes (datasets has no public name for it)
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
    if info.artifacts:
        entry["artifacts"] = {name: f"{config}/{ARTIFACTS_DIR}/{name}" for name in info.artifacts}
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


def card_configs(meta: Mapping[str, Any]) -> dict[str, ExportedConfig]:
    """The configs a card's metadata describes, each with its three metadata items."""
    entries = (meta.get("mmbench") or {}).get("configs") or {}
    files = {c.get("config_name"): c.get("data_files", []) for c in meta.get("configs") or []}
    infos = {c.get("config_name"): c for c in meta.get("dataset_info") or [] if isinstance(c, Mapping)}
    return {
        name: ExportedConfig(name, list(files.get(name, [])), dict(infos.get(name, {"config_name": name})), dict(entry))
        for name, entry in entries.items()
    }
