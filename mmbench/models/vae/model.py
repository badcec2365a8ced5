"""One multimodal VAE class for MVAE, MMVAE, MoPoE-VAE and MMVAE+ (see :mod:`.config`).

:class:`MultimodalVAE` is, at once,

* a trainable model (:class:`mmbench.models.trainable.Trainable`): ``training_loss(batch, *, step,
  generator)`` computes the configured objective (:mod:`.objectives`);
* a harness ``Encoder``: ``encode(batch, *, modality)`` is the posterior mean of the shared latent
  given that modality (``part="private"``: MMVAE+'s private latent); ``encode_subset`` the mean of
  the posterior given any subset;
* a harness ``Generator``: ``generate(batch, *, source, target)`` decodes ``target`` from one draw
  of the posterior given the ``source`` modalities, ``generate_subsets`` does every subset in one
  batched pass, ``sample(n)`` draws from the prior.

Inputs are dataset columns: ``uint8`` images are scaled to [0, 1] (the references' ``ToTensor``),
and generations come back in the data's own type (``uint8`` images, ``float32`` vectors) from the
decoder mean, as the references' coherence and FID code uses it.

Example:
    >>> model = MultimodalVAE(VAE_RECIPES.get("mopoe-tiny").model, {"m0": (3, 28, 28), "m1": (3, 28, 28)})
    >>> loss, logs = model.training_loss(batch, step=1)
    >>> z = model.encode(batch, modality="m0")                          # [n, latent_dim]
    >>> x1 = model.generate(batch, source=["m0"], target="m1", generator=torch.Generator().manual_seed(0))
"""

from __future__ import annotations

import dataclasses
import os
import types
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmbench.errors import InvalidConfigError, SubmissionError, did_you_mean
from mmbench.models.trainable import ModelFamily
from mmbench.models.vae import objectives
from mmbench.models.vae.config import VAEConfig
from mmbench.models.vae.distributions import (
    enumerate_subsets,
    log_prob,
    product_of_experts,
    rsample,
    softmax_scale,
    subset_mask,
)
from mmbench.models.vae.networks import build_decoder, build_encoder

__all__ = ["FAMILIES", "Experts", "ModalitySpec", "MultimodalVAE", "build_vae"]

PARTS = ("shared", "private")


@dataclasses.dataclass(frozen=True)
class ModalitySpec:
    """Per-example ``shape`` and storage ``dtype`` of one modality (``"uint8"`` images are scaled to [0, 1])."""

    shape: tuple[int, ...]
    dtype: str = "float32"

    @classmethod
    def of(cls, spec: Any) -> ModalitySpec:
        """From a shape, a ``{"shape", "dtype"}`` mapping, a builder ``Modality`` or a spec."""
        if isinstance(spec, ModalitySpec):
            return spec
        if isinstance(spec, Mapping):
            return cls(tuple(int(s) for s in spec["shape"]), str(spec.get("dtype", "float32")))
        if hasattr(spec, "shape") and hasattr(spec, "dtype"):
            return cls(tuple(int(s) for s in spec.shape), str(spec.dtype))
        return cls(tuple(int(s) for s in spec))

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype}


@dataclasses.dataclass
class Experts:
    """Unimodal posteriors of ``modalities``, stacked: ``loc``/``scale`` ``[M, B, D]`` (shared),
    ``private_loc``/``private_scale`` ``[M, B, Dw]`` (MMVAE+) or ``None``."""

    modalities: tuple[str, ...]
    loc: Tensor
    scale: Tensor
    private_loc: Tensor | None = None
    private_scale: Tensor | None = None


class MultimodalVAE(nn.Module):
    """A mixture-of-subsets multimodal VAE (MVAE, MMVAE, MoPoE-VAE or MMVAE+).

    Args:
        config: a :class:`VAEConfig` (or its dict).
        modalities: modality → per-example shape, ``{"shape", "dtype"}`` mapping or builder
            ``Modality`` (at least two; order = the model's modality order).
        dataset_id: the dataset it is trained on (recorded in the card).
        seed: recorded in the card's revision (the family's ``build`` also seeds the init with it).

    Raises:
        InvalidConfigError: fewer than two modalities, subsets naming unknown modalities, or
            networks that do not fit the modalities' shapes.
    """

    family: str

    def __init__(self, config: VAEConfig | Mapping[str, Any], modalities: Mapping[str, Any], *, dataset_id: str = "",
                 seed: int = 0) -> None:
        super().__init__()
        cfg = config if isinstance(config, VAEConfig) else VAEConfig.from_dict(config)
        self.config = cfg
        self.family = cfg.kind
        self.dataset_id = dataset_id
        self.seed = int(seed)
        self.trained_steps = 0
        self.specs = {str(m): ModalitySpec.of(s) for m, s in modalities.items()}
        if len(self.specs) < 2:
            raise InvalidConfigError(f"A multimodal VAE needs at least 2 modalities, got {list(self.specs)}.")
        self.modality_names = tuple(self.specs)
        net_kw: dict[str, Any] = {"channels": cfg.channels, "hidden": cfg.hidden}
        self.encoders = nn.ModuleDict({
            m: build_encoder(cfg.networks, s.shape, cfg.latent_dim, cfg.private_dim, hidden_dim=cfg.hidden_dim, **net_kw)
            for m, s in self.specs.items()})
        self.decoders = nn.ModuleDict({
            m: build_decoder(cfg.networks, s.shape, cfg.latent_dim + cfg.private_dim, **net_kw) for m, s in self.specs.items()})
        self.subsets = self._resolve_subsets(cfg)
        self.register_buffer("subset_mask", subset_mask(self.subsets, self.modality_names), persistent=False)
        self.register_buffer("prior_expert", self.prior_expert_flags(self.subsets), persistent=False)
        # Learned scales: the prior's (Shi et al.'s --learn-prior) and MMVAE+'s auxiliary priors.
        self.prior_logits = nn.Parameter(torch.zeros(cfg.latent_dim)) if cfg.learn_prior else None
        use_aux = cfg.kind == "mmvaeplus" and cfg.aux_prior
        self.aux_log_scale = nn.Parameter(torch.zeros(len(self.specs), cfg.private_dim)) if use_aux else None

    # ------------------------------------------------------------------ structure
    def _resolve_subsets(self, cfg: VAEConfig) -> tuple[tuple[str, ...], ...]:
        mods = self.modality_names
        if cfg.subsets is not None:
            subset_mask(cfg.subsets, mods)  # names every unknown modality with its choices
            return tuple(tuple(m for m in mods if m in s) for s in cfg.subsets)
        if cfg.kind == "mvae":
            return (mods,)
        if cfg.kind == "mopoe":
            return enumerate_subsets(mods)
        return tuple((m,) for m in mods)

    def prior_expert_flags(self, subsets: Sequence[Sequence[str]]) -> Tensor:
        """``[S]`` 1.0 where subset ``s`` is multiplied by the ``N(0, I)`` prior expert (the config's rule)."""
        rule = self.config.prior_expert_rule
        full = len(self.modality_names)
        return torch.tensor([1.0 if rule == "all" or (rule == "full" and len(s) == full) else 0.0 for s in subsets])

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.modality_names

    @property
    def module(self) -> nn.Module:
        return self

    @property
    def input_columns(self) -> tuple[str, ...]:
        return self.modality_names

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def latent_family(self) -> str:
        return self.config.posterior

    def prior_scale(self) -> Tensor | None:
        """The shared prior's scale ``[D]`` when learned (softmax parameterisation), else ``None`` (1)."""
        return softmax_scale(self.prior_logits) if self.prior_logits is not None else None

    def aux_scale(self) -> Tensor:
        """MMVAE+'s auxiliary prior scales ``[M, Dw]`` (zero-centred, learned)."""
        if self.aux_log_scale is None:
            raise InvalidConfigError("This model has no auxiliary prior (MMVAE+ with aux_prior=True only).")
        return self.aux_log_scale.exp()

    # ------------------------------------------------------------------ inputs / outputs
    def check_modalities(self, names: Sequence[str], what: str = "modality") -> tuple[str, ...]:
        names = (names,) if isinstance(names, str) else tuple(names)
        for m in names:
            if m not in self.specs:
                raise InvalidConfigError(
                    f"Unknown {what} {m!r}.{did_you_mean(str(m), self.specs)} This model's modalities: {list(self.specs)}."
                )
        return names

    def prepare(self, batch: Mapping[str, Any], modality: str) -> Tensor:
        """Column ``modality`` of ``batch`` as float32 on the model's device (uint8 scaled to [0, 1])."""
        self.check_modalities([modality])
        if not isinstance(batch, Mapping) or modality not in batch:
            raise SubmissionError(f"The batch has no column {modality!r}; it holds {list(batch) if isinstance(batch, Mapping) else type(batch).__name__}.")
        x = batch[modality]
        if isinstance(x, Tensor):
            t = x
        else:
            arr = np.asarray(x)
            t = torch.from_numpy(arr if arr.flags.writeable else arr.copy())  # memory-mapped columns are read-only
        expected = self.specs[modality].shape
        if tuple(t.shape[1:]) != expected:
            raise SubmissionError(
                f"Modality {modality!r} has per-example shape {tuple(t.shape[1:])}, but the model was built for "
                f"{expected} (dataset {self.dataset_id or 'unknown'!r})."
            )
        t = t.to(self.device, non_blocking=True)
        return t.float().div_(255.0) if t.dtype == torch.uint8 else t.float()

    def to_data(self, mean: Tensor, modality: str) -> Tensor:
        """A decoder mean in the data's own type (uint8 images: clamp to [0, 1], ×255, round)."""
        if self.specs[modality].dtype == "uint8":
            return mean.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
        return mean.float()

    # ------------------------------------------------------------------ posteriors
    def experts(self, inputs: Mapping[str, Tensor], modalities: Sequence[str], *, amp: bool = False) -> Experts:
        """Encode ``modalities`` of prepared ``inputs`` and stack their posteriors."""
        locs, raws, plocs, praws = [], [], [], []
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=amp):
            for m in modalities:
                loc, raw, ploc, praw = self.encoders[m](inputs[m])
                locs.append(loc)
                raws.append(raw)
                plocs.append(ploc)
                praws.append(praw)
        loc, scale = torch.stack(locs).float(), self._scale(torch.stack(raws).float())
        if plocs[0] is None:
            return Experts(tuple(modalities), loc, scale)
        return Experts(tuple(modalities), loc, scale, torch.stack(plocs).float(), self._scale(torch.stack(praws).float()))

    def _scale(self, raw: Tensor) -> Tensor:
        return torch.exp(0.5 * raw) if self.config.posterior == "gaussian" else softmax_scale(raw)

    def subset_posteriors(self, ex: Experts, subsets: Sequence[Sequence[str]] | None = None) -> tuple[Tensor, Tensor]:
        """Gaussian products of experts of ``subsets`` (default: the model's), ``[S, B, D]`` each."""
        subsets = self.subsets if subsets is None else subsets
        mask = subset_mask(subsets, ex.modalities, device=ex.loc.device)
        return product_of_experts(mask, ex.loc, ex.scale, prior_expert=self.prior_expert_flags(subsets).to(ex.loc.device))

    def decode(self, z: Tensor, modality: str, *, amp: bool = False, rows: int | None = None) -> Tensor:
        """Decoder mean of ``modality`` for latents ``[..., D (+ Dw)]`` → ``[..., *shape]`` (float32).

        ``rows`` splits the flattened latents into passes of at most that many rows: on a CPU a
        few hundred rows per pass keep the activations in cache (one pass over thousands of rows is
        measurably slower per row); ``None`` decodes in one pass.
        """
        lead, flat = z.shape[:-1], z.reshape(-1, z.shape[-1])
        step = len(flat) if rows is None else max(1, rows)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=amp):
            outs = [self.decoders[modality](flat[i : i + step]) for i in range(0, max(len(flat), 1), step)]
        out = outs[0] if len(outs) == 1 else torch.cat(outs)
        return out.float().reshape(*lead, *self.specs[modality].shape)

    def eval_rows(self) -> int:
        """Rows per decoder pass when generating: 512 on a CPU, 16,384 on an accelerator."""
        return 512 if self.device.type == "cpu" else 16_384

    def log_likelihood(self, x: Tensor, mean: Tensor) -> Tensor:
        """``log p(x | mean)`` summed over the modality's dimensions (leading dims of ``mean`` broadcast)."""
        lp = log_prob(self.config.likelihood, x, mean, self.config.likelihood_scale)
        return lp.flatten(start_dim=lp.dim() - x.dim() + 1).sum(-1)

    # ------------------------------------------------------------------ training
    def rows_per_step(self, batch_size: int) -> int:
        return batch_size

    def training_loss(self, batch: Mapping[str, Tensor], *, step: int, generator: torch.Generator | None = None,
                      amp: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
        """The configured objective on one batch (mean over its examples) and its parts, detached."""
        inputs = {m: self.prepare(batch, m) for m in self.modality_names}
        return objectives.loss(self, inputs, step=step, generator=generator, amp=amp)

    def model_config(self) -> dict[str, Any]:
        return self.config.to_dict()

    def factory_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this architecture (for checkpoints and ``save_model``)."""
        return {"config": self.config.to_dict(), "modalities": {m: s.to_dict() for m, s in self.specs.items()},
                "dataset_id": self.dataset_id, "seed": self.seed}

    # ------------------------------------------------------------------ harness: card, encode
    @property
    def card(self) -> Any:
        from mmbench.harness.protocols import ModelCard

        cfg = self.config
        name = f"{cfg.kind}{'-' + cfg.objective if cfg.objective != 'elbo' else ''}-{cfg.networks}-d{cfg.latent_dim}"
        reps = {"shared": cfg.latent_dim, **({"private": cfg.private_dim} if cfg.private_dim else {})}
        return ModelCard(
            name=name + (f"+{cfg.private_dim}" if cfg.private_dim else ""),
            revision=f"seed{self.seed}-step{self.trained_steps}",
            modalities=self.modality_names, embedding_dim=cfg.latent_dim,
            trained_on=(self.dataset_id,) if self.dataset_id else (),
            input_shapes={m: tuple(spec.shape) for m, spec in self.specs.items()},
            description=f"mmbench multimodal VAE ({cfg.kind}, {cfg.objective}, beta {cfg.beta}, {cfg.likelihood} likelihood).",
            extra={"vae_config": cfg.to_dict(), "representations": reps, "generator": True},
        )

    @torch.no_grad()
    def encode(self, batch: Mapping[str, Any], *, modality: str, part: str = "shared", batch_size: int = 4096) -> Tensor:
        """Posterior mean ``[n, D]`` (float32, CPU) of the shared (or ``part="private"``) latent given ``modality``."""
        return self.encode_subset(batch, source=[modality], part=part, batch_size=batch_size)

    @torch.no_grad()
    def encode_subset(self, batch: Mapping[str, Any], *, source: Sequence[str], part: str = "shared",
                      batch_size: int = 4096) -> Tensor:
        """Posterior mean given the ``source`` modalities: the PoE's mean (MVAE, MoPoE) or the
        mixture's (MMVAE, MMVAE+); ``part="private"`` needs one source (MMVAE+'s ``w_m``)."""
        source = self.check_modalities(source, "source modality")
        if part not in PARTS:
            raise InvalidConfigError(f"part must be one of {PARTS}, got {part!r}.")
        if part == "private" and (not self.config.private_dim or len(source) != 1):
            raise InvalidConfigError(
                f"part='private' is the private latent of one modality of an MMVAE+ (private_dim > 0); got "
                f"kind={self.config.kind!r}, private_dim={self.config.private_dim}, source={list(source)}."
            )
        n = len(batch[source[0]])
        outs = []
        with _eval_mode(self):
            for i in range(0, n, batch_size):
                inputs = {m: self.prepare({m: batch[m][i : i + batch_size]}, m) for m in source}
                ex = self.experts(inputs, source)
                if part == "private":
                    assert ex.private_loc is not None
                    outs.append(ex.private_loc[0].cpu())
                elif self.config.aggregation == "poe":
                    outs.append(self.subset_posteriors(ex, [source])[0][0].cpu())
                else:
                    outs.append(ex.loc.mean(0).cpu())
        dim = self.config.private_dim if part == "private" else self.config.latent_dim
        return torch.cat(outs) if outs else torch.empty(0, dim)

    # ------------------------------------------------------------------ harness: generation
    @torch.no_grad()
    def generate(self, batch: Mapping[str, Any], *, source: Sequence[str], target: str,
                 generator: torch.Generator | None = None, alpha: float = 1.0) -> Tensor:
        """``target`` generated from one posterior draw given ``source`` (data type of ``target``).

        Args:
            batch: columns of the ``source`` modalities.
            source: conditioning modalities (one subset).
            target: modality to generate (may be in ``source``: a reconstruction).
            generator: the random stream (on the model's device).
            alpha: MMVAE+: scale of the prior the missing private latent is drawn from.
        """
        return self.generate_subsets(batch, subsets=[tuple(source)], targets=[target], generator=generator, alpha=alpha)[target][0]

    @torch.no_grad()
    def generate_subsets(self, batch: Mapping[str, Any], *, subsets: Sequence[Sequence[str]] | None = None,
                         targets: Sequence[str] | None = None, generator: torch.Generator | None = None,
                         alpha: float = 1.0, batch_size: int = 512) -> dict[str, Tensor]:
        """Conditional generation from every subset in one batched pass (per chunk of examples).

        Args:
            batch: the columns of every modality named in ``subsets``.
            subsets: conditioning subsets (default: all 2^M − 1).
            targets: modalities to generate (default: all).
            generator: the random stream (on the model's device).
            alpha: MMVAE+: scale of the prior missing private latents are drawn from.
            batch_size: examples per pass (each pass decodes ``S × batch_size`` latents).

        Returns:
            target → ``[S, n, *shape]`` generations (CPU, the data's type). For a whole test split,
            call it per data batch and classify each batch's generations as they come.
        """
        subsets = enumerate_subsets(self.modality_names) if subsets is None else [self.check_modalities(s, "source modality") for s in subsets]
        if not subsets or any(len(s) == 0 for s in subsets):
            raise InvalidConfigError("generate_subsets needs non-empty subsets of the model's modalities.")
        targets = self.check_modalities(self.modality_names if targets is None else targets, "target modality")
        used = tuple(m for m in self.modality_names if any(m in s for s in subsets))
        n = len(batch[used[0]])
        chunks: dict[str, list[Tensor]] = {t: [] for t in targets}
        with _eval_mode(self):
            for i in range(0, n, batch_size):
                inputs = {m: self.prepare({m: batch[m][i : i + batch_size]}, m) for m in used}
                ex = self.experts(inputs, used)
                z = self._posterior_draw(ex, subsets, generator)  # [S, B, D]
                for t in targets:
                    latent = self._with_private(z, ex, subsets, t, generator, alpha)
                    chunks[t].append(self.to_data(self.decode(latent, t, rows=self.eval_rows()), t).cpu())
        return {t: torch.cat(c, dim=1) for t, c in chunks.items()}

    def _posterior_draw(self, ex: Experts, subsets: Sequence[Sequence[str]], generator: torch.Generator | None) -> Tensor:
        """One draw ``[S, B, D]`` of each subset's posterior (PoE, or the uniform mixture of its members)."""
        if self.config.aggregation == "poe":
            loc, scale = self.subset_posteriors(ex, subsets)
            return rsample("gaussian", loc, scale, generator=generator)
        member = mixture_members(subset_mask(subsets, ex.modalities, device=ex.loc.device), ex.loc.shape[1], generator)
        b = torch.arange(ex.loc.shape[1], device=ex.loc.device)
        return rsample(self.latent_family, ex.loc[member, b], ex.scale[member, b], generator=generator)

    def _with_private(self, z: Tensor, ex: Experts, subsets: Sequence[Sequence[str]], target: str,
                      generator: torch.Generator | None, alpha: float) -> Tensor:
        """Append MMVAE+'s private latent of ``target``: its posterior draw where ``target`` is a
        source, a draw of ``alpha`` × the prior elsewhere (the thesis's test-time rule)."""
        if not self.config.private_dim:
            return z
        assert ex.private_loc is not None and ex.private_scale is not None
        prior_w = alpha * rsample(self.latent_family, z.new_zeros(*z.shape[:-1], self.config.private_dim),
                                  z.new_ones(()), generator=generator)
        if target not in ex.modalities:
            return torch.cat([z, prior_w], dim=-1)
        i = ex.modalities.index(target)
        post_w = rsample(self.latent_family, ex.private_loc[i], ex.private_scale[i], generator=generator)
        has = torch.tensor([target in s for s in subsets], device=z.device)[:, None, None]
        return torch.cat([z, torch.where(has, post_w.expand_as(prior_w), prior_w)], dim=-1)

    @torch.no_grad()
    def sample(self, n: int, *, targets: Sequence[str] | None = None, generator: torch.Generator | None = None,
               alpha: float = 1.0) -> dict[str, Tensor]:
        """Unconditional generation: ``n`` draws of the prior decoded into every target (CPU, data type)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidConfigError(f"sample needs a positive number of samples, got {n!r}.")
        targets = self.check_modalities(self.modality_names if targets is None else targets, "target modality")
        dev = self.device
        with _eval_mode(self):
            scale = self.prior_scale()
            zero = torch.zeros(n, self.config.latent_dim, device=dev)
            z = rsample(self.latent_family, zero, scale if scale is not None else torch.ones((), device=dev), generator=generator)
            out = {}
            for t in targets:
                latent = z
                if self.config.private_dim:
                    w = alpha * rsample(self.latent_family, torch.zeros(n, self.config.private_dim, device=dev),
                                        torch.ones((), device=dev), generator=generator)
                    latent = torch.cat([z, w], dim=-1)
                out[t] = self.to_data(self.decode(latent, t, rows=self.eval_rows()), t).cpu()
        return out

    # ------------------------------------------------------------------ likelihood
    @torch.no_grad()
    def log_importance_weights(self, batch: Mapping[str, Any], *, num_samples: int,
                               generator: torch.Generator | None = None) -> Tensor:
        """``[K, n]`` log importance weights ``log p(x̄, z) − log q(z | x̄)`` with the joint posterior
        given all modalities as proposal (see :func:`mmbench.harness.generative.log_likelihood`)."""
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise InvalidConfigError(f"num_samples must be a positive integer, got {num_samples!r}.")
        with _eval_mode(self):
            inputs = {m: self.prepare(batch, m) for m in self.modality_names}
            return objectives.log_importance_weights(self, inputs, num_samples=num_samples, generator=generator)

    # ------------------------------------------------------------------ saving
    def save(self, directory: str | os.PathLike[str]) -> Any:
        """Write a harness checkpoint directory (``mmbench evaluate --model DIR`` loads it)."""
        from mmbench.harness.protocols import save_model

        return save_model(self, directory, factory=f"{__name__}:MultimodalVAE", kwargs=self.factory_kwargs())


def mixture_members(mask: Tensor, batch: int, generator: torch.Generator | None) -> Tensor:
    """``[S, B]`` modality indices: for every subset and example, a member of the subset drawn uniformly."""
    sizes = mask.sum(1)  # [S]
    u = torch.rand(mask.shape[0], batch, generator=generator, device=mask.device)
    k = torch.minimum((u * sizes[:, None]).floor(), sizes[:, None] - 1)  # k-th member, 0-based
    rank = mask.cumsum(1) - 1  # [S, M]: rank of each member within its subset
    hit = (rank[:, None, :] == k[:, :, None]) & (mask[:, None, :] > 0)  # [S, B, M]
    return hit.float().argmax(-1)


class _eval_mode:
    """Context: the module in eval mode, restored afterwards."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __enter__(self) -> None:
        self.was = self.module.training
        self.module.eval()

    def __exit__(self, *exc: object) -> None:
        self.module.train(self.was)


def build_vae(config: VAEConfig | Mapping[str, Any], modalities: Mapping[str, Any], *, dataset_id: str = "",
              seed: int | None = None, device: torch.device | str | None = "cpu") -> MultimodalVAE:
    """A freshly initialised :class:`MultimodalVAE`, seeded without touching the global RNG.

    Example:
        >>> model = build_vae(VAE_RECIPES.get("mopoe-polymnist").model, ds.info.modalities, seed=0, device="cpu")
    """
    s = 0 if seed is None else int(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s)
        model = MultimodalVAE(config, modalities, dataset_id=dataset_id, seed=s)
    return model.to(torch.device(device) if device is not None else "cpu")


def _family(kind: str) -> ModelFamily:
    def build(config: Mapping[str, Any], modalities: Mapping[str, Any], *, dataset_id: str = "", seed: int | None = None) -> MultimodalVAE:
        cfg = VAEConfig.from_dict(config) if not isinstance(config, VAEConfig) else config
        if cfg.kind != kind:
            raise InvalidConfigError(f"The {kind!r} model family builds kind={kind!r}, got a config of kind={cfg.kind!r}.")
        return build_vae(cfg, modalities, dataset_id=dataset_id, seed=seed)

    return ModelFamily(name=kind, build=build, description=_DESCRIPTIONS[kind], reference=_REFERENCES[kind])


_DESCRIPTIONS = {
    "mvae": "MVAE: product of experts with a prior expert (Wu & Goodman 2018)",
    "mmvae": "MMVAE: mixture of unimodal experts; ELBO, or the original IWAE/DReG objectives (Shi et al. 2019)",
    "mopoe": "MoPoE-VAE: mixture of the products of experts of all 2^M - 1 subsets (Sutter et al. 2021)",
    "mmvaeplus": "MMVAE+: shared + modality-specific latents, auxiliary prior for cross-modal reconstruction (Palumbo et al. 2023)",
}
_REFERENCES = {
    "mvae": "Wu & Goodman, NeurIPS 2018",
    "mmvae": "Shi, Siddharth, Paige & Torr, NeurIPS 2019",
    "mopoe": "Sutter, Daunhawer & Vogt, ICLR 2021",
    "mmvaeplus": "Palumbo, Daunhawer & Vogt, ICLR 2023",
}
#: The registered VAE families (targets of :data:`mmbench.models.trainable.MODEL_FAMILIES`).
FAMILIES = types.SimpleNamespace(**{k: _family(k) for k in _DESCRIPTIONS})
