"""BuilderTestCase's generic checks fail on builders that break them (they are not vacuous)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from mmbench.builders import DATASETS
from mmbench.testing import BuilderTestCase


class _FakeDataset:
    def __init__(self, columns: dict[str, np.ndarray], config: dict[str, Any] | None = None) -> None:
        self._columns = columns
        self.column_names = list(columns)
        self.info = SimpleNamespace(config=config or {})

    def column(self, name: str) -> np.ndarray:
        return self._columns[name]

    def __len__(self) -> int:
        return len(next(iter(self._columns.values())))


class _Case(BuilderTestCase):
    DATASET = "numerical/misalignment/joint"


def _biased(n: int = 200, *, flip_unflagged: bool = False, never: bool = False) -> _FakeDataset:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, n)
    flags = np.zeros(n, bool) if never else rng.random(n) < 0.5
    shown = np.where(flags, (truth + 1) % 4, truth)
    if flip_unflagged:
        shown[np.flatnonzero(~flags)[0]] += 1
    return _FakeDataset({"latents.a": truth, "text.a": shown, "perturbed.a": flags})


def test_bias_effect_checks_text_biases() -> None:
    _Case().test_bias_effect({"train": _biased()})
    with pytest.raises(AssertionError, match="unperturbed text differs"):
        _Case().test_bias_effect({"train": _biased(flip_unflagged=True)})
    with pytest.raises(AssertionError, match="never perturbed"):
        _Case().test_bias_effect({"train": _biased(never=True)})
    orphan = _FakeDataset({"text.b": np.zeros(3)})
    with pytest.raises(AssertionError, match="text.b"):
        _Case().test_bias_effect({"train": orphan})


def test_bias_effect_skips_without_a_text_bias() -> None:
    with pytest.raises(pytest.skip.Exception, match="no text bias"):
        _Case().test_bias_effect({"train": _FakeDataset({"latents.a": np.zeros(3)})})


def test_missing_inputs_check_catches_undeclared_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ok").mkdir()
    (tmp_path / "bad").mkdir()
    _Case().test_missing_inputs_error(tmp_path / "ok")
    cls = DATASETS.get("numerical/misalignment")
    monkeypatch.setattr(cls, "resolve_inputs", lambda self: {"mnist": "somewhere"})
    with pytest.raises(AssertionError, match="REQUIRES_INPUTS = True"):
        _Case().test_missing_inputs_error(tmp_path / "bad")
