"""The MPI3D-Complex experiment (``reproduce misalign-mpi3d``) on tiny procedural fakes: specs, runs, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import mmbench
from mmbench.builders.mpi3d import split_sizes_for
from mmbench.models import mpi3d
from mmbench.models.reproduce import reproduce, table_spec
from mmbench.testing import write_fake_mpi3d

SIZES = (2, 2, 2, 2, 2, 4, 4)  # 512 images: 460 train, 25 val, 27 test


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_mpi3d(tmp_path_factory.mktemp("mpi3d"), factor_sizes=SIZES, image_size=8).parent


def test_full_scale_is_the_papers_setup() -> None:
    spec = table_spec("misalign-mpi3d", "full")
    assert [r.name for r in spec.runs] == ["selection-1", "selection-2", "selection-3", "selection-4",
                                           "selection-5 = perturbation-1", "perturbation-2", "perturbation-3",
                                           "perturbation-4", "perturbation-5"]
    cfg = spec.runs[0].config
    assert (cfg.steps, cfg.batch_size, cfg.lr, cfg.grad_clip, cfg.loss) == (200_000, 256, 1e-5, 2.0, "ntxent")
    assert dict(cfg.loss_kwargs) == {"tau": 1.0, "similarity": "cosine"} and cfg.encoder == {"image": "resnet18", "tokens": "text-conv"}
    assert dict(cfg.encoder_kwargs["tokens"]) == {"depth": "auto"}
    assert dict(cfg.dataset_overrides) == {"wording": "reference", "replacement": "any"}
    sizes = {r.name: r.config.encoding_size for r in spec.runs}
    assert sizes["selection-1"] == 3 and sizes["selection-4"] == 4 and sizes["selection-5 = perturbation-1"] == 5
    assert sizes["perturbation-4"] == 3 and sizes["perturbation-2"] == 4
    assert spec.seeds == (0, 1, 2)
    rows = [ev.row for ev in spec.runs[4].evals]
    assert "perturbation-1 / non-lin. / ẑt" in rows and "selection-5 / linear / ẑx" in rows
    recovered, excluded, specific = (dict(((r, c), None) for r, c in check.cells) for check in spec.checks)
    assert ("selection-5 / linear / ẑt", "vertical") in specific
    assert ("selection-2 / non-lin. / ẑx", "shape") in recovered and ("selection-2 / linear / ẑx", "shape") not in recovered
    assert ("perturbation-3 / linear / ẑt", "camera") in excluded and ("perturbation-3 / linear / ẑt", "color") not in excluded
    quick = table_spec("misalign-mpi3d", "quick")
    assert quick.runs[0].config.encoder["image"] == "conv-small" and "stated deviation" in quick.quick_note


def test_a_run_trains_probes_and_resumes(fake: Path, tmp_path: Path) -> None:
    spec = table_spec("misalign-mpi3d", "quick")
    index = [r.name for r in spec.runs].index("perturbation-4")
    cells, info = mpi3d.run(spec, index, 0, scale="quick", device="cpu", steps=3, out_dir=str(tmp_path / "runs"),
                            progress=False, data_dir=str(fake), cache_dir=str(tmp_path / "c"))
    assert set(cells) == {ev.row for ev in spec.runs[index].evals} and info["steps"] == 3
    for row in cells.values():
        assert set(row) == set(mpi3d.FACTORS) and all(0.0 <= v <= 1.0 for v in row.values())
    assert np.isfinite(info["final_loss"])
    _, again = mpi3d.run(spec, index, 0, scale="quick", device="cpu", steps=3, out_dir=str(tmp_path / "runs"),
                         progress=False, data_dir=str(fake), cache_dir=str(tmp_path / "c"))
    assert again["steps"] == 0  # resumed from the finished checkpoint


def test_the_model_pads_or_cuts_token_batches(fake: Path, tmp_path: Path) -> None:
    cfg = table_spec("misalign-mpi3d", "quick").runs[0].config.replace(
        steps=1, dataset_overrides={"split_sizes": split_sizes_for(fake), "wording": "reference", "replacement": "any"})
    model, _ = mpi3d.train_mpi3d(cfg, data_dir=fake, cache_dir=tmp_path, device="cpu", progress=False)
    ds = mmbench.load(cfg.dataset, split="val", data_dir=fake, cache_dir=tmp_path, **dict(cfg.dataset_overrides))
    ids, _ = ds.column("tokens").padded(slice(0, 8))
    length = model.modality_shapes["tokens"][0]
    exact = np.zeros((8, length), np.int64)
    exact[:, : ids.shape[1]] = ids
    wide = np.concatenate([exact, np.zeros((8, 5), np.int64)], axis=1)
    z = model.encode({"tokens": ids}, modality="tokens")
    assert torch.equal(z, model.encode({"tokens": exact}, modality="tokens"))
    assert torch.equal(z, model.encode({"tokens": wide}, modality="tokens"))
    img = model.encode({"image": np.asarray(ds.column("image")[:8])}, modality="image")
    assert img.shape == (8, cfg.encoding_size) and torch.isfinite(img).all()
    assert model.pixel_std.min() > 0 and tuple(model.pixel_mean.shape) == (1, 3, 1, 1)


def test_reproduce_from_the_cli_writes_the_table(fake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mmbench.cli import main

    out = tmp_path / "out"
    code = main(["reproduce", "misalign-mpi3d", "--quick", "--data-dir", str(fake), "--cache-dir", str(tmp_path / "c"),
                 "--steps", "2", "--only", "selection-1", "--jobs", "1", "--out", str(out), "--no-progress"])
    assert code in (0, 1)  # two steps train nothing: the checks may fail, the table must be written
    doc = json.loads((out / "misalign-mpi3d.json").read_text())
    assert {c["row"] for c in doc["cells"]} == {f"selection-1 / {p} / {m}" for p in ("linear", "non-lin.") for m in ("ẑx", "ẑt")}
    assert "stated deviation" in doc["note"] and "figures only" in doc["note"]
    assert "misalign-mpi3d" in (out / "misalign-mpi3d.md").read_text() or "MPI3D" in (out / "misalign-mpi3d.md").read_text()


def test_quick_archive_is_written_once(tmp_path: Path) -> None:
    folder = mpi3d.quick_archive(tmp_path)
    manifest = json.loads((folder / "mmbench-fake-mpi3d.json").read_text())
    assert manifest["factor_sizes"] == list(mpi3d.QUICK_FACTOR_SIZES) and manifest["image_size"] == 32
    assert manifest["style"] == "procedural"
    stamp = (folder / "mmbench-fake-mpi3d.json").stat().st_mtime_ns
    assert mpi3d.quick_archive(tmp_path) == folder and (folder / "mmbench-fake-mpi3d.json").stat().st_mtime_ns == stamp


def test_reproduce_only_selection_5_reports_perturbation_1(fake: Path, tmp_path: Path) -> None:
    res = reproduce("misalign-mpi3d", scale="quick", device="cpu", steps=1, only=["selection-5"], progress=False,
                    data_dir=fake, cache_dir=tmp_path)
    assert {r.split(" / ")[0] for r in res.measured} == {"selection-5", "perturbation-1"}
