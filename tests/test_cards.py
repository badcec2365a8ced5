"""Dataset cards and the repository catalogue ``cards/`` (kept current by `mmbench cards`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from mmbench.builders import DATASETS
from mmbench.cards import (
    MAX_SAMPLE_BYTES,
    SAMPLE_KEY,
    catalogue_card,
    has_sample,
    load_prose,
    sample_key,
    stale_catalogue,
    write_catalogue,
)
from mmbench.cli import main
from mmbench.errors import MMBenchError

CATALOGUE = Path(__file__).resolve().parents[1] / "cards"


def test_catalogue_is_current() -> None:
    problems = stale_catalogue(CATALOGUE)
    assert not problems, "\n".join(problems) + "\nRun `mmbench cards` at the repository root and commit cards/."


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_card_has_its_sections_latents_and_grid(name: str) -> None:
    cls = DATASETS.get(name)
    card = catalogue_card(cls)
    for heading in ("## Purpose", "## Modalities", "## Latents", "## Configs and biases", "## Sources and licences",
                    "## Version history", "## Known deviations from the original", "## How to load", "## Citation"):
        assert f"\n{heading}\n" in card, heading
    b = cls(cls.DEFAULT_CONFIG)
    for lat in b.latent_spec():  # the latents table: name, kind, role, scope
        assert f"| `latents.{lat.name}` | {lat.kind} | {lat.role} | {lat.scope} |" in card
    for config in cls.CONFIGS:
        assert f"| `{config}`" in card
    assert f"| {cls.VERSION} (current) |" in card and cls.CITATION in card
    png = CATALOGUE / f"{name.replace('/', '__')}.png"
    if not has_sample(load_prose(name)):  # raw inputs no machine fetches unattended: the card says so
        assert "No sample grid here:" in card and f"]({png.name})" not in card and not png.exists()
        return
    assert f"]({png.name})" in card
    with Image.open(png) as img:
        assert img.text[SAMPLE_KEY] == sample_key(cls) and img.width >= 60 and img.height >= 60
    assert png.stat().st_size <= MAX_SAMPLE_BYTES


def test_stale_pages_and_images_are_reported(tmp_path: Path) -> None:
    copy = tmp_path / "cards"
    shutil.copytree(CATALOGUE, copy)
    assert stale_catalogue(copy) == []
    page = copy / "polymnist.md"
    page.write_text(page.read_text().replace("## Purpose", "## Porpoise"))
    (copy / "numerical__clica.png").unlink()
    Image.new("RGB", (4, 4)).save(copy / "translated_polymnist.png")  # no key: drawn by something else
    (copy / "old_dataset.md").write_text("gone")
    problems = "\n".join(stale_catalogue(copy))
    assert "polymnist.md differs" in problems and "numerical__clica.png shows None" in problems
    assert "translated_polymnist.png shows None" in problems and "old_dataset.md belongs to no registered dataset" in problems
    assert main(["cards", "--out", str(copy), "--check"]) == 1
    written = write_catalogue(copy, images="none")  # pages are regenerated from metadata alone
    assert copy / "polymnist.md" in written and not (copy / "old_dataset.md").exists()
    assert page.read_text() == catalogue_card(DATASETS.get("polymnist"))


def test_write_catalogue_draws_a_small_keyed_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cards"
    args = ["cards", "--out", str(out), "--dataset", "numerical/clica", "--cache-dir", str(tmp_path / "c")]
    assert main(args) == 0
    assert "numerical__clica.png" in capsys.readouterr().out
    png = out / "numerical__clica.png"
    with Image.open(png) as img:
        assert img.text[SAMPLE_KEY] == sample_key(DATASETS.get("numerical/clica"))
    assert png.stat().st_size <= MAX_SAMPLE_BYTES and (out / "numerical__clica.md").is_file()
    mtime = png.stat().st_mtime_ns
    assert main(args) == 0 and png.stat().st_mtime_ns == mtime  # current: not redrawn


def test_missing_prose_is_a_clear_error() -> None:
    with pytest.raises(MMBenchError, match=r"write mmbench/cards/mpi3d__text\.md .*## Purpose"):
        load_prose("mpi3d/text")
    placeholder = load_prose("mpi3d/text", required=False)
    assert "Not documented" in placeholder.sections["Purpose"] and placeholder.meta["license"] == "other"
