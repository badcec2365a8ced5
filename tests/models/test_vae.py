"""Multimodal VAEs: densities and the subset PoE against closed forms, the objectives against
independent loop implementations, bad configs, and each model training a few steps on tiny fake
PolyMNIST (with a local loop here: the package has one trainer)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import mmbench
from mmbench.errors import InvalidConfigError
from mmbench.harness.protocols import Encoder, Generator, load_model
from mmbench.models.trainable import MODEL_FAMILIES, Trainable, step_generator
from mmbench.models.vae import VAE_RECIPES, MultimodalVAE, VAEConfig, build_vae
from mmbench.models.vae import distributions as D
from mmbench.models.vae.objectives import balanced_assignment
from mmbench.testing.mnist import write_fake_mnist

MODS = ("m0", "m1", "m2")
TINY_RECIPES = ("mvae-tiny", "mmvae-tiny", "mmvae-dreg-tiny", "mopoe-tiny", "mmvaeplus-tiny")


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks: one torch thread is faster, and much faster when the cores are shared."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def polymnist(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Tiny PolyMNIST (3 modalities) from fake MNIST: columns of the train and test splits."""
    root = tmp_path_factory.mktemp("vae-polymnist")
    data_dir = write_fake_mnist(root / "mnist", n_train=300, n_test=100)
    kw = {"data_dir": data_dir, "cache_dir": root / "cache", "num_modalities": 3, "val_size": 50,
          "split_sizes": {"train": 128, "val": 16, "test": 64}, "shard_size": 128}
    out = {}
    for split in ("train", "test"):
        ds = mmbench.load("polymnist", split=split, **kw)
        out[split] = {c: np.array(ds.column(c)) for c in (*MODS, "latents.digit")}
    out["modalities"] = mmbench.builder("polymnist", **kw).modalities()
    return out


def _batch(cols: dict, start: int = 0, n: int = 32) -> dict[str, torch.Tensor]:
    return {m: torch.from_numpy(cols[m][start : start + n]) for m in MODS}


def _model(name: str, modalities, **changes) -> MultimodalVAE:
    cfg = VAE_RECIPES.get(name).model.replace(**changes)
    return build_vae(cfg, modalities, dataset_id="polymnist-fake", seed=0)


# ============================================================================ densities, PoE
def test_subset_enumeration_and_mask() -> None:
    subsets = D.enumerate_subsets(("a", "b", "c", "d", "e"))
    assert len(subsets) == 31 and len(set(subsets)) == 31
    assert subsets[:5] == (("a",), ("b",), ("c",), ("d",), ("e",)) and subsets[-1] == ("a", "b", "c", "d", "e")
    assert [len(s) for s in subsets] == sorted(len(s) for s in subsets)
    mask = D.subset_mask(subsets, "abcde")
    assert mask.shape == (31, 5) and mask.sum().item() == sum(len(s) for s in subsets) == 80
    with pytest.raises(InvalidConfigError, match=r"unknown modality 'm9'.*Did you mean.*modalities: \['m0', 'm1'\]"):
        D.subset_mask([("m0", "m9")], ("m0", "m1"))
    with pytest.raises(InvalidConfigError, match="empty"):
        D.subset_mask([()], ("m0", "m1"))
    with pytest.raises(InvalidConfigError, match="twice"):
        D.subset_mask([("m0", "m0")], ("m0", "m1"))


def test_product_of_experts_matches_the_closed_form_and_the_normalised_product() -> None:
    loc = torch.tensor([[[0.5]], [[-1.0]]])  # [M=2, B=1, D=1]
    scale = torch.tensor([[[0.8]], [[1.5]]])
    mask = D.subset_mask([("a",), ("b",), ("a", "b")], ("a", "b"))
    out_loc, out_scale = D.product_of_experts(mask, loc, scale, prior_expert=torch.tensor([0.0, 0.0, 1.0]))
    t = 1 / 0.8**2 + 1 / 1.5**2 + 1.0  # prior expert N(0, 1) adds precision 1 and mean 0
    assert out_loc[2, 0, 0].item() == pytest.approx((0.5 / 0.8**2 - 1.0 / 1.5**2) / t, rel=1e-5)
    assert out_scale[2, 0, 0].item() == pytest.approx(t**-0.5, rel=1e-5)
    assert out_loc[0, 0, 0].item() == pytest.approx(0.5, rel=1e-5) and out_scale[1, 0, 0].item() == pytest.approx(1.5, rel=1e-5)
    # The product of the three densities, normalised on a grid, is that Gaussian.
    grid = torch.linspace(-8, 8, 20001, dtype=torch.float64)
    logp = sum(D.log_prob("gaussian", grid, torch.tensor(mu, dtype=torch.float64), s) for mu, s in ((0.5, 0.8), (-1.0, 1.5), (0.0, 1.0)))
    p = torch.softmax(logp, 0)
    mean = (p * grid).sum()
    std = ((p * (grid - mean) ** 2).sum()).sqrt()
    assert mean.item() == pytest.approx(out_loc[2, 0, 0].item(), abs=1e-4)
    assert std.item() == pytest.approx(out_scale[2, 0, 0].item(), abs=1e-4)


def test_batched_poe_equals_a_loop_over_subsets() -> None:
    g = torch.Generator().manual_seed(0)
    loc, scale = torch.randn(4, 6, 5, generator=g), torch.rand(4, 6, 5, generator=g) + 0.1
    subsets = D.enumerate_subsets(range(4))
    mask = D.subset_mask([tuple(str(i) for i in s) for s in subsets], [str(i) for i in range(4)])
    prior = torch.tensor([float(len(s) == 4) for s in subsets])
    bl, bs = D.product_of_experts(mask, loc, scale, prior_expert=prior)
    for i, s in enumerate(subsets):
        prec = [1 / (scale[m] ** 2 + D.PRECISION_EPS) for m in s] + ([torch.ones_like(loc[0])] if len(s) == 4 else [])
        mus = [loc[m] for m in s] + ([torch.zeros_like(loc[0])] if len(s) == 4 else [])
        total = sum(prec)
        assert torch.allclose(bl[i], sum(p * m for p, m in zip(prec, mus, strict=True)) / total, atol=1e-6)
        assert torch.allclose(bs[i], total.rsqrt(), atol=1e-6)


@pytest.mark.parametrize("family", ["gaussian", "laplace"])
def test_kl_closed_form_matches_monte_carlo(family: str) -> None:
    g = torch.Generator().manual_seed(1)
    loc, scale, prior_scale = torch.tensor([0.7, -1.2]), torch.tensor([0.5, 1.3]), torch.tensor([1.0, 2.0])
    z = D.rsample(family, loc, scale, generator=g, sample_shape=(400_000,))
    mc = (D.log_prob(family, z, loc, scale) - D.log_prob(family, z, torch.zeros(2), prior_scale)).mean(0)
    assert torch.allclose(D.kl_to_prior(family, loc, scale, prior_scale), mc, atol=0.01)
    # Draws are reproducible from the generator and have the family's moments.
    again = D.rsample(family, loc, scale, generator=torch.Generator().manual_seed(1), sample_shape=(400_000,))
    assert torch.equal(z, again)
    spread = (z - loc).abs().mean(0) if family == "laplace" else (z - loc).std(0)
    assert torch.allclose(z.mean(0), loc, atol=0.01) and torch.allclose(spread, scale, rtol=0.01)


def test_mixture_log_prob_is_the_log_mean_of_the_components() -> None:
    g = torch.Generator().manual_seed(2)
    loc, scale, z = torch.randn(3, 4, 2, generator=g), torch.rand(3, 4, 2, generator=g) + 0.2, torch.randn(5, 4, 2, generator=g)
    got = D.mixture_log_prob("laplace", z, loc, scale)
    dens = torch.stack([D.log_prob("laplace", z, loc[m], scale[m]).sum(-1).exp() for m in range(3)]).mean(0)
    assert got.shape == (5, 4) and torch.allclose(got, dens.log(), atol=1e-5)


def test_balanced_assignment() -> None:
    a = balanced_assignment(256, 31, torch.device("cpu"))
    counts = torch.bincount(a, minlength=31)
    assert counts.min() >= 8 and counts.max() <= 9 and counts.sum() == 256 and torch.all(a.diff() >= 0)


# ============================================================================ configs
@pytest.mark.parametrize(("changes", "match"), [
    ({"beta": 0.0}, r"VAEConfig.beta must be > 0\.0, got 0\.0"),
    ({"beta": -1}, "beta must be"),
    ({"beta": float("nan")}, "beta must be finite"),
    ({"kind": "mopo"}, "Did you mean 'mopoe'"),
    ({"kind": "mopoe", "private_dim": 4}, "MMVAE\\+ needs a private latent"),
    ({"kind": "mmvaeplus"}, "private_dim"),
    ({"kind": "mopoe", "posterior": "laplace"}, "Gaussian experts"),
    ({"kind": "mopoe", "objective": "dreg"}, "MMVAE's original objective"),
    ({"kind": "mmvae", "subsets": [["m0"]]}, "Remove subsets"),
    ({"kind": "mvae", "num_samples": 5}, "num_samples=5 needs objective"),
    ({"kind": "mopoe", "likelihood": "bernoulli"}, r"likelihood must be one of \['gaussian', 'laplace'\], got 'bernoulli'"),
    ({"kind": "mopoe", "networks": "resnet18"}, "Did you mean 'resnet'"),
    ({"kind": "mopoe", "learn_prior": True}, "prior expert"),
])
def test_bad_configs_are_refused(changes: dict, match: str) -> None:
    base = {"kind": "mopoe", "latent_dim": 4}
    with pytest.raises(InvalidConfigError, match=match):
        VAEConfig(**{**base, **changes})


def test_subsets_naming_unknown_modalities_are_refused(polymnist: dict) -> None:
    cfg = VAE_RECIPES.get("mopoe-tiny").model.replace(subsets=(("m0", "m7"),))
    with pytest.raises(InvalidConfigError, match=r"unknown modality 'm7'.*modalities: \['m0', 'm1', 'm2'\]"):
        build_vae(cfg, polymnist["modalities"])
    model = _model("mopoe-tiny", polymnist["modalities"])
    with pytest.raises(InvalidConfigError, match="Unknown source modality 'x'"):
        model.generate(_batch(polymnist["test"]), source=["x"], target="m0")
    with pytest.raises(InvalidConfigError, match="Unknown target modality 'm9'"):
        model.generate_subsets(_batch(polymnist["test"]), subsets=[("m0",)], targets=["m9"])
    with pytest.raises(InvalidConfigError, match="networks are for 28×28 images"):
        build_vae(cfg.replace(subsets=None), {"x": (10,), "y": (10,)})


def test_config_roundtrip_and_recipes() -> None:
    mopoe = VAE_RECIPES.get("mopoe-polymnist")
    assert (mopoe.model.latent_dim, mopoe.model.beta, mopoe.lr, mopoe.batch_size, mopoe.optimizer) == (512, 2.5, 5e-4, 256, "adam")
    plus = VAE_RECIPES.get("mmvaeplus-polymnist")
    assert (plus.model.latent_dim, plus.model.private_dim, plus.model.beta, plus.lr, plus.batch_size, plus.optimizer) == (32, 32, 2.5, 1e-3, 128, "amsgrad")
    assert plus.model.posterior == plus.model.likelihood == "laplace" and plus.model.networks == "resnet"
    assert mopoe.steps_for(55_000) == 300 * (55_000 // 256)
    for name in VAE_RECIPES.names():
        cfg = VAE_RECIPES.get(name).model
        assert VAEConfig.from_dict(cfg.to_dict()) == cfg, name
    with pytest.raises(InvalidConfigError, match="Did you mean .*'latent_dim'"):
        VAEConfig.from_dict({"kind": "mopoe", "latent_dims": 3})


# ============================================================================ objectives
def test_mopoe_with_the_full_set_only_equals_mvae(polymnist: dict) -> None:
    mods = polymnist["modalities"]
    mvae = _model("mvae-tiny", mods)
    mopoe = _model("mopoe-tiny", mods, subsets=(MODS,))
    assert mopoe.subsets == (MODS,) and mopoe.prior_expert.tolist() == [1.0]
    mopoe.load_state_dict(mvae.state_dict())
    batch = _batch(polymnist["train"])
    a, logs_a = mvae.training_loss(batch, step=1, generator=step_generator(0, 1))
    b, logs_b = mopoe.training_loss(batch, step=1, generator=step_generator(0, 1))
    assert torch.equal(a, b) and torch.equal(logs_a["kl"], logs_b["kl"])
    a.backward()
    b.backward()
    for (k, p), q in zip(mvae.named_parameters(), mopoe.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad), k


def test_mopoe_loss_equals_a_reference_style_loop_over_subsets(polymnist: dict) -> None:
    """The batched objective against an independent loop written as the MoPoE reference code."""
    model = _model("mopoe-tiny", polymnist["modalities"], beta=2.5)
    batch = _batch(polymnist["train"], n=20)
    got, logs = model.training_loss(batch, step=1, generator=torch.Generator().manual_seed(3))
    x = {m: batch[m].float() / 255 for m in MODS}
    mus, logvars = zip(*[model.encoders[m].head(model.encoders[m].trunk(x[m])).chunk(2, -1) for m in MODS], strict=True)
    subsets = [s for k in (1, 2, 3) for s in itertools.combinations(range(3), k)]
    kls, posts = [], []
    for s in subsets:
        mu_s = [mus[i] for i in s] + ([torch.zeros_like(mus[0])] if len(s) == 3 else [])
        lv_s = [logvars[i] for i in s] + ([torch.zeros_like(mus[0])] if len(s) == 3 else [])
        prec = [1 / (lv.exp() + 1e-8) for lv in lv_s]
        mu = sum(p * m for p, m in zip(prec, mu_s, strict=True)) / sum(prec)
        lv = torch.log(1 / sum(prec))
        posts.append((mu, lv))
        kls.append(-0.5 * (1 + lv - mu**2 - lv.exp()).sum(-1))
    kl = torch.stack(kls).mean(0)
    n = 20
    idx = torch.arange(n) * 7 // n  # contiguous, balanced chunks (the reference gives the last one the remainder)
    eps = torch.randn(n, 8, generator=torch.Generator().manual_seed(3))
    z = torch.stack([posts[idx[b]][0][b] + (0.5 * posts[idx[b]][1][b]).exp() * eps[b] for b in range(n)])
    rec = sum(-(torch.distributions.Laplace(model.decoders[m](z), 0.75).log_prob(x[m])).flatten(1).sum(1) for m in MODS)
    ref = (rec + 2.5 * kl).mean()
    assert torch.allclose(got, ref, rtol=1e-5) and torch.allclose(logs["kl"], kl.mean(), rtol=1e-5)


def test_dreg_gives_the_iwae_decoder_gradient_but_a_different_encoder_gradient(polymnist: dict) -> None:
    mods = polymnist["modalities"]
    dreg = _model("mmvae-dreg-tiny", mods)
    iwae = _model("mmvae-dreg-tiny", mods, objective="iwae")
    iwae.load_state_dict(dreg.state_dict())
    batch = _batch(polymnist["train"], n=8)
    for model in (dreg, iwae):
        loss, _ = model.training_loss(batch, step=1, generator=torch.Generator().manual_seed(5))
        loss.backward()
    for (k, p), q in zip(dreg.decoders.named_parameters(), iwae.decoders.parameters(), strict=True):
        # Equal up to float32 rounding: the log-weights are ~1e4 nats, so the weights carry ~1e-4 relative noise.
        assert (p.grad - q.grad).abs().max() <= 1e-3 * q.grad.abs().max(), k
    enc = [((p.grad - q.grad).abs().max() / q.grad.abs().max()).item()
           for p, q in zip(dreg.encoders.parameters(), iwae.encoders.parameters(), strict=True)]
    assert max(enc) > 1e-2


def test_kl_warmup_scales_beta(polymnist: dict) -> None:
    model = _model("mopoe-tiny", polymnist["modalities"], kl_warmup_steps=10, beta=2.0)
    batch = _batch(polymnist["train"])
    at = {s: model.training_loss(batch, step=s, generator=torch.Generator().manual_seed(0)) for s in (0, 5, 10)}
    for step, factor in ((0, 0.0), (5, 1.0), (10, 2.0)):
        loss, logs = at[step]
        assert logs["beta"].item() == pytest.approx(factor)
        assert loss.item() == pytest.approx((logs["recon"] + factor * logs["kl"]).item(), rel=1e-5)


def test_mvae_unimodal_elbos_add_terms(polymnist: dict) -> None:
    base = _model("mvae-tiny", polymnist["modalities"])
    sub = _model("mvae-tiny", polymnist["modalities"], unimodal_elbos=True)
    batch = _batch(polymnist["train"])
    a, _ = base.training_loss(batch, step=1, generator=torch.Generator().manual_seed(0))
    b, logs = sub.training_loss(batch, step=1, generator=torch.Generator().manual_seed(0))
    assert {"unimodal_recon", "unimodal_kl"} <= set(logs) and b.item() > a.item()


# ============================================================================ training, harness API
def _train(model: MultimodalVAE, cols: dict, *, steps: int, lr: float = 2e-3) -> list[float]:
    opt = torch.optim.Adam(model.module.parameters(), lr=lr)
    losses = []
    for step in range(1, steps + 1):
        start = (step * 32) % (len(cols["m0"]) - 32)
        loss, _ = model.training_loss(_batch(cols, start), step=step, generator=step_generator(0, step))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def _eval_loss(model: MultimodalVAE, batch: dict) -> float:
    with torch.no_grad():
        return model.training_loss(batch, step=10**6, generator=torch.Generator().manual_seed(0))[0].item()


def test_elbo_decreases_on_tiny_polymnist(polymnist: dict) -> None:
    model = _model("mopoe-tiny", polymnist["modalities"])
    held = _batch(polymnist["test"], n=64)
    before = _eval_loss(model, held)
    losses = _train(model, polymnist["train"], steps=25, lr=3e-3)
    assert all(math.isfinite(v) for v in losses)
    assert _eval_loss(model, held) < before - 0.02 * abs(before)


@pytest.mark.parametrize("name", TINY_RECIPES)
def test_each_model_trains_encodes_and_generates(name: str, polymnist: dict) -> None:
    mods = polymnist["modalities"]
    model = MODEL_FAMILIES.get(VAE_RECIPES.get(name).model.kind).build(VAE_RECIPES.get(name).model.to_dict(), mods,
                                                                       dataset_id="polymnist-fake", seed=0)
    assert isinstance(model, Trainable) and isinstance(model, Encoder) and isinstance(model, Generator)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    held = _batch(polymnist["test"], n=32)
    start = _eval_loss(model, held)
    losses = _train(model, polymnist["train"], steps=6)
    assert all(math.isfinite(v) for v in losses) and _eval_loss(model, held) < start
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    cfg = model.config
    z = model.encode(held, modality="m1")
    assert z.shape == (32, cfg.latent_dim) and z.dtype == torch.float32 and z.device.type == "cpu"
    assert model.encode_subset(held, source=MODS).shape == (32, cfg.latent_dim)
    if cfg.private_dim:
        assert model.encode(held, modality="m2", part="private").shape == (32, cfg.private_dim)
    else:
        with pytest.raises(InvalidConfigError, match="private"):
            model.encode(held, modality="m2", part="private")
    gen = model.generate(held, source=["m0", "m1"], target="m2", generator=torch.Generator().manual_seed(7))
    assert gen.shape == (32, 3, 28, 28) and gen.dtype == torch.uint8
    again = model.generate(held, source=["m0", "m1"], target="m2", generator=torch.Generator().manual_seed(7))
    assert torch.equal(gen, again)
    every = model.generate_subsets(held, generator=torch.Generator().manual_seed(7))
    assert set(every) == set(MODS) and every["m0"].shape == (7, 32, 3, 28, 28)
    prior = model.sample(5, generator=torch.Generator().manual_seed(1))
    assert {k: tuple(v.shape) for k, v in prior.items()} == {m: (5, 3, 28, 28) for m in MODS}
    lw = model.log_importance_weights(held, num_samples=4, generator=torch.Generator().manual_seed(2))
    assert lw.shape == (4, 32) and torch.isfinite(lw).all()
    card = model.card
    assert card.embedding_dim == cfg.latent_dim and card.trained_on == ("polymnist-fake",) and card.extra["generator"]


def test_generation_from_the_subset_posterior_is_the_batched_one(polymnist: dict) -> None:
    """generate_subsets (one pass over all subsets) equals decoding each subset's posterior mean."""
    model = _model("mopoe-tiny", polymnist["modalities"])
    held = _batch(polymnist["test"], n=16)
    subsets = [("m0",), ("m1", "m2"), MODS]
    ex = model.experts({m: model.prepare(held, m) for m in MODS}, MODS)
    loc, scale = model.subset_posteriors(ex, subsets)
    eps = torch.randn(loc.shape, generator=torch.Generator().manual_seed(4))
    out = model.generate_subsets(held, subsets=subsets, targets=["m1"], generator=torch.Generator().manual_seed(4))["m1"]
    for i, s in enumerate(subsets):
        mean = model.decode(loc[i] + scale[i] * eps[i], "m1")
        assert torch.equal(out[i], model.to_data(mean, "m1")), s
        enc = model.encode_subset(held, source=s)
        assert torch.allclose(enc, loc[i], atol=1e-6)


def test_mmvaeplus_cross_modal_private_latents_come_from_the_auxiliary_prior(polymnist: dict) -> None:
    model = _model("mmvaeplus-tiny", polymnist["modalities"])
    assert model.aux_log_scale is not None and model.aux_log_scale.shape == (3, 4) and model.aux_log_scale.requires_grad
    loss, _ = model.training_loss(_batch(polymnist["train"]), step=1, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert model.aux_log_scale.grad is not None and model.aux_log_scale.grad.abs().sum() > 0
    naive = _model("mmvaeplus-tiny", polymnist["modalities"], aux_prior=False)
    assert naive.aux_log_scale is None


def test_vectors_with_mlps_and_a_gaussian_likelihood() -> None:
    cfg = VAE_RECIPES.get("mopoe-numerical").model.replace(hidden=(16,), latent_dim=3)
    model = build_vae(cfg, {"x1": (15,), "x2": (15,)}, seed=0)
    g = torch.Generator().manual_seed(0)
    batch = {"x1": torch.randn(64, 15, generator=g), "x2": torch.randn(64, 15, generator=g)}
    before = _eval_loss(model, batch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(1, 31):
        loss, _ = model.training_loss(batch, step=step, generator=step_generator(0, step))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert _eval_loss(model, batch) < before
    gen = model.generate(batch, source=["x1"], target="x2", generator=torch.Generator().manual_seed(0))
    assert gen.shape == (64, 15) and gen.dtype == torch.float32


def test_save_and_load_as_a_harness_checkpoint(polymnist: dict, tmp_path: Path) -> None:
    model = _model("mmvaeplus-tiny", polymnist["modalities"])
    _train(model, polymnist["train"], steps=1)
    model.save(tmp_path / "ckpt")
    loaded = load_model(tmp_path / "ckpt")
    held = _batch(polymnist["test"], n=8)
    assert isinstance(loaded, MultimodalVAE) and loaded.card == model.card
    assert torch.equal(loaded.encode(held, modality="m0"), model.encode(held, modality="m0"))
    assert loaded.mmbench_source["weights_sha256"]
