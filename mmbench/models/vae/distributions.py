"""Latent and observation densities of the multimodal VAEs, and subset posteriors in one pass.

Everything here is a pure tensor function (no modules, no global RNG): a random draw takes an
explicit ``torch.Generator`` (``None``: torch's default generator, what a training step uses when
the trainer passes none).

* A distribution is ``(family, loc, scale)`` with ``family`` ``"gaussian"`` (``scale`` = standard
  deviation) or ``"laplace"``; :func:`log_prob`, :func:`rsample`, :func:`kl_to_prior` (closed form
  against a zero-centred prior of the same family, ``N(0, s²I)`` or ``Laplace(0, s)``).
* :func:`enumerate_subsets` / :func:`subset_mask`: the subsets of a mixture as a ``[S, M]`` mask.
* :func:`product_of_experts`: the Gaussian PoE of *every* subset at once — a masked sum of
  precisions over the modality axis (one ``einsum``), with an optional standard-normal prior
  expert per subset. This replaces the reference code's Python loop over the 2^M − 1 subsets.
* :func:`mixture_log_prob`: ``log (1/M) Σ_m q_m(z)`` for every sample against every component.

Example:
    >>> mask = subset_mask(enumerate_subsets(("m0", "m1")), ("m0", "m1"))
    >>> loc, scale = product_of_experts(mask, mu, std, prior_expert=torch.tensor([0, 0, 1]))
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from mmbench.errors import InvalidConfigError, did_you_mean
from mmbench.models.vae.config import FAMILIES

__all__ = [
    "FAMILIES",
    "SCALE_EPS",
    "enumerate_subsets",
    "kl_to_prior",
    "log_prob",
    "mixture_log_prob",
    "product_of_experts",
    "rsample",
    "softmax_scale",
    "subset_mask",
]

#: Added to every parameterised scale. The reference MMVAE+ code adds 1e-20 to its softmax scales;
#: 1e-6 keeps ``|z − loc| / scale`` finite in float32 when a softmax coordinate underflows.
SCALE_EPS = 1e-6
#: Added to Gaussian variances before inverting them in the PoE (the reference ``poe``'s 1e-8).
PRECISION_EPS = 1e-8
_LOG_2PI = math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


def log_prob(family: str, x: Tensor, loc: Tensor, scale: Tensor | float) -> Tensor:
    """Element-wise log-density of ``x`` (no reduction; broadcasting as torch)."""
    if family == "gaussian":
        scale_t = torch.as_tensor(scale, dtype=loc.dtype, device=loc.device)
        return -0.5 * ((x - loc) / scale_t) ** 2 - torch.log(scale_t) - 0.5 * _LOG_2PI
    if family == "laplace":
        scale_t = torch.as_tensor(scale, dtype=loc.dtype, device=loc.device)
        return -(x - loc).abs() / scale_t - torch.log(scale_t) - _LOG_2
    raise InvalidConfigError(f"Unknown family {family!r}; choose one of {FAMILIES}.")


def rsample(family: str, loc: Tensor, scale: Tensor, *, generator: torch.Generator | None = None,
            sample_shape: Sequence[int] = ()) -> Tensor:
    """Reparameterised draws of shape ``(*sample_shape, *loc.shape)``."""
    shape = (*sample_shape, *loc.shape)
    if family == "gaussian":
        eps = torch.randn(shape, generator=generator, device=loc.device, dtype=loc.dtype)
        return loc + scale * eps
    if family == "laplace":
        # Inverse CDF: u ~ U(−1, 1) → −sign(u) log(1 − |u|), kept away from |u| = 1.
        u = torch.rand(shape, generator=generator, device=loc.device, dtype=loc.dtype) * 2.0 - 1.0
        u = u.clamp(-1.0 + 1e-6, 1.0 - 1e-6)
        return loc - scale * u.sign() * torch.log1p(-u.abs())
    raise InvalidConfigError(f"Unknown family {family!r}; choose one of {FAMILIES}.")


def kl_to_prior(family: str, loc: Tensor, scale: Tensor, prior_scale: Tensor | None = None) -> Tensor:
    """Closed-form ``KL(q ‖ p)`` per dimension; ``p`` is zero-centred, of the same family, with scale
    ``prior_scale`` (``None``: 1, the standard prior).

    Gaussian ``N(μ, σ) ‖ N(0, s)``: ``log(s/σ) + (σ² + μ²)/(2s²) − ½``.
    Laplace ``L(μ, b) ‖ L(0, s)``: ``log(s/b) + |μ|/s + (b/s)·exp(−|μ|/b) − 1``.
    """
    s = torch.ones((), dtype=loc.dtype, device=loc.device) if prior_scale is None else prior_scale
    if family == "gaussian":
        return torch.log(s / scale) + (scale**2 + loc**2) / (2.0 * s**2) - 0.5
    if family == "laplace":
        m = loc.abs()
        return torch.log(s / scale) + m / s + (scale / s) * torch.exp(-m / scale) - 1.0
    raise InvalidConfigError(f"Unknown family {family!r}; choose one of {FAMILIES}.")


def softmax_scale(raw: Tensor) -> Tensor:
    """The MMVAE / MMVAE+ scale parameterisation: ``softmax(raw) · D + eps`` (scales sum to ``D``)."""
    return torch.softmax(raw, dim=-1) * raw.shape[-1] + SCALE_EPS


def enumerate_subsets(modalities: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """Every non-empty subset (2^M − 1), by size, then in the order of ``modalities``.

    Example:
        >>> enumerate_subsets(("a", "b", "c"))
        (('a',), ('b',), ('c',), ('a', 'b'), ('a', 'c'), ('b', 'c'), ('a', 'b', 'c'))
    """
    mods = tuple(modalities)
    return tuple(s for k in range(1, len(mods) + 1) for s in itertools.combinations(mods, k))


def subset_mask(subsets: Sequence[Sequence[str]], modalities: Sequence[str], *,
                device: torch.device | str | None = None) -> Tensor:
    """``[S, M]`` float mask: ``mask[s, m] = 1`` when modality ``m`` is in subset ``s``.

    Raises:
        InvalidConfigError: an empty subset, a modality named twice, or one the model lacks.
    """
    mods = list(modalities)
    index = {m: i for i, m in enumerate(mods)}
    mask = torch.zeros(len(subsets), len(mods), device=device)
    for s, subset in enumerate(subsets):
        names = [subset] if isinstance(subset, str) else list(subset)
        if not names:
            raise InvalidConfigError(f"Subset {s} is empty; every subset must name at least one of {mods}.")
        if len(set(names)) != len(names):
            raise InvalidConfigError(f"Subset {names} names a modality twice.")
        for m in names:
            if m not in index:
                raise InvalidConfigError(
                    f"Subset {names} names the unknown modality {m!r}.{did_you_mean(str(m), mods)} "
                    f"This model's modalities: {mods}."
                )
            mask[s, index[m]] = 1.0
    return mask


def product_of_experts(mask: Tensor, loc: Tensor, scale: Tensor, *, prior_expert: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Gaussian products of experts of every subset in one pass.

    Args:
        mask: ``[S, M]`` subset mask (:func:`subset_mask`).
        loc, scale: the unimodal Gaussian experts, ``[M, B, D]`` (``scale`` = standard deviation).
        prior_expert: ``[S]`` 0/1: multiply subset ``s`` by the ``N(0, I)`` prior expert too.

    Returns:
        ``loc, scale`` of shape ``[S, B, D]``: precision ``T_A = Σ_{m∈A} 1/σ_m² (+ 1)``, mean
        ``μ_A = Σ_{m∈A} μ_m/σ_m² / T_A`` (the prior expert adds precision 1 and mean 0).
    """
    mask = mask.to(dtype=loc.dtype, device=loc.device)
    precision = 1.0 / (scale**2 + PRECISION_EPS)
    total = torch.einsum("sm,mbd->sbd", mask, precision)
    weighted = torch.einsum("sm,mbd->sbd", mask, precision * loc)
    if prior_expert is not None:
        total = total + prior_expert.to(dtype=loc.dtype, device=loc.device)[:, None, None]
    return weighted / total, total.rsqrt()


def mixture_log_prob(family: str, z: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
    """``log (1/M) Σ_m q_m(z)`` summed over latent dimensions.

    Args:
        z: samples ``[..., B, D]``.
        loc, scale: the ``M`` components ``[M, B, D]`` (component ``m`` of example ``b``).

    Returns:
        ``[..., B]``.
    """
    lead = z.dim() - 2
    view = (loc.shape[0], *([1] * lead), *loc.shape[1:])
    per = log_prob(family, z.unsqueeze(0), loc.reshape(view), scale.reshape(view)).sum(-1)  # [M, ..., B]
    return torch.logsumexp(per, dim=0) - math.log(loc.shape[0])
