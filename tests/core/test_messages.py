"""Messages evaluate.py shows are written for it, not for training (issue 23, item 12)."""

from __future__ import annotations

import logging

import pytest
import torch

from virnucpro_trainer.checkpoint import read_checkpoint
from virnucpro_trainer.data.files import SourceFile, find_files
from virnucpro_trainer.data.merged import read_merged
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.runtime import select_device
from virnucpro_trainer.torch_files import load_weights_only

from helpers import write_merged


def test_a_training_state_given_as_ckpt_points_at_its_run_directory(tmp_path):
    state = tmp_path / "run" / "checkpoints" / "last.pt"
    state.parent.mkdir(parents=True)
    keys = ("epoch", "model_state_dict", "optimizer_state_dict", "scheduler_state_dict")
    torch.save({**dict.fromkeys(keys, {}), "rng": {}, "history": [], "metadata": {}}, state)
    with pytest.raises(UserError, match=r"training state \(for resume=\).*ckpt=.*run"):
        read_checkpoint(state)


def test_an_empty_file_says_what_is_wrong_after_the_colon(tmp_path):
    empty = tmp_path / "model.pth"
    empty.write_bytes(b"")
    with pytest.raises(UserError) as err:
        load_weights_only(empty, "")
    message = str(err.value)
    assert "truncated or corrupt?" in message and not message.rstrip().endswith(":")


def test_a_missing_data_root_names_the_script_in_use(tmp_path):
    with pytest.raises(UserError, match="python evaluate.py data.root=") as err:
        find_files(tmp_path / "nowhere", "*_merged.pt", "viral", script="evaluate.py")
    assert "train.py" not in str(err.value)


def test_the_cpu_fallback_does_not_speak_of_training(caplog):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is there: no fallback")
    with caplog.at_level(logging.WARNING):
        select_device("auto")
    assert "computing on the CPU" in caplog.text and "training" not in caplog.text


def test_a_width_mismatch_says_what_each_entry_point_expects(tmp_path):
    path = tmp_path / "viral_merged" / "output_0_merged.pt"
    write_merged(path, 4, 8, 1)
    with pytest.raises(UserError) as err:
        read_merged(SourceFile(path, "viral_merged/output_0_merged.pt", 1), 16)
    message = str(err.value)
    assert "data.protein_dim=2560" in message and "evaluate.py: the checkpoint's width" in message
