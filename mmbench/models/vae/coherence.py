"""Cross-modal coherence of a trained multimodal VAE on a PolyMNIST-type split (streaming, batched).

:func:`evaluate_coherence` generates every target modality from every subset of the others for
the tuples of a built split, one data batch at a time (:meth:`MultimodalVAE.generate_subsets`),
classifies each batch's generations with the dataset's versioned digit classifiers as they come,
and scores them once (:func:`mmbench.harness.generative.coherence_from_predictions`): the
generations of the whole split are never held in memory. What ``mmbench train`` and
``mmbench reproduce mopoe-polymnist`` report.

Example:
    >>> res = evaluate_coherence(load_trained("runs/mopoe"), "polymnist", num_examples=1000)
    >>> res["by_num_inputs"], res["leave_one_out"]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mmbench.errors import InvalidConfigError

__all__ = ["evaluate_coherence"]


def evaluate_coherence(model: Any, dataset: str = "polymnist", *, split: str = "test", num_examples: int | None = None,
                       subsets: Sequence[Sequence[str]] | None = None, seed: int = 0, batch_size: int = 250,
                       classifiers: Any = None, **builder_kwargs: Any) -> dict[str, Any]:
    """Conditional coherence of ``model`` on ``split`` of ``dataset`` (all subsets by default).

    Args:
        model: a multimodal VAE (``generate_subsets``, ``modalities``, ``device``).
        dataset: a PolyMNIST-type dataset id with trained digit classifiers
            (``mmbench train-classifiers DATASET``).
        split: the split whose tuples condition the generations.
        num_examples: the first ``num_examples`` tuples of the split (default: all).
        subsets: conditioning subsets (default: all 2^M − 1 non-empty ones).
        seed: seed of the generation noise (a ``torch.Generator`` on the model's device).
        batch_size: tuples per generation pass.
        classifiers: a :class:`~mmbench.harness.generative.DigitClassifiers` (default: the
            dataset's, hashes checked).
        **builder_kwargs: for :func:`mmbench.load` (``cache_dir``, ``data_dir``, overrides).

    Returns:
        :func:`~mmbench.harness.generative.coherence_from_predictions`'s record
        (``leave_one_out``, ``pairwise``, ``by_num_inputs``, ``matrix``, ``chance``,
        ``classifiers``), plus ``seed`` and ``split``.
    """
    import mmbench
    from mmbench.harness.generative import DigitClassifiers, coherence_from_predictions
    from mmbench.harness.generative_metrics import generate_from_subsets
    from mmbench.models.vae.distributions import enumerate_subsets

    mods = tuple(model.modalities)
    subs = enumerate_subsets(mods) if subsets is None else tuple(tuple(s) for s in subsets)
    ds = mmbench.load(dataset, split=split, **builder_kwargs)
    clf = classifiers if classifiers is not None else DigitClassifiers.load(dataset, device=str(model.device), **builder_kwargs)
    n = len(ds) if num_examples is None else min(int(num_examples), len(ds))
    if n < 1:
        raise InvalidConfigError(f"num_examples must be positive, got {num_examples!r}.")
    gen = torch.Generator(device=model.device).manual_seed(int(seed))
    preds: dict[str, list[np.ndarray]] = {t: [] for t in mods}
    labels = []
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(start + batch_size, n))
        batch = {m: torch.as_tensor(np.asarray(ds.column(m)[idx]), device=model.device) for m in mods}  # as the harness passes it
        labels.append(np.asarray(ds.column("latents.digit")[idx]))
        gens = generate_from_subsets(model, batch, subs, mods, gen)  # the harness's step: one pass, shapes checked
        for t in mods:
            preds[t].append(clf.predict(t, gens[t]))
    out = coherence_from_predictions({t: np.concatenate(p, axis=1) for t, p in preds.items()}, np.concatenate(labels), clf,
                                     subsets=subs, modalities=mods)
    out.update({"seed": int(seed), "split": split})
    return out
