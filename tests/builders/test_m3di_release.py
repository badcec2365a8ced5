"""The published Multimodal3DIdent release: read from a fake release in the real layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import mmbench
from mmbench.errors import InputsNotFoundError, InvalidConfigError
from mmbench.sources.m3di import image_name
from mmbench.testing import BuilderTestCase
from mmbench.testing.m3di import FAKE_SIZES, write_fake_release

RELEASE = {"split_sizes": FAKE_SIZES, "size": 32, "shard_size": 10, "render_shard_size": 16}


@pytest.fixture(scope="module")
def release_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("release")
    write_fake_release(root)
    return root


class TestRelease(BuilderTestCase):
    DATASET = "multimodal3dident/release"
    OVERRIDES = RELEASE
    REQUIRES_INPUTS = True
    GOLDEN = {"train": "e2b6f37b71a64df8", "val": "acd01dc8e7a3f018", "test": "c7fa16191a6e05a2"}
    _data: Path | None = None

    def builder_kwargs(self, tmp_path: Path) -> dict[str, Any]:
        if TestRelease._data is None:
            TestRelease._data = Path(str(tmp_path)).parent / "fake-m3di"
            if not (TestRelease._data / "m3di").is_dir():
                write_fake_release(TestRelease._data)
        return {"data_dir": TestRelease._data}

    def missing_inputs_kwargs(self, tmp_path: Path) -> dict[str, Any]:
        (tmp_path / "empty").mkdir(exist_ok=True)
        return {"data_dir": tmp_path / "empty"}


def test_release_columns_match_the_files_and_the_rendered_configs(release_dir, tmp_path):
    b = mmbench.builder("multimodal3dident/release", cache_dir=tmp_path, data_dir=release_dir, **RELEASE)
    b.build(progress=False)
    ds = b.as_dataset("val")
    rendered = mmbench.builder("multimodal3dident", meshes="tiny", **{k: v for k, v in RELEASE.items()})
    assert set(ds.column_names) == set(rendered.features())
    root = release_dir / "m3di" / "val"
    captions = (root / "text" / "text_raw.txt").read_text().split("\n")
    assert list(ds.column("text")[:]) == captions
    png = np.asarray(Image.open(root / "images" / image_name(3, 8))).transpose(2, 0, 1)
    assert np.array_equal(np.asarray(ds.column("image")[3]), png)
    lines = (root / "latents_image.csv").read_text().splitlines()
    first = dict(zip(lines[0].split(","), lines[1].split(","), strict=True))
    assert ds.column("latents.shape")[0] == int(first["object_shape"])
    assert ds.column("latents.s_color")[0] == pytest.approx(float(first["spotlight_color"]), abs=1e-6)
    assert b.info().expected_identifiable == ("shape", "x_pos", "y_pos")


def test_archive_is_extracted_once_and_hashed(release_dir, tmp_path):
    import shutil
    import tarfile

    (tmp_path / "raw").mkdir()
    with tarfile.open(tmp_path / "raw" / "m3di.tar.gz", "w:gz") as tar:
        tar.add(release_dir / "m3di", arcname="m3di")
    b = mmbench.builder("multimodal3dident/release", cache_dir=tmp_path / "c", data_dir=tmp_path / "raw", **RELEASE)
    info = b.inputs["m3di"]
    assert info["source"] == "archive" and len(info["sha256"]) == 64
    b.build(progress=False)
    shutil.rmtree(tmp_path / "c" / "multimodal3dident")
    again = mmbench.builder("multimodal3dident/release", cache_dir=tmp_path / "c", data_dir=tmp_path / "raw", **RELEASE)
    assert again.inputs["m3di"]["sha256"] == info["sha256"]


def test_release_errors(release_dir, tmp_path):
    with pytest.raises(InputsNotFoundError, match="zenodo.*--data-dir"):
        mmbench.builder("multimodal3dident/release", data_dir=tmp_path, cache_dir=tmp_path / "c", **RELEASE).inputs
    with pytest.raises(InvalidConfigError, match="captions are fixed text"):
        mmbench.builder("multimodal3dident/release", perturbation=["shape"], prob=0.5)
    b = mmbench.builder("multimodal3dident/release", cache_dir=tmp_path / "c", data_dir=release_dir,
                        **{**RELEASE, "split_sizes": {"train": 99, "val": 8, "test": 8}})
    with pytest.raises(InvalidConfigError, match="has 24 examples"):
        b.release
