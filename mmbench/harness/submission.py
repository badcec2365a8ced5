"""A generic per-modality MLP submission that round-trips through a safetensors checkpoint directory.

It lets a user submit trained weights without shipping code: :func:`~mmbench.harness.protocols.save_model`
writes the card, ``"mmbench.harness.submission:MLPSubmission"`` and its ``config``, and the weights;
``mmbench evaluate --model DIR`` rebuilds it.

Example:
    >>> enc = MLPSubmission(card={"name": "mlp", "revision": "1"}, layers={"x": [15, 64, 10], "t": [10, 64, 10]})
    >>> save_model(enc, "runs/mlp", factory="mmbench.harness.submission:MLPSubmission", kwargs=enc.config)
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mmbench.errors import InvalidConfigError, SubmissionError
from mmbench.harness.protocols import ModelCard

__all__ = ["MLPEncoder", "MLPSubmission"]


class MLPSubmission(nn.Module):
    """One MLP per modality: ``layers[m] = [in, hidden..., out]``, LeakyReLU(``slope``) between layers.

    Inputs are flattened per example and cast to float32.
    """

    def __init__(self, *, card: ModelCard | Mapping[str, Any], layers: Mapping[str, Sequence[int]], slope: float = 0.01) -> None:
        super().__init__()
        self.card = card if isinstance(card, ModelCard) else ModelCard.from_dict(card)
        if not layers:
            raise InvalidConfigError("MLPSubmission needs at least one modality in 'layers'.")
        self.config = {"card": self.card.to_dict(), "layers": {m: list(map(int, s)) for m, s in layers.items()}, "slope": slope}
        nets = {}
        for modality, sizes in layers.items():
            if len(sizes) < 2:
                raise InvalidConfigError(f"MLPSubmission layers[{modality!r}] needs [in, ..., out], got {list(sizes)}.")
            mods: list[nn.Module] = []
            for i, (a, b) in enumerate(itertools.pairwise(sizes)):
                mods.append(nn.Linear(int(a), int(b)))
                if i < len(sizes) - 2:
                    mods.append(nn.LeakyReLU(slope))
            nets[modality] = nn.Sequential(*mods)
        self.nets = nn.ModuleDict(nets)

    def encode(self, batch: Mapping[str, Any], *, modality: str) -> torch.Tensor:
        if modality not in self.nets:
            raise SubmissionError(f"MLPSubmission has no network for modality {modality!r}; it has {list(self.nets)}.")
        x = torch.as_tensor(batch[modality])
        net = self.nets[modality]
        x = x.reshape(len(x), -1).to(dtype=torch.float32, device=next(net.parameters()).device)
        with torch.no_grad():
            return net(x)


#: The class's name until the rename that freed ``MLPEncoder`` for :mod:`mmbench.models.encoders`
#: (a single-modality network). Checkpoints whose ``mmbench_model.json`` names the factory
#: ``"mmbench.harness.submission:MLPEncoder"`` keep loading through it.
MLPEncoder = MLPSubmission
