"""Versioned, deterministic dataset builders.

A builder is a recipe: a :class:`~mmbench.core.config.BuilderConfig` (what to make), a
``VERSION`` (which revision of the recipe) and :meth:`Builder.generate` (how to make one shard,
usually by composing :class:`~mmbench.core.renderer.Renderer` s over a latents table).
Building runs every shard independently — shard ``k`` of split ``s`` draws only from
``np.random.default_rng([seed, split_id(s), k])`` — and writes it through
:mod:`mmbench.core.build` (resumable: finished shards survive a crash) into the cache laid out by
:mod:`mmbench.core.storage`. The output is byte-identical for any number of workers, any
executor, and whether or not the build was interrupted and resumed.

Cache layout::

    $MMBENCH_CACHE/<dataset>/<config>-<fingerprint>/<version>/
        dataset_info.json           config, versions, inputs, per-split shard hashes, artifacts, stores
        resources.safetensors       frozen parameters shared by all splits (e.g. mixing MLPs)
        artifacts/<name>            files the dataset carries (a vocabulary, a mesh list)
        <split>/split_info.json
        <split>/<column>.npy        a fixed column; string/ragged: <column>.offsets.npy + .values.npy;
                                    store-backed: <column>.index.npy (rows of a shared store)
    $MMBENCH_CACHE/_stores/<store>/<fingerprint>/   heavy columns shared by many configs
"""

from __future__ import annotations

import abc
import dataclasses
import json
import logging
import os
import re
import shlex
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mmbench.core.columns import VarValues, to_var_values
from mmbench.core.config import BuilderConfig, Replace, check_dir, check_int
from mmbench.core.info import (
    INFO_FILE,
    RESOURCES_FILE,
    SPLIT_INFO_FILE,
    VERIFY_MODES,
    DatasetInfo,
    Feature,
    Modality,
)
from mmbench.core.latents import LatentSpec
from mmbench.core.storage import Store
from mmbench.errors import (
    DatasetNotFoundError,
    InvalidConfigError,
    MMBenchError,
    did_you_mean,
)
from mmbench.versioning import Version, to_jsonable

if TYPE_CHECKING:
    from mmbench.core.dataset import Dataset

__all__ = [
    "INFO_FILE",
    "RESOURCES_FILE",
    "SPLIT_INFO_FILE",
    "VERIFY_MODES",
    "Builder",
    "DatasetInfo",
    "Feature",
    "Modality",
    "default_cache_dir",
    "split_id",
]

logger = logging.getLogger(__name__)

_ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
# Stream id for the infinite on-the-fly sampler, disjoint from every materialised shard's key.
_SAMPLER_STREAM = 0x5A4D50


def default_cache_dir() -> Path:
    """``$MMBENCH_CACHE``, else ``~/.cache/mmbench``."""
    env = os.environ.get("MMBENCH_CACHE")
    return check_dir("$MMBENCH_CACHE", env) if env else Path.home() / ".cache" / "mmbench"


def split_id(split: str) -> int:
    """A stable integer for a split name, used to key generators (crc32 of the name)."""
    return zlib.crc32(split.encode()) & 0x7FFFFFFF


class Builder(abc.ABC):
    """Base class of every dataset builder.

    Subclasses set the class attributes and implement :meth:`modalities`, :meth:`latent_spec`
    and :meth:`generate`; optionally :meth:`prepare` (frozen resources shared by all splits),
    :meth:`extra_features`, :meth:`expected_identifiable` and :meth:`resolve_inputs`.

    Example:
        >>> b = mmbench.builder("numerical/misalignment/joint", split_sizes={"train": 1000})
        >>> b.build(num_workers=2)
        >>> ds = b.as_dataset("train")
    """

    name: ClassVar[str]
    VERSION: ClassVar[str]
    RELEASE_NOTES: ClassVar[dict[str, str]]
    CONFIG_CLASS: ClassVar[type[BuilderConfig]] = BuilderConfig
    CONFIGS: ClassVar[dict[str, BuilderConfig]] = {}
    DEFAULT_CONFIG: ClassVar[str | None] = None
    DESCRIPTION: ClassVar[str] = ""
    CITATION: ClassVar[str] = ""
    HOMEPAGE: ClassVar[str] = ""
    #: Memory bound of one shard when ``config.shard_size`` is ``None`` (image builders).
    MAX_SHARD_BYTES: ClassVar[int] = 256 * 2**20

    def __init__(
        self,
        config: BuilderConfig | str | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        **overrides: Any,
    ) -> None:
        self.config = self._resolve_config(config, overrides)
        self.cache_dir = check_dir("cache_dir", cache_dir) or default_cache_dir()
        self.data_dir = check_dir("data_dir", data_dir)
        self._resources: dict[str, np.ndarray] | None = None
        self._inputs: dict[str, Any] | None = None
        self._artifacts: dict[str, bytes] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "VERSION", None) is not None and not getattr(cls, "__abstractmethods__", None):
            version = str(Version.parse(cls.VERSION))
            if version not in getattr(cls, "RELEASE_NOTES", {}):
                raise MMBenchError(f"{cls.__name__}: RELEASE_NOTES has no entry for VERSION {version}.")
            for key, cfg in cls.CONFIGS.items():
                if cfg.name != key:
                    raise MMBenchError(f"{cls.__name__}: CONFIGS[{key!r}] has name {cfg.name!r}.")

    # ------------------------------------------------------------------ to implement
    @abc.abstractmethod
    def modalities(self) -> dict[str, Modality]:
        """The observed modalities, keyed by column name."""

    @abc.abstractmethod
    def latent_spec(self) -> LatentSpec:
        """The ground-truth latents of this config."""

    @abc.abstractmethod
    def generate(
        self, split: str, start: int, stop: int, *, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Make examples ``[start, stop)`` of ``split``: every column in :meth:`features`.

        ``rng`` is the shard's generator; it is the only source of randomness allowed. Frozen
        parameters come from ``self.resources``.
        """

    def prepare(self) -> dict[str, np.ndarray]:
        """Frozen parameters shared by every split (e.g. mixing weights), from the config alone."""
        return {}

    def extra_features(self) -> dict[str, Feature]:
        """Columns beyond modalities and latents (e.g. ``text.<latent>``, ``perturbed.<latent>``)."""
        return {}

    def expected_identifiable(self) -> tuple[str, ...]:
        """Latents that theory says a contrastive model recovers for this config."""
        return ()

    def extra_info(self) -> dict[str, Any]:
        """Builder-specific facts recorded as ``extra`` in ``dataset_info.json`` (JSON values),
        e.g. the effective misalignment rate of each latent. Computed from the config alone."""
        return {}

    def resolve_inputs(self) -> dict[str, Any]:
        """Locate (and, where allowed, fetch) raw inputs; return what was used, with checksums.

        Raise :class:`~mmbench.errors.InputsNotFoundError` listing what was tried and what to do.
        """
        return {}

    def stores(self) -> dict[str, Store]:
        """Shared stores this config reads (heavy columns kept once for many configs), by name.

        A column declared with ``store=name`` (``Modality(store=...)`` or ``Feature(store=...)``)
        is generated as int64 row indices into the store's column of the same name.
        """
        return {}

    def generate_store(self, store: str, start: int, stop: int, *, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Make rows ``[start, stop)`` of shared store ``store`` (every column of its features)."""
        raise NotImplementedError(f"{type(self).__name__} declares store {store!r} but no generate_store().")

    def make_artifacts(self) -> dict[str, bytes]:
        """Files the built dataset carries beside its columns (a vocabulary, a mesh list), by name.

        Called once per build, after the stores and before the splits; :meth:`generate` reads
        them with :meth:`artifact`.
        """
        return {}

    # ------------------------------------------------------------------ config & metadata
    @classmethod
    def _resolve_config(cls, config: BuilderConfig | str | None, overrides: Mapping[str, Any]) -> BuilderConfig:
        if config is None:
            config = cls.DEFAULT_CONFIG
        if config is None:
            resolved = cls.CONFIG_CLASS()
        elif isinstance(config, str):
            if config not in cls.CONFIGS:
                raise DatasetNotFoundError(
                    f"Unknown config {config!r} for dataset {cls.name!r}.{did_you_mean(config, cls.CONFIGS)} "
                    f"Available configs: {', '.join(cls.CONFIGS) or '(none)'}. Run `mmbench info {cls.name}`."
                )
            resolved = cls.CONFIGS[config]
        elif isinstance(config, cls.CONFIG_CLASS):
            resolved = config
        else:
            raise InvalidConfigError(
                f"config must be a config name, a {cls.CONFIG_CLASS.__name__} or None; got "
                f"{type(config).__name__}."
            )
        return resolved.replace(**overrides) if overrides else resolved

    @property
    def version(self) -> Version:
        return Version.parse(self.VERSION)

    @property
    def config_id(self) -> str:
        return f"{self.config.name or 'custom'}-{self.config.fingerprint[:12]}"

    @property
    def is_named_config(self) -> bool:
        """True when the config is exactly one of ``CONFIGS`` (no data field overridden)."""
        named = type(self).CONFIGS.get(self.config.name or "")
        return named is not None and named.fingerprint == self.config.fingerprint

    @property
    def id(self) -> str:
        """``name/config:version``; a config changed by overrides is marked ``config~fingerprint``."""
        if self.is_named_config:
            return f"{self.name}/{self.config.name}:{self.VERSION}"
        return f"{self.name}/{self.config.name or 'custom'}~{self.config.fingerprint[:8]}:{self.VERSION}"

    def base_config(self) -> BuilderConfig | None:
        """The config that ``name[/config]`` resolves to, which this one changes by :meth:`overrides`.

        ``None`` when no dataset id reaches this config's cache entry (a config whose ``name``
        is not one of ``CONFIGS``, or a nameless one while the builder has a default config).
        """
        cls = type(self)
        if self.config.name is not None:
            return cls.CONFIGS.get(self.config.name)
        return cls.CONFIG_CLASS() if cls.DEFAULT_CONFIG is None else None

    def overrides(self) -> dict[str, Any]:
        """The data fields (as JSON values) in which this config differs from :meth:`base_config`.

        Example:
            >>> mmbench.builder("numerical/misalignment/joint", seed=3).overrides()
            {'seed': 3}
        """
        base = self.base_config()
        if base is None:
            return {}
        out = {}
        for f in dataclasses.fields(self.config):
            if f.name in self.config.LABEL_FIELDS:
                continue
            mine = to_jsonable(getattr(self.config, f.name))
            if mine != to_jsonable(getattr(base, f.name)):
                out[f.name] = mine
        return out

    def build_command(self, splits: Sequence[str] = ()) -> str | None:
        """The ``mmbench build`` command line that builds exactly this config, or ``None`` if none does."""
        base = self.base_config()
        if base is None:
            return None
        overrides = self.overrides()
        # mappings merge by default: pass each one whole, so a config that dropped a key (a split)
        # is reproduced exactly (`-o KEY:=JSON` is the CLI's Replace)
        whole = {k: Replace(v) if isinstance(v, dict) else v for k, v in overrides.items()}
        try:
            same = base.replace(**whole).fingerprint == self.config.fingerprint
        except MMBenchError:
            same = False
        if not same:
            return None
        parts = ["mmbench", "build", self.name + (f"/{base.name}" if base.name else "")]
        for key, value in overrides.items():
            op = ":=" if isinstance(value, dict) else "="
            parts += ["-o", f"{key}{op}{json.dumps(value, ensure_ascii=False)}"]
        if self.cache_dir != default_cache_dir():
            parts += ["--cache-dir", str(self.cache_dir)]
        if self.data_dir is not None:
            parts += ["--data-dir", str(self.data_dir)]
        for split in splits:
            parts += ["--split", split]
        return shlex.join(parts)

    def features(self) -> dict[str, Feature]:
        feats = {name: m.feature() for name, m in self.modalities().items()}
        for lat in self.latent_spec():
            feats[f"latents.{lat.name}"] = Feature(lat.shape, str(lat.dtype), "latent")
        feats.update(self.extra_features())
        return feats

    def info(self) -> DatasetInfo:
        import mmbench

        return DatasetInfo(
            name=self.name,
            version=self.VERSION,
            config_name=self.config.name,
            config=self.config.to_dict(),
            config_fingerprint=self.config.fingerprint,
            description=self.config.description or self.DESCRIPTION,
            modalities=self.modalities(),
            latents=self.latent_spec(),
            features=self.features(),
            expected_identifiable=tuple(self.expected_identifiable()),
            release_notes=dict(self.RELEASE_NOTES),
            citation=self.CITATION,
            homepage=self.HOMEPAGE,
            mmbench_version=mmbench.__version__,
            id=self.id,
            extra=to_jsonable(self.extra_info()),
        )

    @property
    def resources(self) -> dict[str, np.ndarray]:
        if self._resources is None:
            self._resources = {k: np.ascontiguousarray(v) for k, v in self.prepare().items()}
        return self._resources

    @property
    def inputs(self) -> dict[str, Any]:
        if self._inputs is None:
            self._inputs = self.resolve_inputs()
        return self._inputs

    @property
    def artifacts(self) -> dict[str, bytes]:
        """The artifacts of this config (made once, then kept; workers receive them)."""
        if self._artifacts is None:
            made = self.make_artifacts()
            for name, data in made.items():
                if not isinstance(name, str) or not _ARTIFACT_NAME.match(name) or not isinstance(data, bytes):
                    raise MMBenchError(
                        f"{type(self).__name__}.make_artifacts must return {{name: bytes}} with names of letters, "
                        f"digits, '_', '-' and '.'; got {name!r}: {type(data).__name__}."
                    )
            self._artifacts = dict(made)
        return self._artifacts

    def artifact(self, name: str) -> bytes:
        """The bytes of artifact ``name`` (see :meth:`make_artifacts`)."""
        if name not in self.artifacts:
            raise MMBenchError(f"{self.id} has no artifact {name!r}.{did_you_mean(name, self.artifacts)} Artifacts: {list(self.artifacts)}.")
        return self.artifacts[name]

    def store_column(self, store: str, column: str) -> np.ndarray:
        """A built store's column, memory-mapped (for :meth:`generate` of store-backed configs)."""
        from mmbench.core.storage import open_store_column

        spec = self.stores()[store]
        record = {"path": spec.relpath(), "content_fingerprint": _store_content_fingerprint(self.cache_dir, spec)}
        return open_store_column(self.cache_dir, record, column, verify="basic", hint=self._rebuild_hint())

    def __getstate__(self) -> dict[str, Any]:
        # Workers receive the prepared resources and artifacts: none redoes expensive preparation.
        state = self.__dict__.copy()
        state["_resources"] = self.resources
        state["_artifacts"] = self._artifacts  # made after the stores: store workers need none
        return state

    # ------------------------------------------------------------------ sharding & randomness
    def split_names(self) -> tuple[str, ...]:
        return tuple(self.config.split_sizes)

    def check_split(self, split: str) -> str:
        if split not in self.config.split_sizes:
            raise DatasetNotFoundError(
                f"Unknown split {split!r} for {self.id}.{did_you_mean(split, self.split_names())} "
                f"Splits: {list(self.split_names())}."
            )
        return split

    def shard_rows(self) -> int:
        """Examples per shard: ``config.shard_size``, or, when it is ``None`` (image builders),
        as many as fit in :attr:`MAX_SHARD_BYTES` of memory. Shard boundaries are part of the data."""
        if self.config.shard_size is not None:
            return self.config.shard_size
        row = sum(f.bytes_per_example for f in self.features().values())
        return max(1, self.MAX_SHARD_BYTES // max(row, 1))

    def shard_bounds(self, split: str) -> list[tuple[int, int]]:
        n = self.config.split_sizes[self.check_split(split)]
        size = self.shard_rows()
        return [(start, min(start + size, n)) for start in range(0, n, size)]

    def shard_rng(self, split: str, shard: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, split_id(split), shard])

    def generate_shard(self, split: str, shard: int) -> dict[str, np.ndarray]:
        """Generate and validate one shard in memory."""
        start, stop = self.shard_bounds(split)[shard]
        columns = self.generate(split, start, stop, rng=self.shard_rng(split, shard))
        return self._check_columns(columns, stop - start, where=f"{split} shard {shard}")

    def _check_columns(self, columns: Mapping[str, Any], n: int, *, where: str) -> dict[str, Any]:
        """Validate what :meth:`generate` returned; string/ragged columns become ``VarValues``."""
        feats = self.features()
        where = f"{type(self).__name__}.generate ({where})"
        _check_names(feats, columns, where=where)
        stores = self.stores() if any(f.store for f in feats.values()) else {}
        out: dict[str, Any] = {}
        for name, feat in feats.items():
            if feat.layout != "fixed":
                out[name] = to_var_values(columns[name], feat, n, where=f"{where}: column {name!r}")
            elif feat.store is not None:
                out[name] = _check_store_index(columns[name], n, stores, feat.store, where=f"{where}: column {name!r}")
            else:
                out[name] = _check_fixed(columns[name], feat, n, where=f"{where}: column {name!r}")
        spec = self.latent_spec()
        spec.check({lat.name: out[f"latents.{lat.name}"] for lat in spec})
        return out

    def generate_store_shard(self, store: str, shard: int) -> dict[str, np.ndarray]:
        """Generate and validate one shard of a shared store."""
        spec = self.stores()[store]
        start, stop = spec.bounds()[shard]
        columns = self.generate_store(store, start, stop, rng=np.random.default_rng([spec.seed(), shard]))
        where = f"{type(self).__name__}.generate_store ({store} shard {shard})"
        _check_names(spec.features, columns, where=where)
        return {name: _check_fixed(columns[name], f, stop - start, where=f"{where}: column {name!r}")
                for name, f in spec.features.items()}

    def sample_latents(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``n`` joint draws of the latents, made by :meth:`generate` (observations are discarded).

        Builders whose :meth:`generate` can make any number of fresh examples from ``rng`` alone
        pass this as their ``LatentSpec`` sampler, so that ``latent_spec().sample(n, rng=rng)``
        follows the same generative process as the stored data.
        """
        columns = self.generate(self.split_names()[0], 0, n, rng=rng)
        return {lat.name: columns[f"latents.{lat.name}"] for lat in self.latent_spec()}

    def sampler(
        self,
        batch_size: int,
        *,
        seed: int | None = None,
        split: str = "train",
        steps: int | None = None,
        start: int = 0,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Endless fresh batches from the generative process (for on-the-fly training).

        Batch ``t`` draws from ``default_rng([seed, split_id(split), STREAM, t])``, a stream
        disjoint from the materialised shards, so training never sees the test examples.
        ``start`` skips to batch ``start`` (resuming a run without replaying the stream);
        ``steps`` bounds the number of batches yielded. Arguments are checked when called, not
        at the first ``next``.
        """
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise InvalidConfigError(f"start must be a non-negative integer, got {start!r}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if steps is not None:
            check_int("steps", steps, low=0)
        seed = self.config.seed if seed is None else check_int("seed", seed, low=0, high=2**63 - 1)
        self.check_split(split)  # the stream is keyed on the split: a typo would silently give another stream
        return self._stream(batch_size, seed=seed, split=split, steps=steps, start=start)

    def _stream(
        self, batch_size: int, *, seed: int, split: str, steps: int | None, start: int
    ) -> Iterator[dict[str, np.ndarray]]:
        step = start
        while steps is None or step < start + steps:
            rng = np.random.default_rng([seed, split_id(split), _SAMPLER_STREAM, step])
            columns = self.generate(split, 0, batch_size, rng=rng)
            yield self._as_batch(self._check_columns(columns, batch_size, where=f"sampler step {step}"))
            step += 1

    def _as_batch(self, columns: dict[str, Any]) -> dict[str, Any]:
        """Checked columns in the form :meth:`Dataset.batches` gives (strings as ``list[str]``,
        ragged columns padded with their lengths, store-backed columns as the stored rows)."""
        from mmbench.core.columns import RaggedColumn, StoreColumn, StringColumn, lengths_key

        out: dict[str, Any] = {}
        for name, feat in self.features().items():
            value = columns[name]
            if isinstance(value, VarValues):
                offsets = np.concatenate([[0], np.cumsum(value.lengths)])
                if feat.layout == "string":
                    out[name] = StringColumn(offsets, value.values)[:]
                else:
                    out[name], out[lengths_key(name)] = RaggedColumn(offsets, value.values).padded(slice(None))
            elif feat.store is not None:
                out[name] = StoreColumn(self.store_column(feat.store, name), value)[:]
            else:
                out[name] = value
        return out

    # ------------------------------------------------------------------ cache
    def dataset_dir(self, version: str | Version | None = None) -> Path:
        version = str(Version.parse(version)) if version is not None else self.VERSION
        return self.cache_dir / self.name.replace("/", "__") / self.config_id / version

    def is_built(self, split: str) -> bool:
        return (self.dataset_dir() / split / SPLIT_INFO_FILE).is_file()

    def build(
        self,
        splits: str | Sequence[str] | None = None,
        *,
        num_workers: int = 1,
        executor: str = "process",
        progress: bool | None = None,
        force: bool = False,
    ) -> Path:
        """Generate the given splits (default: all) into the cache; return the dataset directory.

        Splits already in the cache are kept unless ``force``. An interrupted build resumes from
        its finished shards. Two processes building the same config take turns: the second
        waits for the first and reuses what it built.
        """
        from mmbench.core import build as cache_build
        from mmbench.core.executors import check_run_options

        check_run_options(num_workers=num_workers, executor=executor, progress=progress)  # before any I/O
        return cache_build.build(self, splits, num_workers=num_workers, executor=executor, progress=progress, force=force)

    def as_dataset(self, split: str, *, verify: str = "basic") -> Dataset:
        """Open a built split from the cache (it must have been built)."""
        from mmbench.core import build as cache_build
        from mmbench.core.dataset import Dataset

        self.check_split(split)
        root = self.dataset_dir()
        if self.is_built(split) and not (root / INFO_FILE).is_file():
            cache_build.write_info(self, root)  # a build interrupted before its final info write
        if not self.is_built(split):
            command = self.build_command([split])
            how = f"with `{command}`" if command else f"from Python with this builder's .build({split!r})"
            from mmbench.errors import CacheError

            raise CacheError(
                f"Split {split!r} of {self.id} is not built (looked in {root / split}). Build it "
                f"{how}, or use mmbench.load(...) with the same overrides, which builds on first use."
            )
        return Dataset.open(root, split, verify=verify)

    def download_and_prepare(self, **kwargs: Any) -> Path:  # the name users know from TFDS/HF
        return self.build(**kwargs)

    def _rebuild_hint(self) -> str:
        command = self.build_command()
        how = f"`{command} --force`" if command else "this builder's .build(force=True)"
        return f"Rebuild with {how} (mmbench.load(..., force_rebuild=True))."


def _check_names(feats: Mapping[str, Feature], columns: Mapping[str, Any], *, where: str) -> None:
    missing = sorted(set(feats) - set(columns))
    extra = sorted(set(columns) - set(feats))
    if missing or extra:
        raise MMBenchError(f"{where} returned the wrong columns: missing {missing}, unexpected {extra}.")


def _check_fixed(value: Any, feat: Feature, n: int, *, where: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != (n, *feat.shape) or arr.dtype != feat.np_dtype:
        raise MMBenchError(
            f"{where} has shape {arr.shape} and dtype {arr.dtype}; expected {(n, *feat.shape)} and {feat.dtype}."
        )
    if feat.kind == "modality" and arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise MMBenchError(f"{where} has NaN or inf values.")
    return np.ascontiguousarray(arr)


def _check_store_index(value: Any, n: int, stores: Mapping[str, Store], store: str, *, where: str) -> np.ndarray:
    if store not in stores:
        raise MMBenchError(f"{where} lives in store {store!r}, which stores() does not declare ({list(stores)}).")
    arr = np.asarray(value)
    size = stores[store].num_rows
    if arr.shape != (n,) or arr.dtype.kind not in "iu":
        raise MMBenchError(f"{where} is kept in store {store!r}: generate must return {n} integer row indices, got {arr.shape} {arr.dtype}.")
    if n and (arr.min() < 0 or arr.max() >= size):
        raise MMBenchError(f"{where}: store row indices must be in [0, {size}), got [{arr.min()}, {arr.max()}].")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _store_content_fingerprint(cache_dir: Path, spec: Store) -> str | None:
    try:
        return json.loads((cache_dir / spec.relpath() / SPLIT_INFO_FILE).read_text()).get("content_fingerprint")
    except (OSError, ValueError):
        return None
