"""Shared test fixtures: every test gets a private, empty mmbench cache (never ~/.cache)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMBENCH_CACHE", str(tmp_path_factory.mktemp("mmbench-cache")))
    monkeypatch.delenv("MMBENCH_MNIST_DIR", raising=False)
    monkeypatch.setenv("MMBENCH_OFFLINE", "1")  # tests never touch the network


@pytest.fixture
def cache_dir(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("cache")
