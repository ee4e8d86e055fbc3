"""Sweeps through Hydra's real launchers and the Optuna sweeper, on tiny data (the presets that
configure them: config/test_presets.py)."""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from helpers import TINY, run_train

pytestmark = pytest.mark.e2e

# Tiny data, two epochs: each job is a few seconds of training.
SWEEP = [*TINY, "epochs=2"]


def sweep_dir(cwd: Path) -> Path:
    (sweep,) = (cwd / "outputs/multirun").glob("*/*")
    return sweep


def summary(sweep: Path) -> list[dict]:
    with (sweep / "summary.csv").open() as f:
        return list(csv.DictReader(f))


def log_span(job: Path) -> tuple[datetime, datetime]:
    """The first and last timestamps of a job's train.log."""
    stamps = re.findall(
        r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]", job.joinpath("train.log").read_text(), re.M
    )
    times = [datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f") for s in stamps]
    return min(times), max(times)


def test_joblib_runs_jobs_at_once_in_processes_sharing_data_and_cache(tmp_path):
    # fresh data: both jobs generate it, build the feature store and make the split at once
    run_train(
        tmp_path,
        "--multirun",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *SWEEP,
        "seed=1,2",
    )
    sweep = sweep_dir(tmp_path)
    assert [(r["job"], r["status"]) for r in summary(sweep)] == [("0", "ok"), ("1", "ok")]
    (a_start, a_end), (b_start, b_end) = log_span(sweep / "0"), log_span(sweep / "1")
    assert a_start < b_end and b_start < a_end  # the jobs ran at the same time
    logs = [(sweep / job / "train.log").read_text() for job in ("0", "1")]
    assert sum("feature store built" in log for log in logs) == 1  # one builds, one waits
    split_hashes = {
        json.loads((sweep / j / "test_metrics.json").read_text())["split_hash"] for j in "01"
    }
    assert len(split_hashes) == 1
    stores = [
        p
        for p in (tmp_path / "data/synthetic/feature_cache").iterdir()
        if not p.name.startswith(".")
    ]
    assert len(stores) == 1


def test_submitit_local_runs_the_cluster_path_with_logs_in_the_sweep(tmp_path):
    run_train(
        tmp_path, "--multirun", "hydra/launcher=submitit_local", "cpu_threads=1", *SWEEP, "seed=1,2"
    )
    sweep = sweep_dir(tmp_path)
    assert [(r["job"], r["status"]) for r in summary(sweep)] == [("0", "ok"), ("1", "ok")]
    job_logs = list((sweep / ".submitit").glob("*/*_log.out"))
    assert len(job_logs) == 2
    assert all("(1 CPU threads)" in (sweep / j / "train.log").read_text() for j in "01")
    assert all(
        "val_loss at the best epoch"
        in p.read_text() + p.with_name(p.name.replace(".out", ".err")).read_text()
        for p in job_logs
    )


def test_optuna_search_marks_failed_trials_and_reports_the_best(tmp_path):
    # the learning rate 1e12 diverges: that trial fails, and the search goes on
    proc = run_train(
        tmp_path,
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.storage=sqlite:///optuna.db",
        "optimizer.lr=choice(1e12, 1e-3)",
        *SWEEP,
    )
    sweep = tmp_path / "outputs/search/virnucpro"
    rows = summary(sweep)
    assert [r["trial"] for r in rows] == ["0", "1", "2"]  # a failed trial counts
    states = sorted(r["state"] for r in rows)
    assert states == ["complete", "complete", "fail"]  # with the sampler's seed 42
    failed = next(r for r in rows if r["state"] == "fail")
    assert failed["params.optimizer.lr"] == "1000000000000.0" and "diverged" in failed["error"]
    assert f"trial {failed['trial']} failed" in proc.stdout + proc.stderr

    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(results["best_params"]) == {
        "optimizer.lr",
        "batch_size",
        "model.hidden_dim",
        "model.dropout",
        "patience",
    }
    finished = [r for r in rows if r["state"] == "complete"]
    assert {r["optimized_metric"] for r in finished} == {"val_loss"}
    best = min(finished, key=lambda r: float(r["value"]))
    assert results["best_value"] == pytest.approx(float(best["optimized_value"]))
    test = json.loads((sweep / best["trial"] / "test_metrics.json").read_text())
    assert test["optimized_metric"]["value"] == test["best_val_loss"]  # validation, not test
    assert (tmp_path / "optuna.db").stat().st_size > 0
    assert "optimization_history.png" in {p.name for p in sweep.iterdir()}
    # three trials are too few for importances: summary.md says so, and draws none
    assert "at least 10 needed" in (sweep / "summary.md").read_text()
    assert "- trial " + failed["trial"] + ": UserError:" in (sweep / "summary.md").read_text()


def test_an_int_interval_searches_whole_hidden_widths(tmp_path):
    run_train(
        tmp_path,
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "hydra/sweeper/pruner=none",
        "model.hidden_dim=int(interval(256, 1024))",
        *SWEEP,
    )
    sweep = tmp_path / "outputs/search/virnucpro"
    widths = [r["params.model.hidden_dim"] for r in summary(sweep)]
    assert len(widths) == 2 and all(w.isdigit() and 256 <= int(w) <= 1024 for w in widths)
    for row in summary(sweep):
        assert row["state"] == "complete"
        config = yaml.safe_load((sweep / row["trial"] / ".hydra/config.yaml").read_text())
        assert config["model"]["hidden_dim"] == int(row["params.model.hidden_dim"])


@pytest.mark.parametrize(
    "refused, why",
    [
        ("hydra.sweeper.n_trials=0", "hydra.sweeper.n_trials must be >= 1, got 0"),
        ("hydra.sweeper.n_trials=-1", "hydra.sweeper.n_trials must be >= 1, got -1"),
        ("hydra.sweeper.storage=redis://nowhere/0", "hydra.sweeper.storage must be a journal"),
        ("hydra.sweeper.storage=sqlite:////nonexistent/dir/o.db", "cannot open the study's"),
    ],
)
def test_a_refused_search_leaves_no_sweep_directory(tmp_path, refused, why):
    proc = run_train(tmp_path, "hparams_search=optuna", refused, *SWEEP, expect_ok=False)
    assert proc.returncode == 1 and why in proc.stderr, proc.stderr
    assert not (tmp_path / "outputs/search/virnucpro").exists()


def dominates(a: list[float], b: list[float]) -> bool:
    """Whether values `a` beat `b` (AUROC maximised, parameters minimised): no worse on both,
    better on one."""
    (auroc_a, params_a), (auroc_b, params_b) = a, b
    return auroc_a >= auroc_b and params_a <= params_b and (a != b)


def test_a_pareto_search_lists_and_draws_the_front_of_auroc_and_parameters(tmp_path):
    proc = run_train(
        tmp_path,
        "hparams_search=optuna_pareto",
        "hydra.sweeper.n_trials=3",
        "model.hidden_dim=choice(8, 16, 32)",
        *SWEEP,
    )
    sweep = tmp_path / "outputs/search/virnucpro_pareto"
    rows = summary(sweep)
    assert [r["state"] for r in rows] == ["complete"] * 3  # none pruned: Optuna cannot
    values = {}
    for row in rows:
        job = sweep / row["trial"]
        assert not (job / "pruned.json").exists() and row["epochs"] == "2"
        config = yaml.safe_load((job / ".hydra/config.yaml").read_text())
        width = config["data"]["dna_dim"] + config["data"]["protein_dim"]
        hidden = config["model"]["hidden_dim"]
        test = json.loads((job / "test_metrics.json").read_text())
        objectives = {o["name"]: o["value"] for o in test["optimized_metrics"]}
        # the trainable parameters: hidden layer, batch norm, output layer
        assert objectives["parameters"] == (width + 1) * hidden + 2 * hidden + (hidden + 1) * 2
        with (job / "metrics.csv").open() as f:  # the AUROC: validation, at the best epoch
            epochs = {r["epoch"]: r for r in csv.DictReader(f)}
        best = epochs[str(test["best_epoch"])]
        assert objectives["val_auroc"] == pytest.approx(float(best["val_auroc"]))
        values[int(row["trial"])] = [objectives["val_auroc"], objectives["parameters"]]

    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["name"] == "optuna" and "best_value" not in results
    front = results["best_trials"]
    assert front and front == sorted(front)
    assert [s["values"] for s in results["solutions"]] == [values[n] for n in front]
    for number, solution in zip(front, results["solutions"], strict=True):
        assert set(solution["params"]) == {
            "optimizer.lr",
            "batch_size",
            "model.hidden_dim",
            "model.dropout",
            "patience",
        }
        config = yaml.safe_load((sweep / str(number) / ".hydra/config.yaml").read_text())
        assert solution["params"]["model.hidden_dim"] == config["model"]["hidden_dim"]
    # the front: no trial beats a trial on it; every trial off it is beaten by one on it
    for number, v in values.items():
        beaten = any(dominates(values[n], v) for n in front)
        assert beaten == (number not in front), (number, values, front)

    md = (sweep / "summary.md").read_text()
    title = f"## Pareto front (val_auroc maximize, parameters minimize): {len(front)} trial(s)"
    assert title in md
    for number in front:
        assert f"- trial {number}: values {values[number][0]:.4f}, {values[number][1]:.0f};" in md
    assert "not estimated for a multi-objective search" in md
    assert (sweep / "pareto_front.png").read_bytes()[:4] == b"\x89PNG"
    assert "maximize, minimize" in proc.stdout + proc.stderr
