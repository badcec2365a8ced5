"""Encoders and decoders of the multimodal VAEs, one pair per modality.

* ``"conv"`` — the MoPoE reference networks for 28×28 PolyMNIST
  (``ConvNetworksImgCMNIST.py``): encoder Conv(3→32→64→128, k3 s2 p1) + ReLU → Linear(2048 →
  hidden) + ReLU → heads; decoder Linear(→ 2048) + ReLU → (128, 4, 4) → ConvT(128→64→32→3),
  no output non-linearity (the Laplace/Gaussian mean is unbounded, as the reference).
* ``"resnet"`` — the MMVAE+ reference ResNets (``resnet_polyMNIST.py``): pre-activation blocks
  with LeakyReLU(0.2), residual scale 0.1 and learned 1×1 shortcuts; encoder conv(3→64) →
  block(64) → [AvgPool(3, s2, p1) → block] ×2 (64→128→256, 28→14→7) → heads on the flat
  256·7·7 features; decoder Linear → (256, 7, 7) → [block → Upsample ×2] ×2 → block(64) →
  LeakyReLU → conv(64→3).
* ``"mlp"`` — for the numerical datasets: Linear + LeakyReLU(0.2) stacks of ``hidden`` widths.

``channels`` scales the image networks (32 / 64 = the references'); tests use a few channels.
An encoder returns ``(loc, raw_scale)`` for the shared latent and, with a private latent,
``(loc, raw_scale)`` for it too; the model turns ``raw_scale`` into a scale (``exp(½ logvar)`` or
the softmax parameterisation).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from mmbench.core.config import check_choice
from mmbench.errors import InvalidConfigError
from mmbench.models.vae.config import NETWORKS

__all__ = ["NETWORKS", "VAEDecoder", "VAEEncoder", "build_decoder", "build_encoder"]

_RES_SCALE = 0.1
_SLOPE = 0.2


def _check_image_shape(kind: str, shape: tuple[int, ...]) -> int:
    if len(shape) != 3 or tuple(shape[1:]) != (28, 28):
        raise InvalidConfigError(
            f"The {kind!r} VAE networks are for 28×28 images [C, 28, 28] (PolyMNIST), got per-example shape "
            f"{shape}. Use networks='mlp' for vectors."
        )
    return int(shape[0])


# ---------------------------------------------------------------------------- conv (MoPoE)
def _conv_trunk(in_channels: int, channels: int, hidden: int) -> nn.Module:
    c = channels
    return nn.Sequential(
        nn.Conv2d(in_channels, c, 3, 2, 1), nn.ReLU(),  # 14
        nn.Conv2d(c, 2 * c, 3, 2, 1), nn.ReLU(),  # 7
        nn.Conv2d(2 * c, 4 * c, 3, 2, 1), nn.ReLU(),  # 4
        nn.Flatten(), nn.Linear(4 * c * 16, hidden), nn.ReLU(),
    )


class _ConvDecoder(nn.Module):
    def __init__(self, latent: int, out_channels: int, channels: int) -> None:
        super().__init__()
        c = channels
        self.c = c
        self.fc = nn.Sequential(nn.Linear(latent, 4 * c * 16), nn.ReLU())
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(4 * c, 2 * c, 3, 2, 1), nn.ReLU(),  # 7
            nn.ConvTranspose2d(2 * c, c, 3, 2, 1, output_padding=1), nn.ReLU(),  # 14
            nn.ConvTranspose2d(c, out_channels, 3, 2, 1, output_padding=1),  # 28
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.deconv(self.fc(z).view(-1, 4 * self.c, 4, 4))


# ---------------------------------------------------------------------------- resnet (MMVAE+)
class ResBlock(nn.Module):
    """Pre-activation residual block: ``shortcut(x) + 0.1 · conv(act(conv(act(x))))``."""

    def __init__(self, fin: int, fout: int) -> None:
        super().__init__()
        hidden = min(fin, fout)
        self.conv_0 = nn.Conv2d(fin, hidden, 3, padding=1)
        self.conv_1 = nn.Conv2d(hidden, fout, 3, padding=1)
        self.shortcut = nn.Conv2d(fin, fout, 1, bias=False) if fin != fout else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        dx = self.conv_1(F.leaky_relu(self.conv_0(F.leaky_relu(x, _SLOPE)), _SLOPE))
        return self.shortcut(x) + _RES_SCALE * dx


def _resnet_trunk(in_channels: int, nf: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_channels, nf, 3, padding=1), ResBlock(nf, nf),
        nn.AvgPool2d(3, stride=2, padding=1), ResBlock(nf, 2 * nf),  # 14
        nn.AvgPool2d(3, stride=2, padding=1), ResBlock(2 * nf, 4 * nf),  # 7
        nn.Flatten(),
    )


class _ResNetDecoder(nn.Module):
    def __init__(self, latent: int, out_channels: int, nf: int) -> None:
        super().__init__()
        self.nf = nf
        self.fc = nn.Linear(latent, 4 * nf * 49)
        self.blocks = nn.Sequential(
            ResBlock(4 * nf, 2 * nf), nn.Upsample(scale_factor=2),  # 14
            ResBlock(2 * nf, nf), nn.Upsample(scale_factor=2),  # 28
            ResBlock(nf, nf),
        )
        self.conv_img = nn.Conv2d(nf, out_channels, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.blocks(self.fc(z).view(-1, 4 * self.nf, 7, 7))
        return self.conv_img(F.leaky_relu(h, _SLOPE))


# ---------------------------------------------------------------------------- mlp
def _mlp(widths: Sequence[int], *, last_act: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if last_act or i < len(widths) - 2:
            layers.append(nn.LeakyReLU(_SLOPE))
    return nn.Sequential(*layers)


# ---------------------------------------------------------------------------- public
class VAEEncoder(nn.Module):
    """Trunk(s) and Gaussian/Laplace heads of one modality.

    ``forward(x)`` returns ``(loc, raw)`` of the shared latent and, when ``private_dim > 0``,
    ``(loc, raw)`` of the private one (else ``None, None``). The private latent has its own
    trunk, as the MMVAE+ reference encoders.
    """

    def __init__(self, kind: str, in_shape: Sequence[int], latent_dim: int, private_dim: int = 0, *,
                 channels: int | None = None, hidden: Sequence[int] = (), hidden_dim: int | None = None) -> None:
        super().__init__()
        shape = tuple(int(s) for s in in_shape)
        self.kind = kind
        self.trunk, feat = _trunk(kind, shape, channels=channels, hidden=hidden, hidden_dim=hidden_dim or (latent_dim + private_dim))
        self.head = nn.Linear(feat, 2 * latent_dim)
        self.private_trunk: nn.Module | None = None
        self.private_head: nn.Module | None = None
        if private_dim:
            self.private_trunk, pfeat = _trunk(kind, shape, channels=channels, hidden=hidden, hidden_dim=hidden_dim or (latent_dim + private_dim))
            self.private_head = nn.Linear(pfeat, 2 * private_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        loc, raw = self.head(self.trunk(x)).chunk(2, dim=-1)
        if self.private_trunk is None or self.private_head is None:
            return loc, raw, None, None
        ploc, praw = self.private_head(self.private_trunk(x)).chunk(2, dim=-1)
        return loc, raw, ploc, praw


def _trunk(kind: str, shape: tuple[int, ...], *, channels: int | None, hidden: Sequence[int], hidden_dim: int) -> tuple[nn.Module, int]:
    if kind == "conv":
        return _conv_trunk(_check_image_shape(kind, shape), channels or 32, hidden_dim), hidden_dim
    if kind == "resnet":
        nf = channels or 64
        return _resnet_trunk(_check_image_shape(kind, shape), nf), 4 * nf * 49
    if kind == "mlp":
        widths = [math.prod(shape), *hidden]
        return nn.Sequential(nn.Flatten(), _mlp(widths, last_act=True)), widths[-1]
    check_choice("VAE networks", kind, NETWORKS)
    raise AssertionError(kind)  # unreachable: NETWORKS are handled above


class VAEDecoder(nn.Module):
    """Latent ``[B, D]`` → mean of the modality ``[B, *shape]`` (unbounded, no output activation)."""

    def __init__(self, kind: str, out_shape: Sequence[int], latent_dim: int, *, channels: int | None = None,
                 hidden: Sequence[int] = ()) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in out_shape)
        if kind == "conv":
            self.net: nn.Module = _ConvDecoder(latent_dim, _check_image_shape(kind, self.shape), channels or 32)
        elif kind == "resnet":
            self.net = _ResNetDecoder(latent_dim, _check_image_shape(kind, self.shape), channels or 64)
        elif kind == "mlp":
            self.net = _mlp([latent_dim, *reversed(tuple(hidden)), math.prod(self.shape)], last_act=False)
        else:
            check_choice("VAE networks", kind, NETWORKS)
            raise AssertionError(kind)  # unreachable

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).reshape(-1, *self.shape)


def build_encoder(kind: str, in_shape: Sequence[int], latent_dim: int, private_dim: int = 0, **kwargs: object) -> VAEEncoder:
    """A :class:`VAEEncoder` (see the module docstring for ``kind``)."""
    return VAEEncoder(kind, in_shape, latent_dim, private_dim, **kwargs)  # type: ignore[arg-type]


def build_decoder(kind: str, out_shape: Sequence[int], latent_dim: int, **kwargs: object) -> VAEDecoder:
    """A :class:`VAEDecoder` (see the module docstring for ``kind``)."""
    return VAEDecoder(kind, out_shape, latent_dim, **kwargs)  # type: ignore[arg-type]
