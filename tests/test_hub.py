"""Parquet export, the Hub card, publishing and loading back, against a stand-in Hub (no network)."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any, ClassVar

import datasets
import httpx2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mmbench
from mmbench import hub
from mmbench.cards import read_card_metadata
from mmbench.cli import main
from mmbench.core.builder import Builder, Modality
from mmbench.core.columns import to_var_values
from mmbench.core.info import Feature
from mmbench.core.latents import Latent, LatentSpec
from mmbench.errors import DatasetNotFoundError, HubError, InvalidConfigError, MMBenchError
from mmbench.hub import client, columns
from mmbench.testing.mnist import write_fake_backgrounds, write_fake_mnist
from mmbench.testing.toy import ToyTextBuilder
from tests.fake_hub import FakeHub

TOKEN = "hf_SecretTokenThatMustNeverBePrinted0123"
TINY: dict[str, Any] = {"split_sizes": {"train": 120, "val": 40, "test": 50}, "val_size": 60, "shard_size": 32}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("inputs")
    write_fake_backgrounds(root / "backgrounds")
    return {"data_dir": write_fake_mnist(root / "mnist", n_train=300, n_test=100), "backgrounds": root / "backgrounds",
            "cache_dir": root / "cache"}


def tiny_poly(inputs: dict[str, Any], **extra: Any) -> Builder:
    kw = {**TINY, **extra}
    return mmbench.builder("polymnist/reference", cache_dir=inputs["cache_dir"], data_dir=inputs["data_dir"],
                           backgrounds=inputs["backgrounds"], **kw)


@pytest.fixture(scope="module")
def poly_export(inputs: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hub.export(tiny_poly(inputs), tmp_path_factory.mktemp("exp") / "poly", name="tiny", progress=False)


def load_hf(path: Path, config: str, tmp_path: Path) -> datasets.DatasetDict:
    return datasets.load_dataset(str(path), config, cache_dir=str(tmp_path / "hf-cache"))


# ============================================================================ export → datasets
def test_polymnist_round_trip_through_datasets(inputs: dict[str, Any], poly_export: Path, tmp_path: Path) -> None:
    b = tiny_poly(inputs)
    d = load_hf(poly_export, "tiny", tmp_path)
    assert set(d) == {"train", "val", "test"}
    feats = d["test"].features
    assert isinstance(feats["m0"], datasets.Image)
    assert isinstance(feats["latents.digit"], datasets.ClassLabel) and feats["latents.digit"].names == list("0123456789")
    for split, hf_split in d.items():
        ds = b.as_dataset(split)
        assert hf_split.column_names == ds.column_names and len(hf_split) == len(ds)
        pixels = np.asarray(hf_split[3]["m2"])  # a PIL image decodes to the exact pixels
        assert np.array_equal(pixels, np.moveaxis(ds["m2"][3], 0, -1))
        arrays = hf_split.with_format("numpy")[:]
        for name in ds.column_names:
            ours = np.asarray(ds[name])
            theirs = np.moveaxis(arrays[name], -1, 1) if name in ds.modalities else arrays[name]
            assert theirs.dtype == ours.dtype and np.array_equal(theirs, ours), (split, name)


def test_export_layout_card_and_no_local_paths(inputs: dict[str, Any], poly_export: Path) -> None:
    files = sorted(p.relative_to(poly_export).as_posix() for p in poly_export.rglob("*") if p.is_file())
    assert files == ["README.md", "tiny/mmbench_info.json", "tiny/resources.safetensors", "tiny/samples.png",
                     "tiny/test-00000-of-00001.parquet", "tiny/train-00000-of-00001.parquet", "tiny/val-00000-of-00001.parquet"]
    assert pq.ParquetFile(poly_export / "tiny/train-00000-of-00001.parquet").metadata.num_row_groups == 2  # 100-row groups
    text = (poly_export / "README.md").read_text()
    meta = read_card_metadata(text)
    assert meta["configs"] == [{"config_name": "tiny", "default": True, "data_files": [
        {"split": s, "path": f"tiny/{s}-*"} for s in ("train", "val", "test")]}]
    assert meta["license"] == "cc-by-sa-3.0" and "mmbench" in meta["tags"]
    entry = meta["mmbench"]["configs"]["tiny"]
    b = tiny_poly(inputs)
    info = b.as_dataset("test").info
    assert entry["builder_version"] == "1.0.1" and entry["config_fingerprint"] == b.config.fingerprint
    assert entry["splits"]["test"]["fingerprint"] == info.splits["test"]["fingerprint"]
    assert entry["overrides"]["val_size"] == 60 and entry["tag"] == "tiny-v1.0.1"
    assert entry["inputs"]["mnist"]["files"]["t10k-images-idx3-ubyte"]["sha256"] == \
        info.inputs["mnist"]["files"]["t10k-images-idx3-ubyte"]["sha256"]
    for section in ("## Latents", "## Configs in this repository", "## Version history", "## Known deviations",
                    "## How to load", "## Citation", "![", "tiny/samples.png", "`latents.m0.crop_x`"):
        assert section in text, section
    for path in (poly_export / "README.md", poly_export / "tiny/mmbench_info.json"):
        content = path.read_text()
        assert str(inputs["data_dir"]) not in content and str(inputs["cache_dir"]) not in content


def test_numerical_round_trip_is_bit_exact(tmp_path: Path) -> None:
    b = mmbench.builder("numerical/misalignment/joint", cache_dir=tmp_path / "c",
                        split_sizes={"train": 300, "test": 70}, shard_size=100)
    out = hub.export(b, tmp_path / "out", name="joint-small", progress=False)
    d = load_hf(out, "joint-small", tmp_path)
    assert d["train"].features["x"] == datasets.List(datasets.Value("float32"), length=15)
    assert d["train"].features["perturbed.s1"] == datasets.Value("bool")
    for split in ("train", "test"):
        ds, arrays = b.as_dataset(split), d[split].with_format("numpy")[:]
        for name in ds.column_names:
            assert arrays[name].dtype == ds[name].dtype and np.array_equal(arrays[name], ds[name]), name


def test_parallel_export_writes_the_same_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columns, "FILE_BYTES", 4_000)  # 1,000-row files (decided in the parent, not the workers)
    monkeypatch.setattr(columns, "GROUP_BYTES", 1)
    b = mmbench.builder("numerical/clica/box-uniform-normal", cache_dir=tmp_path / "c",
                        split_sizes={"train": 2_500, "test": 1_000}, shard_size=1_000)
    one = hub.export(b, tmp_path / "one", name="box", progress=False)
    two = hub.export(b, tmp_path / "two", name="box", num_workers=2, progress=False)
    files = sorted(p.name for p in (one / "box").glob("*.parquet"))
    assert files == ["test-00000-of-00001.parquet", "train-00000-of-00003.parquet", "train-00001-of-00003.parquet",
                     "train-00002-of-00003.parquet"]
    for name in files:
        assert (one / "box" / name).read_bytes() == (two / "box" / name).read_bytes()
    arrays = load_hf(two, "box", tmp_path)["train"].with_format("numpy")[:]
    assert np.array_equal(arrays["latents.z"], b.as_dataset("train")["latents.z"])


class CaptionBuilder(Builder):
    """A tiny text dataset: a colour shown as a vector and named in a caption (UTF-8)."""

    name = "test/captions"
    VERSION = "1.0.0"
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "test"}
    COLOURS = ("red", "grün", "bleu")

    def modalities(self) -> dict[str, Modality]:
        return {"x": Modality("x", "vector", (3,), "float32"), "caption": Modality("caption", "text", (), "<U40")}

    def latent_spec(self) -> LatentSpec:
        return LatentSpec((Latent(name="colour", kind="categorical", support=self.COLOURS, role="content"),))

    def generate(self, split: str, start: int, stop: int, *, rng: np.random.Generator) -> dict[str, np.ndarray]:
        colour = rng.integers(0, 3, stop - start)
        x = (np.eye(3)[colour] + 0.1 * rng.standard_normal((stop - start, 3))).astype(np.float32)
        caption = np.array([f"a {self.COLOURS[c]} thing, №{start + i}" for i, c in enumerate(colour)], dtype="<U40")
        return {"x": x, "caption": caption, "latents.colour": colour}


def test_text_round_trip(tmp_path: Path, fake: FakeHub) -> None:
    b = CaptionBuilder(cache_dir=tmp_path / "c", split_sizes={"train": 30, "test": 12})
    out = hub.export(b, tmp_path / "out", name="small", progress=False)
    d = load_hf(out, "small", tmp_path)
    assert d["test"].features["caption"] == datasets.Value("string")
    ds = b.as_dataset("test")
    assert ds.info.features["caption"].layout == "string"
    assert list(d["test"]["caption"]) == ds["caption"][:] and "grün" in "".join(d["train"]["caption"])
    assert "Not documented" in (out / "README.md").read_text()  # a builder without prose still gets a card
    hub.publish(b, "lab/captions", name="small", create=True, progress=False)
    back = mmbench.load("test/captions/small", source="hub", repo="lab/captions", split="test", cache_dir=tmp_path / "h",
                        verify="full")
    assert back.info.features["caption"].layout == "string" and back["caption"][:] == ds["caption"][:]
    assert back[3]["caption"] == ds[3]["caption"] and back.fingerprint == ds.fingerprint


# ============================================================================ string, ragged, store and artifact columns
@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Builder:
    """The toy image-text dataset: store-backed images, string captions, ragged tokens, a vocabulary."""
    b = ToyTextBuilder(cache_dir=tmp_path_factory.mktemp("toy-cache"))
    b.build(progress=False)
    return b


def test_toy_export_reads_back_through_datasets(toy: Builder, tmp_path: Path) -> None:
    out = hub.export(toy, tmp_path / "out", name="short", progress=False)
    assert (out / "short/artifacts/vocabulary.json").read_bytes() == toy.as_dataset("train").artifact("vocabulary.json")
    d = load_hf(out, "short", tmp_path)
    feats = d["train"].features
    assert isinstance(feats["image"], datasets.Image) and feats["text"] == datasets.Value("string")
    assert feats["tokens"] == datasets.List(datasets.Value("int32"))
    for split, hf_split in d.items():
        ds = toy.as_dataset(split)
        assert hf_split.column_names == ds.column_names and len(hf_split) == len(ds)
        assert hf_split["text"] == ds["text"][:]
        assert hf_split["tokens"] == [t.tolist() for t in ds["tokens"][:]]
        pixels = np.stack([np.moveaxis(np.asarray(img), -1, 0) for img in hf_split["image"]])
        assert pixels.dtype == np.uint8 and np.array_equal(pixels, ds["image"][:])  # the store's rows, exactly
    doc = json.loads((out / "short/mmbench_info.json").read_text())
    shard = doc["splits"]["test"]["shards"][0]
    assert set(shard["materialised_sha256"]) == {"image"}  # the rows' hash beside the store indices' hash
    entry = read_card_metadata((out / "README.md").read_text())["mmbench"]["configs"]["short"]
    assert entry["artifacts"] == {"vocabulary.json": "short/artifacts/vocabulary.json"}


def test_toy_published_and_loaded_is_the_same_dataset(toy: Builder, fake: FakeHub, tmp_path: Path) -> None:
    hub.publish(toy, "lab/toy", name="short", create=True, progress=False)
    assert "short/artifacts/vocabulary.json" in fake.files("lab/toy")
    every = mmbench.load("testing/toy-text/short", source="hub", repo="lab/toy", cache_dir=tmp_path / "h", verify="full")
    assert set(every) == {"train", "val", "test"}
    for split, back in every.items():
        local = toy.as_dataset(split)
        assert back.fingerprint == local.fingerprint and back.info.content_fingerprint == local.info.content_fingerprint
        assert back.info.features["image"].store is None and back.info.features["tokens"].layout == "ragged"
        assert back.artifacts == ["vocabulary.json"] and back.artifact("vocabulary.json") == local.artifact("vocabulary.json")
        for kw in ({}, {"shuffle": True, "seed": 3}):
            ours, theirs = list(back.batches(10, **kw)), list(local.batches(10, **kw))
            assert len(ours) == len(theirs) and all(a.keys() == b.keys() for a, b in zip(ours, theirs, strict=True))
            for a, b in zip(ours, theirs, strict=True):
                for key, value in b.items():
                    if isinstance(value, list):  # the captions
                        assert isinstance(a[key], list) and a[key] == value, (split, key)
                    else:
                        assert isinstance(a[key], np.ndarray) and a[key].dtype == value.dtype, (split, key)
                        assert np.array_equal(a[key], value), (split, key)
    assert not list((tmp_path / "h").rglob(".tmp-*")) and not list((tmp_path / "h").rglob(".partial-*"))


def rewrite_parquet(files: dict[str, bytes], path: str, column: str, change: Any) -> None:
    """Replace ``column`` of the Parquet file ``files[path]`` with ``change(its Python values)``."""
    table = pq.read_table(pa.BufferReader(files[path]))
    i = table.column_names.index(column)
    values = change(table.column(column).to_pylist())
    table = table.set_column(i, table.schema.field(column), pa.array(values, table.schema.field(column).type))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    files[path] = sink.getvalue().to_pybytes()


def tampered_branch(fake: FakeHub, repo_id: str, branch: str, change: Any) -> None:
    repo = fake.repos[repo_id]
    files = dict(repo.commits[repo.branches["main"]])
    change(files)
    repo.branches[branch] = repo.add_commit(files)


def test_tampered_toy_data_is_refused(toy: Builder, fake: FakeHub, tmp_path: Path) -> None:
    hub.publish(toy, "lab/toy", name="short", create=True, progress=False)
    path = "short/train-00000-of-00001.parquet"
    shard = 40 // 16  # row 40 lies in the third 16-row shard

    def one_token(rows: list[Any]) -> list[Any]:
        rows[40] = [rows[40][0] + 1, *rows[40][1:]]
        return rows

    def one_pixel(rows: list[Any]) -> list[Any]:
        from PIL import Image

        img = np.array(Image.open(io.BytesIO(rows[40]["bytes"])))
        img[0, 0, 0] ^= 1
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        rows[40] = {"bytes": buf.getvalue(), "path": None}
        return rows

    tampered_branch(fake, "lab/toy", "tokens", lambda f: rewrite_parquet(f, path, "tokens", one_token))
    tampered_branch(fake, "lab/toy", "image", lambda f: rewrite_parquet(f, path, "image", one_pixel))
    tampered_branch(fake, "lab/toy", "vocab", lambda f: f.update({"short/artifacts/vocabulary.json": b'["x"]'}))
    kw: dict[str, Any] = {"source": "hub", "repo": "lab/toy", "cache_dir": tmp_path / "c"}
    for column in ("tokens", "image"):
        with pytest.raises(HubError, match=rf"Column '{column}' of 'train' \(shard {shard}\) .* differs from the data"):
            mmbench.load("testing/toy-text/short", revision=column, **kw)
    with pytest.raises(HubError, match=r"artifact artifacts/vocabulary.json .* does not match its recorded sha256"):
        mmbench.load("testing/toy-text/short", revision="vocab", **kw)

    def drop_tokens(files: dict[str, bytes]) -> None:
        table = pq.read_table(pa.BufferReader(files[path])).drop_columns(["tokens"])
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        files[path] = sink.getvalue().to_pybytes()

    tampered_branch(fake, "lab/toy", "no-tokens", drop_tokens)
    tampered_branch(fake, "lab/toy", "no-train", lambda f: f.pop(path))
    with pytest.raises(HubError, match=r"train-00000-of-00001.parquet of .* has no column\(s\) \['tokens'\]"):
        mmbench.load("testing/toy-text/short", revision="no-tokens", **kw)
    with pytest.raises(HubError, match=r"'train' split .* has no Parquet files"):
        mmbench.load("testing/toy-text/short", revision="no-train", **kw)
    assert not [p for p in (tmp_path / "c").rglob("*") if p.is_file()]  # nothing half-converted left behind


def test_ragged_and_string_codecs() -> None:
    info = ToyTextBuilder().info()
    feat = Feature.ragged("int16", "modality")
    assert hub.column_kind("t", feat, info) == "ragged" and hub.column_kind("text", info.features["text"], info) == "string"
    assert hub.column_kind("image", info.features["image"], info) == "image" and info.features["image"].store == "images"
    codec = hub.CODECS["ragged"]
    assert codec.feature("t", feat, info) == datasets.List(datasets.Value("int16"))
    seqs = [np.array([3, 1, 4]), np.array([], np.int64), np.array([1, 5])]
    from_list = codec.to_arrow(seqs, "t", feat, info)
    padded = np.array([[3, 1, 4], [0, 0, 0], [1, 5, 0]])
    from_padded = codec.to_arrow((padded, np.array([3, 0, 2])), "t", feat, info)
    assert from_list.equals(from_padded) and from_list.type == pa.list_(pa.int16())
    back = codec.from_arrow(from_list.slice(1), feat)  # a slice of a list array keeps its offsets
    assert back.values.dtype == np.int16 and back.values.tolist() == [1, 5] and back.lengths.tolist() == [0, 2]
    table = pa.table({"t": from_list}, schema=datasets.Features({"t": codec.feature("t", feat, info)}).arrow_schema)
    assert list(datasets.Dataset(table)["t"]) == [[3, 1, 4], [], [1, 5]]
    with pytest.raises(MMBenchError, match="do not fit dtype int16"):
        codec.to_arrow([np.array([2**20])], "t", feat, info)
    with pytest.raises(HubError, match="outside its dtype int16"):
        codec.from_arrow(pa.array([[2**20]], pa.list_(pa.int32())), feat)

    strings = hub.CODECS["string"]
    text = ["a grün dot", "", "№ 7"]
    array = strings.to_arrow(text, "text", info.features["text"], info)
    got = strings.from_arrow(array.slice(1), info.features["text"])
    assert got.lengths.tolist() == [0, len("№ 7".encode())] and got.values.tobytes() == "№ 7".encode()
    assert got.sha256() == to_var_values(text[1:], info.features["text"], 2, where="t").sha256()
    with pytest.raises(HubError, match="invalid UTF-8"):
        strings.from_arrow(pa.array([b"\xff"], pa.binary()).view(pa.string()), info.features["text"])
    with pytest.raises(HubError, match="missing values"):
        strings.from_arrow(pa.array(["a", None]), info.features["text"])


@pytest.mark.parametrize(("shape", "layout"), [((3, 6, 5), "chw"), ((1, 6, 5), "chw"), ((6, 5, 4), "hwc"), ((6, 5), "hw")])
def test_png_codec_is_lossless(shape: tuple[int, ...], layout: str) -> None:
    images = np.random.default_rng(0).integers(0, 256, (4, *shape), dtype=np.uint8)
    assert hub.image_layout(shape) == layout
    assert np.array_equal(hub.decode_png(hub.encode_png(images, layout), shape, layout), images)


def test_two_named_configs_in_one_export(tmp_path: Path) -> None:
    ids = ["numerical/clica/box-uniform-laplace", "numerical/clica/sphere-uniform-vmf1"]
    out = hub.export(ids, tmp_path / "out", splits=["test"], cache_dir=tmp_path / "c", progress=False)
    meta = read_card_metadata((out / "README.md").read_text())
    assert [c["config_name"] for c in meta["configs"]] == ["sphere-uniform-vmf1", "box-uniform-laplace"]
    assert meta["configs"][0].get("default") is True and "default" not in meta["configs"][1]
    assert len(load_hf(out, "box-uniform-laplace", tmp_path)["test"]) == 20_480
    assert len(datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf"))["test"]) == 20_480  # the default


# ============================================================================ bad input
def test_export_bad_input(inputs: dict[str, Any], poly_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = tiny_poly(inputs)
    with pytest.raises(InvalidConfigError, match=r"ad-hoc config .* --name"):
        hub.export(b, tmp_path / "a")
    with pytest.raises(InvalidConfigError, match="named config of 'polymnist'"):
        hub.export(b, tmp_path / "a", name="distinct")
    with pytest.raises(InvalidConfigError, match="Invalid config name"):
        hub.export(b, tmp_path / "a", name="Bad Name")
    with pytest.raises(InvalidConfigError, match="one dataset"):
        hub.export(["numerical/clica", "numerical/multiview"], tmp_path / "a")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(InvalidConfigError, match="not empty. Pass --overwrite"):
        hub.export(b, busy, name="tiny")
    with pytest.raises(InvalidConfigError, match="not an mmbench export"):
        hub.export(b, busy, name="tiny", overwrite=True)
    assert (busy / "notes.txt").read_text() == "mine"
    assert not list(tmp_path.glob(".tmp-*"))
    args = ["export", "polymnist", "--out", str(tmp_path / "cli"), "--data-dir", str(inputs["data_dir"]),
            "--cache-dir", str(inputs["cache_dir"]), "-o", f"backgrounds={inputs['backgrounds']}",
            "-o", "val_size=60", "-o", 'split_sizes={"train": 120, "val": 40, "test": 50}', "-o", "shard_size=32"]
    assert main(args) == 1
    assert "--name NAME" in capsys.readouterr().err
    assert main([*args, "--name", "tiny", "--split", "test", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "tiny: test 50" in out and 'load_dataset("' in out
    assert main([*args, "--name", "tiny", "--split", "val", "--no-progress"]) == 1
    assert main([*args, "--name", "tiny", "--split", "val", "--no-progress", "--overwrite"]) == 0
    assert sorted(p.name for p in (tmp_path / "cli" / "tiny").glob("*.parquet")) == ["val-00000-of-00001.parquet"]


# ============================================================================ publish (stand-in Hub)
@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    hub_ = FakeHub(tmp_path / "hub")
    monkeypatch.setattr(client, "hub_client", lambda token=None: hub_)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    return hub_


def publish_tiny(inputs: dict[str, Any], name: str = "tiny", repo: str = "lab/poly", **kw: Any) -> hub.PublishResult:
    extra = {k: kw.pop(k) for k in ("pairing", "seed") if k in kw}
    return hub.publish(tiny_poly(inputs, **extra), repo, name=name, progress=False, **kw)


def test_publish_uploads_one_commit_then_tags_it(inputs: dict[str, Any], fake: FakeHub) -> None:
    result = publish_tiny(inputs, create=True)
    assert fake.names() == ["repo_info", "create_repo", "repo_info", "list_repo_refs", "hf_hub_download",
                            "list_repo_files", "create_commit", "create_tag"]
    commit = next(kw for name, kw in fake.calls if name == "create_commit")
    sent = sorted(op.path_in_repo for op in commit["operations"])
    assert sent == ["README.md", "tiny/mmbench_info.json", "tiny/resources.safetensors", "tiny/samples.png",
                    "tiny/test-00000-of-00001.parquet", "tiny/train-00000-of-00001.parquet", "tiny/val-00000-of-00001.parquet"]
    assert commit["revision"] == "main" and commit["parent_commit"] is not None
    tag = next(kw for name, kw in fake.calls if name == "create_tag")
    assert tag["tag"] == "tiny-v1.0.1" == result.tag and tag["revision"] == result.commit
    assert fake.repos["lab/poly"].tags == {"tiny-v1.0.1": result.commit} and result.uploaded
    assert not list(Path(inputs["cache_dir"]).glob(".tmp-*"))  # the staging export is gone
    meta = read_card_metadata(fake.files("lab/poly")["README.md"].decode())
    assert meta["mmbench"]["dataset"] == "polymnist" and 'repo="lab/poly"' in fake.files("lab/poly")["README.md"].decode()

    fake.calls.clear()  # the same data again: nothing uploaded, nothing re-tagged
    again = publish_tiny(inputs)
    assert not again.uploaded and again.commit == result.commit and "create_commit" not in fake.names()
    assert "create_tag" not in fake.names()


def test_publish_second_config_merges_the_card(inputs: dict[str, Any], fake: FakeHub) -> None:
    first = publish_tiny(inputs, create=True)
    second = publish_tiny(inputs, name="tiny-seed2", seed=2)
    files = fake.files("lab/poly")
    assert {"tiny/train-00000-of-00001.parquet", "tiny-seed2/train-00000-of-00001.parquet"} <= set(files)
    meta = read_card_metadata(files["README.md"].decode())
    assert [c["config_name"] for c in meta["configs"]] == ["tiny", "tiny-seed2"]
    assert set(meta["mmbench"]["configs"]) == {"tiny", "tiny-seed2"}
    assert fake.repos["lab/poly"].tags == {"tiny-v1.0.1": first.commit, "tiny-seed2-v1.0.1": second.commit}
    commit = [kw for name, kw in fake.calls if name == "create_commit"][-1]
    assert all(op.path_in_repo == "README.md" or op.path_in_repo.startswith("tiny-seed2/") for op in commit["operations"])


def test_publish_refusals(inputs: dict[str, Any], fake: FakeHub, tmp_path: Path) -> None:
    publish_tiny(inputs, create=True)
    with pytest.raises(HubError, match="already has the tag 'tiny-v1.0.1'"):
        publish_tiny(inputs, seed=1)  # other data, same name and version
    with pytest.raises(HubError, match="holds the mmbench dataset 'polymnist', not 'numerical/clica'"):
        hub.publish(mmbench.builder("numerical/clica", cache_dir=tmp_path, split_sizes={"test": 10}), "lab/poly",
                    name="small", progress=False)
    fake.create_repo("lab/other", repo_type="dataset")
    repo = fake.repos["lab/other"]
    repo.branches["main"] = repo.add_commit({"README.md": b"# Someone's own card\n"})
    with pytest.raises(HubError, match="did not write"):
        publish_tiny(inputs, repo="lab/other")
    with pytest.raises(InvalidConfigError, match="ORG/NAME"):
        publish_tiny(inputs, repo="no-org")
    with pytest.raises(InvalidConfigError, match="published one at a time"):
        hub.publish(["numerical/clica"], "lab/poly")  # type: ignore[arg-type]


def test_publish_errors_are_clear(inputs: dict[str, Any], fake: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(HubError, match=r"not found on the Hub .* --create"):
        publish_tiny(inputs)
    fake.create_repo("lab/poly", repo_type="dataset")
    with pytest.raises(HubError, match="no branch 'dev'"):
        publish_tiny(inputs, revision="dev")
    fake.fail["repo_info"] = httpx2.ConnectError("[Errno 111] Connection refused")
    with pytest.raises(HubError, match="could not reach the Hugging Face Hub .*ConnectError"):
        publish_tiny(inputs)
    fake.fail["list_repo_refs"] = hub_http_error(401)
    with pytest.raises(HubError, match="refused the token .*HTTP 401"):
        publish_tiny(inputs)
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    fake.calls.clear()
    with pytest.raises(HubError, match="No Hugging Face token found.*HF_TOKEN.*hf auth login"):
        publish_tiny(inputs)
    assert fake.calls == []


def hub_http_error(status: int) -> Exception:
    from huggingface_hub import errors as hf

    from tests.fake_hub import _response

    return hf.HfHubHTTPError(f"{status} Client Error", response=_response(status, "x"))


def test_failed_upload_leaves_nothing_tagged(inputs: dict[str, Any], fake: FakeHub) -> None:
    fake.create_repo("lab/poly", repo_type="dataset")
    head = fake.repos["lab/poly"].branches["main"]
    fake.fail["create_commit"] = httpx2.ReadTimeout("The write operation timed out")
    with pytest.raises(HubError, match="could not reach the Hugging Face Hub"):
        publish_tiny(inputs)
    assert fake.repos["lab/poly"].tags == {} and fake.repos["lab/poly"].branches["main"] == head
    fake.fail["create_tag"] = httpx2.ConnectError("connection reset")
    with pytest.raises(HubError, match=r"as commit \w+, but it is not tagged 'tiny-v1.0.1'. Run the same"):
        publish_tiny(inputs)
    assert fake.repos["lab/poly"].tags == {}
    fake.calls.clear()
    result = publish_tiny(inputs)  # the rerun only tags what is there
    assert not result.uploaded and "create_commit" not in fake.names()
    assert fake.repos["lab/poly"].tags == {"tiny-v1.0.1": fake.repos["lab/poly"].branches["main"]}


def test_token_is_never_printed_logged_or_written(inputs: dict[str, Any], fake: FakeHub, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    args = ["publish", "polymnist", "--repo", "lab/poly", "--name", "tiny", "--data-dir", str(inputs["data_dir"]),
            "--cache-dir", str(inputs["cache_dir"]), "-o", f"backgrounds={inputs['backgrounds']}",
            "-o", "val_size=60", "-o", 'split_sizes={"train": 120, "val": 40, "test": 50}', "-o", "shard_size=32",
            "--no-progress"]
    assert main(args) == 1  # no repository yet
    assert main([*args, "--create"]) == 0
    fake.fail["create_commit"] = hub_http_error(403)
    assert main([*args, "-o", "seed=5", "--name", "tiny-seed5"]) == 1
    out, err = capsys.readouterr()
    assert "Published: polymnist/reference~" in out and "tag tiny-v1.0.1" in out and "refused the token" in err
    assert TOKEN not in out + err + caplog.text
    written = [*Path(inputs["cache_dir"]).rglob("*"), *fake.root.rglob("*"), *tmp_path.rglob("*")]
    assert not any(TOKEN.encode() in p.read_bytes() for p in written if p.is_file())


# ============================================================================ load from the Hub
def test_load_from_hub_is_the_same_dataset(inputs: dict[str, Any], fake: FakeHub, tmp_path: Path) -> None:
    result = publish_tiny(inputs, create=True)
    publish_tiny(inputs, name="tiny-seed2", seed=2)  # moves main on
    fake.calls.clear()
    cache = tmp_path / "hub-cache"
    ds = mmbench.load("polymnist/tiny:1.0.1", source="hub", repo="lab/poly", split="test", cache_dir=cache, verify="full")
    snap = next(kw for name, kw in fake.calls if name == "snapshot_download")
    assert snap["revision"] == result.commit and snap["allow_patterns"] == ["tiny/*"]  # pinned to the version's tag
    local = tiny_poly(inputs).as_dataset("test")
    assert ds.id == local.id and ds.fingerprint == local.fingerprint and ds.column_names == local.column_names
    for name in local.column_names:
        assert np.array_equal(ds[name], local[name]), name
    assert next(ds.batches(16))["m0"].shape == (16, 3, 28, 28) and len(ds.torch()) == 50
    fake.calls.clear()
    every = mmbench.load("polymnist/tiny", source="hub", repo="lab/poly", revision="tiny-v1.0.1", cache_dir=cache)
    assert set(every) == {"train", "val", "test"} and "snapshot_download" not in fake.names()  # converted once
    assert len(every["train"]) == 120


def test_load_from_hub_errors(inputs: dict[str, Any], fake: FakeHub, tmp_path: Path) -> None:
    publish_tiny(inputs, create=True)
    kw = {"source": "hub", "repo": "lab/poly", "cache_dir": tmp_path / "c"}
    with pytest.raises(DatasetNotFoundError, match=r"no config 'tin'.*Did you mean 'tiny'"):
        mmbench.load("polymnist/tin", split="test", **kw)
    with pytest.raises(HubError, match=r"no tag 'tiny-v2.0.0'.*Published versions: \['tiny-v1.0.1'\]"):
        mmbench.load("polymnist/tiny:2.0.0", split="test", **kw)
    with pytest.raises(DatasetNotFoundError, match="holds the dataset 'polymnist', not 'numerical/clica'"):
        mmbench.load("numerical/clica/x", split="test", **kw)
    with pytest.raises(DatasetNotFoundError, match="publishes splits"):
        mmbench.load("polymnist/tiny", split="extra", **kw)
    with pytest.raises(InvalidConfigError, match="overrides"):
        mmbench.load("polymnist/tiny", split="test", seed=3, **kw)
    with pytest.raises(InvalidConfigError, match="pass source='hub'"):
        mmbench.load("polymnist/tiny", split="test", repo="lab/poly")
    with pytest.raises(InvalidConfigError, match="needs repo="):
        mmbench.load("polymnist/tiny", split="test", source="hub")
    with pytest.raises(HubError, match="was not found on the Hub"):
        mmbench.load("polymnist/tiny", split="test", source="hub", repo="lab/none")


def test_tampered_hub_data_is_refused(inputs: dict[str, Any], fake: FakeHub, tmp_path: Path) -> None:
    publish_tiny(inputs, create=True)

    def one_digit(digits: list[int]) -> list[int]:
        digits[7] = (digits[7] + 1) % 10
        return digits

    tampered_branch(fake, "lab/poly", "tampered",
                    lambda f: rewrite_parquet(f, "tiny/test-00000-of-00001.parquet", "latents.digit", one_digit))
    with pytest.raises(HubError, match=r"Column 'latents.digit' of 'test' .* differs from the data that was built"):
        mmbench.load("polymnist/tiny", source="hub", repo="lab/poly", revision="tampered", cache_dir=tmp_path / "c")
    assert not list((tmp_path / "c").rglob("dataset_info.json"))  # nothing half-converted left behind


def test_json_of_the_info_round_trips(poly_export: Path) -> None:
    doc = json.loads((poly_export / "tiny" / "mmbench_info.json").read_text())
    assert doc["id"].startswith("polymnist/reference~") and set(doc["splits"]) == {"train", "val", "test"}
    assert "path" not in json.dumps(doc["inputs"]) and "location" not in doc["inputs"]["mnist"]
