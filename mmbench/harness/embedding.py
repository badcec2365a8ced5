"""Embedding a dataset split with a submitted encoder: batch by batch, every batch validated.

The harness never trusts what ``encode`` returns: each batch must be a finite 2-D float array of
the declared width, with one row per example (:func:`checked_embedding` says what was wrong).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mmbench.errors import InvalidConfigError, SubmissionError
from mmbench.harness.protocols import EvalContext, ModelCard

__all__: list[str] = []  # internal to the harness; evaluate re-exports _embed

def _to_numpy(out: Any) -> np.ndarray:
    if hasattr(out, "detach"):  # torch tensor
        import torch

        out = out.detach()
        if out.dtype in (torch.float16, torch.bfloat16):  # numpy has no bfloat16
            out = out.float()
        return out.cpu().numpy()
    return np.asarray(out)


def _embed(model: Any, card: ModelCard, ds: Any, modality: str, *, device: Any, batch_size: int, n: int,
           ctx: EvalContext | None, latent_columns: Sequence[str], where: str) -> np.ndarray:
    """The first ``n`` embeddings of ``modality`` in ``ds``, batch by batch, each one validated."""
    import torch

    from mmbench.core.torch_data import to_torch

    columns = [modality, *latent_columns]
    chunks: list[np.ndarray] = []
    start = 0
    with torch.inference_mode():
        for b, batch in enumerate(ds.batches(batch_size, columns=columns)):
            if start >= n:
                break
            batch = {k: v[: n - start] for k, v in batch.items()}
            rows = len(batch[modality])
            tensors = {k: to_torch(v, device) for k, v in batch.items()}  # strings stay strings
            what = f"modality {modality!r}, {where}, batch {b} (rows {start}–{start + rows - 1})"
            try:
                out = model.encode(tensors, modality=modality, context=ctx) if ctx is not None else model.encode(tensors, modality=modality)
            except SubmissionError:
                raise
            except Exception as exc:
                raise SubmissionError(f"Model {card.id!r} raised {type(exc).__name__} in encode() on {what}: {exc}") from exc
            chunks.append(_checked_embedding(out, card, what=what, rows=rows, width=chunks[0].shape[1] if chunks else None))
            start += rows
    if not chunks:
        raise InvalidConfigError(f"The {where} has no rows to embed.")
    return np.concatenate(chunks)


def _checked_embedding(out: Any, card: ModelCard, *, what: str, rows: int, width: int | None) -> np.ndarray:
    """``out`` as a finite float32 ``(rows, d)`` array, or a :class:`SubmissionError` saying what is wrong."""
    dim = card.embedding_dim
    try:
        arr = _to_numpy(out)
    except Exception as exc:
        raise SubmissionError(f"Model {card.id!r} returned a {type(out).__name__} on {what}; expected a tensor or array of shape ({rows}, d).") from exc
    expected = f"({rows}, {dim if dim is not None else 'd'})"
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise SubmissionError(f"Model {card.id!r} returned dtype {arr.dtype} on {what}; expected real numbers of shape {expected}.")
    if arr.ndim != 2:
        raise SubmissionError(f"Model {card.id!r} returned shape {tuple(arr.shape)} on {what}; expected a 2-D embedding of shape {expected}.")
    if arr.shape[0] != rows:
        raise SubmissionError(f"Model {card.id!r} returned {arr.shape[0]} embeddings for a batch of {rows} on {what}; expected shape {expected}.")
    if dim is not None and arr.shape[1] != dim:
        raise SubmissionError(f"Model {card.id!r} returned embeddings of size {arr.shape[1]} on {what}, but its card declares embedding_dim={dim}; expected shape {expected}.")
    if width is not None and arr.shape[1] != width:
        raise SubmissionError(f"Model {card.id!r} returned embeddings of size {arr.shape[1]} on {what}, but {width} on earlier batches; the size must not change.")
    # Checked after the cast: finite float64 values beyond ±3.4e38 become inf in float32.
    with np.errstate(over="ignore", invalid="ignore"):
        arr32 = np.asarray(arr, dtype=np.float32)
    finite = np.isfinite(arr32)
    if not finite.all():
        bad = int((~finite).any(1).sum())
        if np.isfinite(arr).all():
            raise SubmissionError(
                f"Model {card.id!r} returned values beyond the float32 range (|x| > {float(np.finfo(np.float32).max):.3g}) "
                f"in {bad} of {rows} embeddings on {what}; they become inf when cast to float32, which the harness "
                "uses. Rescale (or normalise) the embeddings."
            )
        raise SubmissionError(f"Model {card.id!r} returned NaN/inf in {bad} of {rows} embeddings on {what}; expected finite values.")
    return arr32


