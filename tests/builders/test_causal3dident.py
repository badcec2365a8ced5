"""Causal3DIdent-text: shared builder checks, the causal graph, Table 10 settings and Table 11 captions."""

from __future__ import annotations

import re

import numpy as np
import pytest

import mmbench
from mmbench.builders.causal3dident import (
    ENCODING_SIZES,
    SEMANTIC,
    TEMPLATES,
    Causal3DIdentTextBuilder,
    s_pos_word,
)
from mmbench.errors import InvalidConfigError
from mmbench.testing import BuilderTestCase

TINY = {"size": 32, "meshes": "tiny", "split_sizes": {"train": 120, "val": 40, "test": 40}, "shard_size": 50,
        "render_shard_size": 64}


class TestCausal3DIdentSelection(BuilderTestCase):
    DATASET = "causal3dident_text/selection-4"
    OVERRIDES = TINY
    GOLDEN = {"train": "3deccef343bc8a4a", "val": "11a6f8112595b659", "test": "a8a1651fd2e11ad1"}


class TestCausal3DIdentPerturbation(BuilderTestCase):
    DATASET = "causal3dident_text/perturbation-4"
    OVERRIDES = TINY
    GOLDEN = {"train": "575a911cb283f941", "val": "bafecbfb7665cb07", "test": "49b48c2cf5a2cbc2"}


def test_named_configs_follow_table_10():
    configs = Causal3DIdentTextBuilder.CONFIGS
    for k in range(1, 8):
        sel = configs[f"selection-{k}"]
        assert sel.selected == SEMANTIC[:k] and sel.perturbed == ()
        per = configs[f"perturbation-{k}"]
        assert per.selected == SEMANTIC and len(per.perturbed) == k - 1
    assert configs["perturbation-2"].perturbed == ("b_color",)
    assert configs["perturbation-7"].perturbed == SEMANTIC[1:]  # only shape stays predictable
    assert configs["selection-7"].size == 128 and dict(configs["selection-7"].split_sizes) == {"train": 80_000, "val": 10_000, "test": 10_000}
    assert len(ENCODING_SIZES["selection"]) == len(ENCODING_SIZES["perturbation"]) == 7


def test_latents_follow_the_causal_graph():
    b = mmbench.builder("causal3dident_text", **TINY)
    lat = b.sample_scene_latents(20_000, np.random.default_rng(0))
    x, y, s = lat["x_pos"], lat["y_pos"], lat["s_pos"]
    u_c = lat["color"] * 3 - (x + y) / 2
    u_s = lat["s_color"] * 2 - s
    u_b = lat["b_color"] * 3 - s - lat["s_color"]
    for u in (u_c, u_s, u_b):
        assert u.min() >= 0 and u.max() <= 1 and abs(u.mean() - 0.5) < 0.02
    assert np.corrcoef(x + y, lat["color"])[0, 1] > 0.5 and np.corrcoef(s, lat["b_color"])[0, 1] > 0.5
    assert abs(np.corrcoef(lat["shape"], lat["color"])[0, 1]) < 0.05


def test_captions_are_table_11_and_words_match(tmp_path):
    b = mmbench.builder("causal3dident_text/selection-4", cache_dir=tmp_path, **TINY)
    b.build(progress=False)
    ds = b.as_dataset("train")
    words = {"shape": "|".join(("teapot", "hare", "dragon", "cow", "armadillo", "horse", "head")),
             "x_pos": "left|center|right", "y_pos": "top|mid|bottom", "s_pos": "northwest|northeast|center|southwest|southeast"}
    s_words = ("northwest", "northeast", "center", "southwest", "southeast")
    for i, caption in enumerate(ds.column("text")[:]):
        template = TEMPLATES[4][ds.column("latents.phrasing")[i]]
        regex = re.escape(template)
        for f, alt in words.items():
            regex = regex.replace(re.escape("{" + f + "}"), f"(?P<{f}>{alt})")
        m = re.match(f"^{regex}$", caption)
        assert m, caption
        assert m["s_pos"] == s_words[s_pos_word(np.array([ds.column("latents.s_pos")[i]]))[0]]
    assert s_pos_word(np.array([0.0, 0.19, 0.2, 0.99, 1.0])).tolist() == [0, 0, 1, 4, 4]


def test_bad_selection_and_perturbation():
    with pytest.raises(InvalidConfigError, match="prefixes of"):
        mmbench.builder("causal3dident_text", selection=["shape", "color"])
    with pytest.raises(InvalidConfigError, match="needs the full selection"):
        mmbench.builder("causal3dident_text", selection=list(SEMANTIC[:4]), perturbation=["s_pos"], prob=1.0)
