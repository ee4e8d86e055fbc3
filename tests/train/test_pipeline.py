"""End to end in this process: the run function on a composed config and small generated demo
data, checked by the files it writes (train.py as a real process: e2e/test_train_cli.py; a
compiled run: e2e/test_compile.py)."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from virnucpro_trainer.errors import UserError

from helpers import RUN_FILES, TINY, PredictionStepMLP, results, run_dirs, train_in_process

pytestmark = pytest.mark.slow  # whole pipelines in-process: not in the fast loop


@pytest.mark.usefixtures("tiny_data")
def predicted_ids(run_dir):
    with (run_dir / "test_predictions.tsv").open() as f:
        return [line.split("\t")[0] for line in f.readlines()[1:]]


def test_demo_run_writes_the_whole_run_directory(tmp_path, caplog):
    caplog.set_level("INFO")
    run_dir = train_in_process(tmp_path, *TINY, "checkpoint_name=model_fastesm650.pth")
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name

    rows, test = results(run_dir)
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    for column in (
        "train_loss",
        "val_loss",
        "val_accuracy",
        "val_precision",
        "val_recall",
        "val_f1",
        "val_auroc",
        "lr",
    ):
        assert float(rows[0][column]) >= 0
    for key in ("loss", "accuracy", "precision", "recall", "f1", "auroc", "confusion_matrix"):
        assert key in test
    assert sum(map(sum, test["confusion_matrix"])) == test["sequences"]

    assert "epoch   3" in caplog.text and "test at threshold 0.5" in caplog.text

    split = json.loads((run_dir / "split.json").read_text())
    shared = tmp_path / "data/synthetic/test_set/data_merge/file-test0.1-val0.1-seed42"
    assert split == json.loads((shared / "split.json").read_text())
    linked = sorted(p.name for p in (shared / "viral").iterdir())
    assert linked and all((shared / "viral" / n).resolve().is_file() for n in linked)

    ckpt = torch.load(run_dir / "model_fastesm650.pth", weights_only=True)
    assert ckpt["epoch"] == test["best_epoch"]
    assert ckpt["best_loss"] == test["best_val_loss"]
    assert float(rows[ckpt["epoch"] - 1]["val_loss"]) == ckpt["best_loss"]
    meta = ckpt["metadata"]
    assert meta["checkpoint_version"] == "2.0.0" and meta["merged_dim"] == 2048
    assert meta["model_type"] == "fastesm650"
    chosen = test["chosen_threshold"]
    assert ckpt["decision_threshold"] == {
        "threshold": chosen["threshold"],
        "chosen_on": "validation",
        "maximising": "f1",
    }
    assert meta["huggingface_model_id"] == "Synthyra/FastESM2_650"
    PredictionStepMLP().load_state_dict(ckpt["model_state_dict"], strict=True)
    assert ckpt["config"]["data"]["root"] == str(tmp_path / "data/synthetic/data_merge")

    report = (run_dir / "report.md").read_text()
    for picture in ("learning_curves", "roc_pr_curves", "calibration", "confusion_matrix"):
        assert (run_dir / f"{picture}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({picture}.png)" in report
    low, high = test["intervals"]["f1"]
    chosen_low, chosen_high = chosen["intervals"]["f1"]
    assert low <= test["f1"] <= high and chosen_low <= chosen["f1"] <= chosen_high
    assert (
        f"| f1 | {test['f1']:.4f} ({low:.4f}-{high:.4f}) | {chosen['f1']:.4f} "
        f"({chosen_low:.4f}-{chosen_high:.4f}) |" in report
    )
    assert test["ci"]["records"] == len({i.split("_chunk_")[0] for i in predicted_ids(run_dir)})
    assert "## Cutoffs for an expected viral fraction" in report
    fractions = [row["viral_fraction"] for row in test["cutoffs"]["table"]]
    assert (
        fractions
        == [0.01, 0.02, 0.05, 0.1, 0.25, 0.5]
        == [row["viral_fraction"] for row in ckpt["cutoffs"]["table"]]
    )
    assert 0 <= test["ece"] <= 1 and ckpt["temperature"] is None
    assert "train/test leakage: 0 source records" in report

    with (run_dir / "test_predictions.tsv").open() as f:
        predictions = list(csv.DictReader(f, delimiter="\t"))
    assert len(predictions) == test["sequences"]
    assert {p["file"] for p in predictions} == set(split["test_files"])
    assert all("_chunk_" in p["id"] for p in predictions)
    cut = test["chosen_threshold"]["threshold"]
    for p in predictions:
        assert int(p["pred_at_0.5"]) == (float(p["prob_viral"]) >= 0.5)
        assert int(p["pred_at_threshold"]) == (float(p["prob_viral"]) >= cut)
    tp = sum(p["label"] == "1" and p["pred_at_0.5"] == "1" for p in predictions)
    assert tp == test["confusion_matrix"][1][1]


@pytest.mark.usefixtures("tiny_data", "no_figures")
def test_same_seed_same_results_in_separate_directories(tmp_path):
    # Runs started at the same moment each get their own directory: e2e/test_run_directory.py
    # (test_ten_runs_started_together_get_ten_directories) checks that with real processes.
    for _ in range(2):
        train_in_process(tmp_path, *TINY, "seed=7")
    dirs = run_dirs(tmp_path)
    assert len(dirs) == 2
    first, second = (results(d) for d in dirs)
    for r in (first[1], second[1]):
        assert r["seed"] == 7
    assert first == second
    a, b = (torch.load(d / "model_fastesm650.pth", weights_only=True) for d in dirs)
    for key, tensor in a["model_state_dict"].items():
        assert torch.equal(tensor, b["model_state_dict"][key]), key


@pytest.mark.usefixtures("tiny_data")  # made with data.protein_dim 1280: 2048 numbers a row
def test_wrong_width_names_the_file_and_both_widths(tmp_path):
    # a UserError: train.py prints its message alone and exits with 1 (e2e/test_failures.py)
    with pytest.raises(UserError) as err:
        train_in_process(
            tmp_path,
            "device=cpu",
            "data.root=data/synthetic/data_merge",
            "data.protein_dim=2560",
        )
    assert "_merged.pt: rows are 2048 numbers wide, expected 3328" in str(err.value)


@pytest.mark.usefixtures("tiny_data", "no_figures")
def test_results_do_not_depend_on_where_features_live(tmp_path, caplog):
    caplog.set_level("INFO")
    logs = []
    for options in (
        ["data.cache_dir=null"],  # .pt files read into RAM
        [],  # builds the memory-mapped feature store
        ["data.memory_budget_gb=0.001"],  # reuses it, under a budget
        ["data.storage_dtype=float16"],
    ):
        caplog.clear()
        train_in_process(tmp_path, *TINY, *options)
        logs.append(caplog.text)
    ram, built, budget, half = run_dirs(tmp_path)
    assert results(ram) == results(built) == results(budget)
    assert "feature store" not in logs[0]
    assert "feature store built" in logs[1]
    assert "feature store built" not in logs[2] and "the feature store under a budget" in logs[2]
    assert "torch.float16" in logs[3]
    stores = list((tmp_path / "data/synthetic/feature_cache").iterdir())
    assert len([s for s in stores if not s.name.startswith(".")]) == 2  # float32 and float16


@pytest.mark.usefixtures("tiny_data", "no_figures")
def test_tensorboard_logger_writes_every_epoch(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = train_in_process(tmp_path, *TINY, "epochs=2", "logger=tensorboard")
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("val_loss")] == [1, 2]
    rows, _ = results(run_dir)
    assert [e.value for e in events.Scalars("val_f1")] == [
        pytest.approx(float(r["val_f1"])) for r in rows
    ]
