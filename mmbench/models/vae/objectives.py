"""Training objectives of the multimodal VAEs, and importance weights for the log-likelihood.

Every objective is one batched pass: the posteriors of all subsets come out of one
:func:`~.distributions.product_of_experts` call, samples for all strata are drawn at once, and
each decoder runs once on every latent it must decode. Losses are means over the batch (the
references sum over the batch; Adam is insensitive to that scale).

* :func:`mixture_elbo` — MVAE, MoPoE and MMVAE (``objective="elbo"``), thesis Eq. 5.19:
  ``Σ_A ω_A {E_{q_A}[log p(x̄|z)] − β KL(q_A ‖ p)}`` with uniform ``ω_A``. The KL is the mean
  of the closed-form subset KLs; the reconstruction uses one ``z`` per example, drawn from the
  subset its batch position is assigned to (contiguous, balanced chunks; the reference gives the
  last subset the remainder). MVAE with ``unimodal_elbos`` adds the ``M`` unimodal ELBOs, each
  reconstructing its own modality.
* :func:`mmvae_importance` — MMVAE's original ``iwae`` / ``dreg`` objectives (Shi et al. 2019, the
  "looser" bounds: mean over the modality strata outside the log).
* :func:`mmvaeplus_elbo` — MMVAE+ (thesis Eq. 6.22, the reference's ``m_elbo`` with ``K = 1``):
  stratified over the modality ``r`` that provides ``z``; ``x_d`` is reconstructed from
  ``(z_r, w_r)`` when ``d = r`` and from ``(z_r, w̃_d)``, ``w̃_d`` a draw of the auxiliary prior
  ``q_ψd``, otherwise; ``β`` multiplies the Monte-Carlo log-density ratio.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from mmbench.models.trainable import kl_warmup
from mmbench.models.vae.distributions import (
    kl_to_prior,
    log_prob,
    mixture_log_prob,
    product_of_experts,
    rsample,
)

if TYPE_CHECKING:
    from mmbench.models.vae.model import MultimodalVAE

__all__ = ["balanced_assignment", "log_importance_weights", "loss", "mixture_elbo", "mmvae_importance", "mmvaeplus_elbo"]

Logs = dict[str, Tensor]


def loss(model: MultimodalVAE, inputs: Mapping[str, Tensor], *, step: int, generator: torch.Generator | None = None,
         amp: bool = False) -> tuple[Tensor, Logs]:
    """The objective ``model.config`` names, with ``β`` warmed up to ``step``; returns (loss, logs)."""
    cfg = model.config
    beta = cfg.beta * kl_warmup(step, cfg.kl_warmup_steps)
    if cfg.kind == "mmvaeplus":
        value, logs = mmvaeplus_elbo(model, inputs, beta=beta, generator=generator, amp=amp)
    elif cfg.objective in ("iwae", "dreg"):
        value, logs = mmvae_importance(model, inputs, beta=beta, generator=generator, amp=amp)
    else:
        value, logs = mixture_elbo(model, inputs, beta=beta, generator=generator, amp=amp)
    logs = {"loss": value.detach(), **logs, "beta": torch.tensor(beta)}
    return value, logs


def balanced_assignment(batch: int, subsets: int, device: torch.device) -> Tensor:
    """``[B]`` subset index of every batch position: contiguous chunks whose sizes differ by ≤ 1."""
    return torch.arange(batch, device=device) * subsets // batch


def _reconstruction(model: MultimodalVAE, inputs: Mapping[str, Tensor], z: Tensor, *, amp: bool) -> Tensor:
    """``Σ_m −log p(x_m | z)`` per example ``[B]``, every modality decoded from the same ``z``."""
    return -sum(model.log_likelihood(inputs[m], model.decode(z, m, amp=amp)) for m in model.modality_names)  # type: ignore[return-value]


def mixture_elbo(model: MultimodalVAE, inputs: Mapping[str, Tensor], *, beta: float, generator: torch.Generator | None = None,
                 amp: bool = False) -> tuple[Tensor, Logs]:
    """Negative mixture-of-subsets ELBO (MVAE, MoPoE, MMVAE-ELBO); see the module docstring."""
    cfg = model.config
    ex = model.experts(inputs, model.modality_names, amp=amp)
    if cfg.aggregation == "poe":
        loc, scale = product_of_experts(model.subset_mask, ex.loc, ex.scale, prior_expert=model.prior_expert)
        family = "gaussian"
    else:  # the unimodal posteriors are the mixture's components, in modality order
        loc, scale, family = ex.loc, ex.scale, cfg.posterior
    kl = kl_to_prior(family, loc, scale, model.prior_scale()).sum(-1).mean(0)  # [B]: mean over subsets
    n_sub, batch = loc.shape[:2]
    b = torch.arange(batch, device=loc.device)
    assign = balanced_assignment(batch, n_sub, loc.device)
    z = rsample(family, loc[assign, b], scale[assign, b], generator=generator)
    rec = _reconstruction(model, inputs, z, amp=amp)
    per_example = rec + beta * kl
    logs = {"recon": rec.mean().detach(), "kl": kl.mean().detach()}
    if cfg.unimodal_elbos:
        uni_rec, uni_kl = _unimodal_elbos(model, inputs, ex.loc, ex.scale, generator=generator, amp=amp)
        per_example = per_example + uni_rec + beta * uni_kl
        logs["unimodal_recon"], logs["unimodal_kl"] = uni_rec.mean().detach(), uni_kl.mean().detach()
    return per_example.mean(), logs


def _unimodal_elbos(model: MultimodalVAE, inputs: Mapping[str, Tensor], loc: Tensor, scale: Tensor, *,
                    generator: torch.Generator | None, amp: bool) -> tuple[Tensor, Tensor]:
    """MVAE's sub-sampled terms: for every ``m``, ``−log p(x_m|z_m)`` and ``KL(q({m}) ‖ p)``, summed over ``m``."""
    mods = model.modality_names
    eye = torch.eye(len(mods), device=loc.device)
    flags = model.prior_expert_flags([(m,) for m in mods]).to(loc.device)
    uloc, uscale = product_of_experts(eye, loc, scale, prior_expert=flags)  # [M, B, D]
    z = rsample("gaussian", uloc, uscale, generator=generator)
    rec = -sum(model.log_likelihood(inputs[m], model.decode(z[i], m, amp=amp)) for i, m in enumerate(mods))
    kl = kl_to_prior("gaussian", uloc, uscale, model.prior_scale()).sum(-1).sum(0)
    return rec, kl  # type: ignore[return-value]


def _prior_log_prob(model: MultimodalVAE, z: Tensor) -> Tensor:
    scale = model.prior_scale()
    return log_prob(model.latent_family, z, z.new_zeros(()), scale if scale is not None else z.new_ones(())).sum(-1)


def mmvae_importance(model: MultimodalVAE, inputs: Mapping[str, Tensor], *, beta: float,
                     generator: torch.Generator | None = None, amp: bool = False) -> tuple[Tensor, Logs]:
    """MMVAE's IWAE or DReG objective (stratified, "looser"), ``K = num_samples`` per modality.

    Log-weights ``lw = Σ_d log p(x_d|z) + β (log p(z) − log (1/M) Σ_m q(z|x_m))`` for ``z`` drawn
    from each unimodal posterior. IWAE: ``−mean_r log mean_k exp(lw)``. DReG: the posterior
    parameters are detached inside ``log q`` and the gradient reaching ``z`` is reweighted by the
    normalised weights, so the encoder gets ``Σ_k w̃_k² ∂lw_k``; the loss is ``−Σ_k w̃_k lw_k``.
    """
    cfg = model.config
    family = cfg.posterior
    ex = model.experts(inputs, model.modality_names, amp=amp)
    k = cfg.num_samples
    z = rsample(family, ex.loc, ex.scale, generator=generator, sample_shape=(k,))  # [K, M(r), B, D]
    dreg = cfg.objective == "dreg"
    qloc, qscale = (ex.loc.detach(), ex.scale.detach()) if dreg else (ex.loc, ex.scale)
    log_ratio = _prior_log_prob(model, z) - mixture_log_prob(family, z, qloc, qscale)  # [K, M, B]
    ll = sum(model.log_likelihood(inputs[d], model.decode(z, d, amp=amp)) for d in model.modality_names)
    lw = ll + beta * log_ratio
    if dreg:
        with torch.no_grad():
            weights = torch.softmax(lw, dim=0)
        if z.requires_grad:
            z.register_hook(lambda grad: weights.unsqueeze(-1) * grad)
        value = -(weights * lw).sum(0).mean()
    else:
        value = -(torch.logsumexp(lw, dim=0) - math.log(k)).mean()
    return value, {"recon": -ll.mean().detach(), "kl": -log_ratio.mean().detach()}  # type: ignore[union-attr]


def _cross_private(model: MultimodalVAE, w: Tensor, generator: torch.Generator | None) -> Tensor:
    """``[M(r), M(d), B, Dw]`` private latents for decoding ``x_d`` in stratum ``r``: ``w_r`` on the
    diagonal; off it, an auxiliary-prior draw (or, without it, ``d``'s own posterior draw: the naive
    partitioned MMVAE)."""
    m, batch, dw = w.shape
    if model.aux_log_scale is not None:
        other = rsample(model.latent_family, w.new_zeros(m, m, batch, dw), model.aux_scale()[None, :, None, :].expand(m, m, batch, dw),
                        generator=generator)
    else:
        other = w.unsqueeze(0).expand(m, m, batch, dw)
    diag = torch.eye(m, dtype=torch.bool, device=w.device)[:, :, None, None]
    return torch.where(diag, w.unsqueeze(1).expand(m, m, batch, dw), other)


def mmvaeplus_elbo(model: MultimodalVAE, inputs: Mapping[str, Tensor], *, beta: float,
                   generator: torch.Generator | None = None, amp: bool = False) -> tuple[Tensor, Logs]:
    """Negative MMVAE+ ELBO (see the module docstring)."""
    family = model.latent_family
    mods = model.modality_names
    ex = model.experts(inputs, mods, amp=amp)
    assert ex.private_loc is not None and ex.private_scale is not None
    z = rsample(family, ex.loc, ex.scale, generator=generator)  # [M(r), B, D]
    w = rsample(family, ex.private_loc, ex.private_scale, generator=generator)  # [M(r), B, Dw]
    m = len(mods)
    latent = torch.cat([z.unsqueeze(1).expand(m, m, *z.shape[1:]), _cross_private(model, w, generator)], dim=-1)
    ll = sum(model.log_likelihood(inputs[d], model.decode(latent[:, j], d, amp=amp)) for j, d in enumerate(mods))  # [M(r), B]
    log_ratio = (_prior_log_prob(model, z) + log_prob(family, w, w.new_zeros(()), w.new_ones(())).sum(-1)
                 - mixture_log_prob(family, z, ex.loc, ex.scale)
                 - log_prob(family, w, ex.private_loc, ex.private_scale).sum(-1))
    lw = ll + beta * log_ratio
    return -lw.mean(), {"recon": -ll.mean().detach(), "kl": -log_ratio.mean().detach()}  # type: ignore[union-attr]


def log_importance_weights(model: MultimodalVAE, inputs: Mapping[str, Tensor], *, num_samples: int,
                           generator: torch.Generator | None = None) -> Tensor:
    """``[K, B]`` ``log p(x̄ | z) + log p(z) − log q(z | x̄)``, ``q`` the joint posterior given every
    modality: the full-set product of experts (MVAE, MoPoE) or the mixture of the unimodal
    posteriors (MMVAE; MMVAE+ with each ``w_m ~ q(w_m | x_m)``)."""
    mods = model.modality_names
    ex = model.experts(inputs, mods)
    k, batch = num_samples, ex.loc.shape[1]
    if model.config.aggregation == "poe":
        full = torch.ones(1, len(mods), device=ex.loc.device)
        flags = model.prior_expert_flags([mods]).to(ex.loc.device)
        loc, scale = (t[0] for t in product_of_experts(full, ex.loc, ex.scale, prior_expert=flags))
        z = rsample("gaussian", loc, scale, generator=generator, sample_shape=(k,))  # [K, B, D]
        log_w = _prior_log_prob(model, z) - log_prob("gaussian", z, loc, scale).sum(-1)
    else:
        member = torch.randint(len(mods), (k, batch), generator=generator, device=ex.loc.device)
        b = torch.arange(batch, device=ex.loc.device)
        z = rsample(model.latent_family, ex.loc[member, b], ex.scale[member, b], generator=generator)
        log_w = _prior_log_prob(model, z) - mixture_log_prob(model.latent_family, z, ex.loc, ex.scale)
    latents = {m: z for m in mods}
    if ex.private_loc is not None and ex.private_scale is not None:
        family = model.latent_family
        w = rsample(family, ex.private_loc, ex.private_scale, generator=generator, sample_shape=(k,))  # [K, M, B, Dw]
        log_w = log_w + (log_prob(family, w, w.new_zeros(()), w.new_ones(()))
                         - log_prob(family, w, ex.private_loc, ex.private_scale)).sum(-1).sum(1)
        latents = {m: torch.cat([z, w[:, i]], dim=-1) for i, m in enumerate(mods)}
    for m in mods:
        log_w = log_w + model.log_likelihood(inputs[m], model.decode(latents[m], m))
    return log_w
