"""Numerical latent-variable simulations of the identifiability papers.

Three builders, all generated from Gaussian-type draws and frozen invertible MLPs (see
:mod:`mmbench.rendering.mixing`); they need no downloads, can be materialised like any other
dataset, and can stream endless fresh batches through :meth:`Builder.sampler`.

* ``numerical/multiview`` — Daunhawer et al. 2023 (ICLR), §5.1: content ``c``, style ``s``,
  modality-specific ``m1, m2``; style depends on content (independent / statistical / causal);
  style changes per dimension with probability π between the two views.
* ``numerical/misalignment`` — Cai et al. 2025, §5.1: semantic ``s ∈ R^10`` (independent or
  Wishart-dependent), ``m_x, m_t ∈ R^5``; the text sees ``s̃_{I_θ}`` under selection ``I_θ`` and
  perturbation ``I_ρ`` (additive Gaussian noise with probability p).
* ``numerical/clica`` — Zimmermann et al. 2021 (ICML), §4.1: latents on a sphere / box / R^n
  with uniform, vMF, Laplace, normal or generalised-normal conditionals for the positive pair.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

import numpy as np

from mmbench.core.bias import TextBias
from mmbench.core.builder import Builder, Feature, Modality
from mmbench.core.config import BuilderConfig, FrozenDict, check_choice, check_int, check_number
from mmbench.core.latents import Latent, LatentSpec
from mmbench.core.renderer import render
from mmbench.errors import InvalidConfigError, MMBenchError
from mmbench.rendering.mixing import MixingRenderer, invertible_mlp_weights

__all__ = [
    "ClicaBuilder",
    "ClicaConfig",
    "MisalignmentBuilder",
    "MisalignmentConfig",
    "MultiviewBuilder",
    "MultiviewConfig",
]

INF = float("inf")
_RESOURCE_STREAM = 0x7E50  # resources draw from default_rng([seed, _RESOURCE_STREAM]): disjoint from shards


def _default_sizes() -> FrozenDict:
    # 20,480 = 5 × 4096: the probe-fit ("val") and test sizes of the papers' evaluations.
    return FrozenDict(train=100_000, val=20_480, test=20_480)


def _wishart(k: int, df: int, rng: np.random.Generator) -> np.ndarray:
    """One draw from W_k(I, df) (integer df ≥ k): A Aᵀ with A ~ N(0, 1)^{k×df}."""
    a = rng.standard_normal((k, df))
    return a @ a.T


def _gaussian(n: int, chol: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws from N(0, L Lᵀ)."""
    z = rng.standard_normal((n, chol.shape[0]))
    if np.array_equal(chol, np.eye(chol.shape[0])):
        return z  # the independent case: skip an identity product
    return z @ chol.T


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _vec(name: str, dim: int, *, role: str, scope: str = "shared", support: tuple[float, float] = (-INF, INF), description: str = "") -> Latent:
    return Latent(name=name, kind="continuous", support=support, role=role, scope=scope, dim=dim, description=description)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _MixingConfig(BuilderConfig):
    """Fields shared by the simulations' mixing functions."""

    mixing_layers: int = 3
    cond_ratio: float = 1e-3

    def validate(self) -> None:
        check_int("mixing_layers", self.mixing_layers, low=1, high=16)
        check_number("cond_ratio", self.cond_ratio, low=0.0, high=0.999)


# ====================================================================== multiview (M3DI)
DEPENDENCE_MULTIVIEW = ("independent", "statistical", "causal", "statistical+causal")


@dataclasses.dataclass(frozen=True, kw_only=True)
class MultiviewConfig(_MixingConfig):
    """Config of ``numerical/multiview``.

    Args:
        n_content: dimension of the shared content block ``c``.
        n_style: dimension of the style block ``s`` (changes between views).
        n_specific: dimension of each modality-specific block ``m_i`` (0 = none, the multi-view setting).
        dependence: ``independent``; ``statistical`` (every block ~ N(0, Σ) with one shared
            Wishart draw Σ ~ W(I, k), as the reference code); ``causal`` (s = s₀ + B c + a with
            a, B ~ N(0, 1)); or ``statistical+causal``.
        style_change_prob: π, the per-sample, per-dimension probability that the second view's
            style is perturbed by additive Gaussian noise.
        mixing: ``distinct`` (f₁ ≠ f₂: the multimodal setting) or ``shared`` (f₁ = f₂: multi-view).
    """

    split_sizes: Any = dataclasses.field(default_factory=_default_sizes)
    n_content: int = 5
    n_style: int = 5
    n_specific: int = 5
    dependence: str = "independent"
    style_change_prob: float = 0.75
    mixing: str = "distinct"

    def validate(self) -> None:
        super().validate()
        check_int("n_content", self.n_content, low=1, high=256)
        check_int("n_style", self.n_style, low=0, high=256)
        check_int("n_specific", self.n_specific, low=0, high=256)
        check_choice("dependence", self.dependence, DEPENDENCE_MULTIVIEW)
        check_number("style_change_prob", self.style_change_prob, low=0.0, high=1.0)
        check_choice("mixing", self.mixing, ("distinct", "shared"))
        if "causal" in self.dependence and self.n_style == 0:
            raise InvalidConfigError(
                f"dependence={self.dependence!r} makes style depend on content, but n_style=0. "
                "Set n_style > 0 or use dependence='independent'/'statistical'."
            )


def _multiview_configs() -> dict[str, MultiviewConfig]:
    rows = {  # Table 1 of the multimodal identifiability paper
        "pi1": ("independent", 1.0),
        "independent": ("independent", 0.75),
        "statistical": ("statistical", 0.75),
        "causal": ("causal", 0.75),
        "statistical-causal": ("statistical+causal", 0.75),
    }
    configs = {}
    for prefix, mixing, n_specific in (("multimodal", "distinct", 5), ("multiview", "shared", 0)):
        for row, (dependence, pi) in rows.items():
            name = f"{prefix}-{row}"
            configs[name] = MultiviewConfig(
                name=name,
                description=(
                    f"{prefix} setting (f1 {'!=' if mixing == 'distinct' else '='} f2, "
                    f"{'with' if n_specific else 'no'} modality-specific latents), dependence="
                    f"{dependence}, style change π={pi}."
                ),
                dependence=dependence,
                style_change_prob=pi,
                mixing=mixing,
                n_specific=n_specific,
            )
    return configs


class MultiviewBuilder(Builder):
    """Content/style/modality-specific simulation of the multimodal identifiability paper."""

    name = "numerical/multiview"
    VERSION = "1.0.0"
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "Initial release."}
    CONFIG_CLASS = MultiviewConfig
    CONFIGS: ClassVar[dict[str, BuilderConfig]] = _multiview_configs()
    DEFAULT_CONFIG = "multimodal-independent"
    DESCRIPTION = (
        "Numerical multi-view / multimodal simulation (Daunhawer et al., ICLR 2023, §5.1): "
        "x_i = f_i(c, s_i, m_i) with invertible 3-layer MLPs f_i; content c is shared, style s "
        "changes between views with probability π per dimension, m_i is modality-specific."
    )
    CITATION = "Daunhawer, Bizeul, Palumbo, Marx, Vogt. Identifiability Results for Multimodal Contrastive Learning. ICLR 2023."

    config: MultiviewConfig

    @property
    def obs_dim(self) -> int:
        c = self.config
        return c.n_content + c.n_style + c.n_specific

    def modalities(self) -> dict[str, Modality]:
        return {
            key: Modality(key, "vector", (self.obs_dim,), "float32", f"view {i}: f{i}(c, s{'~' if i == 2 else ''}, m{i})")
            for i, key in ((1, "x1"), (2, "x2"))
        }

    def latent_spec(self) -> LatentSpec:
        c = self.config
        lats = [_vec("content", c.n_content, role="content", description="shared content c")]
        if c.n_style:
            lats.append(_vec("style", c.n_style, role="style", scope="x1", description="style s seen by x1"))
            lats.append(_vec("style_x2", c.n_style, role="style", scope="x2", description="perturbed style s~ seen by x2"))
        if c.n_specific:
            lats.append(_vec("m1", c.n_specific, role="specific", scope="x1", description="x1-specific m1"))
            lats.append(_vec("m2", c.n_specific, role="specific", scope="x2", description="x2-specific m2"))
        return LatentSpec(tuple(lats), sampler=self.sample_latents)

    def extra_features(self) -> dict[str, Feature]:
        c = self.config
        if not c.n_style:
            return {}
        return {"perturbed.style": Feature((c.n_style,) if c.n_style > 1 else (), "bool")}

    def expected_identifiable(self) -> tuple[str, ...]:
        c = self.config
        if c.n_style and c.style_change_prob == 0.0:
            # π = 0: the style never changes between the views, so it is shared and invariant,
            # i.e. part of the content block (style_x2 equals style).
            return ("content", "style", "style_x2")
        return ("content",)

    def prepare(self) -> dict[str, np.ndarray]:
        c = self.config
        rng = np.random.default_rng([c.seed, _RESOURCE_STREAM])
        res: dict[str, np.ndarray] = {}
        w1 = invertible_mlp_weights(self.obs_dim, rng, layers=c.mixing_layers, ratio=c.cond_ratio)
        res["mixing.x1"] = w1
        res["mixing.x2"] = w1 if c.mixing == "shared" else invertible_mlp_weights(self.obs_dim, rng, layers=c.mixing_layers, ratio=c.cond_ratio)
        for block, k in (("content", c.n_content), ("style", c.n_style), ("noise", c.n_style), ("specific", c.n_specific)):
            if k == 0:
                continue
            if "statistical" in c.dependence:
                # One shared Wishart draw per block size (the reference code seeds every block's
                # draw identically, so all blocks share Σ).
                sigma = _wishart(k, k, np.random.default_rng([c.seed, _RESOURCE_STREAM, k]))
            else:
                sigma = np.eye(k)
            res[f"chol.{block}"] = np.linalg.cholesky(sigma)
        if "causal" in c.dependence and c.n_style:
            res["causal.a"] = rng.standard_normal(c.n_style)
            res["causal.B"] = rng.standard_normal((c.n_style, c.n_content))
        return res

    def generate(self, split: str, start: int, stop: int, *, rng: np.random.Generator) -> dict[str, np.ndarray]:
        c, r = self.config, self.resources
        n = stop - start
        content = _gaussian(n, r["chol.content"], rng)
        blocks1, blocks2 = ["content"], ["content"]
        out: dict[str, np.ndarray] = {"latents.content": content}
        if c.n_style:
            style = _gaussian(n, r["chol.style"], rng)
            if "causal.B" in r:
                style = style + content @ r["causal.B"].T + r["causal.a"]
            noise = _gaussian(n, r["chol.noise"], rng)
            changed = rng.random((n, c.n_style)) < c.style_change_prob
            style2 = style + np.where(changed, noise, 0.0)
            blocks1.append("style")
            blocks2.append("style_x2")
            out["latents.style"], out["latents.style_x2"] = style, style2
            out["perturbed.style"] = changed
        if c.n_specific:
            m1 = _gaussian(n, r["chol.specific"], rng)
            m2 = _gaussian(n, r["chol.specific"], rng)
            blocks1.append("m1")
            blocks2.append("m2")
            out["latents.m1"], out["latents.m2"] = m1, m2
        latents = {k.removeprefix("latents."): v for k, v in out.items() if k.startswith("latents.")}
        out["x1"] = render(MixingRenderer(tuple(blocks1), r["mixing.x1"]), latents, rng=rng)
        out["x2"] = render(MixingRenderer(tuple(blocks2), r["mixing.x2"]), latents, rng=rng)
        return _finalise(out)


def _finalise(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """float64 → float32, and (n, 1) vectors of scalar latents → (n,)."""
    out = {}
    for name, arr in columns.items():
        if arr.dtype == np.float64:
            arr = _f32(arr)
        if arr.ndim == 2 and arr.shape[1] == 1 and name.startswith(("latents.", "perturbed.")):
            arr = arr[:, 0]
        out[name] = np.ascontiguousarray(arr)
    return out


# ====================================================================== misalignment (Cai et al.)
@dataclasses.dataclass(frozen=True, kw_only=True)
class MisalignmentConfig(_MixingConfig):
    """Config of ``numerical/misalignment``.

    Args:
        n_semantic: number of semantic latents ``s1 … sN`` (shared in truth; 10 in the paper).
        n_specific: dimension of each modality-specific block ``m_x`` and ``m_t``.
        dependence: ``independent`` (Σ_s = I) or ``dependent`` (Σ_s ~ W_N(I, N), Σ_m ~ W(I, k),
            Σ_ε ~ W_N(I, N), separate draws as the paper states).
        selection: latent names the text mentions (``I_θ``), or the paper's θ index; ``None`` = all.
            Stored canonically as names, or ``None`` when it is every semantic latent (so that
            ``n_semantic`` can be overridden on an unbiased config); :attr:`selected` always
            gives the names, and the fingerprint and ``to_dict`` record the names.
        perturbation: latent names (``I_ρ ⊊ I_θ``) the text may misreport, or the paper's ρ index.
        perturb_prob: per-sample, per-latent probability that a latent in ``I_ρ`` is perturbed
            (additive noise ε ~ N(0, Σ_ε)).
    """

    split_sizes: Any = dataclasses.field(default_factory=_default_sizes)
    n_semantic: int = 10
    n_specific: int = 5
    dependence: str = "independent"
    selection: Any = None
    perturbation: Any = ()
    perturb_prob: float = 0.75

    def validate(self) -> None:
        super().validate()
        check_int("n_semantic", self.n_semantic, low=1, high=64)
        check_int("n_specific", self.n_specific, low=0, high=256)
        check_choice("dependence", self.dependence, ("independent", "dependent"))
        check_number("perturb_prob", self.perturb_prob, low=0.0, high=1.0)
        bias = self.bias
        try:
            selected, perturbed = bias.resolve(self.semantic_names)
        except InvalidConfigError as exc:
            raise self._explain_latents_beyond_n(exc, bias) from None
        object.__setattr__(self, "selection", None if selected == self.semantic_names else selected)
        object.__setattr__(self, "perturbation", perturbed)

    def _explain_latents_beyond_n(self, exc: InvalidConfigError, bias: TextBias) -> InvalidConfigError:
        """Name the fix when the selection/perturbation mention latents past ``n_semantic``
        (typically a named config's sets, written for 10 latents, after ``-o n_semantic=5``)."""
        names = self.semantic_names
        sel = bias.selection if isinstance(bias.selection, tuple) else ()
        pert = bias.perturbation if isinstance(bias.perturbation, tuple) else ()
        beyond = [v for v in (*sel, *pert) if v not in names and v[:1] == "s" and v[1:].isdigit()]
        if not beyond:
            return exc
        new_sel = [v for v in sel if v in names]
        new_pert = [v for v in pert if v in new_sel][: max(len(new_sel) - 1, 0)]
        origin = f"come from the config {self.name!r}" if self.name else "were given"
        example = f"-o n_semantic={self.n_semantic} -o 'selection={json.dumps(new_sel or None)}' -o 'perturbation={json.dumps(new_pert)}'"
        return InvalidConfigError(
            f"{exc} The selection {list(sel) or 'None (all)'} and perturbation {list(pert)} {origin}, "
            f"but n_semantic={self.n_semantic} makes only {names[0]}…{names[-1]}. Override them together "
            f"with n_semantic, e.g. {example} (Python: n_semantic=…, selection=[…], perturbation=[…]); "
            "selection=null means every semantic latent."
        )

    @property
    def semantic_names(self) -> tuple[str, ...]:
        return tuple(f"s{i}" for i in range(1, self.n_semantic + 1))

    @property
    def selected(self) -> tuple[str, ...]:
        """The names the text mentions (``selection`` resolved; ``None`` = all)."""
        return self.semantic_names if self.selection is None else self.selection

    def data(self) -> dict[str, Any]:
        data = super().data()
        data["selection"] = list(self.selected)  # names, as before None meant "all": fingerprints unchanged
        return data

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["selection"] = list(self.selected)
        return out

    @property
    def bias(self) -> TextBias:
        return TextBias(selection=self.selection, perturbation=self.perturbation, prob=self.perturb_prob)


def _misalignment_configs() -> dict[str, MisalignmentConfig]:
    configs: dict[str, MisalignmentConfig] = {}

    def add(name: str, desc: str, **kw: Any) -> None:
        for dep in ("independent", "dependent"):
            full = name if dep == "independent" else f"{name}-dependent"
            configs[full] = MisalignmentConfig(name=full, description=f"{desc} ({dep} latents).", dependence=dep, **kw)

    add("joint", "Joint bias of Table 5: I_θ = [8] (θ = 968), I_ρ = [2] (ρ = 12), p = 0.75", selection=968, perturbation=12)
    add("unbiased", "No bias: the text sees every semantic latent, none perturbed", selection=None)
    add("wrong-size", "Table 4: I_θ = [3], I_ρ = ∅ (train with encoding size 5 to reproduce it)", selection=56)
    for k in range(1, 11):  # Table 2: selection sweep with I_ρ = ∅
        add(f"selection-{k}", f"Selection sweep: I_θ = [{k}], I_ρ = ∅", selection=tuple(f"s{i}" for i in range(1, k + 1)))
    for k in range(0, 10):  # Table 3: perturbation sweep with I_θ = [10]
        add(f"perturbation-{k}", f"Perturbation sweep: I_θ = [10], I_ρ = [{k}]", perturbation=tuple(f"s{i}" for i in range(1, k + 1)))
    return configs


class MisalignmentBuilder(Builder):
    """Selection/perturbation-biased image–text simulation of the misalignment paper."""

    name = "numerical/misalignment"
    VERSION = "1.0.0"
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "Initial release."}
    CONFIG_CLASS = MisalignmentConfig
    CONFIGS: ClassVar[dict[str, BuilderConfig]] = _misalignment_configs()
    DEFAULT_CONFIG = "joint"
    DESCRIPTION = (
        "Numerical image–text simulation of cross-modal misalignment (Cai et al. 2025, §5.1): "
        "x = g_x(s, m_x), t = g_t(s~_{I_θ}, m_t) with selection I_θ, perturbation I_ρ."
    )
    CITATION = "Cai, Wang, Liu, Zhang, et al. Negate or Embrace: On How Misalignment Shapes Multimodal Representation Learning. 2025."

    config: MisalignmentConfig

    def modalities(self) -> dict[str, Modality]:
        c = self.config
        return {
            "x": Modality("x", "vector", (c.n_semantic + c.n_specific,), "float32", "image: g_x(s, m_x)"),
            "t": Modality("t", "vector", (len(c.selected) + c.n_specific,), "float32", "text: g_t(s~_{I_θ}, m_t)"),
        }

    def latent_spec(self) -> LatentSpec:
        c = self.config
        lats = []
        for name in c.semantic_names:
            if name in c.perturbation:
                role, scope, what = "style", "shared", "perturbed in the text"
            elif name in c.selected:
                role, scope, what = "content", "shared", "mentioned, unperturbed"
            else:
                role, scope, what = "specific", "x", "omitted from the text"
            lats.append(_vec(name, 1, role=role, scope=scope, description=f"semantic latent ({what})"))
        if c.n_specific:
            lats.append(_vec("m_x", c.n_specific, role="specific", scope="x", description="image-specific"))
            lats.append(_vec("m_t", c.n_specific, role="specific", scope="t", description="text-specific"))
        return LatentSpec(tuple(lats), sampler=self.sample_latents)

    def extra_features(self) -> dict[str, Feature]:
        c = self.config
        feats = {f"text.{n}": Feature((), "float32") for n in c.selected}
        feats.update({f"perturbed.{n}": Feature((), "bool") for n in c.perturbation})
        return feats

    def expected_identifiable(self) -> tuple[str, ...]:
        c = self.config
        if c.perturb_prob == 0.0:  # p = 0: I_ρ is never perturbed, so the whole selection is unbiased
            return c.selected
        return tuple(n for n in c.selected if n not in c.perturbation)

    def prepare(self) -> dict[str, np.ndarray]:
        c = self.config
        rng = np.random.default_rng([c.seed, _RESOURCE_STREAM])
        res = {
            "mixing.x": invertible_mlp_weights(c.n_semantic + c.n_specific, rng, layers=c.mixing_layers, ratio=c.cond_ratio),
            "mixing.t": invertible_mlp_weights(len(c.selected) + c.n_specific, rng, layers=c.mixing_layers, ratio=c.cond_ratio),
        }
        dep = c.dependence == "dependent"
        for block, k in (("s", c.n_semantic), ("m_x", c.n_specific), ("m_t", c.n_specific), ("noise", c.n_semantic)):
            if k:
                res[f"chol.{block}"] = np.linalg.cholesky(_wishart(k, k, rng) if dep else np.eye(k))
        return res

    def generate(self, split: str, start: int, stop: int, *, rng: np.random.Generator) -> dict[str, np.ndarray]:
        c, r = self.config, self.resources
        n = stop - start
        s = _gaussian(n, r["chol.s"], rng)
        m_x = _gaussian(n, r["chol.m_x"], rng) if c.n_specific else np.zeros((n, 0))
        m_t = _gaussian(n, r["chol.m_t"], rng) if c.n_specific else np.zeros((n, 0))
        noise = _gaussian(n, r["chol.noise"], rng)
        names = c.semantic_names
        values = {name: s[:, i] for i, name in enumerate(names)}
        text, flags = c.bias.apply(values, names, rng=rng, noise={name: noise[:, i] for i, name in enumerate(names)})
        out: dict[str, np.ndarray] = {f"latents.{name}": values[name] for name in names}
        if c.n_specific:
            out["latents.m_x"], out["latents.m_t"] = m_x, m_t
        out.update({f"text.{name}": text[name] for name in c.selected})
        out.update({f"perturbed.{name}": flags[name] for name in c.perturbation})
        # x sees the true semantic latents, t the text-side values the biases left (DESIGN §4)
        seen_x = {"s": s, "m": m_x}
        seen_t = {"s": np.stack([text[name] for name in c.selected], axis=1), "m": m_t}
        out["x"] = render(MixingRenderer(("s", "m"), r["mixing.x"]), seen_x, rng=rng)
        out["t"] = render(MixingRenderer(("s", "m"), r["mixing.t"]), seen_t, rng=rng)
        return _finalise(out)


# ====================================================================== cl-ica (Zimmermann et al.)
SPACES = ("sphere", "box", "unbounded")
MARGINALS = ("uniform", "normal", "laplace")
CONDITIONALS = ("vmf", "normal", "laplace", "gennorm")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClicaConfig(_MixingConfig):
    """Config of ``numerical/clica``.

    Args:
        n: latent (and observation) dimension.
        space: ``sphere`` (unit S^{n−1}), ``box`` (``[box_low, box_high]^n``) or ``unbounded`` (R^n).
        marginal: ``uniform`` (sphere, box), ``normal`` or ``laplace`` (sphere: around e₁ then
            projected; unbounded: i.i.d.); ``marginal_param`` is the std / Laplace scale.
        conditional: ``vmf`` (sphere only; ``conditional_param`` = κ), ``normal`` (std),
            ``laplace`` (scale) or ``gennorm`` (scale, shape ``gennorm_beta``). On the sphere the
            perturbed point is projected back; in the box out-of-range coordinates are redrawn.
        cond_ratio: condition-number quantile of the mixing layers (0 = the pool minimum, as cl-ica).
    """

    split_sizes: Any = dataclasses.field(default_factory=_default_sizes)
    cond_ratio: float = 0.0
    n: int = 10
    space: str = "sphere"
    marginal: str = "uniform"
    marginal_param: float = 1.0
    conditional: str = "vmf"
    conditional_param: float = 1.0
    gennorm_beta: float = 3.0
    box_low: float = 0.0
    box_high: float = 1.0

    def validate(self) -> None:
        super().validate()
        check_int("n", self.n, low=2, high=256)
        check_choice("space", self.space, SPACES)
        check_choice("marginal", self.marginal, MARGINALS)
        check_choice("conditional", self.conditional, CONDITIONALS)
        check_number("marginal_param", self.marginal_param, low=0.0, open_low=True)
        check_number("conditional_param", self.conditional_param, low=0.0, open_low=True)
        check_number("gennorm_beta", self.gennorm_beta, low=0.0, open_low=True)
        check_number("box_low", self.box_low)
        check_number("box_high", self.box_high)
        if self.box_high <= self.box_low:
            raise InvalidConfigError(f"box_high ({self.box_high}) must be greater than box_low ({self.box_low}).")
        if self.conditional == "vmf" and self.space != "sphere":
            raise InvalidConfigError(
                f"conditional='vmf' lives on the sphere, but space={self.space!r}. Use space='sphere', "
                "or a 'normal', 'laplace' or 'gennorm' conditional."
            )
        if self.marginal == "uniform" and self.space == "unbounded":
            raise InvalidConfigError(
                "There is no uniform distribution on an unbounded space: use marginal='normal' or "
                "'laplace', or space='sphere'/'box'."
            )
        if self.space == "box" and self.marginal != "uniform":
            raise InvalidConfigError(
                f"space='box' supports marginal='uniform' only (got {self.marginal!r}), as in the paper."
            )


def _clica_configs() -> dict[str, ClicaConfig]:
    rows = {  # Tables 1–2 of cl-ica (generative side only; the model side is a training choice)
        "sphere-uniform-vmf1": dict(space="sphere", conditional="vmf", conditional_param=1.0),
        "sphere-uniform-vmf10": dict(space="sphere", conditional="vmf", conditional_param=10.0),
        "sphere-uniform-laplace": dict(space="sphere", conditional="laplace", conditional_param=0.05),
        "sphere-uniform-normal": dict(space="sphere", conditional="normal", conditional_param=0.05),
        "sphere-normal-laplace": dict(space="sphere", marginal="normal", conditional="laplace", conditional_param=0.05),
        "sphere-normal-normal": dict(space="sphere", marginal="normal", conditional="normal", conditional_param=0.05),
        "box-uniform-normal": dict(space="box", conditional="normal", conditional_param=0.05),
        "box-uniform-laplace": dict(space="box", conditional="laplace", conditional_param=0.05),
        "box-uniform-gennorm": dict(space="box", conditional="gennorm", conditional_param=0.05),
        "unbounded-laplace-normal": dict(space="unbounded", marginal="laplace", conditional="normal", conditional_param=1.0),
        "unbounded-normal-normal": dict(space="unbounded", marginal="normal", conditional="normal", conditional_param=1.0),
    }
    return {
        name: ClicaConfig(name=name, description=f"cl-ica simulation: {name.replace('-', ', ')}.", **kw)
        for name, kw in rows.items()
    }


class ClicaBuilder(Builder):
    """Positive-pair simulation of "Contrastive learning inverts the data generating process"."""

    name = "numerical/clica"
    VERSION = "1.0.0"
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "Initial release."}
    CONFIG_CLASS = ClicaConfig
    CONFIGS: ClassVar[dict[str, BuilderConfig]] = _clica_configs()
    DEFAULT_CONFIG = "sphere-uniform-vmf1"
    DESCRIPTION = (
        "cl-ica simulation (Zimmermann et al., ICML 2021, §4.1): z ~ p(z), z~ ~ p(z~|z), "
        "x1 = g(z), x2 = g(z~) with one invertible 3-layer MLP g."
    )
    CITATION = "Zimmermann, Sharma, Schneider, Bethge, Brendel. Contrastive Learning Inverts the Data Generating Process. ICML 2021."

    config: ClicaConfig

    def _support(self) -> tuple[float, float]:
        c = self.config
        return {"sphere": (-1.0, 1.0), "box": (c.box_low, c.box_high), "unbounded": (-INF, INF)}[c.space]

    def modalities(self) -> dict[str, Modality]:
        n = self.config.n
        return {
            "x1": Modality("x1", "vector", (n,), "float32", "g(z)"),
            "x2": Modality("x2", "vector", (n,), "float32", "g(z~), the positive"),
        }

    def latent_spec(self) -> LatentSpec:
        n, sup = self.config.n, self._support()
        return LatentSpec((
            _vec("z", n, role="content", support=sup, description="latent of x1"),
            _vec("z_tilde", n, role="nuisance", scope="x2", support=sup, description="latent of the positive x2 (z~ ~ p(z~|z))"),
        ), sampler=self.sample_latents)

    def expected_identifiable(self) -> tuple[str, ...]:
        return ("z",)

    def prepare(self) -> dict[str, np.ndarray]:
        c = self.config
        rng = np.random.default_rng([c.seed, _RESOURCE_STREAM])
        return {"mixing": invertible_mlp_weights(c.n, rng, layers=c.mixing_layers, ratio=c.cond_ratio, batch=25_000)}

    def _marginal(self, n: int, rng: np.random.Generator) -> np.ndarray:
        c = self.config
        if c.space == "box":
            return rng.uniform(c.box_low, c.box_high, size=(n, c.n))
        if c.marginal == "uniform":
            z = rng.standard_normal((n, c.n))
        else:
            z = self._noise(c.marginal, c.marginal_param, (n, c.n), rng)
            if c.space == "sphere":
                z[:, 0] += 1.0  # centred on e1, then projected
        return _unit(z) if c.space == "sphere" else z

    def _noise(self, kind: str, scale: float, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        if kind == "normal":
            return rng.normal(0.0, scale, size=shape)
        if kind == "laplace":
            return rng.laplace(0.0, scale, size=shape)
        if kind == "gennorm":  # density ∝ exp(−|x/scale|^β)
            beta = self.config.gennorm_beta
            g = rng.gamma(1.0 / beta, 1.0, size=shape) ** (1.0 / beta)
            return scale * np.where(rng.random(shape) < 0.5, -g, g)
        raise MMBenchError(f"no noise of kind {kind!r}")

    def _conditional(self, z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.config
        if c.conditional == "vmf":
            return _vmf(z, c.conditional_param, rng)
        zt = z + self._noise(c.conditional, c.conditional_param, z.shape, rng)
        if c.space == "sphere":
            return _unit(zt)
        if c.space == "box":  # redraw offending coordinates until all lie in the box
            bad = (zt < c.box_low) | (zt > c.box_high)
            while bad.any():
                zt[bad] = z[bad] + self._noise(c.conditional, c.conditional_param, (int(bad.sum()),), rng)
                bad = (zt < c.box_low) | (zt > c.box_high)
        return zt

    def generate(self, split: str, start: int, stop: int, *, rng: np.random.Generator) -> dict[str, np.ndarray]:
        z = self._marginal(stop - start, rng)
        zt = self._conditional(z, rng)
        w = self.resources["mixing"]
        mixer = MixingRenderer(("z",), w)  # both views share one mixing function (cl-ica)
        out = {"latents.z": z, "latents.z_tilde": zt,
               "x1": render(mixer, {"z": z}, rng=rng), "x2": render(mixer, {"z": zt}, rng=rng)}
        if self.config.space == "sphere":  # float32 rounding may leave |z_i| a hair above 1
            out["latents.z"] = np.clip(z, -1.0, 1.0)
            out["latents.z_tilde"] = np.clip(zt, -1.0, 1.0)
        return {k: _f32(v) for k, v in out.items()}


def _unit(z: np.ndarray) -> np.ndarray:
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def _vmf(mu: np.ndarray, kappa: float, rng: np.random.Generator) -> np.ndarray:
    """von Mises–Fisher draws around each row of ``mu`` (unit vectors), Wood's (1994) sampler."""
    n, d = mu.shape
    m1 = d - 1.0
    b = m1 / (2.0 * kappa + np.sqrt(4.0 * kappa**2 + m1**2))
    x0 = (1.0 - b) / (1.0 + b)
    c = kappa * x0 + m1 * np.log(1.0 - x0**2)
    w = np.empty(n)
    todo = np.arange(n)
    while todo.size:
        beta = rng.beta(m1 / 2.0, m1 / 2.0, size=todo.size)
        cand = (1.0 - (1.0 + b) * beta) / (1.0 - (1.0 - b) * beta)
        u = rng.random(todo.size)
        ok = kappa * cand + m1 * np.log(1.0 - x0 * cand) - c >= np.log(u)
        w[todo[ok]] = cand[ok]
        todo = todo[~ok]
    v = rng.standard_normal((n, d))
    v -= np.sum(v * mu, axis=1, keepdims=True) * mu
    v = _unit(v)
    return _unit(w[:, None] * mu + np.sqrt(np.clip(1.0 - w**2, 0.0, None))[:, None] * v)
