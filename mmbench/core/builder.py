"""Versioned, deterministic dataset builders and their on-disk cache.

A builder is a recipe: a :class:`~mmbench.core.config.BuilderConfig` (what to make), a
``VERSION`` (which revision of the recipe) and :meth:`Builder.generate` (how to make one shard).
Building runs every shard independently — shard ``k`` of split ``s`` draws only from
``np.random.default_rng([seed, split_id(s), k])`` — writes the columns straight into
memory-mapped ``.npy`` files in a temporary directory, and renames that directory into the cache
only when every shard is written and hashed. The output is byte-identical for any number of
workers and any executor.

Cache layout::

    $MMBENCH_CACHE/<dataset>/<config>-<fingerprint>/<version>/
        dataset_info.json           config, versions, inputs, per-split shard hashes
        resources.safetensors       frozen parameters shared by all splits (e.g. mixing MLPs)
        <split>/split_info.json
        <split>/<column>.npy        one memory-mappable array per column
"""

from __future__ import annotations

import abc
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import shlex
import shutil
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from mmbench.core.config import BuilderConfig, check_int
from mmbench.core.executors import run_tasks
from mmbench.core.latents import LatentSpec
from mmbench.core.storage import atomic_path, atomic_write, clean_stale_tmp, sha256_array, tmp_path
from mmbench.errors import (
    CacheError,
    DatasetNotFoundError,
    InvalidConfigError,
    MMBenchError,
    did_you_mean,
)
from mmbench.versioning import Version, canonical_json, sha256_file, to_jsonable

if TYPE_CHECKING:
    from mmbench.core.dataset import Dataset

__all__ = [
    "Builder",
    "DatasetInfo",
    "Feature",
    "Modality",
    "default_cache_dir",
    "split_id",
]

logger = logging.getLogger(__name__)

INFO_FILE = "dataset_info.json"
SPLIT_INFO_FILE = "split_info.json"
RESOURCES_FILE = "resources.safetensors"
VERIFY_MODES = ("none", "basic", "full")
# Stream id for the infinite on-the-fly sampler, disjoint from every materialised shard's key.
_SAMPLER_STREAM = 0x5A4D50


def default_cache_dir() -> Path:
    """``$MMBENCH_CACHE``, else ``~/.cache/mmbench``."""
    env = os.environ.get("MMBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mmbench"


def split_id(split: str) -> int:
    """A stable integer for a split name, used to key generators (crc32 of the name)."""
    return zlib.crc32(split.encode()) & 0x7FFFFFFF


@dataclasses.dataclass(frozen=True)
class Feature:
    """Per-example shape and dtype of one stored column."""

    shape: tuple[int, ...]
    dtype: str
    kind: Literal["modality", "latent", "extra"] = "extra"

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)


@dataclasses.dataclass(frozen=True)
class Modality:
    """One observed modality: its column name, per-example shape and what it is."""

    name: str
    kind: Literal["vector", "image", "text", "tokens"]
    shape: tuple[int, ...]
    dtype: str = "float32"
    description: str = ""


@dataclasses.dataclass
class DatasetInfo:
    """Everything known about one (dataset, config, version): the content of ``dataset_info.json``."""

    name: str
    version: str
    config_name: str | None
    config: dict[str, Any]
    config_fingerprint: str
    description: str
    modalities: dict[str, Modality]
    latents: LatentSpec
    features: dict[str, Feature]
    expected_identifiable: tuple[str, ...]
    release_notes: dict[str, str]
    citation: str = ""
    homepage: str = ""
    splits: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)
    resources_sha256: str | None = None
    mmbench_version: str = ""
    #: The builder's id (``name/config:version``, or ``name/config~fingerprint:version`` when
    #: overrides changed the config); empty in caches written before it was recorded.
    id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "config_name": self.config_name,
            "config": self.config,
            "config_fingerprint": self.config_fingerprint,
            "description": self.description,
            "modalities": {k: dataclasses.asdict(m) for k, m in self.modalities.items()},
            "latents": self.latents.to_dict(),
            "features": {k: dataclasses.asdict(f) for k, f in self.features.items()},
            "expected_identifiable": list(self.expected_identifiable),
            "release_notes": self.release_notes,
            "citation": self.citation,
            "homepage": self.homepage,
            "splits": self.splits,
            "inputs": self.inputs,
            "resources_sha256": self.resources_sha256,
            "mmbench_version": self.mmbench_version,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DatasetInfo:
        return cls(
            name=d["name"],
            version=d["version"],
            config_name=d.get("config_name"),
            config=d["config"],
            config_fingerprint=d["config_fingerprint"],
            description=d.get("description", ""),
            modalities={
                k: Modality(**{**m, "shape": tuple(m["shape"])}) for k, m in d["modalities"].items()
            },
            latents=LatentSpec.from_dict(d["latents"]),
            features={
                k: Feature(tuple(f["shape"]), f["dtype"], f.get("kind", "extra"))
                for k, f in d["features"].items()
            },
            expected_identifiable=tuple(d.get("expected_identifiable", ())),
            release_notes=d.get("release_notes", {}),
            citation=d.get("citation", ""),
            homepage=d.get("homepage", ""),
            splits=d.get("splits", {}),
            inputs=d.get("inputs", {}),
            resources_sha256=d.get("resources_sha256"),
            mmbench_version=d.get("mmbench_version", ""),
            id=d.get("id", ""),
        )

    @property
    def content_fingerprint(self) -> str:
        """sha256 over every built split's fingerprint (changes iff any stored byte changes)."""
        parts = {s: info["fingerprint"] for s, info in sorted(self.splits.items())}
        return hashlib.sha256(canonical_json(parts).encode()).hexdigest()[:16]


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

    def __init__(
        self,
        config: BuilderConfig | str | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        **overrides: Any,
    ) -> None:
        self.config = self._resolve_config(config, overrides)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.data_dir = Path(data_dir).expanduser() if data_dir is not None else None
        self._resources: dict[str, np.ndarray] | None = None
        self._inputs: dict[str, Any] | None = None

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

    def resolve_inputs(self) -> dict[str, Any]:
        """Locate (and, where allowed, fetch) raw inputs; return what was used, with checksums.

        Raise :class:`~mmbench.errors.InputsNotFoundError` listing what was tried and what to do.
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
        try:
            same = base.replace(**overrides).fingerprint == self.config.fingerprint
        except MMBenchError:
            same = False
        if not same:
            return None
        parts = ["mmbench", "build", self.name + (f"/{base.name}" if base.name else "")]
        for key, value in overrides.items():
            parts += ["-o", f"{key}={json.dumps(value, ensure_ascii=False)}"]
        if self.cache_dir != default_cache_dir():
            parts += ["--cache-dir", str(self.cache_dir)]
        if self.data_dir is not None:
            parts += ["--data-dir", str(self.data_dir)]
        for split in splits:
            parts += ["--split", split]
        return shlex.join(parts)

    def features(self) -> dict[str, Feature]:
        feats = {
            name: Feature(tuple(m.shape), str(np.dtype(m.dtype)), "modality")
            for name, m in self.modalities().items()
        }
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

    def __getstate__(self) -> dict[str, Any]:
        # Workers receive the prepared resources, so no worker redoes expensive preparation.
        state = self.__dict__.copy()
        state["_resources"] = self.resources
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

    def shard_bounds(self, split: str) -> list[tuple[int, int]]:
        n = self.config.split_sizes[self.check_split(split)]
        size = self.config.shard_size
        return [(start, min(start + size, n)) for start in range(0, n, size)]

    def shard_rng(self, split: str, shard: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, split_id(split), shard])

    def generate_shard(self, split: str, shard: int) -> dict[str, np.ndarray]:
        """Generate and validate one shard in memory."""
        start, stop = self.shard_bounds(split)[shard]
        columns = self.generate(split, start, stop, rng=self.shard_rng(split, shard))
        return self._check_columns(columns, stop - start, where=f"{split} shard {shard}")

    def _check_columns(self, columns: Mapping[str, np.ndarray], n: int, *, where: str) -> dict[str, np.ndarray]:
        feats = self.features()
        missing = sorted(set(feats) - set(columns))
        extra = sorted(set(columns) - set(feats))
        if missing or extra:
            raise MMBenchError(
                f"{type(self).__name__}.generate ({where}) returned the wrong columns: "
                f"missing {missing}, unexpected {extra}."
            )
        out = {}
        for name, feat in feats.items():
            arr = np.asarray(columns[name])
            if arr.shape != (n, *feat.shape) or arr.dtype != feat.np_dtype:
                raise MMBenchError(
                    f"{type(self).__name__}.generate ({where}): column {name!r} has shape "
                    f"{arr.shape} and dtype {arr.dtype}; expected {(n, *feat.shape)} and {feat.dtype}."
                )
            if feat.kind == "modality" and arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise MMBenchError(f"{type(self).__name__}.generate ({where}): column {name!r} has NaN or inf values.")
            out[name] = np.ascontiguousarray(arr)
        spec = self.latent_spec()
        spec.check({lat.name: out[f"latents.{lat.name}"] for lat in spec})
        return out

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
            yield self._check_columns(columns, batch_size, where=f"sampler step {step}")
            step += 1

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

        Splits already in the cache are kept unless ``force``.
        """
        if splits is None:
            splits = self.split_names()
        elif isinstance(splits, str):
            splits = (splits,)
        # each split once, in the order given (`--split train --split train` builds train once)
        splits = tuple(dict.fromkeys(self.check_split(split) for split in splits))
        root = self.dataset_dir()
        root.mkdir(parents=True, exist_ok=True)
        clean_stale_tmp(root)
        inputs = self.inputs
        self._write_resources(root)
        todo = []
        for split in splits:
            if self.is_built(split) and not force:
                logger.info("%s %s already built at %s", self.id, split, root / split)
            else:
                todo.append(split)
        if todo:
            self._build_splits(root, todo, num_workers=num_workers, executor=executor, progress=progress)
        self._write_info(root, inputs)
        return root

    def _write_resources(self, root: Path) -> None:
        if not self.resources:
            return
        from safetensors.numpy import save_file

        path = root / RESOURCES_FILE
        if path.exists():
            tmp = tmp_path(path)
            try:
                save_file(dict(self.resources), str(tmp))
                if sha256_file(path) != sha256_file(tmp):
                    raise CacheError(
                        f"The cached resources at {path} differ from the ones this config generates. "
                        f"The cache is stale or corrupt: delete {root} and build again."
                    )
            finally:
                tmp.unlink(missing_ok=True)
        else:
            with atomic_path(path) as tmp:
                save_file(dict(self.resources), str(tmp))

    def _build_splits(
        self, root: Path, splits: Sequence[str], *, num_workers: int, executor: str, progress: bool | None
    ) -> None:
        """Generate every shard of ``splits`` with one executor, then move each split into place."""
        feats = self.features()
        tmps: dict[str, Path] = {}
        try:
            tasks = []
            for split in splits:
                if split in tmps:
                    raise MMBenchError(f"Split {split!r} is listed twice in {list(splits)}.")
                n = self.config.split_sizes[split]
                tmp = tmp_path(root / split)
                tmp.mkdir()
                tmps[split] = tmp  # registered at once: the finally below removes it on any failure
                for name, feat in feats.items():  # preallocate: workers write their slice in place
                    arr = np.lib.format.open_memmap(tmp / f"{name}.npy", mode="w+", dtype=feat.np_dtype, shape=(n, *feat.shape))
                    del arr
                tasks.extend((self, split, k, str(tmp)) for k in range(len(self.shard_bounds(split))))
            hashes = run_tasks(
                _write_shard, tasks, num_workers=num_workers, executor=executor, progress=progress,
                desc=f"{self.name} {'+'.join(splits)}",
            )
            by_split: dict[str, list[dict[str, str]]] = {s: [] for s in splits}
            for task, h in zip(tasks, hashes, strict=True):
                by_split[task[1]].append(h)
            for split in splits:
                if executor == "ray":
                    # Workers on other machines wrote through their own page caches: check that
                    # what reached the shared file is what each worker hashed.
                    self._check_written(tmps[split], split, by_split[split])
                self._finish_split(root, split, tmps[split], by_split[split])
                self._write_info(root, self.inputs)  # the cache is consistent after every split
        finally:
            for tmp in tmps.values():
                shutil.rmtree(tmp, ignore_errors=True)

    def _check_written(self, tmp: Path, split: str, hashes: list[dict[str, str]]) -> None:
        for name in self.features():
            arr = np.load(tmp / f"{name}.npy", mmap_mode="r")
            for (start, stop), h in zip(self.shard_bounds(split), hashes, strict=True):
                if sha256_array(arr[start:stop]) != h[name]:
                    raise CacheError(
                        f"Shard [{start}, {stop}) of column {name!r} ({split}) differs on disk from what "
                        "its worker generated: the shared filesystem lost or mixed writes. Build with "
                        "executor='process' on one machine, or on a filesystem with coherent writes."
                    )

    def _finish_split(self, root: Path, split: str, tmp: Path, hashes: list[dict[str, str]]) -> None:
        shards = [
            {"start": start, "stop": stop, "sha256": h}
            for (start, stop), h in zip(self.shard_bounds(split), hashes, strict=True)
        ]
        split_info = {
            "num_examples": self.config.split_sizes[split],
            "shards": shards,
            "fingerprint": hashlib.sha256(canonical_json(shards).encode()).hexdigest()[:16],
            "files": {name: (tmp / f"{name}.npy").stat().st_size for name in self.features()},
            "config_fingerprint": self.config.fingerprint,
            "version": self.VERSION,
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        atomic_write(tmp / SPLIT_INFO_FILE, json.dumps(split_info, indent=1))
        final = root / split
        if final.exists():  # force rebuild: move the old one aside, then swap
            trash = tmp_path(root / split, "-old")
            os.rename(final, trash)
            try:
                os.rename(tmp, final)
            except BaseException:
                os.rename(trash, final)  # keep the old split rather than lose it
                raise
            shutil.rmtree(trash, ignore_errors=True)
        else:
            try:
                os.rename(tmp, final)
            except OSError:
                if not (final / SPLIT_INFO_FILE).is_file():
                    raise
                # another process finished the same split first; ours is identical, drop it

    def _write_info(self, root: Path, inputs: Mapping[str, Any]) -> None:
        info = self.info()
        info.inputs = dict(inputs)
        if (root / RESOURCES_FILE).exists():
            info.resources_sha256 = sha256_file(root / RESOURCES_FILE)
        for split in self.split_names():
            path = root / split / SPLIT_INFO_FILE
            if path.is_file():
                split_info = json.loads(path.read_text())
                info.splits[split] = {
                    k: split_info[k] for k in ("num_examples", "fingerprint", "shards", "files")
                }
        doc = info.to_json()
        doc["content_fingerprint"] = info.content_fingerprint
        atomic_write(root / INFO_FILE, json.dumps(doc, indent=1))

    def as_dataset(self, split: str, *, verify: str = "basic") -> Dataset:
        """Open a built split from the cache (it must have been built)."""
        from mmbench.core.dataset import Dataset

        self.check_split(split)
        root = self.dataset_dir()
        if self.is_built(split) and not (root / INFO_FILE).is_file():
            self._write_info(root, self.inputs)  # a build interrupted before its final info write
        if not self.is_built(split):
            command = self.build_command([split])
            how = f"with `{command}`" if command else f"from Python with this builder's .build({split!r})"
            raise CacheError(
                f"Split {split!r} of {self.id} is not built (looked in {root / split}). Build it "
                f"{how}, or use mmbench.load(...) with the same overrides, which builds on first use."
            )
        return Dataset.open(root, split, verify=verify)

    def download_and_prepare(self, **kwargs: Any) -> Path:  # the name users know from TFDS/HF
        return self.build(**kwargs)


def _write_shard(builder: Builder, split: str, shard: int, tmp_dir: str) -> dict[str, str]:
    """Worker entry point: generate one shard, write it into the preallocated files, hash it."""
    start, stop = builder.shard_bounds(split)[shard]
    columns = builder.generate_shard(split, shard)
    hashes = {}
    for name, arr in columns.items():
        out = np.load(Path(tmp_dir) / f"{name}.npy", mmap_mode="r+")
        out[start:stop] = arr
        del out  # unmapped; the pages reach the file through the page cache (no msync per shard)
        hashes[name] = sha256_array(arr)
    return hashes
