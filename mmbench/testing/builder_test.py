"""A reusable pytest base class for dataset builders.

Example:
    >>> class TestMisalignment(BuilderTestCase):
    ...     DATASET = "numerical/misalignment/joint"
    ...     OVERRIDES = {"split_sizes": {"train": 300, "test": 100}, "shard_size": 128}
    ...     GOLDEN = {"train": "…", "test": "…"}

Every ``test_*`` method below runs for each subclass. Hooks (``builder_kwargs``,
``missing_inputs_kwargs``) let builders with raw inputs point at fake inputs written by
``mmbench.testing`` in the real layout.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import mmbench
from mmbench.core.builder import Builder
from mmbench.core.dataset import Dataset
from mmbench.errors import InputsNotFoundError, MMBenchError
from mmbench.testing.fingerprints import columns_fingerprint

__all__ = ["BuilderTestCase", "columns_fingerprint"]


class BuilderTestCase:
    """Inherit and set ``DATASET`` (and usually ``OVERRIDES`` and ``GOLDEN``)."""

    DATASET: ClassVar[str]
    #: Config overrides for a tiny build (keep it to a few hundred examples, several shards).
    OVERRIDES: ClassVar[dict[str, Any]] = {}
    #: split → expected fingerprint of the GOLDEN_COLUMNS: "all" (every byte) or "non-modality"
    #: (latents, text.*, perturbed.* … exactly; float modalities then go in GOLDEN_ROUNDED).
    GOLDEN: ClassVar[dict[str, str]] = {}
    GOLDEN_COLUMNS: ClassVar[str] = "all"
    #: split → fingerprint of the float modality columns rounded to 3 decimals: catches any change
    #: of the renderer while tolerating last-bit BLAS differences between machines.
    GOLDEN_ROUNDED: ClassVar[dict[str, str]] = {}
    #: True when the builder reads raw inputs (then ``missing_inputs_kwargs`` must be given).
    REQUIRES_INPUTS: ClassVar[bool] = False
    WORKERS: ClassVar[int] = 2

    # ------------------------------------------------------------------ hooks
    def builder_kwargs(self, tmp_path: Path) -> dict[str, Any]:
        """Extra keyword arguments for ``mmbench.builder`` (e.g. ``data_dir`` with fake inputs)."""
        return {}

    def missing_inputs_kwargs(self, tmp_path: Path) -> dict[str, Any]:
        """Keyword arguments under which the raw inputs cannot be found."""
        raise NotImplementedError("Builders with REQUIRES_INPUTS must implement missing_inputs_kwargs.")

    # ------------------------------------------------------------------ helpers
    def make_builder(self, tmp_path: Path, *, cache: str = "cache", **extra: Any) -> Builder:
        kwargs = {**self.builder_kwargs(tmp_path), **self.OVERRIDES, **extra}
        return mmbench.builder(self.DATASET, cache_dir=tmp_path / cache, **kwargs)

    @pytest.fixture(scope="class")
    @classmethod
    def built(cls, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Dataset]:
        tmp = tmp_path_factory.mktemp("built")
        b = cls().make_builder(tmp)
        b.build(progress=False)
        return {s: b.as_dataset(s, verify="full") for s in b.split_names()}

    # ------------------------------------------------------------------ tests
    def test_registered(self) -> None:
        did = mmbench.api.resolve(self.DATASET)
        assert did.name in mmbench.list_datasets()
        if did.config:
            assert f"{did.name}/{did.config}" in mmbench.list_datasets(with_configs=True)

    def test_named_configs_are_valid(self, tmp_path: Path) -> None:
        did = mmbench.api.resolve(self.DATASET)
        cls = mmbench.builders.DATASETS.get(did.name)
        assert cls.DEFAULT_CONFIG is None or cls.DEFAULT_CONFIG in cls.CONFIGS
        for name in cls.CONFIGS:
            b = mmbench.builder(f"{did.name}/{name}", cache_dir=tmp_path, **self.builder_kwargs(tmp_path))
            info = b.info()
            assert set(info.expected_identifiable) <= set(info.latents.names), name
            assert {f"latents.{n}" for n in info.latents.names} <= set(info.features)

    def test_schema(self, built: dict[str, Dataset]) -> None:
        for split, ds in built.items():
            info = ds.info
            assert len(ds) == info.config["split_sizes"][split]
            assert set(ds.column_names) == set(info.features)
            for name, mod in info.modalities.items():
                col = ds.column(name)
                if info.features[name].layout == "fixed":
                    assert col.shape == (len(ds), *mod.shape) and col.dtype == np.dtype(mod.dtype), name
                else:  # a string or ragged column: one value per example, values of the declared dtype
                    assert len(col) == len(ds) and col.values.dtype == info.features[name].np_dtype, name
            for lat in ds.latent_spec:
                assert ds.column(f"latents.{lat.name}").shape == (len(ds), *lat.shape)

    def test_latent_ranges(self, built: dict[str, Dataset]) -> None:
        for ds in built.values():
            spec = ds.latent_spec
            spec.check(ds.latents())
            for lat in spec:
                values = ds.column(f"latents.{lat.name}")
                if lat.kind == "continuous":
                    assert np.isfinite(values).all(), lat.name
                    assert len(ds) < 2 or np.ptp(values) > 0, f"latent {lat.name} never varies"

    def test_same_bytes_for_any_worker_count(self, tmp_path: Path) -> None:
        one = self.make_builder(tmp_path, cache="one")
        many = self.make_builder(tmp_path, cache="many")
        assert len(one.shard_bounds(one.split_names()[0])) > 1, "use a shard_size that gives several shards"
        one.build(num_workers=1, progress=False)
        many.build(num_workers=self.WORKERS, progress=False)
        for split in one.split_names():
            a, b = one.as_dataset(split), many.as_dataset(split)
            assert a.fingerprint == b.fingerprint
            assert columns_fingerprint(a) == columns_fingerprint(b)

    def test_splits_are_disjoint(self, built: dict[str, Dataset]) -> None:
        seen: dict[bytes, str] = {}
        for split, ds in built.items():
            for i, digest in enumerate(_row_digests(ds)):
                assert seen.setdefault(digest, split) == split, f"example {i} of {split} also in {seen[digest]}"

    def test_golden_fingerprints(self, built: dict[str, Dataset]) -> None:
        assert self.GOLDEN_COLUMNS in ("all", "non-modality"), self.GOLDEN_COLUMNS
        got, rounded = {}, {}
        for split, ds in built.items():
            if self.GOLDEN_COLUMNS == "all":
                got[split] = columns_fingerprint(ds)
                continue
            got[split] = columns_fingerprint(ds, [c for c in ds.column_names if c not in ds.modalities])
            h = hashlib.sha256()
            for m in sorted(ds.modalities):
                h.update(np.round(np.asarray(ds.column(m), dtype=np.float64), 3).tobytes())
            rounded[split] = h.hexdigest()[:16]
        hint = (
            "If intended, bump the builder VERSION (MAJOR for changed values) and record the new "
            f"GOLDEN = {got!r}" + (f" and GOLDEN_ROUNDED = {rounded!r}" if rounded else "") + "."
        )
        assert self.GOLDEN, f"Set the goldens after checking the data by hand. {hint}"
        assert got == self.GOLDEN, f"The data changed. {hint}"
        if self.GOLDEN_COLUMNS == "non-modality":
            assert rounded == self.GOLDEN_ROUNDED, f"The rendered modalities changed. {hint}"

    def test_bias_effect(self, built: dict[str, Dataset]) -> None:
        checked = []
        for ds in built.values():
            for col in ds.column_names:  # every text-side value belongs to a latent of the dataset
                if col.startswith("text."):
                    assert f"latents.{col.removeprefix('text.')}" in ds.column_names, col
            for col in ds.column_names:
                name = col.removeprefix("perturbed.")
                if not col.startswith("perturbed.") or f"text.{name}" not in ds.column_names:
                    continue  # not a text bias (e.g. a view's style change); checked by the builder's tests
                flags = np.asarray(ds.column(col))
                truth = np.asarray(ds.column(f"latents.{name}"))
                shown = np.asarray(ds.column(f"text.{name}"))
                assert flags.dtype == np.bool_, f"{col} must hold booleans, not {flags.dtype}"
                assert np.array_equal(shown[~flags], truth[~flags]), f"{name}: unperturbed text differs from truth"
                config = ds.info.config
                if config.get("replacement", config.get("replace", "other")) == "other":
                    assert np.all(shown[flags] != truth[flags]), f"{name}: a perturbed value equals the truth"
                # a latent recorded as perturbed is perturbed somewhere (else the flags are dead weight)
                assert len(ds) < 100 or flags.any(), f"{name}: never perturbed in {len(ds)} examples"
                checked.append(name)
        if not checked:
            pytest.skip(
                f"{self.DATASET} has no text bias (no perturbed.<latent> column beside a text.<latent> one); "
                "this test checks configs with a text modality and a perturbation."
            )

    def test_missing_inputs_error(self, tmp_path: Path) -> None:
        if not self.REQUIRES_INPUTS:
            # It must not look for raw inputs at all: an empty data_dir changes nothing.
            (tmp_path / "empty").mkdir()
            b = self.make_builder(tmp_path, data_dir=tmp_path / "empty")
            assert b.resolve_inputs() == {}, (
                f"{self.DATASET} resolves raw inputs: set REQUIRES_INPUTS = True and give missing_inputs_kwargs."
            )
            return
        kwargs = {**self.OVERRIDES, **self.missing_inputs_kwargs(tmp_path)}
        with pytest.raises(InputsNotFoundError) as err:
            mmbench.load(self.DATASET, split=None, cache_dir=tmp_path / "c", **kwargs)
        if kwargs.get("data_dir") is not None:  # the message names where it looked
            assert str(Path(kwargs["data_dir"]).expanduser()) in str(err.value), str(err.value)
        b = mmbench.builder(self.DATASET, cache_dir=tmp_path / "c", **kwargs)
        assert not any(b.is_built(s) for s in b.split_names()), "a split was written without its inputs"

    def test_unknown_override_is_rejected(self, tmp_path: Path) -> None:
        with pytest.raises(MMBenchError, match="Unknown config parameter"):
            self.make_builder(tmp_path, definitely_not_a_field=1)


def _row_digests(ds: Dataset) -> list[bytes]:
    """One digest per example over the bytes of all its modalities (strings as UTF-8, ragged as values)."""
    hashes = [hashlib.sha1() for _ in range(len(ds))]
    for m in ds.modalities:
        col = ds.column(m)
        if ds.info.features[m].layout == "fixed":
            rows = np.ascontiguousarray(col).reshape(len(ds), -1).view(np.uint8)
            values = (row.tobytes() for row in rows)
        else:
            values = (v.encode() if isinstance(v, str) else np.asarray(v).tobytes() for v in col[:])
        for h, v in zip(hashes, values, strict=True):
            h.update(len(v).to_bytes(8, "little") + v)
    return [h.digest() for h in hashes]
