"""Multimodal VAE baselines of the mixture-of-subsets family: MVAE, MMVAE, MoPoE-VAE and MMVAE+.

* :mod:`.config` — :class:`VAEConfig` (one config for the four models and their objectives) and
  :data:`VAE_RECIPES` (the papers' settings, ``"mopoe-polymnist"`` …, and tiny ones for tests);
* :mod:`.model` — :class:`MultimodalVAE`: trainable model, harness ``Encoder`` and ``Generator``;
* :mod:`.objectives` — the ELBOs and MMVAE's IWAE/DReG objectives, each one batched pass;
* :mod:`.distributions` — Gaussian/Laplace densities, KLs and the subset product of experts;
* :mod:`.networks` — the references' PolyMNIST conv and ResNet networks, MLPs for vectors.

Example:
    >>> from mmbench.models.vae import VAE_RECIPES, build_vae
    >>> model = build_vae(VAE_RECIPES.get("mopoe-polymnist").model, ds.info.modalities, seed=0)
"""

from __future__ import annotations

from typing import Any

__all__ = ["KINDS", "VAE_RECIPES", "ModalitySpec", "MultimodalVAE", "VAEConfig", "VAERecipe", "build_vae"]

_LAZY = {
    "KINDS": "mmbench.models.vae.config",
    "VAE_RECIPES": "mmbench.models.vae.config",
    "VAEConfig": "mmbench.models.vae.config",
    "VAERecipe": "mmbench.models.vae.config",
    "ModalitySpec": "mmbench.models.vae.model",
    "MultimodalVAE": "mmbench.models.vae.model",
    "build_vae": "mmbench.models.vae.model",
}


def __getattr__(name: str) -> Any:  # torch is imported only when a model is used
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
