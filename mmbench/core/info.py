"""What a built dataset is: its columns (:class:`Feature`), modalities and ``dataset_info.json``.

These are plain data types with no dependency on building or loading, so that the builder, the
loaded :class:`~mmbench.core.dataset.Dataset`, the storage layer and the Hugging Face view can
all import them without importing each other.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from mmbench.core.latents import LatentSpec
from mmbench.errors import InvalidConfigError
from mmbench.versioning import canonical_json, strict_fields

__all__ = [
    "INFO_FILE",
    "LAYOUTS",
    "RESOURCES_FILE",
    "SPLIT_INFO_FILE",
    "VERIFY_MODES",
    "DatasetInfo",
    "Feature",
    "Modality",
]

INFO_FILE = "dataset_info.json"
SPLIT_INFO_FILE = "split_info.json"
RESOURCES_FILE = "resources.safetensors"
VERIFY_MODES = ("none", "basic", "full")
#: How a column is stored: ``fixed`` (one ``(n, *shape)`` array), ``string`` (UTF-8 captions:
#: offsets + bytes) or ``ragged`` (integer sequences of varying length: offsets + values).
LAYOUTS = ("fixed", "string", "ragged")


@dataclasses.dataclass(frozen=True)
class Feature:
    """One stored column: per-example shape and dtype, its role, its layout and where it lives.

    Args:
        shape: per-example shape of a ``fixed`` column (``()`` for ``string``/``ragged``).
        dtype: numpy dtype of a ``fixed`` column or of a ``ragged`` column's values;
            ``"str"`` for a ``string`` column.
        kind: ``modality``, ``latent`` or ``extra``.
        layout: ``fixed``, ``string`` or ``ragged`` (see :data:`LAYOUTS`).
        store: for a heavy ``fixed`` column kept once in a shared store (see
            :class:`~mmbench.core.storage.Store`), the store's name; the split then holds only an
            index into the store's column of the same name.

    Example:
        >>> Feature.string(kind="modality")          # captions
        >>> Feature.ragged("int32", kind="modality")  # token ids
    """

    shape: tuple[int, ...]
    dtype: str
    kind: Literal["modality", "latent", "extra"] = "extra"
    layout: Literal["fixed", "string", "ragged"] = "fixed"
    store: str | None = None

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise InvalidConfigError(f"Feature layout must be one of {list(LAYOUTS)}, got {self.layout!r}.")
        if self.layout != "fixed" and self.shape != ():
            raise InvalidConfigError(
                f"A {self.layout} column has no fixed per-example shape: use shape=(), got {self.shape!r}."
            )
        if self.layout == "string" and self.dtype != "str":
            raise InvalidConfigError(f"A string column has dtype 'str', got {self.dtype!r}.")
        if self.layout == "ragged" and np.dtype(self.dtype).kind not in "iu":
            raise InvalidConfigError(f"A ragged column holds integers; got dtype {self.dtype!r}.")
        if self.store is not None and self.layout != "fixed":
            raise InvalidConfigError(f"Only fixed-shape columns live in shared stores, not {self.layout} ones.")

    @classmethod
    def string(cls, kind: Literal["modality", "latent", "extra"] = "extra") -> Feature:
        """A UTF-8 string column (one caption per example)."""
        return cls((), "str", kind, "string")

    @classmethod
    def ragged(cls, dtype: str = "int32", kind: Literal["modality", "latent", "extra"] = "extra") -> Feature:
        """A column of integer sequences of varying length (token ids)."""
        return cls((), str(np.dtype(dtype)), kind, "ragged")

    @property
    def np_dtype(self) -> np.dtype:
        """The numpy dtype of the values (``uint8`` bytes for a string column)."""
        return np.dtype("uint8") if self.layout == "string" else np.dtype(self.dtype)

    @property
    def bytes_per_example(self) -> int:
        """Bytes one example takes in memory (variable columns: an estimate of 64 values)."""
        if self.layout != "fixed":
            return 64 * self.np_dtype.itemsize + 8
        if self.store is not None:
            return 8  # the split holds an int64 index
        return int(np.prod(self.shape, dtype=np.int64)) * self.np_dtype.itemsize

    def to_json(self) -> dict[str, Any]:
        """The JSON form; default layout and store are left out (old caches read the same)."""
        out: dict[str, Any] = {"shape": list(self.shape), "dtype": self.dtype, "kind": self.kind}
        if self.layout != "fixed":
            out["layout"] = self.layout
        if self.store is not None:
            out["store"] = self.store
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Feature:
        return cls(tuple(d["shape"]), d["dtype"], d.get("kind", "extra"), d.get("layout", "fixed"), d.get("store"))


@dataclasses.dataclass(frozen=True)
class Modality:
    """One observed modality: its column name, per-example shape and what it is.

    ``kind="text"`` is stored as a string column, ``kind="tokens"`` as a ragged integer column;
    ``store`` names the shared store that holds a heavy modality (e.g. images shared by every
    text config of MPI3D).
    """

    name: str
    kind: Literal["vector", "image", "text", "tokens"]
    shape: tuple[int, ...]
    dtype: str = "float32"
    description: str = ""
    store: str | None = None

    def feature(self) -> Feature:
        """The stored column of this modality."""
        if self.kind == "text":
            return Feature.string("modality")
        if self.kind == "tokens":
            return Feature.ragged(self.dtype, "modality")
        return Feature(tuple(self.shape), str(np.dtype(self.dtype)), "modality", store=self.store)

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if self.store is None:
            del out["store"]
        return out


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
    #: Files carried beside the columns: ``{name: {"sha256": ..., "size": ...}}``.
    artifacts: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    #: Shared stores the columns read from: ``{name: {"fingerprint": ..., "path": <relative to
    #: the cache root>, "num_rows": ...}}``.
    stores: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    #: Builder-specific facts about the data (JSON), from :meth:`Builder.extra_info`; e.g. the
    #: effective text-misalignment rate of every latent. Not part of any fingerprint.
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "config_name": self.config_name,
            "config": self.config,
            "config_fingerprint": self.config_fingerprint,
            "description": self.description,
            "modalities": {k: m.to_json() for k, m in self.modalities.items()},
            "latents": self.latents.to_dict(),
            "features": {k: f.to_json() for k, f in self.features.items()},
            "expected_identifiable": list(self.expected_identifiable),
            "release_notes": self.release_notes,
            "citation": self.citation,
            "homepage": self.homepage,
            "splits": self.splits,
            "inputs": self.inputs,
            "resources_sha256": self.resources_sha256,
            "mmbench_version": self.mmbench_version,
            "artifacts": self.artifacts,
            "stores": self.stores,
        }
        if self.extra:  # only then: the dataset_info.json of other datasets is unchanged
            out["extra"] = self.extra
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DatasetInfo:
        d = strict_fields(cls, {k: v for k, v in d.items() if k != "content_fingerprint"}, what="dataset_info.json key")
        return cls(
            name=d["name"],
            version=d["version"],
            config_name=d.get("config_name"),
            config=d["config"],
            config_fingerprint=d["config_fingerprint"],
            description=d.get("description", ""),
            modalities={
                k: Modality(**strict_fields(Modality, {**m, "shape": tuple(m["shape"])}, what="modality key"))
                for k, m in d["modalities"].items()
            },
            latents=LatentSpec.from_dict(d["latents"]),
            features={k: Feature.from_json(f) for k, f in d["features"].items()},
            expected_identifiable=tuple(d.get("expected_identifiable", ())),
            release_notes=d.get("release_notes", {}),
            citation=d.get("citation", ""),
            homepage=d.get("homepage", ""),
            splits=d.get("splits", {}),
            inputs=d.get("inputs", {}),
            resources_sha256=d.get("resources_sha256"),
            mmbench_version=d.get("mmbench_version", ""),
            id=d.get("id", ""),
            artifacts=d.get("artifacts", {}),
            stores=d.get("stores", {}),
            extra=d.get("extra", {}),
        )

    @property
    def content_fingerprint(self) -> str:
        """sha256 over every built split's fingerprint (changes iff any stored byte changes).

        A dataset with shared stores includes each store's content fingerprint: the split holds
        only indices into the store, so a changed store must change the dataset's fingerprint.
        """
        parts: dict[str, Any] = {s: info["fingerprint"] for s, info in sorted(self.splits.items())}
        if self.stores:  # only then: fingerprints of store-less datasets are unchanged
            parts["_stores"] = {n: s.get("content_fingerprint", "") for n, s in sorted(self.stores.items())}
        return hashlib.sha256(canonical_json(parts).encode()).hexdigest()[:16]
