"""Encoders: shapes, the reference widths, output normalisations, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbench.errors import InvalidConfigError
from mmbench.models.encoders import BoxNorm, MLPEncoder, SphereNorm, build_encoder, mlp_widths


def test_mlp_reference_widths_and_size() -> None:
    assert mlp_widths(15) == (150, 750, 750, 750, 750, 150)
    enc = MLPEncoder(15, 5)
    linears = [m for m in enc.net if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 7
    assert sum(p.numel() for p in enc.parameters()) == 1_918_805  # 3.84 M for the two encoders
    slopes = {m.negative_slope for m in enc.net if isinstance(m, torch.nn.LeakyReLU)}
    assert slopes == {0.01}
    assert enc(torch.randn(3, 15)).shape == (3, 5)


def test_mlp_kaiming_init_and_scale() -> None:
    enc = MLPEncoder(10, 4, width_scale=0.2, init="kaiming")
    assert [m.out_features for m in enc.net if isinstance(m, torch.nn.Linear)] == [20, 100, 100, 100, 100, 20, 4]
    with pytest.raises(InvalidConfigError, match="init"):
        MLPEncoder(10, 4, init="xavier")


def test_norms() -> None:
    h = torch.randn(7, 10) * 5
    assert torch.allclose(SphereNorm()(h).norm(dim=1), torch.ones(7), atol=1e-5)
    assert isinstance(SphereNorm().radius, torch.nn.Parameter)
    out = BoxNorm(10)(h)
    assert (out > 0).all() and (out < 1).all()
    enc = build_encoder("mlp", (10,), 10, norm="sphere-fixed", width_scale=0.1)
    assert torch.allclose(enc(torch.randn(4, 10)).norm(dim=1), torch.ones(4), atol=1e-5)
    with pytest.raises(InvalidConfigError, match="Did you mean"):
        build_encoder("mlp", (10,), 10, norm="spere")


def test_image_and_text_encoders() -> None:
    enc = build_encoder("resnet18", (3, 32, 32), 6)
    assert enc(torch.rand(2, 3, 32, 32)).shape == (2, 6)
    conv = build_encoder("conv28", (28, 28, 3), 8)  # channels-last uint8, as PolyMNIST stores it
    assert conv(torch.randint(0, 255, (2, 28, 28, 3), dtype=torch.uint8)).shape == (2, 8)
    text = build_encoder("text-conv", (26, 111), 4)
    onehot = torch.nn.functional.one_hot(torch.randint(0, 111, (3, 26)), 111).float()
    assert text(onehot).shape == (3, 4)
    ids = build_encoder("text-conv", (26,), 4, vocab_size=111)
    assert ids(torch.randint(0, 111, (3, 26))).shape == (3, 4)


def test_build_encoder_errors() -> None:
    with pytest.raises(InvalidConfigError, match="Did you mean"):
        build_encoder("resnet", (3, 32, 32), 4)
    with pytest.raises(InvalidConfigError, match="image inputs"):
        build_encoder("resnet18", (15,), 4)
    with pytest.raises(InvalidConfigError, match="encoding size"):
        build_encoder("mlp", (15,), 0)
    with pytest.raises(InvalidConfigError, match="28×28"):
        build_encoder("conv28", (3, 32, 32), 4)(torch.rand(1, 3, 32, 32))


def test_channel_stats_match_numpy_across_chunks() -> None:
    from mmbench.models.encoders import channel_stats

    images = np.random.default_rng(0).integers(0, 256, size=(37, 3, 5, 4), dtype=np.uint8)
    mean, std = channel_stats(images, chunk=8)  # 37 = 4 full chunks + a partial one
    ref = images.astype(np.float64) / 255
    np.testing.assert_allclose(mean, ref.mean(axis=(0, 2, 3)), rtol=1e-10)
    np.testing.assert_allclose(std, ref.std(axis=(0, 2, 3)), rtol=1e-8)
    assert channel_stats(images[:0])[0].tolist() == [0.0, 0.0, 0.0]
