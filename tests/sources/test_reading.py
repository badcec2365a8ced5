"""Reading big raw inputs without holding them: chunks, streamed gunzip, memory-mapped npz members."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from mmbench.errors import CacheError, ChecksumError, InputsNotFoundError
from mmbench.sources.reading import gunzip_file, iter_chunks, npz_member
from tests.sources.conftest import payload


def test_iter_chunks_covers_the_file(tmp_path: Path) -> None:
    data = payload(1, 10_000)
    (tmp_path / "f").write_bytes(data)
    chunks = list(iter_chunks(tmp_path / "f", 4096))
    assert [len(c) for c in chunks] == [4096, 4096, 1808] and b"".join(chunks) == data
    with pytest.raises(InputsNotFoundError, match="cannot be read"):
        list(iter_chunks(tmp_path / "missing"))


def test_gunzip_streams_and_checks_the_output(tmp_path: Path) -> None:
    data = bytes(range(256)) * 36_000 + payload(2, 1000)  # several 4 MB output chunks, quick to compress
    (tmp_path / "f.gz").write_bytes(gzip.compress(data, mtime=0))
    sha = hashlib.sha256(data).hexdigest()
    assert gunzip_file(tmp_path / "f.gz", tmp_path / "out" / "f", sha256=sha) == sha
    assert (tmp_path / "out" / "f").read_bytes() == data
    with pytest.raises(ChecksumError, match="refused"):
        gunzip_file(tmp_path / "f.gz", tmp_path / "out" / "g", sha256="0" * 64)
    assert not (tmp_path / "out" / "g").exists()  # nothing half-made or wrong is left
    (tmp_path / "bad.gz").write_bytes(gzip.compress(data)[:1000])
    with pytest.raises(ChecksumError, match="bad.gz is not a valid gzip file .*truncated"):
        gunzip_file(tmp_path / "bad.gz", tmp_path / "out" / "h")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["f"]


def test_stored_npz_member_is_memory_mapped_in_place(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (50, 8, 8, 3), dtype=np.uint8)
    labels = np.arange(50, dtype=np.int64)
    fortran = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    np.savez(tmp_path / "a.npz", images=images, labels=labels, fortran=fortran)
    got = npz_member(tmp_path / "a.npz", "images")
    assert isinstance(got, np.memmap) and Path(got.filename) == tmp_path / "a.npz"
    assert np.array_equal(got, images) and np.array_equal(npz_member(tmp_path / "a.npz", "labels.npy"), labels)
    assert np.array_equal(npz_member(tmp_path / "a.npz", "fortran"), fortran)
    with pytest.raises(InputsNotFoundError, match=r"no array 'nope'; its arrays are \['fortran', 'images', 'labels'\]"):
        npz_member(tmp_path / "a.npz", "nope")


def test_compressed_npz_member_is_unpacked_once(tmp_path: Path) -> None:
    images = np.random.default_rng(1).integers(0, 4, (40, 16, 16), dtype=np.uint8)
    np.savez_compressed(tmp_path / "c.npz", images=images)
    with pytest.raises(CacheError, match="compressed inside the archive.*extract_to"):
        npz_member(tmp_path / "c.npz", "images")
    got = npz_member(tmp_path / "c.npz", "images", extract_to=tmp_path / "x")
    assert isinstance(got, np.memmap) and np.array_equal(got, images)
    assert (tmp_path / "x" / "images.npy").is_file()


def test_corrupt_npz_is_a_checksum_error(tmp_path: Path) -> None:
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ChecksumError, match="not a valid .npz"):
        npz_member(tmp_path / "bad.npz", "images")
