"""init_from's checks, in this process: weights that do not fit are one clear message."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from virnucpro_trainer.checkpoint import checkpoint_metadata
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.model import VirNucProMLP
from virnucpro_trainer.train.init_from import initial_weights


def settings(path, resume=False, freeze="none"):
    model = SimpleNamespace(hidden_dim=16, num_class=2)
    return SimpleNamespace(init_from=str(path), model=model, resume=resume, freeze=freeze)


def saved(tmp_path, state: dict):
    metadata = checkpoint_metadata(24, 8, 16, 2, "fastesm650", "Synthyra/FastESM2_650")
    torch.save({"model_state_dict": state, "metadata": metadata}, tmp_path / "init.pth")
    return tmp_path / "init.pth"


def test_weights_are_copied_and_the_first_layer_frozen(tmp_path):
    source = VirNucProMLP(32, 16)
    model = VirNucProMLP(32, 16)
    lineage = initial_weights(settings(saved(tmp_path, source.state_dict()), freeze="hidden"),
                              model, 32)  # fmt: skip
    assert torch.equal(model.output_layer.weight, source.output_layer.weight)
    assert not model.hidden_layer.weight.requires_grad and model.output_layer.weight.requires_grad
    assert lineage["freeze"] == "hidden" and len(lineage["sha256"]) == 64


def test_a_state_dict_that_does_not_fit_its_metadata_is_named(tmp_path):
    state = {**VirNucProMLP(32, 16).state_dict(), "extra.weight": torch.zeros(1)}
    with pytest.raises(UserError, match="its model_state_dict does not fit the VirNucPro MLP"):
        initial_weights(settings(saved(tmp_path, state)), VirNucProMLP(32, 16), 32)


def test_a_folder_without_a_best_model_is_named_as_init_from(tmp_path):
    # issue 35: an empty folder, and an evaluation's directory, in init_from='s own words
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        UserError, match=f"^init_from={empty} is a directory without its best-model"
    ):
        initial_weights(settings(empty), VirNucProMLP(32, 16), 32)
    evaluation = tmp_path / "eval"
    evaluation.mkdir()
    (evaluation / "metrics.json").write_text("{}")
    with pytest.raises(
        UserError, match="it is an evaluation's directory .metrics.json., not a training run"
    ):
        initial_weights(settings(evaluation), VirNucProMLP(32, 16), 32)
