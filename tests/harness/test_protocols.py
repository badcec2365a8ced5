"""Submission protocol: ModelCard, structural Encoder check, loading from module:object and directories."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
import torch

from mmbench.errors import InvalidConfigError, SubmissionError
from mmbench.harness.protocols import (
    MODEL_FILE,
    WEIGHTS_FILE,
    Encoder,
    Generator,
    ModelCard,
    check_encoder,
    is_generator,
    load_model,
    save_model,
)
from mmbench.harness.submission import MLPEncoder


class Plain:  # no subclassing of anything
    card = ModelCard(name="plain", revision="1", modalities=("x",), embedding_dim=2)

    def encode(self, batch, *, modality):
        return batch[modality][:, :2]


def test_card_validation_and_round_trip():
    card = ModelCard(name="m", revision="r1", modalities=["x", "t"], trained_on="numerical/misalignment/joint:1.0.0", extra={"steps": np.int64(3)})
    assert card.modalities == ("x", "t") and card.trained_on == ("numerical/misalignment/joint:1.0.0",)
    assert ModelCard.from_dict(json.loads(json.dumps(card.to_dict()))) == card
    assert card.id == "m@r1"
    with pytest.raises(InvalidConfigError, match="name"):
        ModelCard(name="")
    with pytest.raises(InvalidConfigError, match="embedding_dim"):
        ModelCard(name="m", embedding_dim=0)
    with pytest.raises(InvalidConfigError, match="sizes"):
        ModelCard.from_dict({"name": "m", "sizes": 3})


def test_structural_protocols():
    assert isinstance(Plain(), Encoder) and not is_generator(Plain())

    class Gen(Plain):
        def generate(self, batch, *, source, target):
            return batch[source[0]]

    assert isinstance(Gen(), Generator) and is_generator(Gen())
    assert check_encoder(Plain()).name == "plain"


def test_check_encoder_errors():
    class NoCard:
        def encode(self, batch, *, modality):
            return batch

    class NoEncode:
        card = {"name": "dict-card"}

    with pytest.raises(SubmissionError, match="card"):
        check_encoder(NoCard())
    with pytest.raises(SubmissionError, match="encode"):
        check_encoder(NoEncode())
    with pytest.raises(SubmissionError, match="invalid"):
        check_encoder(type("Bad", (), {"card": {"nom": 1}, "encode": lambda s, b, *, modality: b})())


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_submission.py").write_text(textwrap.dedent("""
        import numpy as np
        from mmbench.harness.protocols import ModelCard

        class Model:
            card = ModelCard(name="user", revision="2")
            def encode(self, batch, *, modality):
                return np.zeros((len(batch[modality]), 3))

        instance = Model()

        def factory():
            return Model()

        class NeedsArgs(Model):
            def __init__(self, width):
                self.width = width
    """))
    monkeypatch.chdir(tmp_path)  # the current directory is importable, as with python -m
    yield "my_submission"
    sys.modules.pop("my_submission", None)


@pytest.mark.parametrize("attr", ["instance", "Model", "factory"])
def test_load_model_from_module_object(user_module, attr):
    model = load_model(f"{user_module}:{attr}")
    assert model.card.name == "user"


def test_load_model_errors(user_module, tmp_path):
    with pytest.raises(SubmissionError, match="package.module:object"):
        load_model("no_colon_here")
    with pytest.raises(SubmissionError, match="Cannot import"):
        load_model("does_not_exist_xyz:Model")
    with pytest.raises(SubmissionError, match="Did you mean 'instance'"):
        load_model(f"{user_module}:instanc")
    with pytest.raises(SubmissionError, match="no arguments"):
        load_model(f"{user_module}:NeedsArgs")
    with pytest.raises(SubmissionError, match=MODEL_FILE):
        load_model(str(tmp_path))  # a directory without mmbench_model.json


def test_checkpoint_directory_round_trip(tmp_path):
    enc = MLPEncoder(card={"name": "mlp", "revision": "7", "modalities": ["x"]}, layers={"x": [5, 16, 3]})
    out = save_model(enc, tmp_path / "ckpt", factory="mmbench.harness.submission:MLPEncoder", kwargs=enc.config)
    assert (out / WEIGHTS_FILE).is_file() and (out / MODEL_FILE).is_file()
    assert not list(out.glob(".*tmp*"))
    loaded = load_model(out)
    x = torch.randn(4, 5)
    torch.testing.assert_close(loaded.encode({"x": x}, modality="x"), enc.encode({"x": x}, modality="x"))
    assert loaded.card == enc.card
    # The weights are read with safetensors only: a corrupted file is an error, never unpickled.
    (out / WEIGHTS_FILE).write_bytes(b"\x80\x04not-a-safetensors-file")
    with pytest.raises(Exception, match=r"(?i)header|safetensor|deserializ|invalid"):
        load_model(out)
    (out / WEIGHTS_FILE).unlink()
    with pytest.raises(SubmissionError, match="no weights"):
        load_model(out)
