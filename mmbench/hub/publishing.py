"""Publish one config to a Hub dataset repository: one commit, then a version tag."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmbench.core.builder import Builder
from mmbench.core.storage import clean_stale_tmp, tmp_path
from mmbench.errors import HubError, InvalidConfigError
from mmbench.hub import client
from mmbench.hub.folder import (
    CARD_FILE,
    ExportedConfig,
    builders_of,
    card_configs,
    export,
    hub_config_name,
    version_tag,
)

__all__ = ["PublishResult", "publish"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PublishResult:
    """What :func:`publish` did: the config, its tag, the tagged commit, and whether data was uploaded."""

    repo: str
    config: str
    tag: str
    commit: str
    uploaded: bool

    @property
    def url(self) -> str:
        return f"https://huggingface.co/datasets/{self.repo}/tree/{self.tag}"


def publish(
    dataset: str | Builder,
    repo: str,
    *,
    revision: str | None = None,
    name: str | None = None,
    create: bool = False,
    private: bool = False,
    num_workers: int = 1,
    progress: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> PublishResult:
    """Publish one config of a dataset to a Hub dataset repository and tag it with its version.

    The config is built if needed and exported (see :func:`export`); its files and the dataset
    card, regenerated with every config the repository already holds, go up in **one commit**
    on branch ``revision``; that commit is then tagged ``<config>-v<version>``. A commit either
    lands whole or not at all, and the tag is created only after it landed, so a failed upload
    leaves nothing half-tagged. Publishing the same data again uploads nothing (and adds a
    missing tag); a tag that already names other data is refused.

    The token comes from ``$HF_TOKEN`` or ``hf auth login``; it is never printed, logged or written.

    Args:
        dataset: a dataset id or a :class:`Builder`.
        repo: ``ORG/NAME`` of the Hub dataset repository.
        revision: the branch to commit to (default ``main``).
        name: the config's name on the Hub, required for an overridden (ad-hoc) config.
        create: create the repository if it does not exist (``private`` makes it private).
        **overrides: config fields, as for :func:`mmbench.load`.

    Example:
        >>> mmbench.hub.publish("polymnist/reference", "my-lab/polymnist", num_workers=4)
        PublishResult(repo='my-lab/polymnist', config='reference', tag='reference-v1.0.0', ...)
    """
    from mmbench.cards import read_card_metadata

    if not isinstance(dataset, str | Builder):
        raise InvalidConfigError("publish takes one dataset id: configs are published one at a time.")
    b = builders_of(dataset, cache_dir=cache_dir, data_dir=data_dir, overrides=overrides)[0]
    config = hub_config_name(b, name)
    repo = client.check_repo(repo)
    branch = revision or "main"
    token = client.hub_token(required=True)
    api = client.hub_client(token)
    head, tags = _repo_state(api, repo, branch, create=create, private=private, token=token)
    tag = version_tag(config, b.VERSION)
    b.cache_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp(b.cache_dir)
    tmp = tmp_path(b.cache_dir / "publish")  # beside the build (same disk); removed below, or by a later run
    try:
        tmp.mkdir()
        staging = tmp / "export"
        export(b, staging, name=None if b.is_named_config else config, num_workers=num_workers, progress=progress, repo=repo)
        ours = card_configs(read_card_metadata((staging / CARD_FILE).read_text(encoding="utf-8")))[config]
        if tag in tags:
            return _already_tagged(api, repo, ours, tag, tags[tag], token=token)
        with client.hub_errors(f"Reading the card of {repo}", repo, revision=head, token=token):
            remote = client.remote_card(api, repo, head)
        theirs = _remote_configs(remote, repo, type(b).name)
        same = config in theirs and _same_data(theirs[config], ours)
        commit = head if same else _commit(api, repo, branch, head, staging, type(b), theirs, ours, token=token)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _tag(api, repo, tag, commit, ours, token=token)
    return PublishResult(repo=repo, config=config, tag=tag, commit=commit, uploaded=not same)


def _repo_state(
    api: Any, repo: str, branch: str, *, create: bool, private: bool, token: str
) -> tuple[str, dict[str, str]]:
    """The head commit of ``branch`` and the repository's tags (creating the repository if asked)."""
    from huggingface_hub import errors as hf

    action = f"Publishing to {repo}"
    with client.hub_errors(action, repo, revision=branch, token=token):
        try:
            head = api.repo_info(repo, repo_type=client.REPO_TYPE, revision=branch).sha
        except hf.RevisionNotFoundError:
            raise HubError(
                f"{action}: the repository has no branch {branch!r}. Create it first "
                f"(huggingface_hub.HfApi().create_branch({repo!r}, branch={branch!r}, repo_type='dataset')) "
                "or omit --revision to publish to main."
            ) from None
        except hf.RepositoryNotFoundError:
            if not create:
                raise
            api.create_repo(repo, repo_type=client.REPO_TYPE, private=private, exist_ok=True)
            head = api.repo_info(repo, repo_type=client.REPO_TYPE, revision=branch).sha
        refs = api.list_repo_refs(repo, repo_type=client.REPO_TYPE)
    return head, {t.name: t.target_commit for t in refs.tags}


def _remote_configs(card: str | None, repo: str, dataset: str) -> dict[str, ExportedConfig]:
    from mmbench.cards import read_card_metadata

    if card is None:
        return {}
    meta = read_card_metadata(card)
    block = meta.get("mmbench")
    if not isinstance(block, Mapping):
        raise HubError(
            f"{repo} already has a {CARD_FILE} that mmbench did not write (no `mmbench:` block); publishing "
            "would replace it. Publish to a new or empty repository."
        )
    if block.get("dataset") != dataset:
        raise HubError(
            f"{repo} holds the mmbench dataset {block.get('dataset')!r}, not {dataset!r}: one repository "
            "holds the configs of one dataset. Publish to another repository."
        )
    return card_configs(meta)


def _same_data(a: ExportedConfig, b: ExportedConfig) -> bool:
    keys = ("builder_version", "config_fingerprint", "content_fingerprint")
    return all(a.entry.get(k) == b.entry.get(k) for k in keys)


def _commit(
    api: Any,
    repo: str,
    branch: str,
    head: str,
    staging: Path,
    builder_cls: type[Builder],
    theirs: Mapping[str, ExportedConfig],
    ours: ExportedConfig,
    *,
    token: str,
) -> str:
    """Upload ``ours`` and the merged card in one commit on top of ``head``; return its sha."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    from mmbench.cards import hub_card

    configs = [c for name, c in theirs.items() if name != ours.name] + [ours]
    card = hub_card(builder_cls, configs, repo=repo)
    # the config's files: Parquet shards, info, resources, samples and artifacts/<name>
    files = {p.relative_to(staging).as_posix(): p for p in sorted((staging / ours.name).rglob("*")) if p.is_file()}
    ops: list[Any] = [CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=card.encode())]
    ops += [CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(p)) for path, p in files.items()]
    action = f"Uploading {ours.name} to {repo}"
    with client.hub_errors(action, repo, revision=branch, token=token):
        remote = api.list_repo_files(repo, repo_type=client.REPO_TYPE, revision=head)
        keep = set(files)
        ops += [CommitOperationDelete(path_in_repo=f) for f in remote if f.startswith(f"{ours.name}/") and f not in keep]
        info = api.create_commit(
            repo, ops, commit_message=f"mmbench: publish {ours.entry['id']} as config {ours.name!r}",
            repo_type=client.REPO_TYPE, revision=branch, parent_commit=head,
        )
    return info.oid


def _tag(api: Any, repo: str, tag: str, commit: str, ours: ExportedConfig, *, token: str) -> None:
    try:
        with client.hub_errors(f"Tagging {repo}", repo, token=token):
            api.create_tag(repo, tag=tag, revision=commit, repo_type=client.REPO_TYPE,
                           tag_message=f"{ours.entry['id']} (content {ours.entry['content_fingerprint']})")
    except HubError as exc:
        raise HubError(
            f"{exc} The data is on the Hub as commit {commit}, but it is not tagged {tag!r}. Run the same "
            "`mmbench publish` again: it uploads nothing and only adds the tag."
        ) from exc


def _already_tagged(api: Any, repo: str, ours: ExportedConfig, tag: str, commit: str, *, token: str) -> PublishResult:
    from mmbench.cards import read_card_metadata

    with client.hub_errors(f"Reading the card of {repo} at {tag}", repo, revision=tag, token=token):
        card = client.remote_card(api, repo, commit)
    theirs = card_configs(read_card_metadata(card)) if card else {}
    if ours.name in theirs and _same_data(theirs[ours.name], ours):
        logger.info("%s is already published at %s (%s)", ours.entry["id"], tag, commit)
        return PublishResult(repo=repo, config=ours.name, tag=tag, commit=commit, uploaded=False)
    raise HubError(
        f"{repo} already has the tag {tag!r} (commit {commit}) for other data than {ours.entry['id']} "
        f"(content {ours.entry['content_fingerprint']}). A version names one set of values: bump the builder "
        "VERSION when data changes, or publish the changed config under another --name."
    )
