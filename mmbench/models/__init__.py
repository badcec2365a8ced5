"""Baselines: contrastive losses and encoders, the trainer, and ``reproduce`` of the papers' tables.

Modules (imported on demand; torch is loaded only when one of them is used):

* :mod:`mmbench.models.losses` — InfoNCE (CLIP), NT-Xent, cl-ica's L_p InfoNCE, the independent-
  negative variant of the simulation papers; :class:`~mmbench.models.losses.ContrastiveLoss`.
* :mod:`mmbench.models.encoders` — simulation MLP, ResNet-18, text conv net, 28×28 conv net.
* :mod:`mmbench.models.train` — :class:`~mmbench.models.train.TrainConfig`,
  :func:`~mmbench.models.train.train`, :func:`~mmbench.models.train.load_trained`.
* :mod:`mmbench.models.reproduce` — :func:`~mmbench.models.reproduce.reproduce`.
"""
