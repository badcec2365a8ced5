"""Multimodal3DIdent: shared builder checks plus the latents, captions and store the spec fixes."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import mmbench
from mmbench.builders.multimodal3dident import PHRASES, SELECTION_PHRASES
from mmbench.errors import InvalidConfigError
from mmbench.rendering.colors import (
    PALETTES,
    all_color_names,
    color_index,
    hsv_to_rgb,
    nearest_color,
    palette,
)
from mmbench.rendering.scene.meshes import SHAPES
from mmbench.testing import BuilderTestCase

TINY = {"size": 32, "meshes": "tiny", "split_sizes": {"train": 120, "val": 40, "test": 40}, "shard_size": 50,
        "render_shard_size": 64}


class TestMultimodal3DIdent(BuilderTestCase):
    DATASET = "multimodal3dident"
    OVERRIDES = TINY
    GOLDEN = {"train": "085ec82547a65ff6", "val": "0907cd2d130532b2", "test": "0eb74c839d04bffc"}


class TestMultimodal3DIdentPerturbed(BuilderTestCase):
    DATASET = "multimodal3dident/independent"
    OVERRIDES = {**TINY, "perturbation": ["x_pos", "color"], "prob": 0.5}
    GOLDEN = {"train": "84d76504a6e3848a", "val": "519677fed927b6b6", "test": "479cc6950c28fda0"}


@pytest.fixture(scope="module")
def train(tmp_path_factory):
    b = mmbench.builder("multimodal3dident", cache_dir=tmp_path_factory.mktemp("m3di"), **{**TINY, "split_sizes": {"train": 600}, "shard_size": None})
    b.build(progress=False)
    return b, b.as_dataset("train")


def _pattern(phrase: str) -> re.Pattern:
    words = {"SHAPE": "|".join(SHAPES), "XPOS": "left|center|right", "YPOS": "top|mid|bottom", "COLOR": '[^"]+'}
    regex = re.escape(phrase)
    for field, alt in words.items():
        regex = regex.replace(re.escape("{" + field + "}"), f"(?P<{field}>{alt})")
    return re.compile(f"^{regex}$")


def test_latents_follow_the_spec(train):
    _, ds = train
    lat = ds.latents()
    x, hue = lat["x_pos"], lat["color"]
    assert np.all(hue >= x / 3) and np.all(hue <= (x + 1) / 3)  # causal: hue in the x-position's third
    for name, k in (("shape", 7), ("x_pos", 3), ("y_pos", 3), ("palette", 3), ("phrasing", 5)):
        counts = np.bincount(lat[name], minlength=k)
        assert len(counts) == k and counts.min() > len(ds) / k * 0.6, (name, counts)
    for name in ("alpha", "beta", "gamma", "s_pos", "s_color", "b_color"):
        assert 0 <= lat[name].min() < 0.1 and 0.9 < lat[name].max() <= 1, name
    indep = mmbench.builder("multimodal3dident/independent", **{**TINY, "split_sizes": {"train": 600}})
    hue_i = indep.sample_scene_latents(3000, np.random.default_rng(0))
    assert abs(np.corrcoef(hue_i["x_pos"], hue_i["color"])[0, 1]) < 0.1  # independent: no dependence


def test_captions_are_the_five_templates_with_the_right_words(train):
    _, ds = train
    lat = ds.latents()
    names = all_color_names()
    patterns = [_pattern(p) for p in PHRASES]
    for i, caption in enumerate(ds.column("text")[:]):
        m = patterns[lat["phrasing"][i]].match(caption)
        assert m, caption
        assert m["SHAPE"] == SHAPES[lat["shape"][i]] and m["XPOS"] == ("left", "center", "right")[lat["x_pos"][i]]
        assert m["YPOS"] == ("top", "mid", "bottom")[lat["y_pos"][i]] and m["COLOR"] == names[lat["color_index"][i]]


def test_colour_name_is_the_nearest_of_the_drawn_palette(train):
    _, ds = train
    lat = ds.latents()
    rgb = hsv_to_rgb(lat["color"].astype(np.float64))
    for k, name in enumerate(PALETTES):
        rows = np.flatnonzero(lat["palette"] == k)
        expected = color_index([palette(name).names[j] for j in nearest_color(rgb[rows], name)])
        assert np.array_equal(lat["color_index"][rows], expected)
        assert all(all_color_names()[c].startswith({"tableau": "tab:", "xkcd": "xkcd:"}.get(name, "")) for c in expected)


def test_tokens_and_vocabulary(train):
    b, ds = train
    vocab = json.loads(b.artifact("vocabulary.json"))
    assert vocab["tokens"][:3] == ["{pad}", "{eos}", "{unk}"] and vocab["max_length"] == 26
    from mmbench.rendering.text import Vocabulary, tokenize

    v = Vocabulary.from_json(b.artifact("vocabulary.json"))
    caption = ds.column("text")[0]
    assert v.decode(ds.column("tokens")[0]) == tokenize([caption]).tolist()[0]
    assert "``" in v.tokens and any("-" in t for t in v.tokens)  # quotes and top-left as NLTK splits them
    assert json.loads(b.artifact("meshes.json"))["set"] == "tiny"


def test_text_only_configs_share_one_render(tmp_path):
    a = mmbench.builder("multimodal3dident", cache_dir=tmp_path, **TINY)
    b = mmbench.builder("multimodal3dident", cache_dir=tmp_path, selection=["shape", "x_pos"], **TINY)
    a.build(progress=False)
    b.build(progress=False)
    assert a.stores()["images"].relpath() == b.stores()["images"].relpath()
    assert len([p for p in (tmp_path / "_stores" / "multimodal3dident__images").iterdir() if p.is_dir()]) == 1
    da, db = a.as_dataset("test"), b.as_dataset("test")
    assert np.array_equal(np.asarray(da.column("image")[:]), np.asarray(db.column("image")[:]))
    patterns = [_pattern(p) for p in SELECTION_PHRASES[2]]
    assert all(patterns[k].match(c) for k, c in zip(db.column("latents.phrasing")[:], db.column("text")[:], strict=True))
    assert db.info.expected_identifiable == ("shape", "x_pos")
    assert {lat.name: lat.role for lat in db.latent_spec}["y_pos"] == "specific"


def test_a_killed_render_resumes_from_its_finished_shards(tmp_path, monkeypatch):
    from mmbench.builders.multimodal3dident import Multimodal3DIdentBuilder

    calls = []
    original = Multimodal3DIdentBuilder.generate_store

    def crash_on_third(self, store, start, stop, *, rng):
        calls.append(start)
        if len(calls) == 3:
            raise RuntimeError("renderer crashed")
        return original(self, store, start, stop, rng=rng)

    monkeypatch.setattr(Multimodal3DIdentBuilder, "generate_store", crash_on_third)
    b = mmbench.builder("multimodal3dident", cache_dir=tmp_path, **{**TINY, "render_shard_size": 40})
    with pytest.raises(Exception, match="renderer crashed"):
        b.build(progress=False)
    done = list(calls[:2])
    calls.clear()
    monkeypatch.setattr(Multimodal3DIdentBuilder, "generate_store", lambda self, *a, **k: (calls.append(a[1]), original(self, *a, **k))[1])
    b.build(progress=False)
    assert not set(done) & set(calls), "finished shards were rendered again"
    fresh = mmbench.builder("multimodal3dident", cache_dir=tmp_path / "fresh", **{**TINY, "render_shard_size": 40})
    fresh.build(progress=False)
    assert b.as_dataset("train").fingerprint == fresh.as_dataset("train").fingerprint


def test_bad_configs_are_explained():
    with pytest.raises(InvalidConfigError, match="prefix of \\['shape', 'x_pos', 'y_pos', 'color'\\]"):
        mmbench.builder("multimodal3dident", selection=["shape", "color"])
    with pytest.raises(InvalidConfigError, match="Unknown latent 'colour'.*color"):
        mmbench.builder("multimodal3dident", perturbation=["colour"], prob=0.5)
    with pytest.raises(InvalidConfigError, match="variant must be one of"):
        mmbench.builder("multimodal3dident", variant="causel")
    with pytest.raises(InvalidConfigError, match="backend must be one of"):
        mmbench.builder("multimodal3dident", backend="blender")
    with pytest.raises(InvalidConfigError, match="neither a mesh set"):
        mmbench.builder("multimodal3dident", meshes="/no/such/dir")


def test_grid_shows_captions(train, tmp_path):
    from PIL import Image

    from mmbench.rendering.grid import save_grid

    _, ds = train
    path = save_grid(ds, tmp_path / "g.png", num=3, zoom=2)
    img = np.asarray(Image.open(path))
    assert img.shape[0] > 32 * 2 + 20  # a caption band under the images
    assert (img[32 * 2 + 8 :] < 128).any()  # with dark text in it
