"""Baselines: contrastive models and multimodal VAEs, the trainer, and ``reproduce`` of the papers' tables.

Modules (imported on demand; torch is loaded only when one of them is used):

* :mod:`mmbench.models.losses` — InfoNCE (CLIP), NT-Xent, cl-ica's L_p InfoNCE, the independent-
  negative variant of the simulation papers; :class:`~mmbench.models.losses.ContrastiveLoss`.
* :mod:`mmbench.models.encoders` — simulation MLP, ResNet-18, text conv net, 28×28 conv net.
* :mod:`mmbench.models.train` — :class:`~mmbench.models.train.TrainConfig`,
  :func:`~mmbench.models.train.train`, :func:`~mmbench.models.train.load_trained`.
* :mod:`mmbench.models.reproduce` — :func:`~mmbench.models.reproduce.reproduce`.
* :mod:`mmbench.models.trainable` — the trainable-model protocol shared by every family, the
  :data:`~mmbench.models.trainable.MODEL_FAMILIES` registry, the β/KL warm-up schedule.
* :mod:`mmbench.models.vae` — MVAE, MMVAE, MoPoE-VAE and MMVAE+ (one mixture-of-subsets model),
  with the papers' settings as named recipes.
"""
