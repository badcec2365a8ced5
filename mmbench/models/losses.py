"""Contrastive losses of the identifiability papers, written for speed and numerical safety.

All functions take embeddings ``[B, d]`` and return a scalar (mean over the batch). They are
computed in float32 even under autocast: distance matrices in half precision lose the small
differences the identifiability results live on.

Notation: ``a_i = h_1(x_1^i)``, ``b_i = h_2(x_2^i)`` are the two modalities' embeddings of the
``i``-th positive pair, ``τ`` the temperature, ``B`` the batch size.

* :func:`infonce` — symmetric cross-modal InfoNCE (CLIP): ``½ (CE(S/τ, I) + CE(Sᵀ/τ, I))``.
* :func:`ntxent` — NT-Xent (SimCLR layout): intra- and cross-modal negatives, cosine, τ = 1.
* :func:`lp_infonce` — cl-ica's distance-based InfoNCE with in-batch, anchor-side negatives.
* :func:`independent_negatives_infonce` — the multimodal identifiability / misalignment papers'
  loss as their code trains it (cl-ica ``LpSimCLRLoss``): same-modality negatives from an
  independent batch, symmetrised.
* :class:`ContrastiveLoss` — one module that applies any of them to a dict of M ≥ 2 modalities,
  summing over modality pairs, with an optional learnable temperature.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmbench.errors import InvalidConfigError, did_you_mean

__all__ = [
    "LOSSES",
    "ContrastiveLoss",
    "independent_negatives_infonce",
    "infonce",
    "lp_infonce",
    "ntxent",
    "pairwise_similarity",
]

SIMILARITIES = ("cosine", "dot", "lp")


def _check_pair(a: Tensor, b: Tensor, what: str) -> None:
    if a.ndim != 2 or b.ndim != 2:
        raise InvalidConfigError(f"{what}: embeddings must be [batch, dim], got {tuple(a.shape)} and {tuple(b.shape)}.")
    if a.shape[1] != b.shape[1]:
        raise InvalidConfigError(
            f"{what}: embedding sizes differ ({a.shape[1]} vs {b.shape[1]}); every modality's encoder "
            "must output the same encoding size."
        )


def _lp_distance(a: Tensor, b: Tensor, *, p: float, power: bool) -> Tensor:
    """``D_ij = ‖a_i − b_j‖_p^p`` (``power=True``) or ``‖a_i − b_j‖_p``, shape ``[len(a), len(b)]``.

    ``p = 2, power = True`` uses ``‖a‖² + ‖b‖² − 2 a·b`` (one matmul, no ``B × B × d`` temporary,
    which is what makes the reference loss slow at batch 6144).
    """
    if p == 2 and power:
        sq = (a * a).sum(1, keepdim=True) + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
        return sq.clamp_min(0.0)
    d = torch.cdist(a, b, p=p)
    return d.pow(p) if power else d


def pairwise_similarity(a: Tensor, b: Tensor, *, similarity: str = "cosine", p: float = 2.0, power: bool = True) -> Tensor:
    """Similarity matrix ``S_ij = sim(a_i, b_j)``.

    Args:
        a, b: embeddings ``[n, d]`` and ``[m, d]``.
        similarity: ``"cosine"`` (``a·b / ‖a‖‖b‖``), ``"dot"`` (``a·b``) or ``"lp"``
            (``−‖a − b‖_p^p``, or ``−‖a − b‖_p`` when ``power=False``).
        p, power: the norm of ``"lp"``.
    """
    if similarity == "cosine":
        return F.normalize(a, dim=1) @ F.normalize(b, dim=1).T
    if similarity == "dot":
        return a @ b.T
    if similarity == "lp":
        return -_lp_distance(a, b, p=p, power=power)
    raise InvalidConfigError(f"Unknown similarity {similarity!r}.{did_you_mean(similarity, SIMILARITIES)} Choose one of {SIMILARITIES}.")


def _pair_similarity(a: Tensor, b: Tensor, *, similarity: str, p: float, power: bool) -> Tensor:
    """Row-wise ``sim(a_i, b_i)``, shape ``[B]``."""
    if similarity == "cosine":
        return F.cosine_similarity(a, b, dim=1)
    if similarity == "dot":
        return (a * b).sum(1)
    diff = (a - b).abs()
    if p == 2 and power:
        return -(diff * diff).sum(1)
    d = diff.pow(p).sum(1)
    return -(d if power else d.pow(1.0 / p))


def infonce(a: Tensor, b: Tensor, *, tau: float | Tensor = 0.07, similarity: str = "cosine", p: float = 2.0, power: bool = True) -> Tensor:
    r"""Symmetric cross-modal InfoNCE (CLIP).

    With ``S_ij = sim(a_i, b_j) / τ``:

    .. math::
        L = \tfrac12 \Big[ -\tfrac1B \sum_i \log \frac{e^{S_{ii}}}{\sum_j e^{S_{ij}}}
                          -\tfrac1B \sum_j \log \frac{e^{S_{jj}}}{\sum_i e^{S_{ij}}} \Big]

    Negatives are the other modality's in-batch embeddings only.

    Args:
        a, b: embeddings ``[B, d]`` of the two modalities (row ``i`` is a positive pair).
        tau: temperature (a float, or a tensor for a learnable one).
        similarity, p, power: see :func:`pairwise_similarity`.
    """
    _check_pair(a, b, "infonce")
    logits = pairwise_similarity(a.float(), b.float(), similarity=similarity, p=p, power=power) / tau
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def ntxent(a: Tensor, b: Tensor, *, tau: float | Tensor = 1.0, similarity: str = "cosine", p: float = 2.0, power: bool = True) -> Tensor:
    r"""NT-Xent (SimCLR layout) with intra- and cross-modal negatives.

    Stack ``u = [a; b]`` (``2B`` rows); the positive of ``u_k`` is ``u_{k±B}``. With
    ``S_kl = sim(u_k, u_l) / τ`` and the self-similarity masked out:

    .. math::
        L = -\frac{1}{2B} \sum_{k=1}^{2B} \log \frac{e^{S_{k,k±B}}}{\sum_{l \neq k} e^{S_{kl}}}

    so each anchor sees ``B − 1`` same-modality and ``B − 1`` cross-modal negatives. This is
    what the reference code of the multimodal-identifiability and misalignment papers trains on
    images/text (cosine similarity, τ = 1).
    """
    _check_pair(a, b, "ntxent")
    n = len(a)
    u = torch.cat([a.float(), b.float()], dim=0)
    logits = pairwise_similarity(u, u, similarity=similarity, p=p, power=power) / tau
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=u.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(u.device)
    return F.cross_entropy(logits, target)


def lp_infonce(
    anchor: Tensor,
    positive: Tensor,
    negatives: Tensor | None = None,
    *,
    tau: float | Tensor = 1.0,
    similarity: str = "lp",
    p: float = 2.0,
    power: bool = True,
) -> Tensor:
    r"""cl-ica's InfoNCE with a general similarity (δ-InfoNCE; Zimmermann et al. 2021, Eq. 1/6).

    With ``pos_i = sim(anchor_i, positive_i)`` and ``neg_ij = sim(anchor_i, negatives_j)``:

    .. math::
        L = \frac1B \sum_i \Big[ -\frac{pos_i}{τ} + \log\Big( e^{pos_i/τ} + \sum_j e^{neg_{ij}/τ} \Big) \Big]

    ``similarity="lp"``: ``sim = −‖·‖_p^p`` (p = 1 "Laplace", p = 2 "Normal"); ``"dot"`` is the
    sphere/vMF loss (normalise the embeddings in the encoder). The positive is in the
    denominator. ``negatives=None`` uses the anchor batch itself, as the reference code's
    ``torch.roll`` trick does: ``B − 1`` genuine negatives plus the anchor's own (constant) term.
    Not symmetrised.
    """
    _check_pair(anchor, positive, "lp_infonce")
    a, b = anchor.float(), positive.float()
    neg = a if negatives is None else negatives.float()
    _check_pair(a, neg, "lp_infonce negatives")
    pos = _pair_similarity(a, b, similarity=similarity, p=p, power=power) / tau
    negs = pairwise_similarity(a, neg, similarity=similarity, p=p, power=power) / tau
    lse = torch.logsumexp(torch.cat([negs, pos[:, None]], dim=1), dim=1)
    return (lse - pos).mean()


def independent_negatives_infonce(
    a: Tensor,
    b: Tensor,
    a_neg: Tensor,
    b_neg: Tensor,
    *,
    tau: float | Tensor = 1.0,
    similarity: str = "lp",
    p: float = 2.0,
    power: bool = True,
) -> Tensor:
    r"""The multimodal identifiability / misalignment papers' loss as their code trains it.

    cl-ica's ``LpSimCLRLoss(p=2, τ=1, α=½, simclr_denominator=True, pow=True)`` applied in both
    directions, with negatives from an **independent** batch ``(a′, b′)`` of the same modality:

    .. math::
        L_{1→2} = \frac1B \sum_i \Big[ \frac{d(a_i, b_i)}{τ}
                  + \log\Big( e^{-d(a_i, b_i)/τ} + \sum_j e^{-d(a_i, a'_j)/τ} \Big) \Big],
        \qquad L = \tfrac12 (L_{1→2} + L_{2→1})

    with ``d = ‖·‖_p^p`` (``similarity="lp"``). The reference uses log-*mean*-exp, which differs
    by the constant ``log(B + 1)``; this function uses log-sum-exp (same gradients).
    """
    kw = dict(tau=tau, similarity=similarity, p=p, power=power)
    return 0.5 * (lp_infonce(a, b, a_neg, **kw) + lp_infonce(b, a, b_neg, **kw))


# name → (function, needs an independent negative batch)
LOSSES: dict[str, tuple[object, bool]] = {
    "infonce": (infonce, False),
    "ntxent": (ntxent, False),
    "lp-infonce": (lp_infonce, False),
    "independent-infonce": (independent_negatives_infonce, True),
}
_DEFAULTS: dict[str, dict[str, object]] = {
    "infonce": {"similarity": "cosine", "tau": 0.07},
    "ntxent": {"similarity": "cosine", "tau": 1.0},
    "lp-infonce": {"similarity": "lp", "tau": 1.0, "p": 2.0},
    "independent-infonce": {"similarity": "lp", "tau": 1.0, "p": 2.0},
}


class ContrastiveLoss(nn.Module):
    """Any loss of :data:`LOSSES` over M ≥ 2 modalities (summed over modality pairs).

    Args:
        name: ``"infonce"``, ``"ntxent"``, ``"lp-infonce"`` or ``"independent-infonce"``.
        tau: temperature (default: 0.07 for ``infonce``, else 1).
        learn_tau: learn ``log τ`` (CLIP-style; clamped to τ ≥ 0.01).
        similarity: ``"cosine"``, ``"dot"`` or ``"lp"`` (defaults per loss, see ``_DEFAULTS``).
        p, power: the L_p distance of ``"lp"`` (``‖·‖_p^p`` when ``power``).

    Example:
        >>> loss = ContrastiveLoss("independent-infonce")
        >>> value = loss({"x": zx, "t": zt}, negatives={"x": zx2, "t": zt2})
    """

    def __init__(
        self,
        name: str = "infonce",
        *,
        tau: float | None = None,
        learn_tau: bool = False,
        similarity: str | None = None,
        p: float | None = None,
        power: bool = True,
    ) -> None:
        super().__init__()
        if name not in LOSSES:
            raise InvalidConfigError(f"Unknown loss {name!r}.{did_you_mean(name, LOSSES)} Choose one of {list(LOSSES)}.")
        defaults = _DEFAULTS[name]
        self.name = name
        self.similarity = str(similarity or defaults["similarity"])
        if self.similarity not in SIMILARITIES:
            raise InvalidConfigError(f"Unknown similarity {self.similarity!r}; choose one of {SIMILARITIES}.")
        self.p = float(p if p is not None else defaults.get("p", 2.0))
        if self.p < 1:
            raise InvalidConfigError(f"p must be >= 1, got {self.p}.")
        self.power = bool(power)
        tau = float(tau if tau is not None else defaults["tau"])  # type: ignore[arg-type]
        if not tau > 0:
            raise InvalidConfigError(f"tau must be > 0, got {tau}.")
        self.learn_tau = bool(learn_tau)
        if learn_tau:
            self.log_tau = nn.Parameter(torch.tensor(math.log(tau)))
        else:
            self.register_buffer("log_tau", torch.tensor(math.log(tau)), persistent=False)
        self._fn, self.needs_negatives = LOSSES[name]

    @property
    def tau(self) -> Tensor:
        return self.log_tau.exp().clamp_min(0.01)

    def forward(self, embeddings: Mapping[str, Tensor], negatives: Mapping[str, Tensor] | None = None) -> Tensor:
        """Sum over the ``M(M−1)/2`` modality pairs of the pairwise loss (M = 2: the loss itself)."""
        keys = list(embeddings)
        if len(keys) < 2:
            raise InvalidConfigError(f"A contrastive loss needs at least 2 modalities, got {keys}.")
        if self.needs_negatives and (negatives is None or set(negatives) != set(keys)):
            raise InvalidConfigError(
                f"Loss {self.name!r} needs an independent negative batch for every modality {keys}, "
                f"got {None if negatives is None else list(negatives)}."
            )
        kw = dict(tau=self.tau, similarity=self.similarity, p=self.p, power=self.power)
        total = embeddings[keys[0]].new_zeros((), dtype=torch.float32)
        pairs = list(itertools.combinations(keys, 2))
        for k1, k2 in pairs:
            if self.needs_negatives:
                assert negatives is not None
                total = total + self._fn(embeddings[k1], embeddings[k2], negatives[k1], negatives[k2], **kw)  # type: ignore[operator]
            else:
                total = total + self._fn(embeddings[k1], embeddings[k2], **kw)  # type: ignore[operator]
        return total

    def extra_repr(self) -> str:
        return f"{self.name!r}, similarity={self.similarity!r}, p={self.p}, learn_tau={self.learn_tau}"
