"""Resources pinned by a git blob id (files published only in a git repository), end to end."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mmbench.errors import ChecksumError, InputsNotFoundError, InvalidConfigError
from mmbench.sources.reading import git_blob_id
from mmbench.sources.resource import Resource, locate
from mmbench.testing.http import LocalFileServer
from tests.sources.conftest import payload


def _blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_git_blob_id_is_gits_object_id(tmp_path: Path) -> None:
    (tmp_path / "hello").write_bytes(b"hello\n")
    assert git_blob_id(tmp_path / "hello") == "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object`


def test_a_resource_needs_a_sha256_or_a_git_blob() -> None:
    with pytest.raises(InvalidConfigError, match="give its sha256"):
        Resource(name="f/x.bin", sha256=None, size=None, license="-")
    with pytest.raises(InvalidConfigError, match="git_blob must be 40 lower-case hex digits"):
        Resource(name="f/x.bin", sha256=None, size=None, license="-", git_blob="abc")


def test_git_blob_pinned_file_is_downloaded_verified_and_recorded(server: LocalFileServer, tmp_path: Path) -> None:
    data = payload(7, size=300_000)
    (server.root / "x.blend").write_bytes(data)
    (server.root / "bad.blend").write_bytes(payload(8, size=300_000))
    res = Resource(name="f/x.blend", sha256=None, size=None, license="test", git_blob=_blob(data),
                   urls=(server.url("bad.blend"), server.url("x.blend")))
    got = locate(res, cache_dir=tmp_path / "c", allow_network=True)
    assert got.source == "download" and got.origin == server.url("x.blend") and got.path.read_bytes() == data
    assert any("git blob" in t and "refused and deleted" in t for t in got.tried)  # the first mirror's copy
    record = got.record()
    assert record["git_blob"] == res.git_blob and record["sha256"] == hashlib.sha256(data).hexdigest()
    assert locate(res, cache_dir=tmp_path / "c").source == "cache"


def test_user_copy_with_another_git_blob_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.blend").write_bytes(b"other bytes")
    res = Resource(name="f/x.blend", sha256=None, size=None, license="test", git_blob=_blob(b"the real bytes"))
    with pytest.raises(ChecksumError, match=f"has git blob id {_blob(b'other bytes')}, but the official f/x.blend file must have {res.git_blob}"):
        locate(res, data_dir=tmp_path, cache_dir=tmp_path / "c")


def test_not_found_error_names_the_git_blob(tmp_path: Path) -> None:
    res = Resource(name="f/x.blend", sha256=None, size=None, license="test", git_blob=_blob(b"x"), urls=("https://example.org/x.blend",))
    with pytest.raises(InputsNotFoundError, match=f"git blob {res.git_blob}") as err:
        locate(res, cache_dir=tmp_path / "c", allow_network=False)
    assert "https://example.org/x.blend" in str(err.value)
