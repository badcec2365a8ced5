"""Read a published config back from the Hub: ``mmbench.load(..., source="hub")``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from mmbench.core.build import Part, finish_part, open_part, write_shard
from mmbench.core.builder import INFO_FILE, RESOURCES_FILE, DatasetInfo, Feature, default_cache_dir
from mmbench.core.storage import (
    ARTIFACTS_DIR,
    atomic_write,
    clean_stale_tmp,
    tmp_path,
    write_artifact,
)
from mmbench.errors import DatasetNotFoundError, HubError, InvalidConfigError, did_you_mean
from mmbench.hub import client
from mmbench.hub.columns import CODECS, column_kind
from mmbench.hub.folder import (
    CARD_FILE,
    INFO_EXPORT_FILE,
    MATERIALISED_KEY,
    card_configs,
    version_tag,
)
from mmbench.versioning import sha256_file

if TYPE_CHECKING:
    from mmbench.core.dataset import Dataset

__all__ = ["load_from_hub", "materialise"]

logger = logging.getLogger(__name__)


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
    data is byte-identical to a local build of the same config and version (string and token
    columns in their layouts, artifacts restored; a column kept in a shared store by the build is
    a plain column of its rows here, with the same split and content fingerprints).

    Args:
        dataset_id: ``name[/config][:x.y.z]``; no config: the card's default; a version and no
            ``revision``: the tag ``<config>-v<x.y.z>``.
        repo: ``ORG/NAME`` of the Hub dataset repository.
        revision: a tag, branch or commit (default: the version's tag, else ``main``).
        split: one split, or ``None`` for a dict of every published split.

    Example:
        >>> ds = mmbench.load("polymnist/reference:1.0.1", source="hub", repo="my-lab/polymnist", split="test")
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

    repo = client.check_repo(repo)
    api = client.hub_client(client.hub_token(required=False))
    config, entry, sha = _published(api, repo, dataset_id, revision=revision, version=version)
    splits = list(entry["splits"])
    if split is not None and split not in splits:
        raise DatasetNotFoundError(f"{repo} publishes splits {splits} of {config!r}, not {split!r}.{did_you_mean(split, splits)}")
    # "_hub": no dataset's cache folder can have that name (dataset names start with a letter or digit)
    root = (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / "_hub"
    root = root / repo.replace("/", "__") / sha / config
    if not (root / INFO_FILE).is_file():
        with client.hub_errors(f"Downloading {config} from {repo}", repo, revision=sha):
            snapshot = api.snapshot_download(repo, repo_type=client.REPO_TYPE, revision=sha, allow_patterns=[f"{config}/*"])
        materialise(Path(snapshot) / config, root, source={"repo": repo, "revision": sha, "config": config})
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
    entries = card_configs(meta)
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
    with client.hub_errors(action, repo, revision=revision):
        try:
            sha = api.repo_info(repo, repo_type=client.REPO_TYPE, revision=revision).sha
        except hf.RevisionNotFoundError:
            if tags_of is None:
                raise
            refs = api.list_repo_refs(repo, repo_type=client.REPO_TYPE)
            tags = sorted(t.name for t in refs.tags if t.name.startswith(f"{tags_of}-v"))
            raise HubError(
                f"{repo} has no tag {revision!r}: that version of {tags_of!r} was not published there. "
                f"Published versions: {tags or 'none'}. Pass revision=... (a tag, branch or commit) to choose one."
            ) from None
        card = client.remote_card(api, repo, sha)
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


def materialise(src: Path, root: Path, *, source: Mapping[str, str]) -> None:
    """Turn a downloaded config (Parquet files, ``mmbench_info.json``, resources, artifacts) into an
    mmbench cache entry, checking every column of every shard against its recorded sha256.

    Each split is written by the core's writer (:mod:`mmbench.core.build`), so string and ragged
    columns get their layouts; columns that lived in a shared store become plain fixed columns,
    checked against the hashes of their rows recorded at export. Everything is written under a
    temporary name and renamed into place when complete.
    """
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
        _restore_artifacts(src, tmp, info, source)
        from tqdm.auto import tqdm

        files = {split: sorted(src.glob(f"{split}-*.parquet")) for split in info.splits}
        rows = sum(int(v["num_examples"]) for v in info.splits.values())
        with tqdm(total=rows, desc=f"hub {source.get('config', '')}", unit="row", disable=None) as bar:  # None: terminal only
            for split in list(info.splits):
                try:
                    written = _materialise_split(files[split], tmp / split, split, info, source=source, bar=bar)
                except pa.ArrowException as exc:
                    raise HubError(f"The published {split!r} split of {source} is unreadable or has other columns "
                                   f"than mmbench exported ({exc}): the files were modified or corrupted.") from exc
                info.splits[split] = {k: written[k] for k in ("num_examples", "fingerprint", "shards", "files")}
        _unstore(info)
        out = info.to_json()
        out["content_fingerprint"] = info.content_fingerprint  # the build's: same split and store fingerprints
        atomic_write(tmp / INFO_FILE, json.dumps(out, indent=1, ensure_ascii=False))
        try:
            os.rename(tmp, root)
        except OSError:
            if not (root / INFO_FILE).is_file():
                raise
            # another process materialised the same commit first; ours is identical
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _restore_artifacts(src: Path, dest: Path, info: DatasetInfo, source: Mapping[str, str]) -> None:
    """Copy every published artifact into the entry, checked against its recorded size and sha256."""
    for name, record in info.artifacts.items():
        path = src / ARTIFACTS_DIR / name
        data = path.read_bytes() if path.is_file() else None
        if data is None or len(data) != record["size"] or hashlib.sha256(data).hexdigest() != record["sha256"]:
            raise HubError(
                f"The published artifact {ARTIFACTS_DIR}/{name} of {source} is missing or does not match its "
                "recorded sha256: the published files were modified or are incomplete."
            )
        write_artifact(dest, name, data)


def _unstored(features: Mapping[str, Feature]) -> dict[str, Feature]:
    """The columns as read back: a store-backed column is a plain fixed column of its rows."""
    return {name: dataclasses.replace(feat, store=None) for name, feat in features.items()}


def _unstore(info: DatasetInfo) -> None:
    """Store-backed columns become plain fixed columns (their rows are in the split now). The
    stores stay recorded without a path (nothing to open; the content fingerprint is unchanged)."""
    info.features = _unstored(info.features)
    info.stores = {name: {k: v for k, v in record.items() if k != "path"} for name, record in info.stores.items()}


def _materialise_split(
    files: Sequence[Path], dest: Path, split: str, info: DatasetInfo, *, source: Mapping[str, str], bar: Any
) -> dict[str, Any]:
    """Write one split through the core's writer, shard by shard, checking each against its record;
    return its ``split_info.json``."""
    recorded = info.splits[split]
    shards = recorded["shards"]
    bounds = _shard_bounds(shards, int(recorded["num_examples"]), split, source)
    features = _unstored(info.features)
    kinds = {name: column_kind(name, feat, info) for name, feat in info.features.items()}
    stamp = {"config_fingerprint": info.config_fingerprint, "version": info.version}
    part = Part(f"hub {split}", dest, features, bounds, stamp)
    open_part(part, force=True)
    hashes = []
    for k, table in enumerate(_shard_tables(files, bounds, list(features), split, source)):
        columns = {name: CODECS[kinds[name]].from_arrow(table.column(name).combine_chunks(), feat)
                   for name, feat in features.items()}
        got = write_shard(part.partial, features, bounds[k], k, columns)
        for name, feat in info.features.items():
            want = shards[k].get(MATERIALISED_KEY, {}) if feat.store is not None else shards[k]["sha256"]
            if name not in want:
                raise HubError(f"Column {name!r} of {split!r} (shard {k}) from {source} has no recorded sha256 of "
                               f"its rows: the published {INFO_EXPORT_FILE} was not written by this mmbench's export.")
            if got[name] != want[name]:
                raise HubError(
                    f"Column {name!r} of {split!r} (shard {k}) from {source} differs from the data that was "
                    "built and hashed: the published files were modified or corrupted."
                )
        hashes.append(got)
        bar.update(bounds[k][1] - bounds[k][0])
    return finish_part(part, hashes, {"fingerprint": recorded["fingerprint"], "source": dict(source)})


def _shard_bounds(shards: Sequence[Mapping[str, Any]], n: int, split: str, source: Mapping[str, str]) -> list[tuple[int, int]]:
    """The recorded ``[start, stop)`` of every shard, which must tile ``[0, n)``."""
    bounds = [(int(s["start"]), int(s["stop"])) for s in shards]
    edges = [0, *(stop for _, stop in bounds)]
    if [start for start, _ in bounds] != edges[:-1] or edges[-1] != n or any(a > b for a, b in bounds):
        raise HubError(f"The shards recorded for {split!r} in {INFO_EXPORT_FILE} ({source}) do not cover its {n} rows.")
    return bounds


def _shard_tables(files: Sequence[Path], bounds: Sequence[tuple[int, int]], columns: list[str], split: str,
                  source: Mapping[str, str]) -> Iterator[pa.Table]:
    """The rows of each shard as one Arrow table, streamed from the split's Parquet files in order."""
    import pyarrow.parquet as pq

    if not files:
        raise HubError(f"The published {split!r} split of {source} has no Parquet files.")
    readers = [pq.ParquetFile(path) for path in files]
    for path, reader in zip(files, readers, strict=True):
        missing = [name for name in columns if name not in reader.schema_arrow.names]
        if missing:
            raise HubError(f"{path.name} of {source} has no column(s) {missing}: it was not written by mmbench export, "
                           "or was modified.")
    batches = (b for reader in readers for b in reader.iter_batches(batch_size=4096, columns=columns))
    schema = pa.schema([readers[0].schema_arrow.field(name) for name in columns])
    pending = pa.Table.from_batches([], schema=schema)
    for start, stop in bounds:
        need = stop - start
        more = []
        while pending.num_rows + sum(b.num_rows for b in more) < need:
            batch = next(batches, None)
            if batch is None:
                raise HubError(f"The published {split!r} split of {source} has fewer rows than the {bounds[-1][1]} "
                               "recorded: files are missing.")
            more.append(batch)
        if more:
            pending = pa.concat_tables([pending, pa.Table.from_batches(more, schema=schema)])
        yield pending.slice(0, need)
        pending = pending.slice(need)
    if pending.num_rows or any(b.num_rows for b in batches):
        raise HubError(f"The published {split!r} split of {source} holds more rows than the {bounds[-1][1] if bounds else 0} "
                       "recorded.")
