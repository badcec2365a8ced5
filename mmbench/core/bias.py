"""Selection and perturbation bias of the text modality (the misalignment paper's I_θ and I_ρ).

* **Selection** ``I_θ``: the semantic latents the text mentions; the others are absent from it.
* **Perturbation** ``I_ρ ⊊ I_θ`` with probability ``p``: per sample and per latent in ``I_ρ``, with
  probability ``p`` the text shows another value than the truth. For categorical latents the
  replacement is drawn uniformly from the *other* values (``replace="other"``, the paper's rule)
  or from *all* values (``replace="any"``, the reference code's rule: effective rate
  ``p·(1−1/K)``). For continuous latents the builder supplies additive noise.

Biases act only on what the text renderer sees; datasets store the true latents plus
``text.<latent>`` (the value the text used) and ``perturbed.<latent>`` (whether it was changed).

The paper's integer spelling is supported: ``θ`` indexes the non-empty subsets of ``[n]`` and
``ρ`` all subsets (∅ first), both 1-based in graded-lexicographic order, so with ``n = 10``
``θ = 968`` is ``{1..8}`` and ``ρ = 12`` is ``{1, 2}``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from mmbench.errors import InvalidConfigError, did_you_mean

__all__ = ["TextBias", "bias_columns", "powerset_index", "subset_from_index"]

REPLACE_RULES = ("other", "any")


def bias_columns(shown: Mapping[str, np.ndarray], flags: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The columns a biased text modality stores: ``text.<latent>`` (the value the caption shows)
    and ``perturbed.<latent>`` (whether the caption misreports it), from :meth:`TextBias.apply`'s
    ``(shown, flags)``."""
    return {**{f"text.{k}": v for k, v in shown.items()}, **{f"perturbed.{k}": v for k, v in flags.items()}}


def subset_from_index(index: int, n: int, *, include_empty: bool) -> tuple[int, ...]:
    """The 1-based subset of ``{1..n}`` at 1-based graded-lexicographic ``index``.

    ``include_empty=False`` is the paper's θ (non-empty subsets), ``True`` its ρ (∅ is 1).
    """
    total = 2**n - (0 if include_empty else 1)
    if isinstance(index, bool) or not isinstance(index, int | np.integer) or not 1 <= index <= total:
        kind = "ρ (all subsets, ∅ = 1)" if include_empty else "θ (non-empty subsets)"
        raise InvalidConfigError(
            f"Powerset index {index!r} is out of range for {kind} of {n} latents: valid values "
            f"are 1 … {total}."
        )
    remaining = int(index) - 1
    for size in range(0 if include_empty else 1, n + 1):
        count = math.comb(n, size)
        if remaining < count:
            return next(itertools.islice(itertools.combinations(range(1, n + 1), size), remaining, None))
        remaining -= count
    raise AssertionError("unreachable")


def powerset_index(subset: Sequence[int], n: int, *, include_empty: bool) -> int:
    """Inverse of :func:`subset_from_index` (1-based elements, 1-based index)."""
    subset = tuple(sorted(subset))
    size = len(subset)
    if size == 0 and not include_empty:
        raise InvalidConfigError("θ indexes non-empty subsets; the empty set has no θ.")
    offset = sum(math.comb(n, k) for k in range(0 if include_empty else 1, size))
    for i, combo in enumerate(itertools.combinations(range(1, n + 1), size)):
        if combo == subset:
            return offset + i + 1
    raise InvalidConfigError(f"{subset} is not a subset of 1..{n}.")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TextBias:
    """Which semantic latents the text mentions, and which of them it may misreport.

    Args:
        selection: latent names the text mentions (``None`` = all semantic latents), or the
            paper's θ index.
        perturbation: latent names (a proper subset of the selection) that may be misreported,
            or the paper's ρ index.
        prob: per-sample, per-latent probability of misreporting a latent in ``perturbation``.
        replace: for categorical latents, ``"other"`` (a different value) or ``"any"``.

    Example:
        >>> bias = TextBias(selection=("color", "shape"), perturbation=("shape",), prob=0.9)
    """

    selection: tuple[str, ...] | int | None = None
    perturbation: tuple[str, ...] | int = ()
    prob: float = 0.0
    replace: Literal["other", "any"] = "other"

    def __post_init__(self) -> None:
        for field, index in (("selection", "θ"), ("perturbation", "ρ")):
            value = getattr(self, field)
            if isinstance(value, list):
                value = tuple(value)
            elif isinstance(value, str):
                value = (value,)
            elif isinstance(value, np.integer):
                value = int(value)
            if value is None and field == "selection":
                pass  # every semantic latent
            elif isinstance(value, int) and not isinstance(value, bool):
                pass  # the paper's index, checked against the number of latents in resolve()
            elif not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
                default = "None (every semantic latent)" if field == "selection" else "() (perturb nothing)"
                raise InvalidConfigError(
                    f"{field} must be a list of latent names or the paper's integer {index} index, got "
                    f"{value!r} ({type(value).__name__}); e.g. {field}=['s1', 's2']. Default: {default}."
                )
            object.__setattr__(self, field, value)
        prob = self.prob
        if (
            isinstance(prob, bool | np.bool_)
            or not isinstance(prob, int | float | np.integer | np.floating)
            or not 0.0 <= float(prob) <= 1.0
        ):
            raise InvalidConfigError(
                f"Perturbation probability must be a number in [0, 1], got {prob!r} ({type(prob).__name__})."
            )
        object.__setattr__(self, "prob", float(prob))
        if self.replace not in REPLACE_RULES:
            raise InvalidConfigError(
                f"Unknown replace rule {self.replace!r}: choose 'other' (a different value, as "
                "the paper states) or 'any' (uniform over all values, as the reference code does)."
            )

    def resolve(self, semantic: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Return ``(selected, perturbed)`` latent names, validated against ``semantic``.

        Raises:
            InvalidConfigError: unknown names, duplicates, or a perturbation set that is not a
                proper subset of the selection.
        """
        semantic = tuple(semantic)
        n = len(semantic)
        if self.selection is None:
            selected = semantic
        elif isinstance(self.selection, int | np.integer):
            selected = tuple(semantic[i - 1] for i in subset_from_index(self.selection, n, include_empty=False))
        else:
            selected = self._names(self.selection, semantic, "selection")
            if not selected:
                raise InvalidConfigError(
                    "The selection is empty: the text must mention at least one latent. "
                    f"Choose from {list(semantic)}."
                )
        if isinstance(self.perturbation, int | np.integer):
            perturbed = tuple(semantic[i - 1] for i in subset_from_index(self.perturbation, n, include_empty=True))
        else:
            perturbed = self._names(self.perturbation, semantic, "perturbation")
        outside = [p for p in perturbed if p not in selected]
        if outside:
            raise InvalidConfigError(
                f"Perturbation latents {outside} are not in the selection {list(selected)}: the text "
                "can only misreport what it mentions. Perturb a subset of the selection."
            )
        if perturbed and len(perturbed) == len(selected):
            raise InvalidConfigError(
                f"The perturbation set {list(perturbed)} equals the selection {list(selected)}: it must "
                "be a proper subset, or nothing unbiased would remain to be learned. Drop at least "
                "one latent from the perturbation."
            )
        # Canonical order: the dataset's order, so that equal sets give equal fingerprints.
        order = {name: i for i, name in enumerate(semantic)}
        return tuple(sorted(selected, key=order.__getitem__)), tuple(sorted(perturbed, key=order.__getitem__))

    @staticmethod
    def _names(names: Sequence[str], semantic: Sequence[str], what: str) -> tuple[str, ...]:
        for name in names:
            if name not in semantic:
                raise InvalidConfigError(
                    f"Unknown latent {name!r} in the {what}.{did_you_mean(name, semantic)} "
                    f"Semantic latents: {list(semantic)}."
                )
        if len(set(names)) != len(names):
            raise InvalidConfigError(f"Duplicate latents in the {what}: {list(names)}.")
        return tuple(names)

    def apply(
        self,
        values: Mapping[str, np.ndarray],
        semantic: Sequence[str],
        *,
        rng: np.random.Generator,
        num_classes: Mapping[str, int] | None = None,
        noise: Mapping[str, np.ndarray] | None = None,
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Compute what the text shows.

        Args:
            values: true values of (at least) the selected latents, each of shape ``(n,)``.
            semantic: all semantic latent names, in dataset order.
            rng: the shard's generator.
            num_classes: for categorical latents (integer codes), the number of classes; latents
                not listed here are continuous and need ``noise``.
            noise: additive noise for continuous perturbed latents, each of shape ``(n,)``.

        Returns:
            ``(text_values, perturbed_flags)``: ``text_values[name]`` for each selected latent and
            ``perturbed_flags[name]`` (bool) for each latent in the perturbation set.
        """
        selected, perturbed = self.resolve(semantic)
        num_classes = dict(num_classes or {})
        noise = dict(noise or {})
        n = len(values[selected[0]])
        text = {name: np.array(values[name], copy=True) for name in selected}
        flags: dict[str, np.ndarray] = {}
        for name in perturbed:  # one coin per sample per latent, in dataset order
            flag = rng.random(n) < self.prob
            flags[name] = flag
            if name in num_classes:
                k = int(num_classes[name])
                current = text[name]
                if self.replace == "other":
                    new = (current + rng.integers(1, k, size=n)) % k
                else:
                    new = rng.integers(0, k, size=n)
                text[name] = np.where(flag, new, current).astype(current.dtype)
            else:
                if name not in noise:
                    raise InvalidConfigError(
                        f"Continuous latent {name!r} is perturbed but no noise was given for it."
                    )
                text[name] = np.where(flag, text[name] + noise[name], text[name]).astype(text[name].dtype)
        return text, flags

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)
