"""Captions from latents: template filling, tokenisation and a vocabulary, shared by text modalities.

A caption modality (MPI3D-Complex, Multimodal3DIdent) is a set of sentence templates with
``{field}`` slots, one word per value of each field (``color`` 0 → ``"yellow"``), and a per-sample
template index (the text-specific latent ``m_t``). Three steps turn a latent table into model input:

1. :class:`Templates` fills the captions of a whole table at once;
2. :func:`tokenize` splits them into :class:`Tokens` with NLTK's data-free word tokenizer;
3. :class:`Vocabulary` (built from the train split only) maps tokens to ids, as ragged
   sequences (:class:`Ragged`: ``values`` + ``offsets``), padded arrays or one-hot.

Why everything works on *distinct* captions: captions are built from a few templates and small
word lists, so a million captions hold only hundreds to tens of thousands of distinct strings
(MPI3D's setting 5: 3 templates × 288 value combinations = 864). Each distinct caption is
formatted, tokenised and encoded once, and the results are gathered back with numpy indexing.
NLTK's tokenizer costs ~100 µs a sentence; per caption it would take minutes for a million,
per distinct caption it takes milliseconds. Tokenising whole captions (not template pieces and
words separately) keeps the result exactly NLTK's: its quote and hyphen rules look at the
neighbouring characters (``"{COLOR}"`` becomes `````, …, ``''``; ``{YPOS}-{XPOS}`` one token).

Example:
    >>> t = Templates(["A {color} {shape}.", "The {shape} is {color}."],
    ...               {"color": ["red", "green"], "shape": ["cube", "ball"]})
    >>> captions = t.fill({"color": np.array([0, 1]), "shape": np.array([1, 0])},
    ...                   template=np.array([0, 1]))
    >>> captions
    ['A red ball.', 'The cube is green.']
    >>> vocab = Vocabulary.build(captions)
    >>> vocab.encode(captions).pad()
    array([[ 3,  4,  5,  6,  1,  0],
           [ 7,  8,  9, 10,  6,  1]], dtype=int32)
"""

from __future__ import annotations

import dataclasses
import json
import re
import string
from collections.abc import Callable, Mapping, Sequence
from functools import cache, lru_cache
from typing import Any, ClassVar, Literal

import numpy as np

from mmbench.core.columns import Ragged
from mmbench.errors import InvalidConfigError, did_you_mean
from mmbench.versioning import canonical_json, strict_fields

__all__ = [
    "EOS",
    "PAD",
    "SPECIAL_TOKENS",
    "TOKENIZERS",
    "UNK",
    "Ragged",
    "Templates",
    "Tokens",
    "Vocabulary",
    "distinct",
    "tokenize",
]

PAD, EOS, UNK = "{pad}", "{eos}", "{unk}"
#: The special tokens, at ids 0, 1, 2 of every vocabulary (the reference code's order).
SPECIAL_TOKENS = (PAD, EOS, UNK)
#: ``"word"``: NLTK's ``word_tokenize`` without its sentence splitter (which needs the ``punkt``
#: download); identical on one-sentence captions. ``"wordpunct"``: NLTK's ``wordpunct_tokenize``
#: (splits at every punctuation mark, ``coffee-cup`` → ``coffee - cup``).
TOKENIZERS = ("word", "wordpunct")
_FORMAT = "mmbench.vocabulary"
_FORMAT_VERSION = 1


# --------------------------------------------------------------------------------------------
# distinct strings


def distinct(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct strings in first-occurrence order and, per input, the index of its string.

    ``[uniques[i] for i in inverse] == list(texts)``. A dict does it in one pass (no sort), so it
    also keeps the order in which strings first appear.
    """
    seen: dict[str, int] = {}
    try:
        inverse = np.fromiter((seen.setdefault(t, len(seen)) for t in texts), dtype=np.int64, count=len(texts))
    except TypeError as exc:  # an unhashable item (a list, an array row)
        raise InvalidConfigError(f"Expected a sequence of strings; it holds an unhashable item: {exc}.") from None
    uniques = list(seen)
    for i, text in enumerate(uniques):
        if not isinstance(text, str):
            where = int(np.flatnonzero(inverse == i)[0])
            raise InvalidConfigError(
                f"Expected a sequence of strings, but item {where} is {text!r} ({type(text).__name__})."
            )
    return uniques, inverse


# --------------------------------------------------------------------------------------------
# templates


def _parse_template(template: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``"A {x} b {y}."`` → literals ``("A ", " b ", ".")`` and fields ``("x", "y")``.

    Field names are taken verbatim between the braces (``{ size}`` and ``{cam.}`` are the fields
    ``" size"`` and ``"cam."``, as in the MPI3D paper's templates); ``{{`` and ``}}`` are literal
    braces. Conversions and format specs (``{x!r}``, ``{x:>3}``) are refused: a slot is a word.
    """
    if not isinstance(template, str):
        raise InvalidConfigError(f"A template must be a string, got {template!r} ({type(template).__name__}).")
    literals, fields = [""], []
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise InvalidConfigError(f"Template {template!r} is malformed: {exc}. Write literal braces as {{{{ }}}}.") from None
    for literal, field, spec, conversion in parts:
        literals[-1] += literal
        if field is None:
            continue
        if spec or conversion or not field.strip():
            raise InvalidConfigError(
                f"Template {template!r} has the slot {{{field}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}}: slots are plain field names, e.g. {{color}}."
            )
        fields.append(field)
        literals.append("")
    return tuple(literals), tuple(fields)


@dataclasses.dataclass(frozen=True)
class Templates:
    """Sentence templates with ``{field}`` slots and the word for each value of each field.

    Args:
        templates: the sentences; template ``k`` is used where the template index is ``k``.
            Each template may use any subset of the fields.
        words: field → the word of each value (value ``v`` of the field is ``words[field][v]``).
        columns: field → the latent column that gives its values (default: the field's own
            name). Fields with spaces or dots (the paper's ``{ size}``, ``{cam.}``) or text-side
            columns (``text.color``) are mapped here.

    Example:
        >>> t = Templates(["A {color} {shape}."], {"color": ["red", "green"], "shape": ["cube", "ball"]},
        ...               columns={"color": "text.color"})
        >>> t.fill({"text.color": np.array([1]), "shape": np.array([0])}, template=np.array([0]))
        ['A green cube.']
    """

    templates: tuple[str, ...]
    words: Mapping[str, tuple[str, ...]]
    columns: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.templates, str) or not isinstance(self.templates, Sequence) or not self.templates:
            raise InvalidConfigError(f"templates must be a non-empty sequence of strings, got {self.templates!r}.")
        object.__setattr__(self, "templates", tuple(self.templates))
        object.__setattr__(self, "words", _check_words(self.words))
        parsed = tuple(_parse_template(t) for t in self.templates)
        for template, (_, fields) in zip(self.templates, parsed, strict=True):
            for field in fields:
                if field not in self.words:
                    raise InvalidConfigError(
                        f"Template {template!r} uses the field {field!r}, which has no words."
                        f"{did_you_mean(field, self.words)} Fields with words: {sorted(self.words)}."
                    )
        if not isinstance(self.columns, Mapping):
            raise InvalidConfigError(f"columns must map field → latent column, got {self.columns!r}.")
        extra = sorted(set(self.columns) - set(self.words))
        if extra:
            raise InvalidConfigError(f"columns names fields {extra} that have no words; fields: {sorted(self.words)}.")
        object.__setattr__(self, "columns", {f: str(self.columns.get(f, f)) for f in self.words})
        object.__setattr__(self, "_parsed", parsed)
        object.__setattr__(self, "_position", {f: j for j, f in enumerate(self.words)})

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields that have words, in the order given."""
        return tuple(self.words)

    def fill(self, latents: Mapping[str, Any], *, template: Any) -> list[str]:
        """The caption of every row of ``latents``, row ``i`` from template ``template[i]``.

        Args:
            latents: a latent table (or any mapping column → integer array) holding the
                column of every field.
            template: the template index of every row, an integer array (or one int for all).

        Returns:
            One string per row. Equal captions are the same ``str`` object (memory is per
            distinct caption, and :meth:`Vocabulary.encode` hashes each once).
        """
        codes = self._codes(latents, template)
        uniques, inverse = _unique_rows(codes)
        captions = np.empty(len(uniques), dtype=object)
        captions[:] = [self._format(row) for row in uniques]
        return captions[inverse].tolist()

    def _codes(self, latents: Mapping[str, Any], template: Any) -> np.ndarray:
        """Rows ``(template, value of field 1, …)``, with the fields a template lacks set to 0.

        Zeroing unused fields makes two rows that print the same caption equal, so each
        distinct caption is formatted once.
        """
        if not isinstance(latents, Mapping):
            raise InvalidConfigError(f"latents must be a mapping column → array, got {type(latents).__name__}.")
        cols = [self._column(latents, f) for f in self.fields]
        n = len(cols[0])
        tmpl = _index_array("template", template, len(self.templates), n=n)
        if tmpl.ndim == 0:
            tmpl = np.full(n, int(tmpl), dtype=np.int64)
        for field, col in zip(self.fields, cols, strict=True):
            if len(col) != n:
                raise InvalidConfigError(
                    f"Column {self.columns[field]!r} (field {field!r}) has {len(col)} rows, expected {n}."
                )
        uses = np.array([[f in fields for f in self.fields] for _, fields in self._parsed], dtype=bool)
        codes = np.empty((n, 1 + len(cols)), dtype=np.int64)
        codes[:, 0] = tmpl
        for j, col in enumerate(cols):
            codes[:, 1 + j] = np.where(uses[tmpl, j], col, 0)
        return codes

    def _column(self, latents: Mapping[str, Any], field: str) -> np.ndarray:
        name = self.columns[field]
        if name not in latents:
            raise InvalidConfigError(
                f"The templates need the latent column {name!r} (field {field!r}), which is missing."
                f"{did_you_mean(name, list(latents))} Columns: {sorted(latents)}."
            )
        return _index_array(f"Column {name!r} (field {field!r})", latents[name], len(self.words[field]), vector=True)

    def _format(self, row: np.ndarray) -> str:
        literals, fields = self._parsed[row[0]]
        pos = self._position
        out = [literals[0]]
        for field, literal in zip(fields, literals[1:], strict=True):
            out.append(self.words[field][row[1 + pos[field]]])
            out.append(literal)
        return "".join(out)


def _check_words(words: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(words, Mapping) or not words:
        raise InvalidConfigError(f"words must be a non-empty mapping field → list of words, got {words!r}.")
    out = {}
    for field, values in words.items():
        if (
            not isinstance(field, str)
            or isinstance(values, str)
            or not isinstance(values, Sequence)
            or not values
            or not all(isinstance(w, str) for w in values)
        ):
            raise InvalidConfigError(
                f"words[{field!r}] must be a non-empty list of strings (the word of each value), got {values!r}."
            )
        out[field] = tuple(values)
    return out


def _index_array(what: str, values: Any, size: int, *, n: int | None = None, vector: bool = False) -> np.ndarray:
    """``values`` as int64, checked to lie in ``[0, size)`` (1-D, or a scalar unless ``vector``)."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu" or arr.ndim > 1 or (vector and arr.ndim != 1):
        raise InvalidConfigError(
            f"{what} must be a 1-D integer array of value indices, got dtype {arr.dtype} and shape {arr.shape}."
        )
    if n is not None and arr.ndim == 1 and len(arr) != n:
        raise InvalidConfigError(f"{what} has {len(arr)} rows, expected {n}.")
    if arr.size and (arr.min() < 0 or arr.max() >= size):
        bad = arr[(arr < 0) | (arr >= size)].flat[0]
        raise InvalidConfigError(f"{what} holds the value {int(bad)}, outside [0, {size - 1}] (it has {size} words).")
    return arr.astype(np.int64, copy=False)


def _unique_rows(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a non-negative int64 matrix and the inverse index, via one int64 key.

    The rows are read as mixed-radix numbers (one scalar key per row) when the key fits in
    int64, which makes ``np.unique`` a 1-D sort; otherwise rows are compared as rows.
    """
    if len(codes) == 0:
        return codes, np.zeros(0, dtype=np.int64)
    radix = codes.max(axis=0) + 1
    if float(np.prod(radix.astype(float))) < 2.0**62:
        weights = np.cumprod(np.concatenate([[1], radix[:0:-1]]))[::-1]
        _, first, inverse = np.unique(codes @ weights, return_index=True, return_inverse=True)
        return codes[first], inverse.reshape(-1)
    uniques, inverse = np.unique(codes, axis=0, return_inverse=True)
    return uniques, inverse.reshape(-1)


# --------------------------------------------------------------------------------------------
# tokenisation


@cache
def _tokenizer(name: str) -> Callable[[str], list[str]]:
    # NLTK is imported here: its import takes ~0.3 s and only text builders need it.
    if name == "word":
        return _memoised(_std_re_tokenizer().tokenize)
    if name == "wordpunct":
        from nltk.tokenize import wordpunct_tokenize

        return _memoised(wordpunct_tokenize)
    raise InvalidConfigError(f"Unknown tokenizer {name!r}.{did_you_mean(str(name), TOKENIZERS)} Choose one of {list(TOKENIZERS)}.")


#: Distinct texts whose tokens a process remembers, per tokenizer (~1 KB each): a builder
#: tokenises its train captions for the vocabulary and again, shard by shard, for the ids.
_MEMO_SIZE = 2**15


def _memoised(split: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """``split`` with its last :data:`_MEMO_SIZE` results remembered (each call gets a new list)."""
    memo = lru_cache(maxsize=_MEMO_SIZE)(lambda text: tuple(split(text)))
    return lambda text: list(memo(text))


#: Flags that mean the same in ``re`` and in the ``regex`` module NLTK compiles its rules with.
_SHARED_FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE | re.ASCII


def _std_re(pattern: Any) -> Any:
    """An NLTK rule's pattern compiled with the standard ``re`` (the same pattern string and flags)."""
    if isinstance(pattern, re.Pattern):
        return pattern
    return re.compile(pattern.pattern, pattern.flags & _SHARED_FLAGS)


def _std_re_tokenizer() -> Any:
    """NLTK's ``NLTKWordTokenizer`` running its own rules through the standard ``re`` module.

    NLTK ≥ 3.9 compiles its tokenizer rules with the third-party ``regex`` engine behind a
    per-call timeout guard (``nltk.redos``, a defence against caller-supplied patterns), which
    makes a sentence ~3× slower. The rules here are NLTK's own, fixed, linear patterns: the
    instance keeps NLTK's ``tokenize`` method and gets the same patterns compiled by ``re``
    (tests check both give the same tokens). NLTK's tokenizer is used as it is if a pattern does
    not compile with ``re``.
    """
    from nltk.tokenize import NLTKWordTokenizer

    tok = NLTKWordTokenizer()
    try:
        for attr in ("STARTING_QUOTES", "ENDING_QUOTES", "PUNCTUATION", "CONVERT_PARENTHESES"):
            setattr(tok, attr, [(_std_re(p), sub) for p, sub in getattr(NLTKWordTokenizer, attr)])
        for attr in ("PARENS_BRACKETS", "DOUBLE_DASHES"):
            p, sub = getattr(NLTKWordTokenizer, attr)
            setattr(tok, attr, (_std_re(p), sub))
        for attr in ("CONTRACTIONS2", "CONTRACTIONS3"):
            setattr(tok, attr, [_std_re(p) for p in getattr(NLTKWordTokenizer, attr)])
    except (re.error, AttributeError, TypeError, ValueError):  # a future NLTK's rules: use them as they are
        return NLTKWordTokenizer()
    return tok


@dataclasses.dataclass(frozen=True, eq=False)
class Tokens:
    """The token lists of many texts, each distinct text's list held (and computed) once.

    What :func:`tokenize` returns and :meth:`Vocabulary.build` / :meth:`Vocabulary.encode`
    accept, so that a builder tokenises its captions once for both.

    Attributes:
        lists: the token list of each distinct text.
        inverse: for each text, the index of its list in ``lists``.
        tokenizer: the tokenizer's name.
    """

    lists: list[list[str]]
    inverse: np.ndarray
    tokenizer: str

    def __len__(self) -> int:
        return len(self.inverse)

    def __getitem__(self, i: int) -> list[str]:
        return self.lists[self.inverse[i]]

    def tolist(self) -> list[list[str]]:
        """One list per text (equal texts share one list object: do not mutate them)."""
        return [self.lists[i] for i in self.inverse.tolist()]


def tokenize(texts: Sequence[str] | Tokens, *, tokenizer: Literal["word", "wordpunct"] = "word") -> Tokens:
    """The tokens of each text, with NLTK's data-free tokenizers (no ``punkt`` download).

    ``"word"`` is NLTK's ``word_tokenize(text, preserve_line=True)``: the Treebank rules the
    reference code used (``"`` → `````/``''``, ``top-left`` one token, final ``.`` split), minus
    the sentence splitter, which only matters for texts of several sentences. Each distinct text
    is tokenised once (NLTK takes ~100 µs a sentence).

    Example:
        >>> tokenize(['A "red" top-left cube.']).tolist()
        [['A', '``', 'red', "''", 'top-left', 'cube', '.']]
    """
    if isinstance(texts, Tokens):
        if texts.tokenizer != tokenizer:
            raise InvalidConfigError(
                f"These tokens come from the {texts.tokenizer!r} tokenizer, not {tokenizer!r}: tokenise "
                f"the texts again with tokenizer={tokenizer!r}."
            )
        return texts
    split = _tokenizer(tokenizer)
    uniques, inverse = distinct(texts)
    return Tokens([split(t) for t in uniques], inverse, tokenizer)


# --------------------------------------------------------------------------------------------
# ragged ids


# Ragged (values + offsets) is the core's column type: mmbench.core.columns.Ragged.


# --------------------------------------------------------------------------------------------
# vocabulary


@dataclasses.dataclass(frozen=True, eq=True)
class Vocabulary:
    """Token ↔ id map of a text modality: ``{pad}`` = 0, ``{eos}`` = 1, ``{unk}`` = 2, then words.

    Build it from the **train** split only (:meth:`build`); words that appear only in val or
    test become ``{unk}``, as they would for a model trained on train. Saved beside the dataset
    as a JSON artifact (:meth:`to_json` / :meth:`from_json`).

    Attributes:
        tokens: every token, by id (the specials first).
        tokenizer: the name of the tokenizer the ids are for (see :data:`TOKENIZERS`).
        max_length: the longest train sequence with its ``{eos}``: the padded length the
            reference text encoders use (0 if unknown).

    Example:
        >>> vocab = Vocabulary.build(["A red cube.", "A green ball."])
        >>> vocab.tokens[:6]
        ('{pad}', '{eos}', '{unk}', 'A', 'red', 'cube')
        >>> vocab.encode(["A blue cube."]).tolist()
        [[3, 2, 5, 6, 1]]
    """

    tokens: tuple[str, ...]
    tokenizer: str = "word"
    max_length: int = 0

    pad_id: ClassVar[int] = 0
    eos_id: ClassVar[int] = 1
    unk_id: ClassVar[int] = 2

    def __post_init__(self) -> None:
        tokens = self.tokens
        if isinstance(tokens, str) or not isinstance(tokens, Sequence) or not all(isinstance(t, str) for t in tokens):
            raise InvalidConfigError(f"Vocabulary tokens must be a list of strings, got {tokens!r:.200}.")
        tokens = tuple(tokens)
        if tokens[: len(SPECIAL_TOKENS)] != SPECIAL_TOKENS:
            raise InvalidConfigError(
                f"A vocabulary starts with the special tokens {list(SPECIAL_TOKENS)}, got {list(tokens[:3])}."
            )
        if len(set(tokens)) != len(tokens):
            dup = sorted({t for t in tokens if tokens.count(t) > 1})
            raise InvalidConfigError(f"Vocabulary tokens must be distinct; repeated: {dup[:10]}.")
        _tokenizer(self.tokenizer)  # validates the name
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, int) or self.max_length < 0:
            raise InvalidConfigError(f"max_length must be a non-negative integer, got {self.max_length!r}.")
        object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "_ids", {t: i for i, t in enumerate(tokens)})

    @classmethod
    def build(
        cls,
        texts: Sequence[str] | Tokens,
        *,
        tokenizer: Literal["word", "wordpunct"] = "word",
        order: Literal["first", "sorted"] = "first",
    ) -> Vocabulary:
        """The vocabulary of ``texts`` (the train split's captions).

        Args:
            texts: the train texts, or their :class:`Tokens`.
            tokenizer: see :func:`tokenize`.
            order: ``"first"``: words in order of first occurrence in ``texts`` (the reference
                code's order; deterministic for a deterministic split); ``"sorted"``: by code
                point, independent of the order of the texts.
        """
        if order not in ("first", "sorted"):
            raise InvalidConfigError(f"order must be 'first' or 'sorted', got {order!r}.")
        lists = tokenize(texts, tokenizer=tokenizer).lists
        seen: dict[str, None] = {}
        for tokens in lists:  # distinct texts in first-occurrence order: first-occurrence words
            seen.update(dict.fromkeys(tokens))
        words = [w for w in seen if w not in SPECIAL_TOKENS]
        if order == "sorted":
            words.sort()
        longest = max(map(len, lists), default=-1) + 1  # with its {eos}; 0 for no texts
        return cls(SPECIAL_TOKENS + tuple(words), tokenizer=tokenizer, max_length=longest)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids  # type: ignore[attr-defined]

    def index(self, token: str) -> int:
        """The id of ``token`` (``{unk}``'s id for a token the vocabulary lacks)."""
        return self._ids.get(token, self.unk_id)  # type: ignore[attr-defined]

    def encode(self, texts: Sequence[str] | Tokens, *, eos: bool = True) -> Ragged:
        """Token ids of each text (followed by ``{eos}`` unless ``eos=False``), as :class:`Ragged`.

        ``texts`` may be strings or the :class:`Tokens` of :func:`tokenize` (with this
        vocabulary's tokenizer). Each distinct text is tokenised and looked up once; the
        sequences of all texts are then gathered with numpy.
        """
        tokens = tokenize(texts, tokenizer=self.tokenizer)  # type: ignore[arg-type]
        ids = self._ids  # type: ignore[attr-defined]
        tail = [self.eos_id] if eos else []
        seqs = [[ids.get(t, self.unk_id) for t in toks] + tail for toks in tokens.lists]
        lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
        flat = np.fromiter((i for s in seqs for i in s), dtype=np.int32, count=int(lengths.sum()))
        return Ragged.from_lengths(flat, lengths).take(tokens.inverse)

    def decode(self, ids: Sequence[int] | np.ndarray, *, strip: bool = True) -> list[str]:
        """The tokens of one id sequence; ``strip`` drops ``{pad}`` and everything from ``{eos}``."""
        out = []
        for i in np.asarray(ids).tolist():
            if strip and i == self.eos_id:
                break
            if strip and i == self.pad_id:
                continue
            if not 0 <= i < len(self.tokens):
                raise InvalidConfigError(f"Token id {i} is outside this vocabulary of {len(self.tokens)} tokens.")
            out.append(self.tokens[i])
        return out

    def one_hot(self, ids: np.ndarray, *, dtype: Any = np.float32) -> np.ndarray:
        """One-hot ``ids`` (any shape, e.g. a padded ``(n, L)`` batch) → ``(..., len(self))``.

        Use it per batch: a whole split of 1 M captions × 26 positions × 111 tokens would take
        11 GB in float32. (``torch.nn.functional.one_hot`` does the same on tensors.)
        """
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu" or (ids.size and (ids.min() < 0 or ids.max() >= len(self))):
            raise InvalidConfigError(f"one_hot needs integer ids in [0, {len(self) - 1}], got dtype {ids.dtype}.")
        out = np.zeros((*ids.shape, len(self)), dtype=dtype)
        np.put_along_axis(out, ids[..., None].astype(np.int64), 1, axis=-1)
        return out

    def to_json(self) -> bytes:
        """Canonical JSON bytes (the ``vocab.json`` artifact): equal vocabularies, equal bytes."""
        return canonical_json(
            {
                "format": _FORMAT,
                "format_version": _FORMAT_VERSION,
                "tokens": list(self.tokens),
                "tokenizer": self.tokenizer,
                "max_length": self.max_length,
            }
        ).encode("ascii")

    @classmethod
    def from_json(cls, data: bytes | str) -> Vocabulary:
        """Read :meth:`to_json`'s bytes back; anything else raises naming what is wrong."""
        try:
            obj = json.loads(data)
        except (ValueError, TypeError) as exc:
            raise InvalidConfigError(f"This is not a vocabulary JSON file: {exc}.") from None
        if not isinstance(obj, dict) or obj.get("format") != _FORMAT:
            raise InvalidConfigError(
                f"This JSON is not an mmbench vocabulary (its 'format' is "
                f"{obj.get('format') if isinstance(obj, dict) else type(obj).__name__!r}, expected {_FORMAT!r})."
            )
        if obj.get("format_version") != _FORMAT_VERSION:
            raise InvalidConfigError(
                f"Vocabulary format version {obj.get('format_version')!r} is not readable by this mmbench "
                f"(it reads {_FORMAT_VERSION}); rebuild the dataset with this mmbench."
            )
        fields = {k: v for k, v in obj.items() if k not in ("format", "format_version")}
        return cls(**strict_fields(cls, fields, what="vocabulary key"))
