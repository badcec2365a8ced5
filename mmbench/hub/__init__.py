"""Parquet export with a dataset card, publishing to the Hugging Face Hub, and loading back.

* :func:`export` (:mod:`~mmbench.hub.folder`) writes built configs of one dataset as Parquet
  shards, ``<config>/<split>-0000k-of-0000n.parquet``, plus a dataset card (``README.md``: the
  YAML ``configs:`` block, features, licence, an ``mmbench:`` block with versions, config JSON,
  fingerprints and input checksums), so that plain ``datasets.load_dataset(DIR_OR_REPO, CONFIG)``
  reads it. Images become the ``datasets`` ``Image`` feature (PNG bytes, which the Hub viewer
  shows; images kept in a shared store too), string columns ``Value("string")``, token columns
  integer sequences, categorical latents ``ClassLabel``, every other column keeps its values
  exactly (:mod:`~mmbench.hub.columns`: one codec per column layout). Artifacts are files
  ``<config>/artifacts/<name>``.
* :func:`publish` (:mod:`~mmbench.hub.publishing`) uploads one config to a Hub dataset
  repository in a single commit, then tags that commit ``<config>-v<version>``.
* :func:`load_from_hub` (:mod:`~mmbench.hub.loading`; ``mmbench.load(..., source="hub")``)
  downloads a published config at a pinned revision, rebuilds it through the core's writer
  checking every shard of every column (and every artifact) against the hashes recorded when it
  was built, and opens it as an ordinary
  :class:`~mmbench.core.dataset.Dataset` (memory-mapped, same API).

The Hub client is made in one place, :func:`mmbench.hub.client.hub_client` (tests replace it).

Example:
    >>> from mmbench import hub
    >>> hub.export("polymnist/reference", "export/polymnist", num_workers=4)
    >>> hub.publish("polymnist/reference", "my-lab/polymnist", create=True)
    >>> mmbench.load("polymnist/reference:1.0.0", source="hub", repo="my-lab/polymnist", split="test")
"""

from __future__ import annotations

from mmbench.hub.columns import (
    CODECS,
    ColumnCodec,
    column_kind,
    decode_png,
    encode_png,
    export_features,
    image_layout,
)
from mmbench.hub.folder import ExportedConfig, export, hub_config_name, version_tag
from mmbench.hub.loading import load_from_hub
from mmbench.hub.publishing import PublishResult, publish

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
    "hub_config_name",
    "image_layout",
    "load_from_hub",
    "publish",
    "version_tag",
]
