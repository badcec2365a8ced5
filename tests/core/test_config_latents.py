from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from mmbench.core.config import BuilderConfig, FrozenDict
from mmbench.core.latents import Latent, LatentSpec, LatentTable
from mmbench.errors import InvalidConfigError


def test_config_is_frozen_and_fingerprint_ignores_labels() -> None:
    a = BuilderConfig(name="a", description="x", split_sizes={"train": 10})
    b = BuilderConfig(name="b", description="y", split_sizes={"train": 10})
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint != a.replace(seed=1).fingerprint
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.seed = 3  # type: ignore[misc]
    with pytest.raises(TypeError, match="frozen config"):
        a.split_sizes["train"] = 5  # type: ignore[index]
    assert pickle.loads(pickle.dumps(a)) == a
    assert isinstance(pickle.loads(pickle.dumps(a)).split_sizes, FrozenDict)
    with pytest.raises(TypeError):
        BuilderConfig("positional")  # type: ignore[misc]  # keyword-only


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"split_sizes": {"train": -1}}, r"split_sizes\['train'\] must be in \[0, inf\], got -1"),
        ({"split_sizes": {"Train!": 1}}, "Invalid split name"),
        ({"split_sizes": {}}, "non-empty mapping"),
        ({"split_sizes": {"train": 1.5}}, "must be an integer"),
        ({"seed": -1}, "seed must be in"),
        ({"shard_size": 0}, "shard_size must be in"),
    ],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidConfigError, match=match):
        BuilderConfig(**kwargs)


def test_replace_rejects_unknown_fields_with_suggestion() -> None:
    with pytest.raises(InvalidConfigError, match="Did you mean 'seed'"):
        BuilderConfig().replace(sed=1)


def test_latent_validation_and_check() -> None:
    with pytest.raises(InvalidConfigError, match="kind"):
        Latent(name="a", kind="ordinal", support=(0, 1), role="content")  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError, match="role"):
        Latent(name="a", kind="continuous", support=(0, 1), role="main")  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError, match="low <= high"):
        Latent(name="a", kind="continuous", support=(1, 0), role="content")
    digit = Latent(name="digit", kind="categorical", support=tuple("0123456789"), role="content")
    assert digit.num_classes == 10 and digit.dtype == np.int64 and digit.shape == ()
    digit.check(np.arange(10))
    with pytest.raises(InvalidConfigError, match="outside its support"):
        digit.check(np.array([0, 10]))
    vec = Latent(name="c", kind="continuous", support=(-1.0, 1.0), role="content", dim=3)
    with pytest.raises(InvalidConfigError, match="shape"):
        vec.check(np.zeros((4, 2)))
    assert Latent.from_dict(vec.to_dict()) == vec
    inf = Latent(name="u", kind="continuous", support=(-float("inf"), float("inf")), role="style")
    assert Latent.from_dict(inf.to_dict()) == inf


def test_latent_spec_and_table() -> None:
    a = Latent(name="a", kind="continuous", support=(-5, 5), role="content")
    b = Latent(name="b", kind="discrete", support=(0, 3), role="specific", scope="x")
    with pytest.raises(InvalidConfigError, match="Duplicate"):
        LatentSpec((a, a))
    spec = LatentSpec((a, b), sampler=lambda n, rng: {"a": rng.uniform(-1, 1, n), "b": rng.integers(0, 4, n)})
    table = spec.sample(100, rng=np.random.default_rng(0))
    assert table.num_rows == 100 and table.matrix().shape == (100, 2)
    assert spec.select(role="specific") == (b,) and spec.select(scope="shared") == (a,)
    assert LatentSpec.from_dict(spec.to_dict()) == spec
    assert "| b | discrete |" in spec.table()
    with pytest.raises(KeyError, match="Did you mean 'a'"):
        table["aa"]
    with pytest.raises(InvalidConfigError, match="differ in length"):
        LatentTable({"a": np.zeros(3), "b": np.zeros(4)})
    assert table.take(np.arange(5)).num_rows == 5


def test_equal_numbers_give_one_fingerprint_and_names_are_validated() -> None:
    import mmbench

    a = mmbench.builder("numerical/clica/sphere-uniform-vmf10", conditional_param=10)
    b = mmbench.builder("numerical/clica/sphere-uniform-vmf10")
    assert a.config.fingerprint == b.config.fingerprint and a.is_named_config
    assert mmbench.builder("numerical/misalignment", perturb_prob=1).config.fingerprint == mmbench.builder(
        "numerical/misalignment", perturb_prob=1.0
    ).config.fingerprint
    with pytest.raises(InvalidConfigError, match="Invalid config name"):
        mmbench.builder("numerical/misalignment", name="../../escape")
    custom = mmbench.builder("numerical/misalignment/joint", selection=("s1", "s2", "s3"))
    assert not custom.is_named_config and custom.id.startswith("numerical/misalignment/joint~")
    assert mmbench.builder("numerical/misalignment/joint").id == "numerical/misalignment/joint:1.0.0"
    with pytest.raises(InvalidConfigError, match="Unknown config parameter"):
        BuilderConfig.from_dict({"seed": 1, "sede": 2})
    with pytest.raises(InvalidConfigError, match="NaN or infinite"):
        Latent(name="u", kind="continuous", support=(-float("inf"), float("inf")), role="style").check(np.array([np.nan]))


def test_missing_latent_lookups_are_mmbench_key_errors() -> None:
    from mmbench.errors import ColumnNotFoundError, NotFoundError

    spec = LatentSpec((Latent(name="size", kind="continuous", support=(0.0, 1.0), role="content"),))
    with pytest.raises(NotFoundError, match="Did you mean 'size'") as err:
        spec["sise"]
    assert isinstance(err.value, KeyError)
    with pytest.raises(ColumnNotFoundError, match="Did you mean 'size'"):
        LatentTable({"size": np.zeros(3)})["sise"]
    with pytest.raises(NotImplementedError, match="latent_spec"):
        spec.sample(3, rng=np.random.default_rng(0))
