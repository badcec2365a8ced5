"""Losses against naive reference implementations (explicit broadcasting, as the papers' code)."""

from __future__ import annotations

import math

import pytest
import torch

from mmbench.errors import InvalidConfigError
from mmbench.models.losses import (
    ContrastiveLoss,
    independent_negatives_infonce,
    infonce,
    lp_infonce,
    ntxent,
    pairwise_similarity,
)


def _emb(n: int = 16, d: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, d, generator=g, dtype=torch.float64)


def _naive_lp(a: torch.Tensor, b: torch.Tensor, neg: torch.Tensor, p: float, tau: float) -> torch.Tensor:
    # cl-ica's LpSimCLRLoss(simclr_denominator=True, pow=True, alpha=0.5), with log-sum-exp.
    negd = torch.norm(a[:, None] - neg[None], p=p, dim=-1) ** p
    pos = torch.norm(a - b, p=p, dim=-1) ** p
    both = torch.cat([negd, pos[:, None]], dim=1)
    return (pos / tau + torch.logsumexp(-both / tau, dim=1)).mean()


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_lp_infonce_matches_naive(p: float) -> None:
    a, b = _emb()
    neg, _ = _emb(seed=1)
    assert torch.allclose(lp_infonce(a, b, neg, p=p, tau=0.5).double(), _naive_lp(a, b, neg, p, 0.5), atol=1e-4)
    # default negatives: the anchor batch itself (cl-ica's torch.roll trick)
    assert torch.allclose(lp_infonce(a, b, p=p).double(), _naive_lp(a, b, a, p, 1.0), atol=1e-4)


def test_lp_infonce_dot_similarity_is_clica_sphere_loss() -> None:
    a, b = _emb()
    pos = (a * b).sum(1)
    neg = a @ a.T
    expected = (-pos + torch.logsumexp(torch.cat([neg, pos[:, None]], 1), 1)).mean()
    assert torch.allclose(lp_infonce(a, b, similarity="dot").double(), expected, atol=1e-5)


def test_independent_negatives_is_symmetrised() -> None:
    a, b = _emb()
    a2, b2 = _emb(seed=2)
    expected = 0.5 * (_naive_lp(a, b, a2, 2.0, 1.0) + _naive_lp(b, a, b2, 2.0, 1.0))
    assert torch.allclose(independent_negatives_infonce(a, b, a2, b2).double(), expected, atol=1e-4)


def test_infonce_matches_naive_and_limits() -> None:
    a, b = _emb()
    tau = 0.1
    s = torch.nn.functional.normalize(a, dim=1) @ torch.nn.functional.normalize(b, dim=1).T / tau
    naive = 0.5 * (-(s.diag() - torch.logsumexp(s, 1)).mean() - (s.diag() - torch.logsumexp(s, 0)).mean())
    assert torch.allclose(infonce(a, b, tau=tau).double(), naive, atol=1e-5)
    # perfectly aligned, well separated → ≈ 0; identical embeddings everywhere → log B
    eye = torch.eye(8)
    assert float(infonce(eye, eye, tau=0.01)) < 1e-3
    same = torch.ones(8, 3)
    assert math.isclose(float(infonce(same, same)), math.log(8), rel_tol=1e-5)


def test_ntxent_matches_naive() -> None:
    a, b = _emb(n=6)
    u = torch.nn.functional.normalize(torch.cat([a, b]), dim=1)
    s = u @ u.T
    n = 6
    total = 0.0
    for k in range(2 * n):
        pos = (k + n) % (2 * n)
        denom = sum(math.exp(float(s[k, j])) for j in range(2 * n) if j != k)
        total += -(float(s[k, pos]) - math.log(denom))
    assert math.isclose(float(ntxent(a, b)), total / (2 * n), rel_tol=1e-5)


def test_pairwise_similarity_kinds() -> None:
    a, b = _emb(n=5)
    assert torch.allclose(pairwise_similarity(a, b, similarity="lp", p=2), -torch.cdist(a, b) ** 2, atol=1e-6)
    assert torch.allclose(pairwise_similarity(a, b, similarity="lp", p=2, power=False), -torch.cdist(a, b), atol=1e-6)
    with pytest.raises(InvalidConfigError, match="Unknown similarity"):
        pairwise_similarity(a, b, similarity="cos")


def test_contrastive_loss_sums_pairs_and_learns_tau() -> None:
    a, b = _emb()
    c, _ = _emb(seed=3)
    loss = ContrastiveLoss("infonce", learn_tau=True)
    three = loss({"a": a.float(), "b": b.float(), "c": c.float()})
    pairs = sum(float(infonce(x.float(), y.float(), tau=0.07)) for x, y in ((a, b), (a, c), (b, c)))
    assert math.isclose(float(three.detach()), pairs, rel_tol=1e-4)
    three.backward()
    assert loss.log_tau.grad is not None


def test_contrastive_loss_errors() -> None:
    a, b = _emb()
    with pytest.raises(InvalidConfigError, match="Did you mean"):
        ContrastiveLoss("infonse")
    with pytest.raises(InvalidConfigError, match="independent negative batch"):
        ContrastiveLoss("independent-infonce")({"x": a, "t": b})
    with pytest.raises(InvalidConfigError, match="embedding sizes differ"):
        ContrastiveLoss("ntxent")({"x": a, "t": b[:, :3]})
    with pytest.raises(InvalidConfigError, match="at least 2 modalities"):
        ContrastiveLoss("ntxent")({"x": a})
    with pytest.raises(InvalidConfigError, match="tau"):
        ContrastiveLoss("ntxent", tau=0.0)


def test_losses_are_float32_under_half_inputs() -> None:
    a, b = _emb()
    assert lp_infonce(a.bfloat16(), b.bfloat16()).dtype == torch.float32
