"""Text utilities: template filling, tokenisation, vocabulary, ragged ids."""

from __future__ import annotations

import doctest
import json
import re

import numpy as np
import pytest

import mmbench.rendering.text as text_mod
from mmbench.errors import InvalidConfigError, MMBenchError
from mmbench.rendering.text import (
    EOS,
    PAD,
    SPECIAL_TOKENS,
    UNK,
    Ragged,
    Templates,
    Tokens,
    Vocabulary,
    distinct,
    tokenize,
)

# The MPI3D paper's setting-5 templates, verbatim (field names with a space and a dot).
MPI3D_PAPER = Templates(
    (
        "A { size} {shape} in {color}, viewed from {cam.}, {back.}.",
        "From {cam.}, you see a {color}, { size} {shape}, {back.}.",
        "A { size} {shape}, {color}, placed {back.}, observed from {cam.}.",
    ),
    {
        "color": ("yellow", "green", "olive", "red"),
        "shape": ("coffee-cup", "tennis-ball", "croissant", " beer-cup"),
        " size": ("small size", "large size"),
        "cam.": ("top view", "center view", "bottom view"),
        "back.": ("in a purple background", "in a sea-green background", "in a salmon background"),
    },
    columns={" size": "size", "cam.": "camera", "back.": "background"},
)

M3DI = Templates(
    (
        'A {SHAPE} of "{COLOR}" color is visible, positioned at the {YPOS}-{XPOS} of the image.',
        'A "{COLOR}" {SHAPE} is at the {YPOS}-{XPOS} of the image.',
        'The {YPOS}-{XPOS} of the image shows a "{COLOR}" colored {SHAPE}.',
        'At the {YPOS}-{XPOS} of the picture is a {SHAPE} in "{COLOR}" color.',
        'At the {YPOS}-{XPOS} of the image, there is a "{COLOR}" object in the form of a {SHAPE}.',
    ),
    {
        "SHAPE": ("teapot", "hare", "dragon", "cow", "armadillo", "horse", "head"),
        "XPOS": ("left", "center", "right"),
        "YPOS": ("top", "mid", "bottom"),
        "COLOR": ("xkcd:bright aqua", "tab:blue", "lawngreen", "xkcd:blue/purple"),
    },
    columns={"SHAPE": "object_shape", "XPOS": "object_xpos", "YPOS": "object_ypos", "COLOR": "object_color_index"},
)


def _latents(t: Templates, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {t.columns[f]: rng.integers(0, len(w), n) for f, w in t.words.items()}


def _naive_fill(t: Templates, latents: dict[str, np.ndarray], template: np.ndarray) -> list[str]:
    """Per-row formatting, the obvious (slow) way, as the reference."""
    out = []
    for i, k in enumerate(template):
        s = t.templates[k]
        for f in t.fields:
            s = s.replace("{" + f + "}", t.words[f][latents[t.columns[f]][i]])
        out.append(s.replace("{{", "{").replace("}}", "}"))
    return out


# ---------------------------------------------------------------------------------- templates


@pytest.mark.parametrize("templates", [MPI3D_PAPER, M3DI], ids=["mpi3d", "m3di"])
def test_fill_equals_per_row_formatting(templates: Templates) -> None:
    lat = _latents(templates, 2000)
    tmpl = np.random.default_rng(1).integers(0, len(templates.templates), 2000)
    assert templates.fill(lat, template=tmpl) == _naive_fill(templates, lat, tmpl)


def test_fill_known_caption_and_scalar_template() -> None:
    lat = {"size": np.array([0]), "shape": np.array([3]), "color": np.array([0]), "camera": np.array([0]),
           "background": np.array([0])}
    assert MPI3D_PAPER.fill(lat, template=0) == [
        "A small size  beer-cup in yellow, viewed from top view, in a purple background."
    ]
    assert M3DI.fill({"object_shape": [2], "object_xpos": [0], "object_ypos": [2], "object_color_index": [0]},
                     template=np.array([4])) == [
        'At the bottom-left of the image, there is a "xkcd:bright aqua" object in the form of a dragon.'
    ]


def test_fill_literal_braces_and_templates_using_different_fields() -> None:
    t = Templates(("{{x}} is {a}.", "only {b}", "no slot"), {"a": ("p", "q"), "b": ("r", "s")})
    lat = {"a": np.array([0, 1, 1, 0]), "b": np.array([1, 1, 0, 0])}
    out = t.fill(lat, template=np.array([0, 1, 2, 0]))
    assert out == ["{x} is p.", "only s", "no slot", "{x} is p."]
    # equal captions are one object: memory and hashing are per distinct caption
    assert out[0] is out[3]
    # a field a template does not use does not make its captions distinct
    same = t.fill(lat, template=np.array([2, 2, 2, 2]))
    assert len({id(s) for s in same}) == 1


def test_fill_empty_table() -> None:
    assert M3DI.fill({c: np.zeros(0, np.int64) for c in M3DI.columns.values()}, template=np.zeros(0, np.int64)) == []


def test_fill_many_large_fields_uses_row_comparison() -> None:
    # 5 fields of 10,000 words: the mixed-radix key would overflow int64 (1e20 > 2**62)
    words = {f: tuple(f"{f}{i}" for i in range(10_000)) for f in "abcde"}
    t = Templates(("{a} {b} {c} {d} {e}", "{e} {a}"), words)
    rng = np.random.default_rng(0)
    lat = {f: rng.integers(0, 10_000, 500) for f in "abcde"}
    lat["a"][:2] = 9_999
    tmpl = rng.integers(0, 2, 500)
    assert t.fill(lat, template=tmpl) == _naive_fill(t, lat, tmpl)


@pytest.mark.parametrize(
    ("templates", "words", "match"),
    [
        ((), {"a": ("x",)}, "non-empty sequence"),
        ("A {a}", {"a": ("x",)}, "non-empty sequence"),
        (("A {b}",), {"a": ("x",)}, "field 'b'"),
        (("A {a!r}",), {"a": ("x",)}, "plain field names"),
        (("A {a:>3}",), {"a": ("x",)}, "plain field names"),
        (("A {a",), {"a": ("x",)}, "malformed"),
        (("A {}",), {"a": ("x",)}, "plain field names"),
        (("A {a}",), {"a": "xy"}, r"words\['a'\]"),
        (("A {a}",), {"a": ()}, r"words\['a'\]"),
        (("A {a}",), {"a": ("x", 3)}, r"words\['a'\]"),
        (("A {a}",), {}, "non-empty mapping"),
        ((3,), {"a": ("x",)}, "must be a string"),
    ],
)
def test_bad_templates(templates, words, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidConfigError, match=match):
        Templates(templates, words)


def test_bad_columns_mapping() -> None:
    with pytest.raises(InvalidConfigError, match=r"\['z'\]"):
        Templates(("{a}",), {"a": ("x",)}, columns={"z": "a"})


@pytest.mark.parametrize(
    ("latents", "template", "match"),
    [
        ({"a": np.array([0, 1])}, np.array([0, 0]), "'b'.*missing"),
        ({"a": np.array([0, 2]), "b": np.array([0, 0])}, 0, "value 2, outside"),
        ({"a": np.array([0, -1]), "b": np.array([0, 0])}, 0, "value -1"),
        ({"a": np.array([0.0, 1.0]), "b": np.array([0, 0])}, 0, "integer array"),
        ({"a": np.array([True, False]), "b": np.array([0, 0])}, 0, "integer array"),
        ({"a": np.array([0, 1]), "b": np.array([0])}, 0, "1 rows, expected 2"),
        ({"a": np.array([0, 1]), "b": np.array([0, 0])}, np.array([0, 2]), "template holds the value 2"),
        ({"a": np.array([0, 1]), "b": np.array([0, 0])}, np.array([0]), "template has 1 rows"),
        ({"a": np.array([0, 1]), "b": np.array([0, 0])}, "0", "integer"),
        ([("a", 1)], 0, "mapping"),
    ],
)
def test_bad_fill_inputs(latents, template, match) -> None:  # type: ignore[no-untyped-def]
    t = Templates(("{a} {b}", "{b}"), {"a": ("x", "y"), "b": ("z",)})
    with pytest.raises(InvalidConfigError, match=match):
        t.fill(latents, template=template)


# ---------------------------------------------------------------------------------- tokenising


def test_tokenize_is_nltk_word_tokenize_without_data(monkeypatch: pytest.MonkeyPatch) -> None:
    import nltk
    from nltk.tokenize import word_tokenize

    monkeypatch.setattr(nltk.data, "path", [])  # no punkt anywhere: must not be needed
    lat = _latents(M3DI, 300)
    captions = M3DI.fill(lat, template=np.arange(300) % 5)
    tokens = tokenize(captions)
    assert tokens.tolist() == [word_tokenize(c, preserve_line=True) for c in captions]
    assert tokenize(['A "xkcd:bright aqua" teapot at the top-left.']).tolist() == [
        ["A", "``", "xkcd", ":", "bright", "aqua", "''", "teapot", "at", "the", "top-left", "."]
    ]


def test_word_tokenizer_runs_nltks_rules_through_re() -> None:
    """The fast tokenizer (NLTK's rules compiled by ``re``, memoised) gives NLTK's tokens."""
    from nltk.tokenize import NLTKWordTokenizer

    from mmbench.rendering import text as text_mod

    texts = [
        "Good muffins cost $3.88 (roughly 3,36 euros)\nin New York.  Please buy me\ntwo of them.\nThanks.",
        "He said, \"I can't--won't\" go... 'tis [odd] {x} <y> «q» “r” ‘s’ a—b gonna wanna 'n' d'ye it's",
        "x: 3,5; a@b #c 50% & *!? end.'\"", 'A "xkcd:bright aqua" teapot at the top-left.', "", "  ", "cannot.",
        *M3DI.fill(_latents(M3DI, 200), template=np.arange(200) % 5),
    ]
    split = text_mod._tokenizer("word")
    assert split.__name__ == "<lambda>"  # the memoised wrapper
    for t in texts:
        expected = NLTKWordTokenizer().tokenize(t)
        assert split(t) == expected and split(t) == expected  # computed, then remembered
    first = split(texts[0])
    first.append("mutated")
    assert split(texts[0]) == NLTKWordTokenizer().tokenize(texts[0])  # each call gets its own list


def test_tokenize_wordpunct_and_sharing() -> None:
    tokens = tokenize(["a coffee-cup.", "b", "a coffee-cup."], tokenizer="wordpunct")
    assert tokens.tolist() == [["a", "coffee", "-", "cup", "."], ["b"], ["a", "coffee", "-", "cup", "."]]
    assert len(tokens) == 3 and len(tokens.lists) == 2 and tokens[2] is tokens[0]
    assert isinstance(tokens, Tokens) and tokenize(tokens, tokenizer="wordpunct") is tokens


def test_tokenize_errors() -> None:
    with pytest.raises(InvalidConfigError, match="Unknown tokenizer 'punkt'"):
        tokenize(["a"], tokenizer="punkt")  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError, match="item 1 is 3"):
        tokenize(["a", 3])  # type: ignore[list-item]
    with pytest.raises(InvalidConfigError, match="unhashable"):
        tokenize([["a"]])  # type: ignore[list-item]
    with pytest.raises(InvalidConfigError, match="'wordpunct' tokenizer, not 'word'"):
        tokenize(tokenize(["a"], tokenizer="wordpunct"))


def test_distinct_keeps_first_occurrence_order() -> None:
    uniques, inverse = distinct(["b", "a", "b", "c", "a"])
    assert uniques == ["b", "a", "c"]
    assert inverse.tolist() == [0, 1, 0, 2, 1]


# ---------------------------------------------------------------------------------- ragged


def test_ragged_basics_and_take() -> None:
    r = Ragged.from_lengths(np.arange(6, dtype=np.int32), np.array([2, 0, 3, 1]))
    assert r.values.dtype == np.int32 and r.offsets.dtype == np.int64  # values keep their dtype
    assert len(r) == 4 and r.lengths.tolist() == [2, 0, 3, 1]
    assert r.tolist() == [[0, 1], [], [2, 3, 4], [5]]
    assert r[-1].tolist() == [5] and r[1].tolist() == []
    t = r.take(np.array([2, 2, 1, 0]))
    assert t.tolist() == [[2, 3, 4], [2, 3, 4], [], [0, 1]]
    assert len(r.take(np.array([], dtype=np.int64))) == 0
    with pytest.raises(IndexError):
        r[4]


def test_ragged_pad() -> None:
    r = Ragged.from_lengths(np.arange(1, 7), np.array([2, 0, 3, 1]))
    assert r.pad().tolist() == [[1, 2, 0], [0, 0, 0], [3, 4, 5], [6, 0, 0]]
    assert r.pad(4, pad_id=9).tolist() == [[1, 2, 9, 9], [9, 9, 9, 9], [3, 4, 5, 9], [6, 9, 9, 9]]
    assert r.pad(2, truncate=True).tolist() == [[1, 2], [0, 0], [3, 4], [6, 0]]
    with pytest.raises(InvalidConfigError, match="3 ids, more than length=2"):
        r.pad(2)
    assert r.take(np.array([], dtype=np.int64)).pad().shape == (0, 0)


@pytest.mark.parametrize(
    ("values", "offsets"),
    [
        (np.arange(3), np.array([0, 2])),  # does not end at len(values)
        (np.arange(3), np.array([1, 3])),  # does not start at 0
        (np.arange(3), np.array([0, 2, 1, 3])),  # decreasing
        (np.arange(3), np.array([], dtype=np.int64)),
        (np.arange(3.0), np.array([0, 3])),  # float values
        (np.arange(4).reshape(2, 2), np.array([0, 4])),
    ],
)
def test_ragged_rejects_bad_layouts(values, offsets) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidConfigError, match="Ragged"):
        Ragged(values, offsets)


# ---------------------------------------------------------------------------------- vocabulary


def test_vocabulary_build_order_and_max_length() -> None:
    train = ["A red cube.", "The cube is green.", "A red cube."]
    v = Vocabulary.build(train)
    assert v.tokens == (PAD, EOS, UNK, "A", "red", "cube", ".", "The", "is", "green")
    assert (v.pad_id, v.eos_id, v.unk_id) == (0, 1, 2)
    assert v.max_length == 6  # "The cube is green ." + {eos}
    s = Vocabulary.build(list(reversed(train)), order="sorted")
    assert s.tokens[:3] == SPECIAL_TOKENS and list(s.tokens[3:]) == sorted(s.tokens[3:])
    assert Vocabulary.build(train[::-1], order="sorted") == Vocabulary.build(train, order="sorted")
    assert Vocabulary.build([]).tokens == SPECIAL_TOKENS and Vocabulary.build([]).max_length == 0
    with pytest.raises(InvalidConfigError, match="order"):
        Vocabulary.build(train, order="alphabetical")  # type: ignore[arg-type]


def test_vocabulary_from_train_only_maps_unseen_words_to_unk() -> None:
    v = Vocabulary.build(["A red cube."])
    ids = v.encode(["A blue cube.", "A red cube."])
    assert ids.tolist() == [[3, v.unk_id, 5, 6, v.eos_id], [3, 4, 5, 6, v.eos_id]]
    assert v.encode(["A red cube."], eos=False).tolist() == [[3, 4, 5, 6]]
    assert v.index("blue") == v.unk_id and v.index("red") == 4 and "red" in v and "blue" not in v
    assert v.decode(ids.pad(7)[0]) == ["A", UNK, "cube", "."]
    assert v.decode([3, 4], strip=False) == ["A", "red"]
    with pytest.raises(InvalidConfigError, match="outside this vocabulary"):
        v.decode([99])


def test_encode_equals_per_text_lookup_on_mpi3d_captions() -> None:
    lat = _latents(MPI3D_PAPER, 5000)
    captions = MPI3D_PAPER.fill(lat, template=np.random.default_rng(2).integers(0, 3, 5000))
    tokens = tokenize(captions)
    v = Vocabulary.build(tokens)
    ids = v.encode(tokens)
    assert ids.tolist() == [[v.index(t) for t in tokenize([c]).lists[0]] + [v.eos_id] for c in captions]
    assert v.encode(captions).tolist() == ids.tolist()
    # every id is known on the train captions, and the padded length is the recorded one
    assert v.unk_id not in ids.values and ids.pad().shape == (5000, v.max_length)
    with pytest.raises(InvalidConfigError, match="'wordpunct' tokenizer"):
        v.encode(tokenize(captions, tokenizer="wordpunct"))


def test_one_hot() -> None:
    v = Vocabulary.build(["a b c"])
    ids = v.encode(["a c", "b"]).pad(4)
    oh = v.one_hot(ids)
    assert oh.shape == (2, 4, len(v)) and oh.dtype == np.float32
    assert (oh.argmax(-1) == ids).all() and (oh.sum(-1) == 1).all()
    assert v.one_hot(ids, dtype=np.uint8).dtype == np.uint8
    with pytest.raises(InvalidConfigError, match="integer ids"):
        v.one_hot(np.array([len(v)]))
    with pytest.raises(InvalidConfigError, match="integer ids"):
        v.one_hot(np.array([0.5]))


def test_vocabulary_json_round_trip_and_determinism() -> None:
    v = Vocabulary.build(['A "xkcd:bright aqua" café.'], tokenizer="word")
    data = v.to_json()
    assert isinstance(data, bytes)
    assert Vocabulary.from_json(data) == v
    assert Vocabulary.from_json(data.decode()).to_json() == data
    assert Vocabulary.build(['A "xkcd:bright aqua" café.']).to_json() == data
    assert json.loads(data)["tokens"][:3] == [PAD, EOS, UNK]


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"not json", "not a vocabulary JSON"),
        (b"[1, 2]", "not an mmbench vocabulary"),
        (b'{"format": "other"}', "not an mmbench vocabulary"),
        (b'{"format": "mmbench.vocabulary", "format_version": 9, "tokens": []}', "version 9"),
        (b'{"format": "mmbench.vocabulary", "format_version": 1}', "tokens"),
        (b'{"format": "mmbench.vocabulary", "format_version": 1, "tokens": ["{pad}", "{eos}", "{unk}"], '
         b'"extra": 1}', "extra"),
        (b'{"format": "mmbench.vocabulary", "format_version": 1, "tokens": ["a", "{eos}", "{unk}"]}',
         "special tokens"),
        (b'{"format": "mmbench.vocabulary", "format_version": 1, "tokens": ["{pad}", "{eos}", "{unk}", "a", "a"]}',
         "repeated"),
        (b'{"format": "mmbench.vocabulary", "format_version": 1, "tokens": ["{pad}", "{eos}", "{unk}"], '
         b'"tokenizer": "punkt"}', "Unknown tokenizer"),
        (b'{"format": "mmbench.vocabulary", "format_version": 1, "tokens": ["{pad}", "{eos}", "{unk}"], '
         b'"max_length": -1}', "max_length"),
        (b'{"format": "mmbench.vocabulary", "format_version": 1, "tokens": "{pad}{eos}{unk}"}', "list of strings"),
    ],
)
def test_vocabulary_from_json_rejects_bad_files(payload: bytes, match: str) -> None:
    with pytest.raises(MMBenchError, match=re.escape(match) if match.isalpha() else match):
        Vocabulary.from_json(payload)


def test_module_examples() -> None:
    result = doctest.testmod(text_mod, optionflags=doctest.NORMALIZE_WHITESPACE, extraglobs={"np": np})
    assert result.attempted >= 6 and result.failed == 0
