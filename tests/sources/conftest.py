"""A local HTTP server (127.0.0.1, in-process) and resources describing the files it serves."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mmbench.sources import download as dl
from mmbench.sources.resource import Resource
from mmbench.testing.http import LocalFileServer

SIZE = 3 * (1 << 20) + 12_345  # several read chunks, not a round number


def payload(seed: int = 0, size: int = SIZE) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def resource_for(data: bytes, *urls: str, name: str = "family/data.bin", **kw) -> Resource:
    return Resource(name=name, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                    license="CC0 (test data)", urls=urls, **kw)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalFileServer]:
    monkeypatch.setattr(dl, "RETRY_BACKOFF_S", 0.0)  # resume at once: tests take seconds
    www = tmp_path / "www"
    www.mkdir()
    with LocalFileServer(www) as srv:
        yield srv
