"""Text utilities benchmark (issue 9): captions from latents, tokenised and encoded. Run by hand:

    .venv/bin/python benchmarks/bench_text.py [--n 1000000]

Three caption sets of ``n`` rows each, every step timed separately (best of ``--repeat``):

* ``mpi3d``: the MPI3D-Complex setting-5 templates of the reference code (3 templates, 5 fields,
  864 distinct captions, ~17 tokens);
* ``m3di``: the Multimodal3DIdent phrases (5 templates, 7 shapes, 3 × 3 positions, 140 colour
  names: ~44,000 distinct captions, ~18 tokens);
* ``distinct``: a worst case for the distinct-caption strategy: every caption holds a number
  from 0 to 10 m, so almost every caption is different (~12 tokens); ``m = --distinct-n``
  (100,000 by default: NLTK then tokenises every caption, ~0.1 ms each).

Steps: ``Templates.fill`` (latents → ``list[str]``), ``tokenize`` (NLTK, once per distinct
caption), ``Vocabulary.build`` (on the same captions, standing in for the train split),
``Vocabulary.encode`` (tokens → ids as ``Ragged``); "total" is their sum. ``Ragged.pad`` (to a
dense ``(n, L)`` array) is timed apart. Prints a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mmbench.rendering.text import Templates, Vocabulary, tokenize

MPI3D = Templates(
    templates=(
        "A {size} {shape} in {color}, viewed from {camera}, {background}.",
        "From {camera}, you see a {color}, {size} {shape}, {background}.",
        "A {size} {shape}, {color}, placed {background}, observed from {camera}.",
    ),
    words={
        "color": ("yellow", "green", "olive", "red"),
        "shape": ("coffee-cup", "tennis-ball", "croissant", " beer-cup"),
        "size": ("small size", "large size"),
        "camera": ("top view", "center view", "bottom view"),
        "background": ("in a purple background", "in a sea-green background", "in a salmon background"),
    },
)

M3DI = Templates(
    templates=(
        'A {SHAPE} of "{COLOR}" color is visible, positioned at the {YPOS}-{XPOS} of the image.',
        'A "{COLOR}" {SHAPE} is at the {YPOS}-{XPOS} of the image.',
        'The {YPOS}-{XPOS} of the image shows a "{COLOR}" colored {SHAPE}.',
        'At the {YPOS}-{XPOS} of the picture is a {SHAPE} in "{COLOR}" color.',
        'At the {YPOS}-{XPOS} of the image, there is a "{COLOR}" object in the form of a {SHAPE}.',
    ),
    words={
        "SHAPE": ("teapot", "hare", "dragon", "cow", "armadillo", "horse", "head"),
        "XPOS": ("left", "center", "right"),
        "YPOS": ("top", "mid", "bottom"),
        # stand-ins for matplotlib's named colours ("xkcd:bright aqua", "tab:blue", ...)
        "COLOR": tuple(f"xkcd:colour {i}" for i in range(70)) + tuple(f"tab:c{i}" for i in range(70)),
    },
)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def latents(templates: Templates, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {templates.columns[f]: rng.integers(0, len(w), n) for f, w in templates.words.items()}


def run(name: str, templates: Templates, table: dict[str, np.ndarray], n: int, repeat: int) -> list[str]:
    rng = np.random.default_rng(1)
    template = rng.integers(0, len(templates.templates), n)
    t_fill, captions = timed(lambda: templates.fill(table, template=template), repeat)
    t_tok, tokens = timed(lambda: tokenize(captions), repeat)
    t_vocab, vocab = timed(lambda: Vocabulary.build(tokens), repeat)
    t_enc, ids = timed(lambda: vocab.encode(tokens), repeat)
    t_pad, _ = timed(lambda: ids.pad(), repeat)
    total = t_fill + t_tok + t_vocab + t_enc
    per_caption = len(ids.values) / n
    return [
        f"| {name} | {n:,} | {len(tokens.lists):,} | {per_caption:.1f} | {len(vocab)} | {t_fill:.2f} | "
        f"{t_tok:.2f} | {t_vocab:.2f} | {t_enc:.2f} | **{total:.2f}** ({n / total / 1e6:.2f} M/s) | {t_pad:.2f} |"
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--distinct-n", type=int, default=100_000)
    args = ap.parse_args()
    n, m, rng = args.n, args.distinct_n, np.random.default_rng(0)
    numbered = Templates(
        ("Sample number {k} shows a {color} {shape} at the top-left .",),
        {"k": tuple(str(i) for i in range(10 * m)), "color": MPI3D.words["color"], "shape": MPI3D.words["shape"]},
    )
    rows = [
        "| captions | rows | distinct | ids/caption (with eos) | vocab | fill s | tokenize s | vocab s | "
        "encode s | total s | pad s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows += run("mpi3d", MPI3D, latents(MPI3D, n, rng), n, args.repeat)
    rows += run("m3di", M3DI, latents(M3DI, n, rng), n, args.repeat)
    rows += run("distinct", numbered, latents(numbered, m, rng), m, 1)
    print(f"python {platform.python_version()}, numpy {np.__version__}, cpus {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.1f}")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
