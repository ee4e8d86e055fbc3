"""The checkpoint contract: loads with weights_only, its metadata, and weights that load strictly
into the model and into the prediction step's own MLP."""

from __future__ import annotations

import copy
from datetime import datetime

import pytest
import torch
from torch import nn

from virnucpro_trainer.checkpoint import checkpoint_metadata, read_checkpoint, save_checkpoint
from virnucpro_trainer.model import VirNucProMLP

from helpers import PredictionStepMLP, states_equal

METADATA_KEYS = {
    "checkpoint_version",
    "model_type",
    "huggingface_model_id",
    "dna_dim",
    "protein_dim",
    "merged_dim",
    "input_dim",
    "hidden_dim",
    "num_class",
    "training_date",
    "pytorch_version",
}


@pytest.fixture
def saved_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = VirNucProMLP(2048)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(8, 2048)
    nn.functional.cross_entropy(model(x), torch.tensor([0, 1] * 4)).backward()
    optimizer.step()
    model.eval()
    path = tmp_path / "model_fastesm650.pth"
    save_checkpoint(
        path,
        epoch=3,
        model_state=model.state_dict(),
        optimizer_state=optimizer.state_dict(),
        best_loss=0.25,
        metadata=checkpoint_metadata(768, 1280, 512, 2, "fastesm650", "Synthyra/FastESM2_650"),
        config={"optimizer": {"lr": 1e-3}},
        split_hash="0123456789abcdef",
    )
    return path, model, x


def test_checkpoint_loads_with_weights_only(saved_checkpoint):
    path, model, _ = saved_checkpoint
    ckpt = torch.load(path, weights_only=True)
    assert {"epoch", "model_state_dict", "optimizer_state_dict", "best_loss", "metadata"} <= set(
        ckpt
    )
    assert ckpt["epoch"] == 3
    assert ckpt["best_loss"] == 0.25
    assert ckpt["config"] == {"optimizer": {"lr": 1e-3}}
    assert ckpt["split_hash"] == "0123456789abcdef"
    assert ckpt["optimizer_state_dict"]["state"][0]["step"] == 1
    assert states_equal(ckpt["model_state_dict"], model.state_dict())
    assert states_equal(read_checkpoint(path)["model_state_dict"], ckpt["model_state_dict"])
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_checkpoint_metadata(saved_checkpoint):
    meta = torch.load(saved_checkpoint[0], weights_only=True)["metadata"]
    assert set(meta) >= METADATA_KEYS
    assert meta["checkpoint_version"] == "2.0.0"
    assert int(meta["checkpoint_version"].split(".")[0]) >= 2
    assert meta["model_type"] == "fastesm650"
    assert meta["huggingface_model_id"] == "Synthyra/FastESM2_650"
    assert (meta["dna_dim"], meta["protein_dim"]) == (768, 1280)
    assert meta["merged_dim"] == 2048
    assert meta["input_dim"] == 2048
    assert meta["hidden_dim"] == 512
    assert meta["num_class"] == 2
    assert meta["pytorch_version"] == torch.__version__
    assert type(meta["pytorch_version"]) is str
    assert datetime.fromisoformat(meta["training_date"]).tzinfo is not None


def test_checkpoint_state_loads_strictly_into_model_and_reference(saved_checkpoint):
    path, model, x = saved_checkpoint
    state = torch.load(path, weights_only=True)["model_state_dict"]
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in state)
    assert all(v.device.type == "cpu" for v in state.values())

    fresh = VirNucProMLP(2048)
    fresh.load_state_dict(state, strict=True)
    reference = PredictionStepMLP()
    reference.load_state_dict(copy.deepcopy(state), strict=True)

    fresh.eval()
    reference.eval()
    with torch.no_grad():
        expected = model(x)
        assert torch.equal(fresh(x), expected)
        assert torch.equal(reference(x), expected)


def test_every_tensor_of_the_checkpoint_is_saved_detached_on_the_cpu(tmp_path):
    # after a CUDA run the optimizer state holds CUDA tensors; the saved file must not
    weight = torch.ones(2, requires_grad=True)
    optimizer_state = {"state": {0: {"momentum_buffer": weight * 2}}, "param_groups": [{"lr": 1}]}
    path = tmp_path / "model.pth"
    save_checkpoint(
        path,
        epoch=1,
        model_state={"w": weight},
        optimizer_state=optimizer_state,
        best_loss=0.5,
        metadata={},
        extra=(weight * 3,),
    )
    saved = torch.load(path, weights_only=True)
    tensors = [
        saved["model_state_dict"]["w"],
        saved["optimizer_state_dict"]["state"][0]["momentum_buffer"],
        saved["extra"][0],
    ]
    assert all(t.device.type == "cpu" and not t.requires_grad for t in tensors)
    assert saved["optimizer_state_dict"]["param_groups"] == [{"lr": 1}]
