"""Encoders of the baselines: simulation MLPs, ResNet-18 for images, conv nets for text and 28×28.

Every encoder maps a batch ``[B, *in_shape]`` to ``[B, out_dim]``. Build one by name with
:func:`build_encoder` (``"mlp"``, ``"resnet18"``, ``"text-conv"``, ``"conv28"``, ``"conv-small"``); ``norm`` adds
cl-ica's output normalisations (``"sphere"``, ``"sphere-fixed"``, ``"box"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmbench.errors import InvalidConfigError, did_you_mean

__all__ = [
    "ENCODERS",
    "NORMS",
    "BoxNorm",
    "Conv28Encoder",
    "MLPEncoder",
    "ResNet18Encoder",
    "SmallConvEncoder",
    "SphereNorm",
    "TextConvEncoder",
    "build_encoder",
    "channel_stats",
    "mlp_widths",
]


class SphereNorm(nn.Module):
    """``h ↦ r · h / ‖h‖₂``: projection onto a sphere of (learnable) radius ``r`` (cl-ica).

    cl-ica's identifiability result needs the radius ``√(τκ)``; learning it (init 1) lets the
    model find it, as the paper's ``RescaleLayer``.
    """

    def __init__(self, *, radius: float = 1.0, learnable: bool = True) -> None:
        super().__init__()
        r = torch.tensor(float(radius))
        if learnable:
            self.radius = nn.Parameter(r)
        else:
            self.register_buffer("radius", r)

    def forward(self, h: Tensor) -> Tensor:
        return self.radius * F.normalize(h, dim=-1)


class BoxNorm(nn.Module):
    """``h ↦ sigmoid(h) ⊙ b`` with a learnable per-dimension bound ``b`` (init 1): output in a box.

    This is cl-ica's ``SoftclipLayer`` (what its code calls box normalisation; the paper says
    "L∞ normalization").
    """

    def __init__(self, dim: int, *, bound: float = 1.0, learnable: bool = True) -> None:
        super().__init__()
        b = torch.full((dim,), float(bound))
        if learnable:
            self.bound = nn.Parameter(b)
        else:
            self.register_buffer("bound", b)

    def forward(self, h: Tensor) -> Tensor:
        return torch.sigmoid(h) * self.bound


NORMS = ("none", "sphere", "sphere-fixed", "box")


def _norm_layer(norm: str | None, dim: int) -> nn.Module:
    norm = norm or "none"
    if norm == "none":
        return nn.Identity()
    if norm == "sphere":
        return SphereNorm()
    if norm == "sphere-fixed":
        return SphereNorm(learnable=False)
    if norm == "box":
        return BoxNorm(dim)
    raise InvalidConfigError(f"Unknown output normalisation {norm!r}.{did_you_mean(norm, NORMS)} Choose one of {NORMS}.")


def mlp_widths(in_dim: int, *, scale: float = 1.0) -> tuple[int, ...]:
    """Hidden widths of the simulation MLP: ``(10d, 50d, 50d, 50d, 50d, 10d)`` times ``scale``."""
    return tuple(max(1, round(f * in_dim * scale)) for f in (10, 50, 50, 50, 50, 10))


class MLPEncoder(nn.Module):
    """The simulations' 7-layer MLP: ``d → 10d → 50d ×4 → 10d → out``, LeakyReLU(0.01).

    Args:
        in_dim: input dimension ``d``.
        out_dim: encoding size.
        hidden: hidden widths (default :func:`mlp_widths`; ``width_scale`` shrinks them).
        slope: LeakyReLU negative slope after every hidden layer.
        norm: output normalisation (``"none"``, ``"sphere"``, ``"sphere-fixed"``, ``"box"``).
        init: ``"default"`` (torch's, as the reference code) or ``"kaiming"`` (He init for LeakyReLU).

    Example:
        >>> enc = MLPEncoder(15, 5)   # 15 → 150 → 750 ×4 → 150 → 5: 1.9 M parameters
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        *,
        hidden: Sequence[int] | None = None,
        width_scale: float = 1.0,
        slope: float = 0.01,
        norm: str | None = None,
        init: str = "default",
    ) -> None:
        super().__init__()
        if init not in ("default", "kaiming"):
            raise InvalidConfigError(f"MLPEncoder init must be 'default' (torch's, as the reference code) or 'kaiming', got {init!r}.")
        widths = tuple(hidden) if hidden is not None else mlp_widths(in_dim, scale=width_scale)
        layers: list[nn.Module] = []
        prev = in_dim
        for w in widths:
            layers += [nn.Linear(prev, w), nn.LeakyReLU(slope)]
            prev = w
        layers.append(nn.Linear(prev, out_dim))
        self.net = nn.Sequential(*layers)
        self.norm = _norm_layer(norm, out_dim)
        if init == "kaiming":
            # He init for LeakyReLU keeps activations from shrinking through the 7 layers (torch's
            # default shrinks them ~3x per layer); it makes short (CPU) schedules converge.
            for m in self.net:
                if isinstance(m, nn.Linear):
                    nn.init.kaiming_normal_(m.weight, a=slope, nonlinearity="leaky_relu")
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.net(x.flatten(1)))


class ResNet18Encoder(nn.Module):
    """torchvision ResNet-18 from scratch (fc: 512 → 100) → LeakyReLU → Linear(100, out).

    The multimodal identifiability paper's image encoder; input ``[B, C, H, W]`` float (or
    ``[B, H, W, C]`` uint8, converted to ``[0, 1]`` floats channels-first).
    """

    def __init__(self, out_dim: int, *, in_channels: int = 3, hidden: int = 100, norm: str | None = None) -> None:
        super().__init__()
        import torchvision

        net = torchvision.models.resnet18(weights=None, num_classes=hidden)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.net = nn.Sequential(net, nn.LeakyReLU(), nn.Linear(hidden, out_dim))
        self.norm = _norm_layer(norm, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.net(_images(x)))


def _images(x: Tensor) -> Tensor:
    """uint8 ``[B, H, W, C]`` → float ``[B, C, H, W]`` in [0, 1]; float input passes through."""
    if x.dtype == torch.uint8:
        x = x.float().div_(255.0)
        if x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
            x = x.permute(0, 3, 1, 2)
    return x.contiguous()


class TextConvEncoder(nn.Module):
    """2-D conv net over one-hot token sequences (the reference ``TextEncoder2D``, re-written).

    Input ``[B, L, V]`` one-hot (or ``[B, L']`` token ids, one-hot encoded here; ids are padded
    with 0 = ``{pad}`` or cut to ``seq_len``). ``Linear(V, 128)`` embeds every token; the
    ``1 × L × 128`` map goes through Conv(4, stride 2, pad 1) + BatchNorm + ReLU blocks and a final
    linear layer. ``depth=3`` (default): three blocks, 1 → f → 2f → 4f channels (f = 25), as the
    multimodal identifiability paper. ``depth="auto"``: blocks while both sides of the map are
    ≥ 4, channels f, 2f, 4f, … capped at 8f — the misalignment paper's variable-depth text encoder
    (``FlexibleTextEncoder2D``), whose depth follows the caption length.
    """

    def __init__(self, vocab_size: int, seq_len: int, out_dim: int, *, embedding_dim: int = 128, fbase: int = 25,
                 depth: int | str = 3, norm: str | None = None) -> None:
        super().__init__()
        if depth == "auto":
            if seq_len < 1 or embedding_dim < 1:
                raise InvalidConfigError(f"TextConvEncoder needs seq_len >= 1 and embedding_dim >= 1, got {seq_len}, {embedding_dim}.")
        elif depth != 3:
            raise InvalidConfigError(f"TextConvEncoder depth must be 3 or 'auto', got {depth!r}.")
        elif seq_len < 8 or embedding_dim < 8:
            raise InvalidConfigError(f"TextConvEncoder needs seq_len >= 8 and embedding_dim >= 8, got {seq_len}, {embedding_dim}.")
        self.vocab_size = vocab_size
        self.seq_len = seq_len
        self.embedding = nn.Linear(vocab_size, embedding_dim)
        blocks: list[nn.Module] = []
        h, w, cin, cout = seq_len, embedding_dim, 1, fbase
        while (len(blocks) < 9) if depth == 3 else (h >= 4 and w >= 4):
            blocks += [nn.Conv2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.ReLU()]
            h, w, cin, cout = h // 2, w // 2, cout, min(2 * cout, 8 * fbase)
        self.conv = nn.Sequential(*blocks)
        self.head = nn.Linear(cin * h * w, out_dim)
        self.norm = _norm_layer(norm, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 2:  # token ids, padded / cut to the trained length
            if x.shape[1] != self.seq_len:
                x = F.pad(x, (0, max(self.seq_len - x.shape[1], 0)))[:, : self.seq_len]
            x = F.one_hot(x.long(), self.vocab_size)
        h = self.embedding(x.float()).unsqueeze(1)
        return self.norm(self.head(self.conv(h).flatten(1)))


class SmallConvEncoder(nn.Module):
    """A small conv net for square images of any size (CPU-sized image experiments).

    Stride-2 Conv(4) + ReLU blocks (widths 16, 32, 64, then 64) until the map is at most 4×4,
    then ``Linear → ReLU → Linear(out)``. Input ``[B, C, H, W]`` float or uint8 (scaled to [0, 1]).
    """

    def __init__(self, out_dim: int, *, in_channels: int = 3, image_size: int = 32, widths: Sequence[int] = (16, 32, 64),
                 hidden: int = 128, norm: str | None = None) -> None:
        super().__init__()
        if image_size < 4:
            raise InvalidConfigError(f"SmallConvEncoder needs images of at least 4×4, got {image_size}.")
        layers: list[nn.Module] = []
        size, cin, k = image_size, in_channels, 0
        while size > 4:
            cout = widths[min(k, len(widths) - 1)]
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.ReLU()]
            size, cin, k = size // 2, cout, k + 1
        self.conv = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(cin * size * size, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))
        self.norm = _norm_layer(norm, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.head(self.conv(_images(x))))


class Conv28Encoder(nn.Module):
    """Small conv net for 28×28 images (PolyMNIST): 3 stride-2 convs (32, 64, 128) → linear."""

    def __init__(self, out_dim: int, *, in_channels: int = 3, norm: str | None = None) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, 2, 1), nn.ReLU(),  # 14
            nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),  # 7
            nn.Conv2d(64, 128, 3, 2, 1), nn.ReLU(),  # 4
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(128 * 4 * 4, 256), nn.ReLU(), nn.Linear(256, out_dim))
        self.norm = _norm_layer(norm, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        x = _images(x)
        if x.shape[-2:] != (28, 28):
            raise InvalidConfigError(f"Conv28Encoder expects 28×28 images, got {tuple(x.shape)}.")
        return self.norm(self.head(self.conv(x)))


ENCODERS = ("mlp", "resnet18", "text-conv", "conv28", "conv-small")


def channel_stats(images: np.ndarray, *, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of uint8 ``[N, C, H, W]`` images, in [0, 1] units.

    Accumulated over chunks of ``chunk`` images, so the peak memory is one chunk in float64, not
    the whole split (20,000 × 3 × 128 × 128 would be a 7.9 GB float64 copy).
    """
    n_ch = images.shape[1]
    total, total_sq, count = np.zeros(n_ch), np.zeros(n_ch), 0
    for i in range(0, len(images), chunk):
        x = images[i : i + chunk].astype(np.float64) / 255
        total += x.sum(axis=(0, 2, 3))
        total_sq += np.square(x).sum(axis=(0, 2, 3))
        count += x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / max(count, 1)
    return mean, np.sqrt(np.maximum(total_sq / max(count, 1) - mean**2, 0.0))


def build_encoder(kind: str, in_shape: Sequence[int], out_dim: int, **kwargs: Any) -> nn.Module:
    """An encoder by name for inputs of per-example shape ``in_shape``.

    Args:
        kind: ``"mlp"`` (any shape, flattened), ``"resnet18"`` (``[C, H, W]`` or ``[H, W, C]``),
            ``"text-conv"`` (``[L, V]`` one-hot; or pass ``vocab_size``), ``"conv28"`` (28×28),
            ``"conv-small"`` (square images of any size).
        in_shape: one example's shape (a dataset modality's ``shape``).
        out_dim: encoding size.
        **kwargs: passed to the encoder class (``norm``, ``width_scale``, ``hidden``, ...).
    """
    if not isinstance(out_dim, int) or out_dim < 1:
        raise InvalidConfigError(f"The encoding size must be a positive integer, got {out_dim!r}.")
    in_shape = tuple(int(s) for s in in_shape)
    if kind == "mlp":
        d = 1
        for s in in_shape:
            d *= s
        return MLPEncoder(d, out_dim, **kwargs)
    if kind in ("resnet18", "conv28", "conv-small"):
        if len(in_shape) != 3:
            raise InvalidConfigError(f"Encoder {kind!r} needs image inputs [C, H, W] or [H, W, C], got shape {in_shape}.")
        channels = in_shape[0] if in_shape[0] in (1, 3, 4) else in_shape[-1]
        if kind == "conv-small":
            kwargs.setdefault("image_size", in_shape[1] if in_shape[0] == channels else in_shape[0])
            return SmallConvEncoder(out_dim, in_channels=channels, **kwargs)
        cls = ResNet18Encoder if kind == "resnet18" else Conv28Encoder
        return cls(out_dim, in_channels=channels, **kwargs)
    if kind == "text-conv":
        if len(in_shape) == 2:
            return TextConvEncoder(in_shape[1], in_shape[0], out_dim, **kwargs)
        if len(in_shape) == 1 and "vocab_size" in kwargs:
            vocab = kwargs.pop("vocab_size")
            return TextConvEncoder(vocab, in_shape[0], out_dim, **kwargs)
        raise InvalidConfigError(f"Encoder 'text-conv' needs one-hot inputs [L, V] (or ids [L] with vocab_size=...), got shape {in_shape}.")
    raise InvalidConfigError(f"Unknown encoder {kind!r}.{did_you_mean(kind, ENCODERS)} Choose one of {ENCODERS}.")
