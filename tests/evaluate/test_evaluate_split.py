"""evaluate.py and the run's split, in this process: subset=test only on the data the run was split
on (the check training uses: files, rows and sequence ids), and a run directory without its
split.json never scored whole by default."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from virnucpro_trainer.checkpoint import checkpoint_metadata
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.model import VirNucProMLP

from helpers import TINY, evaluate_in_process, train_in_process

pytestmark = [pytest.mark.usefixtures("no_figures"), pytest.mark.slow]

DATA = [a for a in TINY if a.startswith("data")]  # the demo data TINY trains on


def replace_with_other_sequences(path) -> None:
    """The file at `path` replaced by another of the same name and row count: other sequences."""
    old = torch.load(path, weights_only=True)
    n = len(old["ids"])
    other = {
        "ids": [f"NC_OTHER{i // 6:05d}.1_chunk_0F{i % 6 + 1}" for i in range(n)],
        "data": torch.randn_like(old["data"]),
        "labels": old["labels"],
    }
    torch.save(other, path)


def test_subset_test_refuses_test_files_replaced_by_other_sequences(tmp_path, tiny_data):
    run = train_in_process(tmp_path, *TINY, "epochs=1")
    split = json.loads((run / "split.json").read_text())
    tiny_data = tiny_data.resolve()
    moved = tmp_path.resolve() / "moved/data_merge"
    shutil.copytree(tiny_data, moved)
    # the same sequences elsewhere (moved, or embedded again) are the run's data: scored
    metrics = evaluate_in_process(
        tmp_path, tmp_path / "eval_moved", f"ckpt={run}", f"data.root={moved}", "subset=test"
    )
    assert metrics["rows"]["units"] == split["distribution"]["test"]["sequences"]

    name = split["test_files"][0]
    replace_with_other_sequences(tiny_data / name)
    for n, subset in enumerate([["subset=test"], []]):  # asked for, then by default
        with pytest.raises(UserError) as err:
            evaluate_in_process(tmp_path, tmp_path / f"eval_{n}", f"ckpt={run}", *DATA, *subset)
        assert str(err.value) == (
            f"the data under {tiny_data} no longer matches the split in {run / 'split.json'}:\n"
            "  1 file(s) hold other sequence ids than when the split was made (same names and "
            f"row counts, other sequences): {name}\n"
            f"subset=test scores the test side of the run {run} only on the data it was split on: "
            "point data.root at that data, or score every row of this data with subset=all"
        )

    replace_with_other_sequences(moved / name)  # under another root: which data it belongs to
    with pytest.raises(UserError, match=f"belongs to the data at {tiny_data}, not to {moved}"):
        evaluate_in_process(
            tmp_path, tmp_path / "eval_other", f"ckpt={run}", f"data.root={moved}", "subset=test"
        )


def test_a_run_directory_without_its_split_is_not_scored_whole_by_default(tmp_path, tiny_data):
    run = tmp_path / "run"
    run.mkdir()
    meta = checkpoint_metadata(768, 1280, 16, 2, "fastesm650", "Synthyra/FastESM2_650")
    state = VirNucProMLP(2048, 16).state_dict()
    torch.save(
        {"epoch": 1, "model_state_dict": state, "optimizer_state_dict": {}, "best_loss": 0.5,
         "metadata": meta},
        run / "model_fastesm650.pth",
    )  # fmt: skip
    with pytest.raises(UserError) as err:
        evaluate_in_process(tmp_path, tmp_path / "eval", f"ckpt={run}", *DATA)
    assert str(err.value).startswith(
        f"ckpt={run} is a run directory without its split.json, so its test side is unknown"
    )
    assert "subset=all" in str(err.value)
    # asked for, every row is scored
    metrics = evaluate_in_process(
        tmp_path, tmp_path / "eval_all", f"ckpt={run}", *DATA, "subset=all"
    )
    assert metrics["subset"] == "all" and metrics["rows"]["units"] == 8 * 240
