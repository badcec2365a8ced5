"""Dataset cards, generated from a builder's metadata plus hand-written prose kept in this folder.

Each dataset has a prose file here, ``<name>.md`` (a ``/`` in the name becomes ``__``): YAML front
matter (``pretty_name``, ``license`` as a Hub licence id, ``tags``; ``sample: false`` with a
``sample_note`` for a dataset whose raw inputs no machine can fetch unattended, so that the
catalogue has no sample grid for it) and the sections of
:data:`PROSE_SECTIONS`. Everything else is generated, so it cannot drift from the code: the
modalities, the latents table (name, kind, role, scope, support), the configs with what each
changes and what theory says a contrastive model identifies, the version history, how to load,
the citation and a sample grid.

* :func:`catalogue_card` is the page of one dataset in the repository's catalogue ``cards/``,
  which :func:`write_catalogue` (``mmbench cards``) regenerates and :func:`stale_catalogue` checks.
  Catalogue pages depend on metadata only (never on a local build), so they are the same on
  every machine; each sample PNG carries the key of what it shows, so a stale one is detected
  without building anything.
* :func:`hub_card` is the ``README.md`` of an export or Hub repository: the YAML metadata that
  ``datasets`` and the Hub read (``configs:``, ``dataset_info:``, licence) plus an ``mmbench:``
  block (versions, config JSON, fingerprints, input checksums), then the same page.

Example:
    >>> from mmbench.cards import write_catalogue
    >>> write_catalogue("cards")          # what `mmbench cards` runs
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmbench.core.storage import atomic_path, atomic_write
from mmbench.errors import MMBenchError

if TYPE_CHECKING:
    from mmbench.core.builder import Builder
    from mmbench.core.dataset import Dataset
    from mmbench.core.latents import Latent
    from mmbench.hub import ExportedConfig

__all__ = [
    "PROSE_SECTIONS",
    "catalogue_card",
    "has_sample",
    "hub_card",
    "read_card_metadata",
    "sample_key",
    "stale_catalogue",
    "write_catalogue",
    "write_hub_card",
    "write_samples",
]

PROSE_SECTIONS = ("Purpose", "Sources and licences", "Configs and biases", "Known deviations")
#: PNG text key holding what a sample image shows (see :func:`sample_key`).
SAMPLE_KEY = "mmbench-sample"
SAMPLE_COUNT = 8
#: Bump when the sample images are drawn differently: every catalogue PNG then counts as stale.
SAMPLE_FORMAT = 1
MAX_SAMPLE_BYTES = 64_000
INDEX = "README.md"


# ============================================================================ prose and metadata
def card_stem(dataset: str) -> str:
    """File stem of a dataset's prose file and catalogue page: ``numerical/clica`` → ``numerical__clica``."""
    return dataset.replace("/", "__")


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """``(YAML front matter as a dict, the rest)`` of a Markdown file (``{}`` when it has none)."""
    import yaml

    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---\n", 4)
    if end < 0:
        raise MMBenchError("A card's YAML front matter (between '---' lines) is not closed.")
    meta = yaml.safe_load(text[4:end]) or {}
    if not isinstance(meta, dict):
        raise MMBenchError("A card's YAML front matter is not a mapping.")
    return meta, text[end + 5 :]


def read_card_metadata(text: str) -> dict[str, Any]:
    """The YAML metadata of a dataset card (``README.md``)."""
    return split_front_matter(text)[0]


@dataclasses.dataclass(frozen=True)
class Prose:
    """The hand-written part of a dataset's card."""

    meta: dict[str, Any]
    sections: dict[str, str]


def load_prose(dataset: str, *, required: bool = True) -> Prose:
    """The prose of ``dataset`` from ``mmbench/cards/<stem>.md``, checked for its required parts.

    With ``required=False`` a dataset without a prose file (a user's own builder) gets
    placeholder prose that says so, instead of an error.
    """
    resource = importlib.resources.files(__name__) / f"{card_stem(dataset)}.md"
    if not resource.is_file() and not required:
        missing = f"Not documented: mmbench/cards/{card_stem(dataset)}.md does not exist for this dataset."
        return Prose({"pretty_name": dataset, "license": "other"}, dict.fromkeys(PROSE_SECTIONS, missing))
    if not resource.is_file():
        raise MMBenchError(
            f"No card prose for {dataset!r}: write mmbench/cards/{card_stem(dataset)}.md with front matter "
            f"(pretty_name, license, tags) and the sections {', '.join(f'## {s}' for s in PROSE_SECTIONS)}, "
            "then run `mmbench cards`."
        )
    meta, body = split_front_matter(resource.read_text(encoding="utf-8"))
    sections: dict[str, str] = {}
    current = None
    for line in body.splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    missing = [s for s in PROSE_SECTIONS if not sections.get(s, "").strip()]
    missing += [k for k in ("pretty_name", "license") if not meta.get(k)]
    if missing:
        raise MMBenchError(f"mmbench/cards/{card_stem(dataset)}.md lacks {missing}; every card needs them.")
    return Prose(meta, {k: v.strip() for k, v in sections.items()})


# ============================================================================ Markdown pieces
def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value: Any) -> str:
    v = float(value)
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:g}"


def _support(lat: Latent) -> str:
    if lat.kind == "categorical":
        names = [str(s) for s in lat.support]
        return ", ".join(names) if len(names) <= 12 else ", ".join(names[:10]) + f", … ({len(names)} categories)"
    low, high = (_number(v) for v in lat.support)
    return f"{low} … {high}" if lat.kind == "discrete" else f"[{low}, {high}]"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _default_builder(cls: type[Builder]) -> Builder:
    return cls(cls.DEFAULT_CONFIG)


def _modalities_section(b: Builder) -> str:
    rows = [[f"`{m.name}`", m.kind, "×".join(map(str, m.shape)), m.dtype, m.description] for m in b.modalities().values()]
    return "## Modalities\n\n" + _table(["column", "kind", "shape", "dtype", "description"], rows)


def _latents_section(b: Builder, config: str | None = None) -> str:
    rows = [
        [f"`latents.{lat.name}`", lat.kind, lat.role, lat.scope, _support(lat), lat.dim, lat.description]
        for lat in b.latent_spec()
    ]
    config = config or b.config.name
    which = f"config `{config}`" if config else "the default config"
    return (
        f"## Latents\n\nThe ground-truth latents of {which}, stored for every example (other configs may "
        "add or drop some: `mmbench info ID` lists them). Roles: *content* is shared and invariant across "
        "modalities, *style* is shared but may change between them, *specific* is seen by one modality "
        "(its scope).\n\n" + _table(["column", "kind", "role", "scope", "support", "dim", "description"], rows)
    )


def _config_rows(cls: type[Builder]) -> list[list[str]]:
    try:
        defaults = cls.CONFIG_CLASS().to_dict()
    except MMBenchError:
        defaults = {}
    rows = []
    for name, cfg in cls.CONFIGS.items():
        changed = {k: v for k, v in cfg.to_dict().items() if k not in cfg.LABEL_FIELDS and defaults.get(k, ...) != v}
        ident = cls(name).expected_identifiable()
        mark = " (default)" if name == cls.DEFAULT_CONFIG else ""
        rows.append([
            f"`{name}`{mark}", cfg.description,
            ", ".join(f"`{k}={_json(v)}`" for k, v in changed.items()) or "—",
            ", ".join(ident) or "—",
        ])
    return rows


def _configs_section(cls: type[Builder], prose: Prose) -> str:
    table = _table(["config", "description", "differs from the defaults", "expected identifiable"], _config_rows(cls))
    return f"## Configs and biases\n\n{prose.sections['Configs and biases']}\n\n{table}"


def _versions_section(cls: type[Builder]) -> str:
    from mmbench.versioning import Version

    rows = [[f"{v}{' (current)' if v == cls.VERSION else ''}", notes]
            for v, notes in sorted(cls.RELEASE_NOTES.items(), key=lambda kv: Version.parse(kv[0]), reverse=True)]
    return (
        "## Version history\n\nVersions follow semver over the data: PATCH keeps every value, MINOR only adds "
        "columns, MAJOR changes values.\n\n" + _table(["version", "notes"], rows)
    )


def _citation_section(cls: type[Builder]) -> str:
    text = cls.CITATION or "(no citation recorded)"
    return f"## Citation\n\n```text\n{text}\n```"


def _footer(cls: type[Builder]) -> str:
    return (
        f"<sub>Generated by `mmbench cards` from the `{cls.name}` builder's metadata and "
        f"`mmbench/cards/{card_stem(cls.name)}.md`; edit those, not this page.</sub>"
    )


def has_sample(prose: Prose) -> bool:
    """Whether the catalogue draws a sample grid for the dataset (front matter ``sample: false`` says not)."""
    return prose.meta.get("sample", True) is not False


def _header(cls: type[Builder], prose: Prose, image: str | None, caption: str) -> str:
    b = _default_builder(cls)
    configs = f"{len(cls.CONFIGS)} named configs (default `{cls.DEFAULT_CONFIG}`)" if cls.CONFIGS else "no named configs"
    facts = [f"`{cls.name}`", f"version {cls.VERSION}", configs, f"licence: {prose.meta['license']}"]
    if cls.HOMEPAGE:
        facts.append(f"[original]({cls.HOMEPAGE})")
    text = f"# {prose.meta['pretty_name']}\n\n{' · '.join(facts)}\n\n{cls.DESCRIPTION or b.info().description}"
    if image:
        text += f"\n\n![{caption}]({image})\n\n*{caption}*"
    elif not has_sample(prose):
        text += f"\n\n*No sample grid here: {prose.meta.get('sample_note', 'the raw inputs are not fetched unattended')}*"
    return text


# ============================================================================ the catalogue page
def sample_key(cls: type[Builder]) -> str:
    """What a catalogue sample image shows; stored in the PNG, compared by :func:`stale_catalogue`."""
    split = _sample_split(_default_builder(cls))
    return (f"{cls.name}/{cls.DEFAULT_CONFIG}:{cls.VERSION} split={split} examples=0-{SAMPLE_COUNT - 1} "
            f"format={SAMPLE_FORMAT}")


def _sample_split(b: Builder) -> str:
    return pick_sample_split(b.split_names())


def pick_sample_split(splits: Sequence[str]) -> str:
    """The split a sample grid shows: ``test`` when there is one, else the last."""
    splits = list(splits)
    return "test" if "test" in splits else splits[-1]


def _caption(b: Builder, dataset_id: str, split: str) -> str:
    if any(m.kind == "image" for m in b.modalities().values()):
        how = "rows: modalities"
    else:
        how = "heatmaps per modality: one column per example, one row per dimension, blue < 0 < red"
    return f"The first {SAMPLE_COUNT} examples of the {split} split of {dataset_id} ({how})"


def catalogue_card(cls: type[Builder], *, image: bool = True) -> str:
    """The catalogue page of a dataset (Markdown), generated from metadata and prose only."""
    prose = load_prose(cls.name)
    b = _default_builder(cls)
    how = (
        "## How to load\n\n```python\nimport mmbench\n\n"
        f'ds = mmbench.load("{cls.name}/{cls.DEFAULT_CONFIG}", split="{b.split_names()[0]}")  # built on first use, then cached\n'
        "ds.latent_spec.table()           # every latent: kind, support, scope, role\n"
        "batch = next(ds.batches(256))    # dict of numpy arrays: modalities and latents.*\n```\n\n"
        f"`mmbench info {cls.name}/{cls.DEFAULT_CONFIG}` describes a config; `mmbench export` / `mmbench publish` "
        "write it as Parquet for `datasets.load_dataset` and the Hugging Face Hub."
    )
    caption = _caption(b, f"`{cls.name}/{cls.DEFAULT_CONFIG}`", _sample_split(b))
    parts = [
        _header(cls, prose, f"{card_stem(cls.name)}.png" if image and has_sample(prose) else None, caption),
        f"## Purpose\n\n{prose.sections['Purpose']}",
        _modalities_section(b),
        _latents_section(b),
        _configs_section(cls, prose),
        f"## Sources and licences\n\n{prose.sections['Sources and licences']}",
        _versions_section(cls),
        f"## Known deviations from the original\n\n{prose.sections['Known deviations']}",
        how,
        _citation_section(cls),
        _footer(cls),
    ]
    return "\n\n".join(parts) + "\n"


def _index(classes: Sequence[type[Builder]]) -> str:
    rows = []
    for cls in classes:
        b = _default_builder(cls)
        pretty = load_prose(cls.name).meta["pretty_name"]
        mods = ", ".join(f"`{k}`" for k in b.modalities())
        rows.append([f"[{pretty}]({card_stem(cls.name)}.md)", f"`{cls.name}`", cls.VERSION, mods,
                     len(b.latent_spec()), len(cls.CONFIGS)])
    return (
        "# mmbench dataset catalogue\n\nOne page per dataset: what it is for, its modalities and ground-truth "
        "latents, its configs and biases, sources and licences, version history, known deviations from the "
        "original, how to load it, and a sample grid.\n\n"
        + _table(["dataset", "id", "version", "modalities", "latents", "configs"], rows)
        + "\n\n<sub>Generated by `mmbench cards`; a test fails when a page is out of date.</sub>\n"
    )


def _classes(datasets: Sequence[str] | None) -> list[type[Builder]]:
    from mmbench.builders import DATASETS

    return [DATASETS.get(name) for name in (DATASETS.names() if datasets is None else datasets)]


def write_samples(ds: Dataset, path: str | os.PathLike[str], *, key: str | None = None) -> Path | None:
    """Write the sample grid of ``ds`` (first :data:`SAMPLE_COUNT` examples) as a small PNG.

    Returns ``None`` (and writes nothing) for an empty split or a dataset with neither image nor
    vector modalities.
    """
    from PIL.PngImagePlugin import PngInfo

    from mmbench.rendering.grid import sample_image

    images = any(m.kind == "image" for m in ds.info.modalities.values())
    if len(ds) == 0 or (not images and not any(m.kind == "vector" for m in ds.info.modalities.values())):
        return None
    img = sample_image(ds, num=SAMPLE_COUNT, zoom=2)
    if images:  # photos compress badly: 256 colours keep a grid at a few tens of KB
        img = img.quantize(colors=256, dither=0)
    meta = PngInfo()
    if key is not None:
        meta.add_text(SAMPLE_KEY, key)
    path = Path(path)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG", optimize=True, pnginfo=meta)
    return path


def _png_key(path: Path) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.text.get(SAMPLE_KEY)  # type: ignore[attr-defined]
    except OSError:
        return None


def write_catalogue(
    out: str | os.PathLike[str] = "cards",
    *,
    datasets: Sequence[str] | None = None,
    images: str = "stale",
    cache_dir: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Regenerate the catalogue: one Markdown page and sample PNG per dataset, plus an index.

    Args:
        out: the catalogue folder (the repository's ``cards/``).
        datasets: only these datasets (default: every registered one; pages of datasets no longer
            registered are then removed).
        images: ``"stale"`` redraws a sample PNG only when it is missing or shows something else
            than the current metadata says (it builds the default config's sample split, reusing
            the cache); ``"all"`` redraws every one; ``"none"`` leaves the PNGs alone.
    Returns:
        The files written.
    """
    import mmbench

    if images not in ("stale", "all", "none"):
        raise MMBenchError(f"images must be 'stale', 'all' or 'none', got {images!r}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for cls in _classes(datasets):
        stem = card_stem(cls.name)
        written.append(atomic_write(out / f"{stem}.md", catalogue_card(cls)))
        png = out / f"{stem}.png"
        if not has_sample(load_prose(cls.name)):
            png.unlink(missing_ok=True)
        elif images == "all" or (images == "stale" and _png_key(png) != sample_key(cls)):
            b = mmbench.builder(f"{cls.name}/{cls.DEFAULT_CONFIG}", cache_dir=cache_dir, data_dir=data_dir)
            split = _sample_split(b)
            if not b.is_built(split):
                b.build(split)
            if write_samples(b.as_dataset(split), png, key=sample_key(cls)) is not None:
                written.append(png)
    if datasets is None:
        names = {card_stem(cls.name) for cls in _classes(None)}
        for path in [*out.glob("*.md"), *out.glob("*.png")]:
            if path.stem not in names and path.name != INDEX:
                path.unlink()
        written.append(atomic_write(out / INDEX, _index(_classes(None))))
    return written


def stale_catalogue(out: str | os.PathLike[str] = "cards") -> list[str]:
    """What is out of date in the catalogue (empty when it is current). Cheap: metadata only."""
    out = Path(out)
    classes = _classes(None)
    problems = []
    expected = {INDEX: _index(classes)}
    expected.update({f"{card_stem(cls.name)}.md": catalogue_card(cls) for cls in classes})
    for name, text in expected.items():
        path = out / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path} differs from what the metadata and prose generate")
    for cls in classes:
        png = out / f"{card_stem(cls.name)}.png"
        if not has_sample(load_prose(cls.name)):
            if png.is_file():
                problems.append(f"{png} exists, but the card of {cls.name} has no sample grid (sample: false)")
            continue
        key = _png_key(png) if png.is_file() else None
        if key != sample_key(cls):
            problems.append(f"{png} shows {key!r}, expected {sample_key(cls)!r}")
        elif png.stat().st_size > MAX_SAMPLE_BYTES:
            problems.append(f"{png} has {png.stat().st_size} bytes (limit {MAX_SAMPLE_BYTES})")
    names = {card_stem(cls.name) for cls in classes}
    problems += [f"{p} belongs to no registered dataset" for p in sorted([*out.glob("*.md"), *out.glob("*.png")])
                 if p.stem not in names and p.name != INDEX]
    return problems


# ============================================================================ the Hub card
def _order(cls: type[Builder], configs: Sequence[ExportedConfig]) -> list[ExportedConfig]:
    named = list(cls.CONFIGS)
    return sorted(configs, key=lambda c: (c.name not in cls.CONFIGS, named.index(c.name) if c.name in cls.CONFIGS else 0, c.name))


def _default_of(cls: type[Builder], configs: Sequence[ExportedConfig]) -> ExportedConfig:
    """The config marked ``default: true``: the dataset's default if exported, else the first."""
    return next((c for c in configs if c.name == cls.DEFAULT_CONFIG), configs[0])


def _builder_of(cls: type[Builder], exported: ExportedConfig) -> Builder:
    """A builder with the exported config (for its modalities and latents), else the default one."""
    if exported.name in cls.CONFIGS:
        return cls(exported.name)
    try:
        return cls(cls.CONFIG_CLASS.from_dict(exported.entry["config"]))
    except (MMBenchError, KeyError, TypeError):  # e.g. a backgrounds folder of another machine
        return _default_builder(cls)


def _hub_metadata(cls: type[Builder], prose: Prose, configs: Sequence[ExportedConfig]) -> dict[str, Any]:
    default = _default_of(cls, configs).name
    meta: dict[str, Any] = {
        "pretty_name": prose.meta["pretty_name"],
        "license": prose.meta["license"],
        "tags": ["mmbench", "multimodal", "ground-truth-latents", *prose.meta.get("tags", [])],
        "configs": [
            {"config_name": c.name, "data_files": c.data_files, **({"default": True} if c.name == default else {})}
            for c in configs
        ],
        "dataset_info": [c.dataset_info for c in configs],
        "mmbench": {"dataset": cls.name, "configs": {c.name: c.entry for c in configs}},
    }
    return meta


def _published_section(configs: Sequence[ExportedConfig]) -> str:
    rows = []
    for c in configs:
        e = c.entry
        splits = ", ".join(f"{s} {v['num_examples']:,}" for s, v in e.get("splits", {}).items())
        samples = f"[grid]({e['samples']})" if e.get("samples") else "—"
        rows.append([f"`{c.name}`", f"`{e.get('id')}`", splits, f"`{e.get('config_fingerprint', '')[:16]}`",
                     f"`{e.get('content_fingerprint')}`", f"`{e.get('tag')}`", samples])
    return (
        "## Configs in this repository\n\nEach config is published by `mmbench publish` as one commit, tagged "
        "`<config>-v<version>`. The `mmbench:` block of this card's metadata records, per config, the builder "
        "and mmbench versions, the full config, its fingerprints, per-split content fingerprints and the "
        "sha256 of every raw input; `mmbench.load(..., source=\"hub\")` checks the data against the "
        "build's shard hashes.\n\n"
        + _table(["config", "mmbench id", "splits", "config fingerprint", "content fingerprint", "tag", "samples"], rows)
    )


def _checksums(inputs: Any, prefix: str = "") -> list[list[str]]:
    rows = []
    if isinstance(inputs, Mapping):
        for key, value in inputs.items():
            if key == "sha256" and isinstance(value, str):
                rows.append([f"`{prefix or '(inputs)'}`", f"`{value}`"])
            elif isinstance(value, Mapping):
                rows += _checksums(value, f"{prefix}/{key}" if prefix else str(key))
    return rows


def _hub_how_to(cls: type[Builder], first: ExportedConfig, repo: str | None) -> str:
    where = repo or "ORG/NAME"
    e = first.entry
    name = f"{cls.name}/{first.name}:{e['builder_version']}"
    if "overrides" in e:
        base = f"{cls.name}/{e['base_config']}" if e.get("base_config") else cls.name
        kwargs = "".join(f", {k}={v!r}" for k, v in e["overrides"].items())
        local = f'mmbench.load("{base}", split="{next(iter(e["splits"]))}"{kwargs})'
    else:
        local = f'mmbench.load("{name}", split="{next(iter(e["splits"]))}")'
    note = "" if repo else "  # or the path of this folder"
    return (
        "## How to load\n\n```python\nimport datasets\n\n"
        f'ds = datasets.load_dataset("{where}", "{first.name}", revision="{e["tag"]}"){note}\n'
        "# images are PIL images, categorical latents ClassLabel, other columns as stored\n\n"
        "import mmbench\n\n"
        f'ds = mmbench.load("{name}", source="hub", repo="{where}", split="{next(iter(e["splits"]))}")\n'
        "# memory-mapped, checked against the build's hashes; the same Dataset API as a local build\n"
        f"ds = {local}  # or build it locally: the same bytes\n```"
    )


def hub_card(cls: type[Builder], configs: Sequence[ExportedConfig], *, repo: str | None = None) -> str:
    """The ``README.md`` of an export: YAML metadata (``configs:``, ``dataset_info:``, licence,
    ``mmbench:``) and the dataset's page with the exported configs."""
    import yaml

    if not configs:
        raise MMBenchError("A Hub card needs at least one exported config.")
    prose = load_prose(cls.name, required=False)
    configs = _order(cls, configs)
    meta = _hub_metadata(cls, prose, configs)
    first = _default_of(cls, configs)
    b = _builder_of(cls, first)
    image = first.entry.get("samples")
    split = pick_sample_split(first.entry["splits"])
    checks = _checksums({c.name: c.entry.get("inputs", {}) for c in configs})
    sources = f"## Sources and licences\n\n{prose.sections['Sources and licences']}"
    if checks:
        sources += "\n\nsha256 of the raw inputs of the published builds:\n\n" + _table(["input", "sha256"], checks)
    parts = [
        _header(cls, prose, image, _caption(b, f"`{first.entry['id']}`", split)),
        f"## Purpose\n\n{prose.sections['Purpose']}",
        _published_section(configs),
        _modalities_section(b),
        _latents_section(b, first.name),
        _configs_section(cls, prose),
        sources,
        _versions_section(cls),
        f"## Known deviations from the original\n\n{prose.sections['Known deviations']}",
        _hub_how_to(cls, first, repo),
        _citation_section(cls),
        _footer(cls).replace("`mmbench cards`", "`mmbench export`"),
    ]
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{front}---\n\n" + "\n\n".join(parts) + "\n"


def write_hub_card(
    directory: str | os.PathLike[str], cls: type[Builder], configs: Sequence[ExportedConfig], *, repo: str | None = None
) -> Path:
    """Write :func:`hub_card` as ``README.md`` in ``directory``."""
    return atomic_write(Path(directory) / "README.md", hub_card(cls, configs, repo=repo))
