"""The Multimodal3DIdent image–text experiment: a tiny end-to-end run and the reproduce hook."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mmbench.models import reproduce as rep
from mmbench.models.imagetext import SCHEDULES, Conv64Encoder, run_m3di_imagetext

TINY = dataclasses.replace(SCHEDULES["quick"], size=32, split_sizes=(96, 64, 64), steps=6, batch_size=32,
                           warmup_steps=2, encoding_sizes=(4,), kernel_fit=None, meshes="tiny")


def test_tiny_run_trains_probes_and_checks(tmp_path):
    result = run_m3di_imagetext(scale="quick", schedule=TINY, cache_dir=tmp_path, num_workers=1, progress=False, device="cpu")
    assert set(result.measured) == {"image / enc=4", "text / enc=4"}
    assert set(result.measured["image / enc=4"]) == {"shape", "x_pos", "y_pos", "color", "alpha", "beta", "gamma", "s_pos", "s_color", "b_color"}
    assert set(result.measured["text / enc=4"]) == {"shape", "x_pos", "y_pos", "color_index", "phrasing"}
    assert all(0 <= v <= 1 for row in result.measured.values() for v in row.values())
    assert [c["cells"] for c in result.checks] == [6, 6]
    assert result.runs[0]["steps"] == 6 and np.isfinite(result.runs[0]["final_loss"])
    md = result.to_markdown()
    assert "Fig. 3" in md and "conv image encoder" in md  # the deviations are stated


def test_reproduce_dispatches_experiments(monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr("mmbench.models.imagetext.run_m3di_imagetext", lambda **kw: seen.update(kw) or "result")
    assert rep.reproduce("m3di-imagetext", scale="quick", steps=3) == "result"
    assert seen["scale"] == "quick" and seen["steps"] == 3
    import argparse

    assert rep.cmd_reproduce(argparse.Namespace(list=True, table=None)) == 0
    assert "m3di-imagetext: Multimodal identifiability" in capsys.readouterr().out


def test_conv64_encoder_shapes():
    import torch

    enc = Conv64Encoder(5, size=64)
    assert enc(torch.zeros(2, 3, 64, 64)).shape == (2, 5)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in enc.modules()) == 4
    big = Conv64Encoder(4, size=128, stem=8)  # one more stride-2 conv per doubling, plus the stride-1 stem
    convs = [m for m in big.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16, 32, 64, 128, 256] and convs[0].stride == (1, 1)
    assert big(torch.zeros(2, 3, 128, 128)).shape == (2, 4)
    with pytest.raises(Exception, match="power-of-two"):
        Conv64Encoder(4, size=96)
    half = Conv64Encoder(8, size=128, width=0.5)  # the quick scale's: every conv at half width
    assert [c.out_channels for c in half.modules() if isinstance(c, torch.nn.Conv2d)] == [8, 16, 32, 64, 128]
    assert half(torch.zeros(2, 3, 128, 128)).shape == (2, 8)
    with pytest.raises(Exception, match="width must be in"):
        Conv64Encoder(4, size=64, width=0)
    with pytest.raises(Exception, match="scale"):
        run_m3di_imagetext(scale="huge")
