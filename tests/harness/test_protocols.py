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
from mmbench.harness.submission import MLPSubmission


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
    enc = MLPSubmission(card={"name": "mlp", "revision": "7", "modalities": ["x"]}, layers={"x": [5, 16, 3]})
    out = save_model(enc, tmp_path / "ckpt", factory="mmbench.harness.submission:MLPSubmission", kwargs=enc.config)
    assert (out / WEIGHTS_FILE).is_file() and (out / MODEL_FILE).is_file()
    assert not list(out.glob(".*tmp*"))
    loaded = load_model(out)
    x = torch.randn(4, 5)
    torch.testing.assert_close(loaded.encode({"x": x}, modality="x"), enc.encode({"x": x}, modality="x"))
    assert loaded.card == enc.card
    # The weights are read with safetensors only: a corrupted file is an error, never unpickled.
    (out / WEIGHTS_FILE).write_bytes(b"\x80\x04not-a-safetensors-file")
    with pytest.raises(SubmissionError, match=r"Cannot read the weights.*safetensors file.*never loaded"):
        load_model(out)
    (out / WEIGHTS_FILE).unlink()
    with pytest.raises(SubmissionError, match="no weights"):
        load_model(out)


def test_checkpoints_naming_the_old_class_name_still_load(tmp_path):
    """The submission MLP was called MLPEncoder (as models.encoders.MLPEncoder): old files name it."""
    from mmbench.models.encoders import MLPEncoder as NetworkMLP

    enc = MLPSubmission(card={"name": "mlp", "revision": "7", "modalities": ["x"]}, layers={"x": [5, 16, 3]})
    out = save_model(enc, tmp_path / "ckpt", factory="mmbench.harness.submission:MLPEncoder", kwargs=enc.config)
    loaded = load_model(out)
    assert isinstance(loaded, MLPSubmission)
    x = torch.randn(4, 5)
    torch.testing.assert_close(loaded.encode({"x": x}, modality="x"), enc.encode({"x": x}, modality="x"))
    assert MLPSubmission.__name__ == "MLPSubmission" and NetworkMLP.__name__ == "MLPEncoder"  # one class per name


def _checkpoint(tmp_path, **meta_changes):
    enc = MLPSubmission(card={"name": "mlp", "revision": "7", "modalities": ["x"]}, layers={"x": [5, 16, 3]})
    out = save_model(enc, tmp_path / "ckpt", factory="mmbench.harness.submission:MLPSubmission", kwargs=enc.config)
    meta = json.loads((out / MODEL_FILE).read_text())
    meta.update(meta_changes)
    (out / MODEL_FILE).write_text(json.dumps(meta))
    return out


@pytest.mark.parametrize("factory", [
    "os:system",                                # outside mmbench: refused before it is even imported
    "mmbench.harness.protocols:os.system",      # reached through an mmbench module, but not an mmbench class
    "mmbench.cli:main",                         # an mmbench function, not a model class
    "mmbench.harness.submission:torch.nn.Linear",
    "nonsense",
])
def test_checkpoint_factory_must_be_an_mmbench_model_class(tmp_path, factory):
    marker = tmp_path / "pwned"
    out = _checkpoint(tmp_path, factory=factory, kwargs={"command": f"touch {marker}", "argv": ["list"]})
    with pytest.raises(SubmissionError, match=r"mmbench's own model classes|expected 'package.module:Class'") as info:
        load_model(out)
    assert not marker.exists()
    if ":" in factory:
        assert "--trust-factory" in str(info.value)


@pytest.mark.parametrize("weights", ["", "../model.safetensors", "/etc/passwd", "model.bin", None, "other.safetensors"])
def test_checkpoint_must_have_its_safetensors_weights(tmp_path, weights):
    out = _checkpoint(tmp_path, weights=weights)
    with pytest.raises(SubmissionError, match=r"weights file"):
        load_model(out)


def test_checkpoint_build_and_weight_errors_are_submission_errors(tmp_path):
    out = _checkpoint(tmp_path)
    meta = json.loads((out / MODEL_FILE).read_text())
    (out / MODEL_FILE).write_text(json.dumps({**meta, "kwargs": {**meta["kwargs"], "width": 3}}))
    with pytest.raises(SubmissionError, match=r"Building the model .* failed: TypeError.*'kwargs'"):
        load_model(out)
    (out / MODEL_FILE).write_text(json.dumps({**meta, "kwargs": {**meta["kwargs"], "layers": {"x": [5, 8, 3]}}}))
    with pytest.raises(SubmissionError, match=r"(?s)do not fit the model built by .*size mismatch"):
        load_model(out)
    (out / MODEL_FILE).write_text(json.dumps({**meta, "kwargs": [1, 2]}))
    with pytest.raises(SubmissionError, match=r"'kwargs' must be a JSON object"):
        load_model(out)
    (out / MODEL_FILE).write_text(json.dumps({**meta, "card": {"name": ""}}))
    with pytest.raises(SubmissionError, match=r"invalid card"):
        load_model(out)


def test_load_model_records_the_checkpoint(tmp_path):
    import hashlib

    out = _checkpoint(tmp_path)
    model = load_model(out)
    src = model.mmbench_source
    assert src["type"] == "checkpoint" and src["spec"] == str(out) and src["factory"] == "mmbench.harness.submission:MLPSubmission"
    assert src["weights_sha256"] == hashlib.sha256((out / WEIGHTS_FILE).read_bytes()).hexdigest()
    assert load_model("mmbench.testing.oracles:ConstantEncoder").mmbench_source == {
        "spec": "mmbench.testing.oracles:ConstantEncoder", "type": "object"}


CARDLESS = textwrap.dedent("""
    import torch

    class Net(torch.nn.Module):
        # A user's card-less encoder: the card comes from mmbench_model.json.
        def __init__(self, k=2):
            super().__init__()
            self.k = k
            self.scale = torch.nn.Parameter(torch.ones(k))

        def encode(self, batch, *, modality):
            x = torch.as_tensor(batch[modality]).float()
            return x[:, : self.k] * self.scale.to(x.device)
""")


@pytest.fixture
def cardless_checkpoint(tmp_path, monkeypatch):
    (tmp_path / "cardless_user_net.py").write_text(CARDLESS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import cardless_user_net

    net = cardless_user_net.Net(k=2)
    out = save_model(net, tmp_path / "ckpt", factory="cardless_user_net:Net", kwargs={"k": 2},
                     card=ModelCard(name="cardless", revision="3", modalities=("x",), embedding_dim=2))
    yield out
    sys.modules.pop("cardless_user_net", None)


def test_user_factory_needs_trust_and_the_card_survives_to(cardless_checkpoint):
    with pytest.raises(SubmissionError, match="--trust-factory"):
        load_model(cardless_checkpoint)
    model = load_model(cardless_checkpoint, trust_factory=True)
    assert model.card.name == "cardless" and model.mmbench_source["trusted_factory"] is True
    for moved in (model.to("cpu"), model.to(torch.device("cpu")), model.eval(), model.cpu(), model.float()):
        assert moved is model and check_encoder(moved).id == "cardless@3"
    assert isinstance(model, Encoder) and len(list(model.parameters())) == 1
    out = model.encode({"x": torch.arange(6.0).reshape(2, 3)}, modality="x")
    torch.testing.assert_close(out, torch.tensor([[0.0, 1.0], [3.0, 4.0]]))
