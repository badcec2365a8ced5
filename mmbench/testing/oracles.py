"""Reference encoders with known scores, for testing metrics and the harness.

* :class:`LatentOracle` reads the ground-truth latents (its card says ``uses_ground_truth``, so the
  harness passes the ``latents.*`` columns) and returns them — all, those its modality sees, or
  only the ones the theory calls identifiable — optionally through a random invertible map
  (``transform="mix"``: nonlinear probes should still score ≈ 1) or a random permutation with sign
  flips and scales (``transform="permute"``: ``mcc_corr`` should score ≈ 1).
* :class:`ConstantEncoder` returns the same vector for every input (every probe ≈ 0).
* :class:`NoiseEncoder` returns noise independent of the input (≈ 0).
* :class:`ObservationEncoder` returns the flattened observation itself (nonlinear probes recover
  what the modality sees).

All of them follow the submission protocol, so they can be evaluated from the command line:
``mmbench evaluate --model mmbench.testing.oracles:LatentOracle --suite identifiability-numerical:v1``.

Example:
    >>> result = mmbench.evaluate(LatentOracle(which="identifiable"), suite, device="cpu")
    >>> result.value("misalignment-joint", "identifiability_consistency")   # ≈ 1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mmbench.errors import InvalidConfigError, SubmissionError
from mmbench.harness.protocols import EvalContext, ModelCard

__all__ = ["ConstantEncoder", "LatentOracle", "NoiseEncoder", "ObservationEncoder", "random_invertible_map"]

WHICH = ("identifiable", "visible", "all")
TRANSFORMS = ("identity", "mix", "permute")


def random_invertible_map(z: np.ndarray, *, seed: int = 0, slope: float = 0.3) -> np.ndarray:
    """A fixed random smooth-ish invertible map ``R^d → R^d``: two orthogonal layers with a LeakyReLU.

    The weights depend only on ``(seed, d)``, so every batch goes through the same map.
    """
    d = z.shape[1]
    rng = np.random.default_rng([seed, d, 0x0AC1E])
    q1, _ = np.linalg.qr(rng.standard_normal((d, d)))
    q2, _ = np.linalg.qr(rng.standard_normal((d, d)))
    h = z @ q1
    h = np.where(h > 0, h, slope * h) @ q2
    return h + 0.5 * np.tanh(h)  # strictly increasing in each coordinate → invertible


def _to_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


class LatentOracle:
    """Returns ground-truth latents as the embedding (an oracle; never a real submission).

    Args:
        which: ``"identifiable"`` (the dataset's ``expected_identifiable``: the theory's ideal
            contrastive model), ``"visible"`` (every latent the modality sees: scope ``shared`` or
            this modality), ``"all"``, or an explicit tuple of latent names.
        transform: ``"identity"``, ``"mix"`` (:func:`random_invertible_map`) or ``"permute"``
            (random permutation of the components, random signs and positive scales).
        noise: standard deviation of Gaussian noise added to the output.
        seed: seed of the transform and of the noise.

    Categorical latents are one-hot encoded; others are used as values. With nothing to return
    (e.g. no identifiable latent) the embedding is one constant column.
    """

    def __init__(self, which: str | Sequence[str] = "identifiable", *, transform: str = "identity",
                 noise: float = 0.0, seed: int = 0) -> None:
        if isinstance(which, str) and which not in WHICH:
            raise InvalidConfigError(f"LatentOracle: which must be one of {list(WHICH)} or a tuple of latent names, got {which!r}.")
        if transform not in TRANSFORMS:
            raise InvalidConfigError(f"LatentOracle: transform must be one of {list(TRANSFORMS)}, got {transform!r}.")
        self.which = which if isinstance(which, str) else tuple(which)
        self.transform = transform
        self.noise = float(noise)
        self.seed = int(seed)
        self._calls = 0
        tag = self.which if isinstance(self.which, str) else "+".join(self.which)
        self.card = ModelCard(
            name=f"oracle-{tag}" + ("" if transform == "identity" else f"-{transform}"),
            revision="1",
            description="Ground-truth latents as embeddings (testing oracle).",
            uses_ground_truth=True,
        )

    def _names(self, spec: Any, modality: str, expected: Sequence[str]) -> list[str]:
        if not isinstance(self.which, str):
            return [n for n in self.which if n in spec.names]
        if self.which == "identifiable":
            return [n for n in spec.names if n in set(expected)]
        if self.which == "visible":
            return [lat.name for lat in spec if lat.scope in ("shared", modality)]
        return list(spec.names)

    def encode(self, batch: Mapping[str, Any], *, modality: str, context: EvalContext | None = None) -> np.ndarray:
        if context is None:
            raise SubmissionError("LatentOracle needs the evaluation context (dataset latents); run it through mmbench.evaluate.")
        spec = context.latent_spec
        n = len(batch[modality])
        cols = []
        for name in self._names(spec, modality, context.expected_identifiable):
            key = f"latents.{name}"
            if key not in batch:
                raise SubmissionError(f"LatentOracle: column {key!r} missing from the batch (is card.uses_ground_truth set?).")
            v = _to_numpy(batch[key])
            lat = spec[name]
            if lat.kind == "categorical":
                v = np.eye(lat.num_classes)[v.astype(np.int64).reshape(n, -1)].reshape(n, -1)
            cols.append(v.reshape(n, -1).astype(np.float64))
        z = np.concatenate(cols, axis=1) if cols else np.zeros((n, 1))
        if cols and self.transform == "mix":
            z = random_invertible_map(z, seed=self.seed)
        elif cols and self.transform == "permute":
            rng = np.random.default_rng([self.seed, z.shape[1], 0x9E3])
            perm = rng.permutation(z.shape[1])
            z = z[:, perm] * rng.choice([-1.0, 1.0], size=z.shape[1]) * rng.uniform(0.5, 2.0, size=z.shape[1])
        if self.noise:
            z = z + self.noise * np.random.default_rng([self.seed, self._calls]).standard_normal(z.shape)
            self._calls += 1
        return z.astype(np.float32)


class ConstantEncoder:
    """The same ``dim``-vector (``value``) for every input: every probe should score ≈ 0."""

    def __init__(self, dim: int = 8, value: float = 1.0) -> None:
        self.dim = int(dim)
        self.value = float(value)
        self.card = ModelCard(name="constant", revision="1", embedding_dim=self.dim, description="Constant embedding (testing baseline).")

    def encode(self, batch: Mapping[str, Any], *, modality: str) -> np.ndarray:
        return np.full((len(batch[modality]), self.dim), self.value, dtype=np.float32)


class NoiseEncoder:
    """Gaussian noise independent of the input (deterministic given the sequence of calls)."""

    def __init__(self, dim: int = 8, seed: int = 0) -> None:
        self.dim = int(dim)
        self.seed = int(seed)
        self._calls = 0
        self.card = ModelCard(name="noise", revision="1", embedding_dim=self.dim, description="Input-independent noise (testing baseline).")

    def encode(self, batch: Mapping[str, Any], *, modality: str) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self._calls])
        self._calls += 1
        return rng.standard_normal((len(batch[modality]), self.dim)).astype(np.float32)


class ObservationEncoder:
    """The flattened observation itself (the cl-ica "identity" baseline)."""

    def __init__(self) -> None:
        self.card = ModelCard(name="observation", revision="1", description="Flattened raw observation (testing baseline).")

    def encode(self, batch: Mapping[str, Any], *, modality: str) -> np.ndarray:
        x = _to_numpy(batch[modality])
        return x.reshape(len(x), -1).astype(np.float32)
