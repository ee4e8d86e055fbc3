"""resume= continues a run only on the data it was split on: the run's own split.json, checked
against the data found (files, rows and sequence ids), never a new split of other data. In this
process (resume= as a real process, bit for bit: e2e/test_resume.py)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from virnucpro_trainer.errors import UserError
from virnucpro_trainer.train.pipeline import run

from helpers import TINY, compose_train, train_in_process, working_directory

pytestmark = [pytest.mark.usefixtures("no_figures"), pytest.mark.slow]


def interrupted_run(cwd):
    """A run as an interruption after its last epoch leaves it: last.pt, no final results."""
    run_dir = train_in_process(cwd, *TINY, "epochs=1")
    for name in ("test_metrics.json", "model_fastesm650.pth", "test_predictions.tsv"):
        (run_dir / name).unlink()
    return run_dir


def resume(cwd, run_dir, *overrides):
    with working_directory(cwd):
        run(compose_train(*TINY, "epochs=1", *overrides, f"resume={run_dir}"), run_dir)


def test_resume_refuses_other_data_under_the_same_file_names(tmp_path, tiny_data):
    run_dir = interrupted_run(tmp_path)
    split = json.loads((run_dir / "split.json").read_text())
    other = tmp_path / "other/data_merge"
    shutil.copytree(tiny_data, other)
    name = split["train_files"][0]
    old = torch.load(other / name, weights_only=True)
    ids = [f"NC_OTHER{i // 6:05d}.1_chunk_0F{i % 6 + 1}" for i in range(len(old["ids"]))]
    torch.save({**old, "ids": ids, "data": torch.randn_like(old["data"])}, other / name)

    with pytest.raises(UserError) as err:
        resume(tmp_path, run_dir, f"data.root={other}")
    assert str(err.value).startswith(
        f"the split in {run_dir / 'split.json'} belongs to the data at {split['data_root']}, "
        f"not to {other.resolve()}. resume= continues a run only on the data it was split on: "
        "point data.root at that data"
    )
    assert not (tmp_path / "other/test_set").exists()  # no new split made for the other data
    assert not (run_dir / "test_metrics.json").exists()

    # the same sequences under another root (the data moved) continue the run
    shutil.rmtree(other)
    shutil.copytree(tiny_data, other)
    resume(tmp_path, run_dir, f"data.root={other}")
    assert json.loads((run_dir / "test_metrics.json").read_text())["split_hash"] == split["hash"]
    assert not (tmp_path / "other/test_set").exists()
