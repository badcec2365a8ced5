"""The top-level user API: ``load``, ``builder``, ``list_datasets``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from mmbench.builders import DATASETS
from mmbench.errors import CacheError, DatasetNotFoundError, InvalidConfigError
from mmbench.naming import DatasetId, resolve_id
from mmbench.versioning import Version

if TYPE_CHECKING:
    from mmbench.core.builder import Builder
    from mmbench.core.dataset import Dataset

__all__ = ["builder", "list_datasets", "load", "resolve"]


def resolve(dataset_id: str, *, version: str | None = None) -> DatasetId:
    """Parse ``name[/config][:x.y.z]`` against the registered datasets."""
    did = resolve_id(dataset_id, DATASETS.names())
    if version is not None:
        v = Version.parse(version)
        if did.version is not None and did.version != v:
            raise DatasetNotFoundError(
                f"The id {dataset_id!r} asks for version {did.version} but version={version!r} was "
                "also given. Give the version once."
            )
        did = DatasetId(did.name, did.config, v, did.fingerprint)
    return did


def builder(
    dataset_id: str,
    *,
    version: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> Builder:
    """The builder for ``dataset_id`` with config ``overrides`` applied.

    ``dataset_id`` may be an overridden config's id, ``name/config~fingerprint[:x.y.z]`` (what
    ``Builder.id`` and ``Dataset.id`` report): its config is read back from the cache entry that
    holds it.

    Example:
        >>> b = mmbench.builder("numerical/misalignment/joint", split_sizes={"train": 1000})
        >>> b.latent_spec().names
        ('s1', 's2', ..., 'm_x', 'm_t')
    """
    cache_dir, data_dir = _check_dirs(cache_dir, data_dir)
    did = resolve(dataset_id, version=version)
    cls = DATASETS.get(did.name)
    if did.version is not None and str(did.version) != cls.VERSION:
        raise DatasetNotFoundError(
            f"Version {did.version} of {did.name!r} is not available: this mmbench builds version "
            f"{cls.VERSION} (release notes: {cls.RELEASE_NOTES.get(cls.VERSION, '')!r}). Load "
            f"'{did.name}{'/' + did.config if did.config else ''}:{cls.VERSION}', or install the "
            "mmbench release that built the version you need."
        )
    if did.fingerprint is not None:
        return _builder_from_cache(cls, did, cache_dir=cache_dir, data_dir=data_dir, overrides=overrides)
    return cls(did.config, cache_dir=cache_dir, data_dir=data_dir, **overrides)


def _check_dirs(
    cache_dir: str | os.PathLike[str] | None, data_dir: str | os.PathLike[str] | None
) -> tuple[Path | None, Path | None]:
    """Both directories checked (types, empty strings, regular files in the way), and
    ``$MMBENCH_CACHE`` too when it is the cache: bad paths fail here, before any work."""
    from mmbench.core.config import check_dir

    if cache_dir is None and os.environ.get("MMBENCH_CACHE"):
        check_dir("$MMBENCH_CACHE", os.environ["MMBENCH_CACHE"])
    return check_dir("cache_dir", cache_dir), check_dir("data_dir", data_dir)


def _builder_from_cache(
    cls: type[Builder],
    did: DatasetId,
    *,
    cache_dir: str | os.PathLike[str] | None,
    data_dir: str | os.PathLike[str] | None,
    overrides: dict[str, Any],
) -> Builder:
    """The builder of ``name/config~fingerprint``, with the config recorded in its cache entry."""
    from mmbench.core.builder import INFO_FILE, default_cache_dir

    assert did.config is not None and did.fingerprint is not None
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    version = str(did.version) if did.version is not None else cls.VERSION
    pattern = f"{did.config}-{did.fingerprint[:12]}*/{version}/{INFO_FILE}"
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((root / cls.name.replace("/", "__")).glob(pattern)):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a damaged entry cannot say what it holds; the error below lists the way out
        fp = info.get("config_fingerprint", "")
        if isinstance(fp, str) and fp.startswith(did.fingerprint):
            found[fp] = info
    named = f"{did.name}/{did.config}"
    if not found:
        raise DatasetNotFoundError(
            f"{str(did)!r} names config {did.config!r} of {did.name!r} changed by overrides (config "
            f"fingerprint {did.fingerprint}…), and no build of it is in the cache {root}. Such an id can "
            "only be reopened from a cache that holds its build (whose dataset_info.json records the "
            f"config). To make it again, load the named config with the same overrides: "
            f"mmbench.load({named!r}, split=..., seed=..., split_sizes=...) or `mmbench build {named} "
            "-o KEY=VALUE ...`; pass cache_dir= (--cache-dir) if it was built in another cache."
        )
    if len(found) > 1:
        raise DatasetNotFoundError(
            f"{str(did)!r} is ambiguous in {root}: configs {sorted(found)} all start with "
            f"{did.fingerprint}. Give more hex digits of the fingerprint (up to 16)."
        )
    fp, info = next(iter(found.items()))
    try:
        config = cls.CONFIG_CLASS.from_dict(info["config"])
    except (KeyError, TypeError, InvalidConfigError) as exc:
        raise CacheError(
            f"The cached config of {str(did)!r} ({root}) cannot be read by this mmbench: {exc}. "
            f"Rebuild it from {named!r} with its overrides."
        ) from exc
    if config.fingerprint != fp:
        raise CacheError(
            f"The cached config of {str(did)!r} no longer gives fingerprint {fp} (it gives "
            f"{config.fingerprint}): the cache entry was written by another mmbench. Rebuild it from "
            f"{named!r} with its overrides."
        )
    b = cls(config, cache_dir=cache_dir, data_dir=data_dir, **overrides)
    if b.config.fingerprint != fp:
        raise InvalidConfigError(
            f"{str(did)!r} pins its config (fingerprint {fp}), but the overrides {sorted(overrides)} "
            f"change it. Load the named config with all the overrides instead: mmbench.load({named!r}, "
            f"**{b.overrides()!r})."
        )
    return b


@overload
def load(
    dataset_id: str,
    *,
    split: str,
    version: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    num_workers: int = 1,
    executor: str = "process",
    verify: str = "basic",
    force_rebuild: bool = False,
    progress: bool | None = None,
    source: str = "local",
    repo: str | None = None,
    revision: str | None = None,
    **overrides: Any,
) -> Dataset: ...


@overload
def load(
    dataset_id: str,
    *,
    split: None = None,
    version: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    num_workers: int = 1,
    executor: str = "process",
    verify: str = "basic",
    force_rebuild: bool = False,
    progress: bool | None = None,
    source: str = "local",
    repo: str | None = None,
    revision: str | None = None,
    **overrides: Any,
) -> dict[str, Dataset]: ...


def load(
    dataset_id: str,
    *,
    split: str | None = None,
    version: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    num_workers: int = 1,
    executor: str = "process",
    verify: str = "basic",
    force_rebuild: bool = False,
    progress: bool | None = None,
    source: str = "local",
    repo: str | None = None,
    revision: str | None = None,
    **overrides: Any,
) -> Dataset | dict[str, Dataset]:
    """Load a dataset split, building it into the cache on first use (or reading it from the Hub).

    Args:
        dataset_id: ``name[/config][:x.y.z]``, e.g. ``"numerical/misalignment/joint:1.0.0"``, or
            the ``name/config~fingerprint[:x.y.z]`` id of an overridden build that is in the cache.
        split: the split to load; ``None`` loads every split into a dict.
        version: alternative to the ``:x.y.z`` suffix.
        cache_dir: defaults to ``$MMBENCH_CACHE`` or ``~/.cache/mmbench``.
        data_dir: where raw inputs (MNIST, archives) are looked for.
        num_workers, executor: how to build on a cache miss (``"process"``, ``"serial"``, ``"ray"``).
        verify: cache check on open: ``"none"``; ``"basic"`` (files exist with their recorded
            sizes, shapes and dtypes: catches missing, truncated or replaced files, not bytes
            changed in place); or ``"full"`` (also re-hashes every shard and the resources file:
            catches any changed byte). See :meth:`mmbench.core.dataset.Dataset.open`.
        force_rebuild: rebuild even if the cache has the split.
        source: ``"local"`` (build or read the cache) or ``"hub"``: a config published with
            ``mmbench publish`` to ``repo`` (``ORG/NAME``), pinned to ``revision`` (a tag, branch
            or commit; default: the version's tag, else ``main``). See :func:`mmbench.hub.load_from_hub`.
        **overrides: config fields, e.g. ``seed=1`` or ``split_sizes={"train": 1000}``.

    Example:
        >>> ds = mmbench.load("numerical/misalignment", split="train", split_sizes={"train": 4096})
        >>> batch = next(ds.batches(256))
    """
    from mmbench.core.executors import check_run_options

    if source != "local" or repo is not None or revision is not None:
        from mmbench.hub import load_from_hub

        return load_from_hub(dataset_id, repo=repo, revision=revision, split=split, version=version,
                             cache_dir=cache_dir, verify=verify, source=source, overrides=overrides)
    _check_load_options(split=split, verify=verify, force_rebuild=force_rebuild)
    check_run_options(num_workers=num_workers, executor=executor, progress=progress)
    b = builder(dataset_id, version=version, cache_dir=cache_dir, data_dir=data_dir, **overrides)
    splits = b.split_names() if split is None else (b.check_split(split),)
    todo = [s for s in splits if force_rebuild or not b.is_built(s)]
    if todo:
        b.build(todo, num_workers=num_workers, executor=executor, progress=progress, force=force_rebuild)
    if split is not None:
        return b.as_dataset(split, verify=verify)
    return {s: b.as_dataset(s, verify=verify) for s in splits}


def _check_load_options(*, split: Any, verify: Any, force_rebuild: Any) -> None:
    """The options of :func:`load` that the builder does not check itself, checked up front."""
    from mmbench.core.builder import VERIFY_MODES
    from mmbench.errors import did_you_mean

    if split is not None and not isinstance(split, str):
        raise InvalidConfigError(f"split must be a split name (a string) or None for all splits, got {split!r}.")
    if not isinstance(verify, str) or verify not in VERIFY_MODES:
        raise InvalidConfigError(
            f"Unknown verify mode {verify!r}.{did_you_mean(str(verify), VERIFY_MODES)} Choose one of {list(VERIFY_MODES)}."
        )
    if not isinstance(force_rebuild, bool):
        raise InvalidConfigError(f"force_rebuild must be True or False, got {force_rebuild!r}.")


def list_datasets(*, with_configs: bool = False) -> list[str]:
    """Registered dataset names (and ``name/config`` ids with ``with_configs=True``)."""
    names = DATASETS.names()
    if not with_configs:
        return names
    out = []
    for name in names:
        out.append(name)
        out.extend(f"{name}/{cfg}" for cfg in DATASETS.get(name).CONFIGS)
    return out
