"""A loaded split: memory-mapped columns with random access, batch iteration, torch and HF views.

Columns are ``.npy`` files opened with ``mmap_mode="r"``: opening is instant, iteration in order
is a zero-copy slice per batch, and worker processes re-open the files instead of receiving
pickled copies of the data.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmbench.core.columns import RaggedColumn, StoreColumn, StringColumn, lengths_key
from mmbench.core.info import INFO_FILE, RESOURCES_FILE, SPLIT_INFO_FILE, VERIFY_MODES, DatasetInfo
from mmbench.core.latents import LatentSpec, LatentTable
from mmbench.core.storage import (
    atomic_path,
    check_column_files,
    clean_dead_partials,
    clean_stale_tmp,
    open_store_column,
    read_artifact,
    verify_shards,
)
from mmbench.errors import CacheError, ColumnNotFoundError, InvalidConfigError, did_you_mean
from mmbench.versioning import sha256_file

if TYPE_CHECKING:
    import datasets
    import torch.utils.data

    from mmbench.core.torch_data import TorchDataset

__all__ = ["Dataset"]


class Dataset:
    """One split of a built dataset.

    Columns: one per modality (e.g. ``"x"``, ``"t"``, ``"m0"``), ``"latents.<name>"`` per latent,
    and extras such as ``"text.<name>"`` / ``"perturbed.<name>"``.

    Example:
        >>> ds = mmbench.load("numerical/misalignment", split="train")
        >>> for batch in ds.batches(4096):
        ...     x, s1 = batch["x"], batch["latents.s1"]
    """

    def __init__(self, root: Path, split: str, info: DatasetInfo) -> None:
        self.root = Path(root)
        self.split = split
        self.info = info
        self._num_rows = int(info.splits[split]["num_examples"])
        self._arrays: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------------ opening & checks
    @classmethod
    def open(cls, root: str | os.PathLike[str], split: str, *, verify: str = "basic") -> Dataset:
        """Open ``split`` of the dataset at ``root``, checking it first.

        Args:
            root: the dataset directory (``Builder.dataset_dir()``).
            split: the split to open.
            verify: how much to check before trusting the cache:

                * ``"none"``: only that the metadata parses. A damaged column file is reported
                  (as :class:`~mmbench.errors.CacheError`) when the column is first read.
                * ``"basic"`` (default, instant): every column file exists, has its recorded byte
                  size and a header with the expected shape and dtype, and the frozen resources
                  file exists. Catches missing, truncated, resized or replaced files; does **not**
                  catch bytes changed in place (a flipped byte keeps size and header).
                * ``"full"``: ``"basic"`` plus a re-hash of every shard of every column against
                  its recorded sha256, and of ``resources.safetensors`` against
                  ``resources_sha256``: any changed byte is caught. Reads the whole split.

        Raises:
            CacheError: the cache is unreadable, partial or modified; the message says how to rebuild.
        """
        root = Path(root)
        if verify not in VERIFY_MODES:
            raise InvalidConfigError(
                f"Unknown verify mode {verify!r}.{did_you_mean(verify, VERIFY_MODES)} Choose one of {list(VERIFY_MODES)}: "
                "'none' (trust the cache), 'basic' (files, shapes, sizes), 'full' (re-hash every shard and the resources)."
            )
        hint = _rebuild_hint(root)
        with contextlib.suppress(OSError):  # a killed build's leftovers (a read-only cache keeps them)
            clean_stale_tmp(root)
            clean_dead_partials(root)
        try:
            info = DatasetInfo.from_json(json.loads((root / INFO_FILE).read_text()))
            split_info = json.loads((root / split / SPLIT_INFO_FILE).read_text())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CacheError(f"The cached dataset at {root} is unreadable ({exc!r}). {hint}") from exc
        if split not in info.splits:
            info.splits[split] = {k: split_info[k] for k in ("num_examples", "fingerprint", "shards", "files")}
        ds = cls(root, split, info)
        if verify != "none":
            ds._verify(split_info, full=verify == "full", hint=hint)
        return ds

    def _verify(self, split_info: dict[str, Any], *, full: bool, hint: str) -> None:
        if self.info.resources_sha256:
            resources = self.root / RESOURCES_FILE
            if not resources.is_file():
                raise CacheError(f"The frozen resources file {resources} is missing: the cache is corrupt. {hint}")
            if full and sha256_file(resources) != self.info.resources_sha256:
                raise CacheError(
                    f"The frozen resources file {resources} does not match its recorded sha256 "
                    f"(resources_sha256 in {self.root / INFO_FILE}): it was modified or corrupted. {hint}"
                )
        for name in self.info.artifacts:
            if full:
                self.artifact(name)
            elif not (self.root / "artifacts" / name).is_file():
                raise CacheError(f"The artifact {self.root / 'artifacts' / name} is missing: the cache is corrupt. {hint}")
        directory = self.root / self.split
        if full:
            verify_shards(directory, self.info.features, split_info, hint=hint)
        else:
            for name, feat in self.info.features.items():
                check_column_files(directory, name, feat, self._num_rows, split_info.get("files", {}), hint=hint)
        for name, feat in self.info.features.items():
            if feat.store is not None:  # the store exists, is the one recorded, and (full) its bytes match
                self._open_column(name, verify="full" if full else "basic", hint=hint)

    def _open_column(self, name: str, *, verify: str, hint: str) -> Any:
        """One column as a memory map, or a string/ragged/store-backed reader over memory maps."""
        feat = self.info.features[name]
        sizes = self._split_info_files() if verify != "none" else {}
        arrays = check_column_files(self.root / self.split, name, feat, self._num_rows, sizes, hint=hint)
        if feat.store is not None:
            record = self.info.stores.get(feat.store)
            if record is None:
                raise CacheError(f"Column {name!r} lives in store {feat.store!r}, which {self.root / INFO_FILE} does not record. {hint}")
            store = open_store_column(self.root.parents[2], record, name, verify=verify, hint=hint)
            index = arrays[f"{name}.index"]
            if verify != "none" and len(index) and (index.min() < 0 or index.max() >= len(store)):
                raise CacheError(f"Column {name!r} indexes rows outside its store ({len(store)} rows). {hint}")
            if store.shape[1:] != tuple(feat.shape) or store.dtype != feat.np_dtype:
                raise CacheError(f"Store column {name!r} holds {store.shape[1:]} {store.dtype}, expected {feat.shape} {feat.dtype}. {hint}")
            return StoreColumn(store, index)
        if feat.layout == "string":
            return StringColumn(arrays[f"{name}.offsets"], arrays[f"{name}.values"])
        if feat.layout == "ragged":
            return RaggedColumn(arrays[f"{name}.offsets"], arrays[f"{name}.values"])
        return arrays[name]

    def _split_info_files(self) -> dict[str, int]:
        return self.info.splits[self.split].get("files", {})

    @property
    def _columns(self) -> dict[str, Any]:
        if self._arrays is None:
            # with verify="none" this is where a damaged file is first seen
            hint = (f"The cache is corrupt or partial (opened with verify='none', which does not check "
                    f"files). {_rebuild_hint(self.root)}")
            self._arrays = {name: self._open_column(name, verify="none", hint=hint) for name in self.info.features}
        return self._arrays

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_arrays"] = None  # re-open the memory maps in the receiving process
        return state

    # ------------------------------------------------------------------ metadata
    def __len__(self) -> int:
        return self._num_rows

    @property
    def num_rows(self) -> int:
        return self._num_rows

    @property
    def column_names(self) -> list[str]:
        return list(self.info.features)

    @property
    def modalities(self) -> list[str]:
        return list(self.info.modalities)

    @property
    def latent_spec(self) -> LatentSpec:
        return self.info.latents

    @property
    def fingerprint(self) -> str:
        """Content fingerprint of this split (sha256 over its shard hashes)."""
        return self.info.splits[self.split]["fingerprint"]

    @property
    def id(self) -> str:
        """The id that reloads this data: ``Builder.id`` of the build (``config~fingerprint`` when
        overrides changed the config; ``mmbench.load`` accepts both forms)."""
        if self.info.id:
            return self.info.id
        cfg = f"/{self.info.config_name}" if self.info.config_name else ""  # caches from before ids were recorded
        return f"{self.info.name}{cfg}:{self.info.version}"

    def __repr__(self) -> str:
        return (
            f"Dataset({self.id!r}, split={self.split!r}, num_rows={self._num_rows}, "
            f"modalities={self.modalities}, latents={list(self.latent_spec.names)})"
        )

    # ------------------------------------------------------------------ access
    @property
    def artifacts(self) -> list[str]:
        """Names of the files this dataset carries beside its columns (see :meth:`artifact`)."""
        return list(self.info.artifacts)

    def artifact(self, name: str) -> bytes:
        """The bytes of artifact ``name`` (e.g. a vocabulary), checked against its recorded sha256.

        Example:
            >>> vocab = Vocabulary.from_json(ds.artifact("vocabulary.json"))
        """
        if name not in self.info.artifacts:
            raise ColumnNotFoundError(
                f"No artifact {name!r} in {self.id}.{did_you_mean(name, self.artifacts)} Artifacts: {self.artifacts}."
            )
        return read_artifact(self.root, name, self.info.artifacts[name], hint=_rebuild_hint(self.root))

    def column(self, name: str) -> Any:
        """The whole column: a read-only memory map for a fixed column; a
        :class:`~mmbench.core.columns.StringColumn`, :class:`~mmbench.core.columns.RaggedColumn`
        or :class:`~mmbench.core.columns.StoreColumn` (indexable like an array) otherwise."""
        if name not in self.info.features:
            raise ColumnNotFoundError(
                f"No column {name!r} in {self.id} ({self.split}).{did_you_mean(name, self.column_names)} "
                f"Columns: {self.column_names}."
            )
        return self._columns[name]

    def __getitem__(self, key: int | slice | Sequence[int] | np.ndarray | str) -> Any:
        """``ds[i]`` → dict of one example; ``ds[a:b]`` / ``ds[[i, j]]`` → dict of arrays; ``ds["col"]`` → column."""
        if isinstance(key, str):
            return self.column(key)
        if isinstance(key, int | np.integer):
            i = int(key)
            if not -self._num_rows <= i < self._num_rows:
                raise IndexError(f"Index {i} out of range for a split of {self._num_rows} examples.")
            return {name: _item(arr, i) for name, arr in self._columns.items()}
        if not isinstance(key, slice):
            key = np.asarray(key)
            if key.dtype == bool or not np.issubdtype(key.dtype, np.integer):
                raise TypeError(f"Index with an int, a slice, a column name or an integer array; got {key.dtype}.")
        return _gather(self._columns, key)

    def latents(self, names: Sequence[str] | None = None) -> LatentTable:
        """The ground-truth latents of the split, loaded into memory."""
        names = list(names) if names is not None else list(self.latent_spec.names)
        return LatentTable({n: np.asarray(self.column(f"latents.{n}")) for n in names})

    def batches(
        self,
        batch_size: int,
        *,
        columns: Sequence[str] | None = None,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Iterate over dicts of arrays, ``batch_size`` examples at a time.

        In order, each batch is a zero-copy slice of the memory maps; shuffled, each batch is a
        random subset gathered per column with its rows in storage order (sorted indices make the
        gather sequential). No per-example Python work either way.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
        cols = {name: self.column(name) for name in (columns or self.column_names)}
        n = self._num_rows
        stop = n - n % batch_size if drop_last else n
        if not shuffle:
            for start in range(0, stop, batch_size):
                yield _gather(cols, slice(start, start + batch_size))
            return
        order = np.random.default_rng(0 if seed is None else seed).permutation(n)
        for start in range(0, stop, batch_size):
            yield _gather(cols, np.sort(order[start : start + batch_size]))

    # ------------------------------------------------------------------ framework views
    def torch(self, columns: Sequence[str] | None = None) -> TorchDataset:
        """A ``torch.utils.data.Dataset``: ``ds[i]`` and ``ds[[i, j, ...]]`` give dicts of tensors."""
        from mmbench.core.torch_data import TorchDataset

        return TorchDataset(self, columns)

    def dataloader(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
        num_workers: int = 0,
        columns: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> torch.utils.data.DataLoader:
        """A ``DataLoader`` that fetches whole batches at once (a batch sampler, no per-example collate).

        Shuffled batches are random subsets whose rows come in storage order (sorted indices make
        the gather sequential). Extra keyword arguments (``pin_memory``, ``persistent_workers``, ...) go to ``DataLoader``.
        """
        from torch.utils.data import DataLoader

        from mmbench.core.torch_data import IndexBatchSampler

        tds = self.torch(columns)
        sampler = IndexBatchSampler(len(tds), batch_size, shuffle=shuffle, seed=seed or 0, drop_last=drop_last)
        return DataLoader(tds, batch_size=None, sampler=sampler, num_workers=num_workers, **kwargs)

    def hf(self) -> datasets.Dataset:
        """A Hugging Face ``datasets.Dataset`` with typed ``Features`` (latents as named columns).

        The Arrow file is written once next to the split (atomically) and memory-mapped after.
        """
        import datasets

        from mmbench.core.hf import arrow_table, hf_features

        features = hf_features(self.info)
        path = self.root / self.split / "hf.arrow"
        if not path.is_file():
            with atomic_path(path) as tmp, datasets.arrow_writer.ArrowWriter(path=str(tmp), features=features) as writer:
                for batch in self.batches(65_536):
                    writer.write_table(arrow_table(batch, self.info))
                writer.finalize()
        info = datasets.DatasetInfo(description=self.info.description, features=features, version=self.info.version)
        return datasets.Dataset.from_file(str(path), info=info, split=self.split)


def _rebuild_hint(root: Path) -> str:
    return f"Delete {root} or rebuild with `mmbench build ... --force` (mmbench.load(..., force_rebuild=True))."


def _item(col: Any, i: int) -> Any:
    """Example ``i`` of one column (arrays copied out of the memory map)."""
    value = col[i]
    return np.array(value) if isinstance(value, np.ndarray) and value.ndim > 0 else value


def _gather(cols: dict[str, Any], key: slice | np.ndarray) -> dict[str, Any]:
    """Rows ``key`` of every column in batch form: arrays; ``list[str]`` for string columns; a
    padded array plus ``<name>.lengths`` for ragged ones."""
    out: dict[str, Any] = {}
    for name, col in cols.items():
        if isinstance(col, RaggedColumn):
            out[name], out[lengths_key(name)] = col.padded(key)
        else:
            out[name] = col[key]
    return out
