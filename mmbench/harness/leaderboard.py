"""The leaderboard: RunResult JSON files → Markdown table, static sortable HTML page, per-latent heatmaps.

One table per suite id, one row per model (name, revision and, for checkpoint directories, the
sha256 of the weights) × suite id, one column per (suite fingerprint, suite entry, dataset
fingerprint, metric). Rows are ranked by the suite's main score (:attr:`Suite.main_score_metric`
averaged over the suite's entries; rows that miss an entry come after the complete ones). When one
model has several runs, each cell shows the latest run that has it, and the row says how many
runs there are and lists them all in its detail. Results whose suite or dataset fingerprints differ are never merged into one
column: when a results directory holds several fingerprints for the same entry and metric, each
gets its own column, labelled with the fingerprints. Unreadable, foreign or malformed JSON files
(and results that fail validation) are reported and skipped; the leaderboard never fails on one.

Example:
    >>> lb = Leaderboard.from_dir("results/")
    >>> print(lb.to_markdown())
    >>> lb.write("results/leaderboard")   # leaderboard.md, leaderboard.html, heatmaps/*.png
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmbench.core.storage import atomic_path, atomic_write
from mmbench.harness.evaluate import RunResult, validate_result_data

__all__ = ["Column", "Leaderboard", "load_results", "render_heatmap"]


def load_results(results_dir: str | os.PathLike[str]) -> tuple[list[RunResult], list[tuple[Path, str]]]:
    """Every RunResult under ``results_dir`` (recursively) and the ``(path, reason)`` of skipped files."""
    root = Path(results_dir)
    if not root.is_dir():
        from mmbench.errors import InvalidConfigError

        raise InvalidConfigError(f"Results directory {root} does not exist or is not a directory.")
    results, skipped = [], []
    for path in sorted(root.rglob("*.json")):
        if path.name.startswith("."):
            continue  # temp files of an in-flight atomic write
        try:
            results.append(RunResult.load(path))  # validates: a result the leaderboard could not use is skipped here
        except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
            skipped.append((path, f"{type(exc).__name__}: {exc}"))
    return results, skipped


@dataclasses.dataclass(frozen=True)
class Column:
    """One leaderboard column: a metric on one suite entry, for one suite and one dataset fingerprint."""

    entry: str
    dataset_id: str
    data_fingerprint: str
    metric: str
    main_key: str
    higher_is_better: bool
    suite_fingerprint: str = ""

    def header(self, with_fingerprint: bool, with_suite: bool = False) -> str:
        arrow = "↑" if self.higher_is_better else "↓"
        fp = f" [{self.data_fingerprint[:8]}]" if with_fingerprint else ""
        sfp = f" (suite {self.suite_fingerprint[:8]})" if with_suite else ""
        return f"{self.entry} · {self.metric} {arrow}{fp}{sfp}"


@dataclasses.dataclass
class _Row:
    model: dict[str, Any]
    suite_id: str
    cells: dict[Column, dict[str, Any]]
    results: list[RunResult]
    weights_sha256: str | None = None
    not_applicable: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)  # (suite fp, entry) → reason
    score: float | None = None  # the suite's main score (mean over the entries this row has)
    covered: int = 0  # entries with a main-score value
    total: int = 0  # entries in the suite


@dataclasses.dataclass(frozen=True)
class MainScore:
    """How a suite's rows are ranked: ``metric``'s main summary averaged over the suite's entries."""

    metric: str | None
    higher_is_better: bool = True
    entries: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.metric is None:
            return "no metric is shared by every entry, so rows are not ranked"
        order = "higher" if self.higher_is_better else "lower"
        return (f"mean of {self.metric} over the suite's {len(self.entries)} entries ({order} is better); rows that miss "
                "an entry (n/a or not evaluated) come after the complete ones, ranked by the mean over the entries they have")


def main_score_of(definition: dict[str, Any]) -> MainScore:
    """The :class:`MainScore` of a suite definition (the ``suite.definition`` a RunResult records)."""
    from mmbench.harness.metrics import METRICS
    from mmbench.harness.suites import Suite

    try:
        suite = Suite.from_dict(definition)
    except Exception:  # a definition this mmbench cannot read: no ranking, but the rows still show
        return MainScore(None)
    metric = suite.main_score_metric
    hib = bool(METRICS.metadata(metric).get("higher_is_better", True)) if metric else True
    return MainScore(metric, hib, tuple(e.label for e in suite.entries))


def _weights_sha(res: RunResult) -> str | None:
    source = res.data.get("model_source")
    sha = source.get("weights_sha256") if isinstance(source, dict) else None
    return sha if isinstance(sha, str) and sha else None


class Leaderboard:
    """Rows (model × suite id) and fingerprint-separated columns built from RunResults.

    Results that fail :func:`~mmbench.harness.evaluate.validate_result_data` are not ingested;
    they are added to :attr:`skipped` with the reason.
    """

    def __init__(self, results: Iterable[RunResult], skipped: Sequence[tuple[Path | str, str]] = ()) -> None:
        self.skipped: list[tuple[Path | str, str]] = list(skipped)
        good = []
        for i, res in enumerate(results):
            try:
                validate_result_data(res.data)
            except ValueError as exc:
                self.skipped.append((res.path or f"<result {i}>", f"ValueError: {exc}"))
            else:
                good.append(res)
        self.results = sorted(good, key=lambda r: str(r.data.get("created", "")))
        self.tables: dict[str, dict[tuple[str, str, str | None], _Row]] = {}
        self.columns: dict[str, list[Column]] = {}
        for res in self.results:  # later results win for the same cell
            self._ingest(res)
        self.main_scores: dict[str, MainScore] = {}
        for suite_id, rows in self.tables.items():
            self.main_scores[suite_id] = main = main_score_of(self._latest_definition(rows.values()))
            self.tables[suite_id] = self._ranked(rows, main)

    def _ingest(self, res: RunResult) -> None:
        """Add one result's cells to its suite's table (its row keyed by card name, revision and weights)."""
        card = res.data["model"]
        suite_id = res.data["suite"]["id"]
        suite_fp = res.data["suite"]["fingerprint"]
        rows = self.tables.setdefault(suite_id, {})
        # Two checkpoints under one card name/revision are two rows: the weights' hash tells them apart.
        sha = _weights_sha(res)
        row = rows.setdefault((card["name"], card.get("revision", ""), sha), _Row(card, suite_id, {}, [], sha))
        row.results.append(res)
        cols = self.columns.setdefault(suite_id, [])
        for entry in res.entries:
            if entry.get("status") == "n/a":
                row.not_applicable[(suite_fp, entry["label"])] = str(entry.get("reason", ""))
                continue
            row.not_applicable.pop((suite_fp, entry["label"]), None)
            for name, m in entry["metrics"].items():
                col = Column(entry["label"], entry["dataset_id"], entry["data_fingerprint"], name,
                             m.get("main_key", "mean"), bool(m.get("higher_is_better", True)), suite_fp)
                if col not in cols:
                    cols.append(col)
                summary = m["summary"].get(col.main_key) or {}
                row.cells[col] = {"mean": summary.get("mean"), "std": summary.get("std"), "result": res, "entry": entry,
                                  "metric": m}

    @staticmethod
    def _latest_definition(rows: Iterable[_Row]) -> dict[str, Any]:
        latest = max((r for row in rows for r in row.results), key=lambda r: str(r.data.get("created", "")))
        definition = latest.data["suite"].get("definition")
        return definition if isinstance(definition, dict) else {}

    @staticmethod
    def _ranked(rows: dict[Any, _Row], main: MainScore) -> dict[Any, _Row]:
        """``rows`` with their main score set, best first (complete rows before partial ones)."""
        for row in rows.values():
            values = []
            for label in main.entries:
                cells = [c for col, c in row.cells.items() if col.entry == label and col.metric == main.metric and c.get("mean") is not None]
                if cells:  # several data fingerprints: the latest run's value
                    values.append(max(cells, key=lambda c: str(c["result"].data.get("created", "")))["mean"])
            row.covered, row.total = len(values), len(main.entries)
            row.score = float(np.mean(values)) if values else None
        sign = -1.0 if main.higher_is_better else 1.0

        def key(item: tuple[Any, _Row]) -> tuple[Any, ...]:
            row = item[1]
            return (row.score is None, row.covered < row.total, sign * (row.score or 0.0), Leaderboard._model_label(row.model))

        return dict(sorted(rows.items(), key=key))

    @classmethod
    def from_dir(cls, results_dir: str | os.PathLike[str]) -> Leaderboard:
        results, skipped = load_results(results_dir)
        return cls(results, skipped)

    # ------------------------------------------------------------------ helpers
    def _ambiguous(self, suite_id: str, attr: str) -> set[tuple[str, str]]:
        """(entry, metric) pairs that appear with more than one value of ``attr`` (a fingerprint)."""
        seen: dict[tuple[str, str], set[str]] = {}
        for c in self.columns.get(suite_id, []):
            seen.setdefault((c.entry, c.metric), set()).add(getattr(c, attr))
        return {k for k, v in seen.items() if len(v) > 1}

    def _header(self, suite_id: str, col: Column) -> str:
        key = (col.entry, col.metric)
        return col.header(key in self._ambiguous(suite_id, "data_fingerprint"), key in self._ambiguous(suite_id, "suite_fingerprint"))

    @staticmethod
    def _cell_text(cell: dict[str, Any] | None, row: _Row | None = None, col: Column | None = None) -> str:
        status = (cell or {}).get("metric", {}).get("status")
        if status in ("n/a", "skipped"):
            return status
        if not cell or cell.get("mean") is None:
            if row is not None and col is not None and (col.suite_fingerprint, col.entry) in row.not_applicable:
                return "n/a"
            return "–"
        std = cell.get("std")
        return f"{cell['mean']:.3f} ± {std:.3f}" if std is not None else f"{cell['mean']:.3f} ± –"

    def _row_label(self, row: _Row) -> str:
        """``name@revision``, plus the weights' hash when another row shares the name and revision."""
        label = self._model_label(row.model)
        rows = self.tables.get(row.suite_id, {})
        twins = [r for r in rows.values() if (r.model["name"], r.model.get("revision", "")) == (row.model["name"], row.model.get("revision", ""))]
        if len(twins) > 1:
            label += f" [weights {row.weights_sha256[:8]}]" if row.weights_sha256 else " [weights unrecorded]"
        if len(row.results) > 1:
            label += f" · {len(row.results)} runs, latest shown"
        return label

    @staticmethod
    def _score_text(row: _Row) -> str:
        if row.score is None:
            return "–"
        return f"{row.score:.3f}" + ("" if row.covered == row.total else f" ({row.covered}/{row.total} entries)")

    @staticmethod
    def _model_label(card: dict[str, Any]) -> str:
        return f"{card['name']}@{card.get('revision', '')}" + (" (oracle)" if card.get("uses_ground_truth") else "")

    # ------------------------------------------------------------------ Markdown
    def _rank_text(self, rows: Iterable[_Row]) -> dict[int, str]:
        """id(row) → its rank ("1", "2", ...; "–" without a score)."""
        out, k = {}, 0
        for row in rows:
            if row.score is None:
                out[id(row)] = "–"
            else:
                k += 1
                out[id(row)] = str(k)
        return out

    def _score_header(self, suite_id: str) -> str:
        main = self.main_scores[suite_id]
        return f"score ({main.metric}) {'↑' if main.higher_is_better else '↓'}" if main.metric else "score"

    def to_markdown(self) -> str:
        """One Markdown table per suite version, ranked, with a fingerprint legend and skipped files."""
        out = ["# mmbench leaderboard", ""]
        if not self.tables:
            out.append("No results found.")
        for suite_id, rows in self.tables.items():
            cols = self.columns[suite_id]
            ranks = self._rank_text(rows.values())
            out += [f"## {suite_id}", "", f"Ranked by the main score: {self.main_scores[suite_id].describe()}.", ""]
            out.append(f"| # | model | {self._score_header(suite_id)} | " + " | ".join(self._header(suite_id, c) for c in cols) + " |")
            out.append("|---|---|---|" + "---|" * len(cols))
            for row in rows.values():
                cells = " | ".join(self._cell_text(row.cells.get(c), row, c) for c in cols)
                out.append(f"| {ranks[id(row)]} | {self._row_label(row)} | {self._score_text(row)} | {cells} |")
            repeated = [row for row in rows.values() if len(row.results) > 1]
            if repeated:
                out += ["", "Models with several runs (each cell shows the latest run that has it):", ""]
                for row in repeated:
                    runs = ", ".join(f"{r.data.get('created', '?')} ({r.path.name if r.path else 'in memory'})" for r in row.results)
                    out.append(f"- {self._row_label(row)}: {runs}")
            out += ["", "Datasets (a column never mixes suite or data fingerprints):", ""]
            seen = set()
            for c in cols:
                if (c.entry, c.data_fingerprint, c.suite_fingerprint) not in seen:
                    seen.add((c.entry, c.data_fingerprint, c.suite_fingerprint))
                    out.append(f"- `{c.entry}`: {c.dataset_id}, data fingerprint `{c.data_fingerprint}`, "
                               f"suite fingerprint `{c.suite_fingerprint}`")
            out += ["", _VALUES_NOTE, ""]
        if self.skipped:
            out += ["## Skipped files", ""] + [f"- `{p}`: {why}" for p, why in self.skipped] + [""]
        return "\n".join(out)

    # ------------------------------------------------------------------ HTML
    def to_html(self, heatmaps: dict[str, list[tuple[str, Any]]] | None = None,
                generations: dict[str, list[tuple[str, Any]]] | None = None) -> str:
        """A self-contained static page: ranked sortable tables (the first click on a column puts the
        best first), provenance on hover and in a detail row, the heatmaps and the samples of
        conditional generations embedded as PNG data.

        Args:
            heatmaps: suite id → ``(file name, PIL image)`` (default: rendered by :meth:`heatmaps_by_suite`).
            generations: suite id → ``(file name, PIL image)`` (default: :meth:`generations_by_suite`).
        """
        e = html.escape
        maps = self.heatmaps_by_suite() if heatmaps is None else heatmaps
        gens = self.generations_by_suite() if generations is None else generations
        parts = [_HTML_HEAD]
        if not self.tables:
            parts.append("<p>No results found.</p>")
        for t, (suite_id, rows) in enumerate(self.tables.items()):
            parts += self._html_table(t, suite_id, rows)
            parts += self._html_figures("Per-latent heatmaps", maps.get(suite_id, []))
            parts += self._html_figures("Conditional generations (rows: data, then each modality generated from the "
                                        "others and from one other; columns: test tuples)", gens.get(suite_id, []), css="maps gens", scale=2)
        if self.skipped:
            parts.append("<h2>Skipped files</h2><ul>" + "".join(f"<li><code>{e(str(p))}</code>: {e(w)}</li>" for p, w in self.skipped) + "</ul>")
        parts.append(_HTML_TAIL)
        return "".join(parts)

    def _html_table(self, t: int, suite_id: str, rows: dict[Any, _Row]) -> list[str]:
        e = html.escape
        cols = self.columns[suite_id]
        main = self.main_scores[suite_id]
        ranks = self._rank_text(rows.values())
        parts = [f"<h2>{e(suite_id)}</h2>", f'<p class="rank">Ranked by the main score: {e(main.describe())}.</p>',
                 f'<div class="scroll"><table class="lb" id="t{t}"><thead><tr><th data-k="0" data-dir="asc">#</th>'
                 f'<th data-k="1" data-dir="asc">model</th>'
                 f'<th data-k="2" data-dir="{"desc" if main.higher_is_better else "asc"}" title="{e(main.describe())}">'
                 f"{e(self._score_header(suite_id))}</th>"]
        for j, c in enumerate(cols, start=3):
            tip = f"{c.dataset_id}\ndata fingerprint {c.data_fingerprint}\nsuite fingerprint {c.suite_fingerprint}\nsummary: {c.main_key}"
            parts.append(f'<th data-k="{j}" data-dir="{"desc" if c.higher_is_better else "asc"}" title="{e(tip)}">'
                         f"{e(self._header(suite_id, c))}</th>")
        parts.append("</tr></thead><tbody>")
        for i, row in enumerate(rows.values()):
            rank = ranks[id(row)]
            score = "" if row.score is None else f"{row.score:.6g}"
            parts.append(f'<tr class="r" data-d="d{t}-{i}"><td data-v="{rank if rank != "–" else ""}">{rank}</td>'
                         f"<td>{e(self._row_label(row))}</td><td data-v=\"{score}\">{e(self._score_text(row))}</td>")
            for c in cols:
                cell = row.cells.get(c)
                val = "" if not cell or cell.get("mean") is None else f"{cell['mean']:.6g}"
                na = row.not_applicable.get((c.suite_fingerprint, c.entry))
                tip = self._provenance(cell) if cell else (f"not applicable: {na}" if na is not None else "no result")
                if cell and cell["metric"].get("status"):
                    tip = f"{cell['metric']['status']}: {cell['metric'].get('reason', '')}\n{tip}"
                parts.append(f'<td data-v="{val}" title="{e(tip)}">{e(self._cell_text(cell, row, c))}</td>')
            parts.append("</tr>")
            detail = e(json.dumps(self._row_provenance(row, main), indent=1))
            parts.append(f'<tr class="d" id="d{t}-{i}" hidden><td colspan="{len(cols) + 3}"><pre>{detail}</pre></td></tr>')
        parts.append("</tbody></table></div>")
        return parts

    @staticmethod
    def _html_figures(title: str, images: Sequence[tuple[str, Any]], *, css: str = "maps", scale: int = 1) -> list[str]:
        """A section of PNG figures embedded as data URIs (shown ``scale`` times their size, pixelated)."""
        import base64
        import io

        if not images:
            return []
        parts = [f'<h3>{html.escape(title)}</h3><div class="{css}">']
        for name, img in images:
            buf = io.BytesIO()
            img.save(buf, format="PNG")
            data = base64.b64encode(buf.getvalue()).decode("ascii")
            size = f' width="{img.width * scale}" height="{img.height * scale}"' if scale != 1 else ""
            parts.append(f'<figure><img alt="{html.escape(name)}"{size} src="data:image/png;base64,{data}">'
                         f"<figcaption>{html.escape(name)}</figcaption></figure>")
        parts.append("</div>")
        return parts

    @staticmethod
    def _provenance(cell: dict[str, Any]) -> str:
        # Only the validated fields are indexed; the rest are optional provenance (.get).
        res, entry = cell["result"].data, cell["entry"]
        splits = entry.get("splits") if isinstance(entry.get("splits"), dict) else {}

        def split(name: str) -> str:
            sp = splits.get(name) if isinstance(splits.get(name), dict) else {}
            return f"{sp.get('name', '?')} {sp.get('rows_used', '?')} rows"

        source = res.get("model_source") if isinstance(res.get("model_source"), dict) else {}
        model = f"\nmodel {source.get('spec')}" + (f", weights sha256 {source['weights_sha256']}" if source.get("weights_sha256") else "") if source else ""
        return (_metric_details(cell.get("metric") or {}) +
                f"{entry['dataset_id']} (config {entry.get('config_fingerprint', '?')}, data {entry['data_fingerprint']})\n"
                f"fit {split('fit')}, score {split('score')}\n"
                f"seeds {res.get('seeds')}, backend {res.get('backend')} on {res.get('device')}\n"
                f"mmbench {res.get('mmbench_version')}, suite fingerprint {res['suite']['fingerprint']}, {res.get('created')}{model}")

    @staticmethod
    def _row_provenance(row: _Row, main: MainScore | None = None) -> dict[str, Any]:
        return {
            "model": row.model,
            "main_score": {"metric": main.metric if main else None, "value": row.score, "entries": f"{row.covered}/{row.total}"},
            "runs": [{"file": str(r.path) if r.path else None, "created": r.data.get("created"),
                      "main_score": _run_score(r, main) if main else None,
                      "model_source": r.data.get("model_source"),
                      "suite_fingerprint": r.data["suite"].get("fingerprint"), "mmbench_version": r.data.get("mmbench_version"),
                      "seeds": r.data.get("seeds"), "backend": r.data.get("backend"), "device": r.data.get("device"),
                      "hardware": r.data.get("hardware"),
                      "datasets": {en["label"]: ({"id": en["dataset_id"], "data_fingerprint": en["data_fingerprint"],
                                                  "content_fingerprint": en.get("content_fingerprint")}
                                                 if en.get("status") != "n/a" else {"not_applicable": en.get("reason")})
                                   for en in r.entries}}
                     for r in row.results],
        }

    # ------------------------------------------------------------------ heatmaps
    def heatmaps_by_suite(self) -> dict[str, list[tuple[str, Any]]]:
        """Suite id → ``(file name, PIL image)`` per model × dataset family × per-latent metric."""
        out: dict[str, list[tuple[str, Any]]] = {}
        for suite_id, rows in self.tables.items():
            for row in rows.values():
                res = row.results[-1]
                families: dict[str, list[dict[str, Any]]] = {}
                for entry in res.entries:
                    if entry.get("status") != "n/a":
                        families.setdefault(_family(entry), []).append(entry)
                for family, entries in families.items():
                    metrics = [n for n in dict.fromkeys(n for en in entries for n in en["metrics"]) if
                               all(en["metrics"].get(n, {}).get("type", "probe") == "probe" for en in entries if n in en["metrics"])]
                    for metric in metrics:
                        img = render_heatmap(entries, metric, title=f"{self._row_label(row)} | {suite_id} | {family} | {metric}")
                        if img is not None:
                            name = f"{self._file_stem(row)}__{suite_id}__{family}__{metric}"
                            out.setdefault(suite_id, []).append((re.sub(r"[^A-Za-z0-9_.@\-]+", "_", name) + ".png", img))
        return out

    def generations_by_suite(self) -> dict[str, list[tuple[str, Any]]]:
        """Suite id → ``(file name, PIL image)``: each row's latest sample of conditional generations per entry."""
        import base64
        import io

        from PIL import Image

        out: dict[str, list[tuple[str, Any]]] = {}
        for suite_id, rows in self.tables.items():
            for row in rows.values():
                for entry in row.results[-1].entries:
                    png = (entry.get("generations") or {}).get("png_base64") if entry.get("status") != "n/a" else None
                    if not isinstance(png, str):
                        continue
                    try:
                        img = Image.open(io.BytesIO(base64.b64decode(png)))
                        img.load()
                    except Exception:  # a damaged sample never breaks the leaderboard
                        continue
                    name = f"{self._file_stem(row)}__{suite_id}__{entry['label']}__generations"
                    out.setdefault(suite_id, []).append((re.sub(r"[^A-Za-z0-9_.@\-]+", "_", name) + ".png", img))
        return out

    @staticmethod
    def _file_stem(row: _Row) -> str:
        sha = f"-{row.weights_sha256[:8]}" if row.weights_sha256 else ""
        return f"{row.model['name']}@{row.model.get('revision', '')}{sha}"

    def heatmaps(self) -> list[tuple[str, Any]]:
        """``(file name, PIL image)`` per model × suite × dataset family × per-latent metric."""
        return [item for images in self.heatmaps_by_suite().values() for item in images]

    def write(self, out_dir: str | os.PathLike[str], *, heatmaps: bool = True) -> dict[str, Any]:
        """Write ``leaderboard.md``, ``leaderboard.html`` (figures embedded), ``heatmaps/*.png`` and
        ``generations/*.png``; return their paths."""
        out = Path(out_dir)
        maps = self.heatmaps_by_suite() if heatmaps else {}
        gens = self.generations_by_suite()
        paths: dict[str, Any] = {"markdown": out / "leaderboard.md", "html": out / "leaderboard.html"}
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(paths["markdown"], self.to_markdown())
        atomic_write(paths["html"], self.to_html(heatmaps=maps, generations=gens))
        paths["heatmaps"] = _save_pngs(out / "heatmaps", maps)
        paths["generations"] = _save_pngs(out / "generations", gens)
        return paths


def _save_pngs(folder: Path, images: dict[str, list[tuple[str, Any]]]) -> list[Path]:
    """Write every ``(file name, PIL image)`` into ``folder`` atomically; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, img in (item for items in images.values() for item in items):
        p = folder / name
        with atomic_path(p) as tmp:
            img.save(tmp, format="PNG")
        paths.append(p)
    return paths


def _metric_details(m: dict[str, Any]) -> str:
    """Tooltip lines of a generative metric: its other summaries, its inputs and its classifiers."""
    if m.get("type") != "generative" or m.get("status"):
        return ""
    others = ", ".join(f"{k} {_fmt_num((v or {}).get('mean'))}" for k, v in m.get("summary", {}).items() if k != m.get("main_key"))
    lines = [others] if others else []
    if isinstance(m.get("inputs"), dict):
        lines.append("inputs " + ", ".join(f"{k} {v if not isinstance(v, list) else len(v)}" for k, v in m["inputs"].items()))
    clf = m.get("classifiers")
    if isinstance(clf, dict):
        lines.append(f"classifiers {clf.get('id')}")
    return "".join(line + "\n" for line in lines)


def _fmt_num(v: Any) -> str:
    return "–" if v is None else f"{v:.3f}"


def _run_score(res: RunResult, main: MainScore) -> dict[str, Any]:
    """One run's own main score (mean over the entries it has) and how many entries it covers."""
    values = []
    for entry in res.entries:
        m = entry.get("metrics", {}).get(main.metric) if entry.get("status") != "n/a" else None
        mean = (m.get("summary", {}).get(m.get("main_key", "mean")) or {}).get("mean") if isinstance(m, dict) else None
        if entry["label"] in main.entries and mean is not None:
            values.append(mean)
    return {"value": float(np.mean(values)) if values else None, "entries": f"{len(values)}/{len(main.entries)}"}


_VALUES_NOTE = ("Values: mean ± std over seeds of each metric's main summary (R²/accuracy: mean over the latents the theory "
                "calls identifiable, from every modality; identifiability_consistency: balanced agreement with the theory). "
                "With one seed the std is 0.")


def _family(entry: dict[str, Any]) -> str:
    """Dataset name without config and version: the entries one heatmap compares (bias settings)."""
    name = entry["dataset_id"].split(":")[0].split("~")[0]  # 'joint~c32604f2': an overridden config
    config = entry.get("config_name")
    return name[: -len(config) - 1] if config and name.endswith("/" + config) else name


# ============================================================================ heatmap rendering (pillow)
_VIRIDIS = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], dtype=float)


def _colour(v: float) -> tuple[int, int, int]:
    v = float(np.clip(v, 0.0, 1.0)) * (len(_VIRIDIS) - 1)
    i = min(int(v), len(_VIRIDIS) - 2)
    c = _VIRIDIS[i] + (v - i) * (_VIRIDIS[i + 1] - _VIRIDIS[i])
    return tuple(round(x) for x in c)  # type: ignore[return-value]


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed bitmap font
        return ImageFont.load_default()


def render_heatmap(entries: Sequence[dict[str, Any]], metric: str, *, title: str = "", cell: int = 46) -> Any:
    """Latents (columns) × suite entries (rows) per modality panel, coloured by the metric's mean.

    Cells of latents the theory calls identifiable are outlined; latents an entry lacks are grey.
    Returns a ``PIL.Image`` (or ``None`` if no entry has per-latent values for ``metric``).
    """
    from PIL import Image, ImageDraw

    entries = [en for en in entries if metric in en["metrics"] and "values" in en["metrics"][metric]]
    if not entries:
        return None
    modalities = list(dict.fromkeys(m for en in entries for m in en["metrics"][metric]["values"]))
    latents = list(dict.fromkeys(n for en in entries for vals in en["metrics"][metric]["values"].values() for n in vals))
    if not latents:
        return None
    lay = _HeatmapLayout(entries, modalities, latents, title, cell)
    img = Image.new("RGB", (lay.w, lay.h), "white")
    draw = ImageDraw.Draw(img)
    draw.text((10, 8), title, fill="black", font=lay.big)
    for r, en in enumerate(entries):
        draw.text((8, lay.grid_top + r * cell + cell // 2 - 7), en["label"], fill="black", font=lay.font)
    for p, modality in enumerate(modalities):
        _draw_panel(img, draw, lay, entries, metric, modality, x0=lay.row_w + p * (lay.panel_w + lay.pad))
    _draw_colour_bar(draw, lay)
    draw.text((10, lay.h - 22), "red outline: identifiable in theory; grey: latent absent", fill=(90, 90, 90), font=lay.small)
    return img


def panel_heading(modality: str) -> str:
    """The heading of a heatmap's panel for ``modality``."""
    return f"embedding of {modality}"


class _HeatmapLayout:
    """Fonts and pixel geometry of one heatmap."""

    def __init__(self, entries: Sequence[dict[str, Any]], modalities: Sequence[str], latents: Sequence[str], title: str,
                 cell: int) -> None:
        from PIL import Image, ImageDraw

        self.font, self.small, self.big = _font(13), _font(11), _font(15)
        self._probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        self.cell, self.latents, self.rows = cell, list(latents), len(entries)
        self.row_w = max(self.width(en["label"], self.font) for en in entries) + 16
        self.top, self.pad, self.bar_w = 70, 24, 70
        self.grid_top = self.top + max(self.width(n, self.small) for n in latents) + 10
        # a panel is as wide as its cells or its heading, so headings never overlap (one latent, long names)
        self.panel_w = max(cell * len(latents), max(self.width(panel_heading(m), self.font) for m in modalities) + 8)
        w = self.row_w + len(modalities) * (self.panel_w + self.pad) + self.bar_w
        self.w = max(w, self.width(title, self.big) + 20)
        self.h = self.grid_top + cell * len(entries) + 30

    def width(self, text: str, font: Any) -> int:
        box = self._probe.textbbox((0, 0), text, font=font)
        return box[2] - box[0]


def _draw_panel(img: Any, draw: Any, lay: _HeatmapLayout, entries: Sequence[dict[str, Any]], metric: str, modality: str,
                *, x0: int) -> None:
    """One modality's panel: rotated latent names, then one coloured, labelled cell per entry and latent."""
    from PIL import Image, ImageDraw

    cell = lay.cell
    draw.text((x0, 40), panel_heading(modality), fill="black", font=lay.font)
    for c, name in enumerate(lay.latents):  # rotated latent names
        label = Image.new("RGBA", (lay.width(name, lay.small) + 4, 16), (255, 255, 255, 0))
        ImageDraw.Draw(label).text((0, 0), name, fill="black", font=lay.small)
        label = label.rotate(90, expand=True)
        img.paste(label, (x0 + c * cell + cell // 2 - 8, lay.grid_top - label.size[1] - 4), label)
    for r, en in enumerate(entries):
        vals = en["metrics"][metric]["values"].get(modality, {})
        expected = set(en.get("expected_identifiable", ()))
        for c, name in enumerate(lay.latents):
            box = (x0 + c * cell, lay.grid_top + r * cell, x0 + (c + 1) * cell - 1, lay.grid_top + (r + 1) * cell - 1)
            v = vals.get(name, {}).get("mean") if name in vals else None
            if v is None:
                draw.rectangle(box, fill=(225, 225, 225))
                continue
            rgb = _colour(v)
            draw.rectangle(box, fill=rgb)
            if name in expected:
                draw.rectangle(box, outline=(220, 30, 30), width=3)
            txt = f"{v:.2f}"
            lum = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
            draw.text((box[0] + (cell - lay.width(txt, lay.small)) // 2, box[1] + cell // 2 - 7), txt,
                      fill="black" if lum > 128 else "white", font=lay.small)


def _draw_colour_bar(draw: Any, lay: _HeatmapLayout) -> None:
    bx = lay.w - lay.bar_w + 15
    bar_h = lay.cell * lay.rows
    for i in range(bar_h):
        draw.line([(bx, lay.grid_top + i), (bx + 14, lay.grid_top + i)], fill=_colour(1.0 - i / max(bar_h - 1, 1)))
    draw.text((bx + 18, lay.grid_top - 2), "1", fill="black", font=lay.small)
    draw.text((bx + 18, lay.grid_top + bar_h - 12), "0", fill="black", font=lay.small)


_HTML_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mmbench leaderboard</title>
<link rel="icon" href="data:,">
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222}
table.lb{border-collapse:collapse;margin-bottom:1.5em;font-size:14px}
table.lb th,table.lb td{border:1px solid #ccc;padding:4px 8px;text-align:right;white-space:nowrap}
table.lb th{background:#f3f3f3;cursor:pointer;position:sticky;top:0}
table.lb td:nth-child(2),table.lb th:nth-child(2){text-align:left}
table.lb tr.r{cursor:pointer}
table.lb tr.r:hover{background:#eef5ff}
table.lb tr.d pre{text-align:left;font-size:12px;max-width:100em;overflow:auto;margin:0}
th.asc::after{content:" \\25B2"} th.desc::after{content:" \\25BC"}
div.scroll{overflow-x:auto;max-width:100%}
div.maps{display:flex;flex-wrap:wrap;gap:1em}
div.maps figure{margin:0} div.maps img{max-width:100%;border:1px solid #ddd}
div.maps figcaption{font-size:12px;color:#555}
div.gens img{image-rendering:pixelated}
</style></head><body>
<h1>mmbench leaderboard</h1>
<p>Rows are ranked by each suite's main score (stated above its table). Click a header to sort: the first click puts
the best first (highest for ↑ columns, lowest for ↓), a second click reverses. Hover a value for its provenance; click a
model row for the full record, including every run of that model. A column never mixes results whose dataset
fingerprints differ. Values are mean ± std over the probe seeds.</p>
"""

_HTML_TAIL = """<script>
document.querySelectorAll("table.lb").forEach(function(t){
  var body=t.tBodies[0];
  function pairs(){var out=[],rows=Array.from(body.rows);for(var i=0;i<rows.length;i+=2){out.push([rows[i],rows[i+1]]);}return out;}
  t.querySelectorAll("th").forEach(function(th){
    th.addEventListener("click",function(){
      var k=+th.dataset.k,first=th.dataset.dir||"asc";
      var dir=th.classList.contains(first)?(first==="asc"?"desc":"asc"):first;
      t.querySelectorAll("th").forEach(function(h){h.classList.remove("asc","desc");});
      th.classList.add(dir);
      var sign=dir==="asc"?1:-1;
      var ps=pairs();
      ps.sort(function(a,b){
        var x=a[0].cells[k],y=b[0].cells[k];
        var numeric=x.dataset.v!==undefined;
        if(numeric){
          var vx=parseFloat(x.dataset.v),vy=parseFloat(y.dataset.v);
          if(isNaN(vx)&&isNaN(vy))return 0;
          if(isNaN(vx))return 1;
          if(isNaN(vy))return -1;
          return sign*(vx-vy);
        }
        return sign*x.textContent.localeCompare(y.textContent);
      });
      ps.forEach(function(p){body.appendChild(p[0]);body.appendChild(p[1]);});
    });
  });
  body.querySelectorAll("tr.r").forEach(function(r){
    r.addEventListener("click",function(){var d=document.getElementById(r.dataset.d);d.hidden=!d.hidden;});
  });
});
</script>
</body></html>
"""
