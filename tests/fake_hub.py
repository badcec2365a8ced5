"""A stand-in for ``huggingface_hub.HfApi``: dataset repositories with commits, branches and tags,
kept in memory and served from a local folder. No network. It records every call, so tests can
assert what was uploaded and tagged, and it raises the Hub client's own error classes."""

from __future__ import annotations

import fnmatch
import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx2
from huggingface_hub import CommitOperationAdd, CommitOperationDelete
from huggingface_hub import errors as hf


def _response(status: int, url: str) -> httpx2.Response:
    return httpx2.Response(status, request=httpx2.Request("GET", url))


class FakeRepo:
    def __init__(self) -> None:
        self.commits: dict[str, dict[str, bytes]] = {}
        self.branches: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        sha = self.add_commit({".gitattributes": b"*.parquet filter=lfs\n"})
        self.branches["main"] = sha

    def add_commit(self, files: dict[str, bytes]) -> str:
        sha = hashlib.sha1(repr((len(self.commits), sorted(files))).encode()).hexdigest()
        self.commits[sha] = dict(files)
        return sha

    def resolve(self, revision: str | None) -> str | None:
        revision = revision or "main"
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        return revision if revision in self.commits else None


class FakeHub:
    """What mmbench.hub calls on HfApi, over in-memory repositories.

    ``fail[method] = exception`` makes the next call of ``method`` raise it (once).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.repos: dict[str, FakeRepo] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail: dict[str, BaseException] = {}

    # ---------------------------------------------------------------- helpers
    def _call(self, name: str, **kwargs: Any) -> None:
        self.calls.append((name, kwargs))
        if name in self.fail:
            raise self.fail.pop(name)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def _repo(self, repo_id: str, repo_type: str | None) -> FakeRepo:
        assert repo_type == "dataset", repo_type
        if repo_id not in self.repos:
            raise hf.RepositoryNotFoundError(f"404 Repository Not Found for {repo_id}", response=_response(404, repo_id))
        return self.repos[repo_id]

    def _sha(self, repo: FakeRepo, repo_id: str, revision: str | None) -> str:
        sha = repo.resolve(revision)
        if sha is None:
            raise hf.RevisionNotFoundError(f"404 Revision Not Found: {revision}", response=_response(404, repo_id))
        return sha

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return repo.commits[self._sha(repo, repo_id, revision)]

    # ---------------------------------------------------------------- HfApi methods
    def create_repo(self, repo_id: str, *, repo_type: str | None = None, private: bool | None = None,
                    exist_ok: bool = False) -> str:
        self._call("create_repo", repo_id=repo_id, repo_type=repo_type, private=private)
        self.repos.setdefault(repo_id, FakeRepo())
        return f"https://huggingface.co/datasets/{repo_id}"

    def repo_info(self, repo_id: str, *, repo_type: str | None = None, revision: str | None = None) -> Any:
        self._call("repo_info", repo_id=repo_id, revision=revision)
        repo = self._repo(repo_id, repo_type)
        return SimpleNamespace(id=repo_id, sha=self._sha(repo, repo_id, revision))

    def list_repo_refs(self, repo_id: str, *, repo_type: str | None = None) -> Any:
        self._call("list_repo_refs", repo_id=repo_id)
        repo = self._repo(repo_id, repo_type)
        ref = lambda kind, name, sha: SimpleNamespace(name=name, ref=f"refs/{kind}/{name}", target_commit=sha)  # noqa: E731
        return SimpleNamespace(branches=[ref("heads", n, s) for n, s in repo.branches.items()],
                               tags=[ref("tags", n, s) for n, s in repo.tags.items()], converts=[])

    def list_repo_files(self, repo_id: str, *, repo_type: str | None = None, revision: str | None = None) -> list[str]:
        self._call("list_repo_files", repo_id=repo_id, revision=revision)
        repo = self._repo(repo_id, repo_type)
        return sorted(repo.commits[self._sha(repo, repo_id, revision)])

    def _serve(self, repo_id: str, sha: str, path: str) -> Path:
        local = self.root / "served" / repo_id.replace("/", "__") / sha / path
        if not local.is_file():
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(self.repos[repo_id].commits[sha][path])
        return local

    def hf_hub_download(self, repo_id: str, filename: str, *, repo_type: str | None = None,
                        revision: str | None = None) -> str:
        self._call("hf_hub_download", repo_id=repo_id, filename=filename, revision=revision)
        repo = self._repo(repo_id, repo_type)
        sha = self._sha(repo, repo_id, revision)
        if filename not in repo.commits[sha]:
            raise hf.RemoteEntryNotFoundError(f"404 Entry Not Found: {filename}", response=_response(404, filename))
        return str(self._serve(repo_id, sha, filename))

    def snapshot_download(self, repo_id: str, *, repo_type: str | None = None, revision: str | None = None,
                          allow_patterns: list[str] | None = None) -> str:
        self._call("snapshot_download", repo_id=repo_id, revision=revision, allow_patterns=allow_patterns)
        repo = self._repo(repo_id, repo_type)
        sha = self._sha(repo, repo_id, revision)
        for path in repo.commits[sha]:
            if allow_patterns is None or any(fnmatch.fnmatch(path, p) for p in allow_patterns):
                self._serve(repo_id, sha, path)
        return str(self.root / "served" / repo_id.replace("/", "__") / sha)

    def create_commit(self, repo_id: str, operations: list[Any], *, commit_message: str, repo_type: str | None = None,
                      revision: str | None = None, parent_commit: str | None = None) -> Any:
        self._call("create_commit", repo_id=repo_id, operations=list(operations), commit_message=commit_message,
                   revision=revision, parent_commit=parent_commit)
        repo = self._repo(repo_id, repo_type)
        branch = revision or "main"
        if branch not in repo.branches:
            raise hf.RevisionNotFoundError(f"404 Revision Not Found: {branch}", response=_response(404, repo_id))
        if parent_commit is not None and parent_commit != repo.branches[branch]:
            raise hf.HfHubHTTPError("412 Precondition Failed: parent commit is not the head", response=_response(412, repo_id))
        files = dict(repo.commits[repo.branches[branch]])
        for op in operations:
            if isinstance(op, CommitOperationAdd):
                src = op.path_or_fileobj
                files[op.path_in_repo] = src if isinstance(src, bytes) else Path(src).read_bytes()
            elif isinstance(op, CommitOperationDelete):
                files.pop(op.path_in_repo)
        sha = repo.add_commit(files)
        repo.branches[branch] = sha
        return SimpleNamespace(oid=sha, commit_url=f"https://huggingface.co/datasets/{repo_id}/commit/{sha}")

    def create_tag(self, repo_id: str, *, tag: str, revision: str | None = None, repo_type: str | None = None,
                   tag_message: str | None = None) -> None:
        self._call("create_tag", repo_id=repo_id, tag=tag, revision=revision, tag_message=tag_message)
        repo = self._repo(repo_id, repo_type)
        if tag in repo.tags:
            raise hf.HfHubHTTPError(f"409 Conflict: tag {tag} exists", response=_response(409, repo_id))
        repo.tags[tag] = self._sha(repo, repo_id, revision)
