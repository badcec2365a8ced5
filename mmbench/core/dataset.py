"""A loaded split: memory-mapped columns with random access, batch iteration, torch and HF views.

Columns are ``.npy`` files opened with ``mmap_mode="r"``: opening is instant, iteration in order
is a zero-copy slice per batch, and worker processes re-open the files instead of receiving
pickled copies of the data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmbench.core.builder import (
    INFO_FILE,
    RESOURCES_FILE,
    SPLIT_INFO_FILE,
    VERIFY_MODES,
    DatasetInfo,
)
from mmbench.core.latents import LatentSpec, LatentTable
from mmbench.core.storage import atomic_path, sha256_array
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
        n = self._num_rows
        if self.info.resources_sha256:
            resources = self.root / RESOURCES_FILE
            if not resources.is_file():
                raise CacheError(f"The frozen resources file {resources} is missing: the cache is corrupt. {hint}")
            if full and sha256_file(resources) != self.info.resources_sha256:
                raise CacheError(
                    f"The frozen resources file {resources} does not match its recorded sha256 "
                    f"(resources_sha256 in {self.root / INFO_FILE}): it was modified or corrupted. {hint}"
                )
        for name, feat in self.info.features.items():
            path = self.root / self.split / f"{name}.npy"
            expected_size = split_info.get("files", {}).get(name)
            if not path.is_file():
                raise CacheError(f"Column file {path} is missing: the cache is corrupt. {hint}")
            if expected_size is not None and path.stat().st_size != expected_size:
                raise CacheError(
                    f"Column file {path} has {path.stat().st_size} bytes, expected {expected_size}: "
                    f"the cache is corrupt or was modified. {hint}"
                )
            try:
                arr = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise CacheError(f"Column file {path} is unreadable ({exc}). {hint}") from exc
            if arr.shape != (n, *feat.shape) or arr.dtype != feat.np_dtype:
                raise CacheError(
                    f"Column file {path} holds {arr.shape} {arr.dtype}, expected "
                    f"{(n, *feat.shape)} {feat.dtype}. {hint}"
                )
            if full:
                for k, shard in enumerate(split_info["shards"]):
                    got = sha256_array(arr[shard["start"] : shard["stop"]])
                    if got != shard["sha256"][name]:
                        raise CacheError(
                            f"Shard {k} of column {name!r} in {path} does not match its recorded "
                            f"sha256 (the data was modified or corrupted). {hint}"
                        )

    @property
    def _columns(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            arrays = {}
            for name in self.info.features:
                path = self.root / self.split / f"{name}.npy"
                try:  # with verify="none" this is where a damaged file is first seen
                    arrays[name] = np.load(path, mmap_mode="r")
                except (OSError, ValueError) as exc:
                    raise CacheError(
                        f"Column file {path} is unreadable ({exc}): the cache is corrupt or partial "
                        f"(opened with verify='none', which does not check files). {_rebuild_hint(self.root)}"
                    ) from exc
                feat = self.info.features[name]
                if arrays[name].shape != (self._num_rows, *feat.shape) or arrays[name].dtype != feat.np_dtype:
                    raise CacheError(
                        f"Column file {path} holds {arrays[name].shape} {arrays[name].dtype}, expected "
                        f"{(self._num_rows, *feat.shape)} {feat.dtype}. {_rebuild_hint(self.root)}"
                    )
            self._arrays = arrays
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
    def column(self, name: str) -> np.ndarray:
        """The whole column as a read-only memory map."""
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
            return {name: np.array(arr[i]) if arr.ndim > 1 else arr[i] for name, arr in self._columns.items()}
        if isinstance(key, slice):
            return {name: arr[key] for name, arr in self._columns.items()}
        index = np.asarray(key)
        if index.dtype == bool or not np.issubdtype(index.dtype, np.integer):
            raise TypeError(f"Index with an int, a slice, a column name or an integer array; got {index.dtype}.")
        return {name: arr[index] for name, arr in self._columns.items()}

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
                yield {name: arr[start : start + batch_size] for name, arr in cols.items()}
            return
        order = np.random.default_rng(0 if seed is None else seed).permutation(n)
        for start in range(0, stop, batch_size):
            idx = np.sort(order[start : start + batch_size])
            yield {name: arr[idx] for name, arr in cols.items()}

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
