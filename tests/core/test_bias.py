from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmbench.core.bias import TextBias, powerset_index, subset_from_index
from mmbench.errors import InvalidConfigError

NAMES = tuple(f"s{i}" for i in range(1, 11))


@pytest.mark.parametrize(  # the misalignment paper's Tables 2 and 3
    ("theta", "k"), [(1, 1), (11, 2), (56, 3), (176, 4), (386, 5), (638, 6), (848, 7), (968, 8), (1013, 9), (1023, 10)]
)
def test_theta_table(theta: int, k: int) -> None:
    assert subset_from_index(theta, 10, include_empty=False) == tuple(range(1, k + 1))


@pytest.mark.parametrize(("rho", "k"), [(1, 0), (2, 1), (12, 2), (57, 3), (177, 4), (387, 5), (639, 6), (849, 7), (969, 8), (1014, 9)])
def test_rho_table(rho: int, k: int) -> None:
    assert subset_from_index(rho, 10, include_empty=True) == tuple(range(1, k + 1))


@given(st.integers(1, 6), st.data())
def test_powerset_round_trip(n: int, data: st.DataObject) -> None:
    include_empty = data.draw(st.booleans())
    index = data.draw(st.integers(1, 2**n - (0 if include_empty else 1)))
    subset = subset_from_index(index, n, include_empty=include_empty)
    assert powerset_index(subset, n, include_empty=include_empty) == index


def test_resolve_names_and_indices() -> None:
    assert TextBias(selection=968, perturbation=12).resolve(NAMES) == (NAMES[:8], ("s1", "s2"))
    assert TextBias().resolve(NAMES) == (NAMES, ())
    # order is canonical, whatever the order given
    assert TextBias(selection=("s3", "s1"), perturbation=("s3",)).resolve(NAMES) == (("s1", "s3"), ("s3",))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"selection": ("s1", "s2"), "perturbation": ("s1", "s2")}, "proper subset"),
        ({"selection": ("s1",), "perturbation": ("s2",)}, "not in the selection"),
        ({"selection": ("s1", "s1")}, "Duplicate"),
        ({"selection": ()}, "selection is empty"),
        ({"selection": ("colour",)}, "Unknown latent 'colour'"),
        ({"selection": 0}, "out of range"),
        ({"perturbation": 1025}, "out of range"),
    ],
)
def test_resolve_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidConfigError, match=match):
        TextBias(**kwargs).resolve(NAMES)


@pytest.mark.parametrize(("kwargs", "match"), [({"prob": 1.2}, r"\[0, 1\], got 1.2"), ({"prob": -1}, "got -1"), ({"prob": True}, "number"), ({"replace": "some"}, "Unknown replace rule")])
def test_constructor_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidConfigError, match=match):
        TextBias(**kwargs)


def test_apply_categorical_other_and_any() -> None:
    n, k = 20_000, 4
    rng = np.random.default_rng(0)
    values = {"color": rng.integers(0, k, n), "shape": rng.integers(0, k, n)}
    names = ("color", "shape")
    text, flags = TextBias(selection=names, perturbation=("shape",), prob=0.9).apply(
        values, names, rng=np.random.default_rng(1), num_classes={"color": k, "shape": k}
    )
    np.testing.assert_array_equal(text["color"], values["color"])
    assert abs(flags["shape"].mean() - 0.9) < 0.01
    assert np.all(text["shape"][flags["shape"]] != values["shape"][flags["shape"]])
    np.testing.assert_array_equal(text["shape"][~flags["shape"]], values["shape"][~flags["shape"]])
    text_any, _ = TextBias(selection=names, perturbation=("shape",), prob=0.9, replace="any").apply(
        values, names, rng=np.random.default_rng(1), num_classes={"color": k, "shape": k}
    )
    changed = (text_any["shape"] != values["shape"]).mean()
    assert abs(changed - 0.9 * (1 - 1 / k)) < 0.015  # the reference code's effective rate


def test_apply_continuous_needs_noise() -> None:
    values = {"a": np.zeros(10), "b": np.zeros(10)}
    bias = TextBias(selection=("a", "b"), perturbation=("a",), prob=1.0)
    with pytest.raises(InvalidConfigError, match="no noise"):
        bias.apply(values, ("a", "b"), rng=np.random.default_rng(0))
    text, flags = bias.apply(values, ("a", "b"), rng=np.random.default_rng(0), noise={"a": np.ones(10)})
    assert flags["a"].all() and np.all(text["a"] == 1.0) and np.all(text["b"] == 0.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"selection": 1.5}, r"selection must be a list of latent names or the paper's integer θ index, got 1.5"),
        ({"perturbation": None}, r"perturbation must be .* got None .*Default: \(\)"),
        ({"selection": ("s1", 2)}, "selection must be a list of latent names"),
        ({"selection": True}, "selection must be"),
        ({"prob": np.bool_(True)}, r"number in \[0, 1\]"),
        ({"prob": float("nan")}, r"number in \[0, 1\]"),
    ],
)
def test_bad_field_types_raise_config_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidConfigError, match=match):
        TextBias(**kwargs)


def test_numpy_scalars_are_accepted() -> None:
    bias = TextBias(selection=np.int64(968), perturbation=np.int32(12), prob=np.float32(0.5))
    assert bias.prob == 0.5 and type(bias.prob) is float
    assert bias.selection == 968 and type(bias.selection) is int
    assert bias.resolve(NAMES) == (NAMES[:8], ("s1", "s2"))


def test_bias_columns_name_shown_values_and_flags() -> None:
    from mmbench.core.bias import bias_columns

    shown = {"shape": np.array([1, 2]), "x_pos": np.array([0, 0])}
    cols = bias_columns(shown, {"x_pos": np.array([True, False])})
    assert list(cols) == ["text.shape", "text.x_pos", "perturbed.x_pos"]
    assert cols["perturbed.x_pos"].tolist() == [True, False] and cols["text.shape"] is shown["shape"]
