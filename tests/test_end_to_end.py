"""End-to-end: `python train.py ...` as a real subprocess on small generated demo data."""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
import time

import pytest
import torch

from conftest import TINY, TRAIN_PY, run_dirs, run_train
from helpers import PredictionStepMLP

RUN_FILES = (
    "train.log",
    "metrics.csv",
    "split.json",
    "test_metrics.json",
    "model_fastesm650.pth",
    ".hydra/config.yaml",
    ".hydra/overrides.yaml",
    ".hydra/hydra.yaml",
    "checkpoints/last.pt",
    "test_predictions.tsv",
)


def results(run_dir):
    """metrics.csv without the timing columns, and test_metrics.json: what a seed decides."""
    with open(run_dir / "metrics.csv") as f:
        rows = [
            {k: v for k, v in r.items() if not k.endswith("seconds")} for r in csv.DictReader(f)
        ]
    return rows, json.loads((run_dir / "test_metrics.json").read_text())


def test_demo_run_writes_the_whole_run_directory(tmp_path):
    run_train(tmp_path, *TINY, "checkpoint_name=model_fastesm650.pth")
    (run_dir,) = run_dirs(tmp_path)
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

    log = (run_dir / "train.log").read_text()
    assert "epoch   3" in log and "test at threshold 0.5" in log

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
    assert meta["huggingface_model_id"] == "Synthyra/FastESM2_650"
    PredictionStepMLP().load_state_dict(ckpt["model_state_dict"], strict=True)
    assert ckpt["config"]["data"]["root"] == str(tmp_path / "data/synthetic/data_merge")

    report = (run_dir / "report.md").read_text()
    for picture in ("learning_curves", "roc_pr_curves", "calibration", "confusion_matrix"):
        assert (run_dir / f"{picture}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({picture}.png)" in report
    assert f"| f1 | {test['f1']:.4f} | {test['chosen_threshold']['f1']:.4f} |" in report
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


def test_same_seed_same_results_in_separate_directories(tmp_path):
    run_train(tmp_path, *TINY, "epochs=1")  # generate the data and split once
    cmd = [sys.executable, str(TRAIN_PY), *TINY, "seed=7"]
    procs = [
        subprocess.Popen(
            cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    for p in procs:
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0, out
    dirs = run_dirs(tmp_path)
    assert len(dirs) == 3  # started together, yet each run has its own directory
    first, second = (results(d) for d in dirs[1:])
    for r in (first[1], second[1]):
        assert r["seed"] == 7
    assert first == second
    a, b = (torch.load(d / "model_fastesm650.pth", weights_only=True) for d in dirs[1:])
    for key, tensor in a["model_state_dict"].items():
        assert torch.equal(tensor, b["model_state_dict"][key]), key


def test_multirun_gives_one_directory_per_seed_with_different_results(tmp_path):
    run_train(tmp_path, "--multirun", *TINY, "seed=1,2")
    (sweep,) = (tmp_path / "outputs/multirun").glob("*/*")
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [j.name for j in jobs] == ["0", "1"]
    for job in jobs:
        for name in RUN_FILES:
            assert (job / name).is_file(), (job, name)
    one, two = (results(j) for j in jobs)
    assert (one[1]["seed"], two[1]["seed"]) == (1, 2)
    assert one[0] != two[0]
    assert one[1]["split_hash"] == two[1]["split_hash"]  # judged on the same test files

    with (sweep / "summary.csv").open() as f:
        summary = list(csv.DictReader(f))
    assert [(r["job"], r["status"], r["overrides"]) for r in summary] == [
        ("0", "ok", " ".join([*TINY, "seed=1"])),
        ("1", "ok", " ".join([*TINY, "seed=2"])),
    ]
    assert [float(r["f1"]) for r in summary] == [one[1]["f1"], two[1]["f1"]]
    f1s = [one[1]["f1"], two[1]["f1"]]
    md = (sweep / "summary.md").read_text()
    mean, std = statistics.fmean(f1s), statistics.stdev(f1s)
    assert f"| f1 | 2 | {mean:.4f} | {std:.4f} | {min(f1s):.4f} | {max(f1s):.4f} |" in md


def test_overrides_reach_the_run(tmp_path):
    proc = run_train(tmp_path, *TINY, "optimizer.lr=1e-4", "patience=10", "--cfg", "job")
    assert "patience: 10" in proc.stdout and "lr: 0.0001" in proc.stdout
    run_train(tmp_path, *TINY, "epochs=1", "optimizer=adamw", "hydra.job.chdir=true")
    (run_dir,) = run_dirs(tmp_path)
    cfg = torch.load(run_dir / "model_fastesm650.pth", weights_only=True)["config"]
    assert cfg["optimizer"]["name"] == "adamw"
    assert (run_dir / "../../../data/synthetic/data_merge").resolve().is_dir()


def test_missing_data_points_at_the_fix(tmp_path):
    proc = run_train(tmp_path, "device=cpu", expect_ok=False)
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert "data.root=" in out and "data=synthetic" in out
    assert "Traceback" not in out


def test_bad_values_stop_before_any_work(tmp_path):
    start = time.perf_counter()
    proc = run_train(tmp_path, *TINY, "optimizer.lr=-1", "split.test_fraction=1.5", expect_ok=False)
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert "optimizer.lr must be > 0, got -1.0" in out
    assert "split.test_fraction must be in (0, 1), got 1.5" in out
    assert "Traceback" not in out
    assert not (tmp_path / "data").exists()  # nothing generated
    assert time.perf_counter() - start < 60

    proc = run_train(tmp_path, *TINY, "optimizer.lrr=1", expect_ok=False)
    assert proc.returncode != 0 and "optimizer.lrr" in proc.stdout + proc.stderr


def test_wrong_width_names_the_file_and_both_widths(tmp_path):
    run_train(tmp_path, *TINY, "epochs=1")
    proc = run_train(
        tmp_path,
        "device=cpu",
        "data.root=data/synthetic/data_merge",
        "data.protein_dim=2560",
        expect_ok=False,
    )
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert "_merged.pt: rows are 2048 numbers wide, expected 3328" in out
    assert "Traceback" not in out


def test_results_do_not_depend_on_where_features_live(tmp_path):
    run_train(tmp_path, *TINY, "data.cache_dir=null")  # .pt files read into RAM
    run_train(tmp_path, *TINY)  # builds the memory-mapped feature store
    run_train(tmp_path, *TINY, "data.memory_budget_gb=0.001")  # reuses it, under a budget
    run_train(tmp_path, *TINY, "data.storage_dtype=float16")
    ram, built, budget, half = run_dirs(tmp_path)
    assert results(ram) == results(built) == results(budget)
    logs = [(d / "train.log").read_text() for d in (ram, built, budget, half)]
    assert "feature store" not in logs[0]
    assert "feature store built" in logs[1]
    assert "feature store built" not in logs[2] and "memory map under a budget" in logs[2]
    assert "torch.float16" in logs[3]
    stores = list((tmp_path / "data/synthetic/feature_cache").iterdir())
    assert len([s for s in stores if not s.name.startswith(".")]) == 2  # float32 and float16


def test_compiled_bf16_run_saves_plain_weights(tmp_path):
    run_train(tmp_path, *TINY, "epochs=1", "compile=true", "bf16=true")
    (run_dir,) = run_dirs(tmp_path)
    ckpt = torch.load(run_dir / "model_fastesm650.pth", weights_only=True)
    assert not any(k.startswith(("_orig_mod.", "module.")) for k in ckpt["model_state_dict"])
    PredictionStepMLP().load_state_dict(ckpt["model_state_dict"], strict=True)


def test_gpu_check_benchmark_runs_on_cpu_at_tiny_size():
    proc = subprocess.run(
        [
            sys.executable,
            str(TRAIN_PY.parent / "benchmarks/epoch_speed.py"),
            "--rows",
            "300",
            "--device",
            "cpu",
            "--repeats",
            "1",
            "--warmup-rows",
            "64",
            "--only",
            "defaults",
            "--only",
            "large",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "| defaults (batch 32) |" in proc.stdout and "| large batch 4096 |" in proc.stdout
    assert "compile" not in proc.stdout


def test_tensorboard_logger_writes_every_epoch(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_train(tmp_path, *TINY, "epochs=2", "logger=tensorboard")
    (run_dir,) = run_dirs(tmp_path)
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("val_loss")] == [1, 2]
    rows, _ = results(run_dir)
    assert [e.value for e in events.Scalars("val_f1")] == [
        pytest.approx(float(r["val_f1"])) for r in rows
    ]
