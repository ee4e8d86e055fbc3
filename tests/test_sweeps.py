"""Sweeps through Hydra's real launchers and the Optuna sweeper, and the presets, on tiny data."""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from virnucpro_trainer.config import register_configs, validate

from conftest import ROOT, TINY, run_train

register_configs()

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
    sweep = sweep_dir(tmp_path)
    rows = summary(sweep)
    assert len(rows) == 3
    statuses = sorted(r["status"] for r in rows)
    assert statuses == ["failed", "ok", "ok"]  # with the sampler's seed 42
    failed = next(r for r in rows if r["status"] == "failed")
    assert "optimizer.lr=1000000000000.0" in failed["overrides"] and "diverged" in failed["error"]
    assert "did not finish" in proc.stdout + proc.stderr

    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(results["best_params"]) == {
        "optimizer.lr",
        "batch_size",
        "model.hidden_dim",
        "model.dropout",
        "patience",
    }
    finished = [r for r in rows if r["status"] == "ok"]
    assert {r["optimized_metric"] for r in finished} == {"val_loss"}
    best = min(finished, key=lambda r: float(r["optimized_value"]))
    assert results["best_value"] == pytest.approx(float(best["optimized_value"]))
    test = json.loads((sweep / best["job"] / "test_metrics.json").read_text())
    assert test["optimized_metric"]["value"] == test["best_val_loss"]  # validation, not test
    assert (tmp_path / "optuna.db").stat().st_size > 0


# presets


def compose_with(*overrides: str, hydra_config: bool = False):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=hydra_config)


def test_fastesm650_preset_is_the_defaults():
    assert compose_with("experiment=fastesm650") == compose_with()


def test_esm2_3b_preset():
    cfg = compose_with("experiment=esm2_3b")
    assert (cfg.data.dna_dim, cfg.data.protein_dim) == (768, 2560)
    assert cfg.data.protein_model == "esm2_3b" and cfg.patience == 5
    assert cfg.checkpoint_name == "model_esm2_3b.pth"
    assert cfg.optimizer.lr == 2e-4 and cfg.batch_size == 32
    validate(cfg)


def test_gpu_large_batch_preset_scales_the_learning_rate():
    cfg = compose_with("experiment=gpu_large_batch")
    assert (cfg.device, cfg.batch_size, cfg.features_on_gpu) == ("cuda", 1024, True)
    assert cfg.optimizer.lr == pytest.approx(2e-4 * 1024 / 32)
    validate(cfg)


def test_presets_show_in_cfg_job(tmp_path):
    proc = run_train(tmp_path, "experiment=esm2_3b", "debug=fast", "--cfg", "job")
    job = yaml.safe_load(proc.stdout)
    assert job["data"]["protein_dim"] == 2560 and job["patience"] == 5
    assert (job["epochs"], job["limit_batches"], job["device"]) == (1, 5, "cpu")


def test_optuna_preset_searches_the_five_settings_in_the_metric_direction():
    cfg = compose_with("hparams_search=optuna", hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert "OptunaSweeper" in sweeper._target_
    assert set(sweeper.params) == {
        "optimizer.lr",
        "batch_size",
        "model.hidden_dim",
        "model.dropout",
        "patience",
    }
    assert sweeper.params["optimizer.lr"].startswith("tag(log")
    assert (cfg.optimized_metric, sweeper.direction) == ("val_loss", "minimize")
    cfg = compose_with("hparams_search=optuna", "optimized_metric=val_mcc", hydra_config=True)
    assert cfg.hydra.sweeper.direction == "maximize"
    with pytest.raises(Exception, match="optimized_metric must be a validation metric"):
        validate(compose_with("optimized_metric=test_f1"))


def test_slurm_gpu_launcher_settings():
    cfg = compose_with("hydra/launcher=slurm_gpu", hydra_config=True)
    launcher = cfg.hydra.launcher
    assert "SlurmLauncher" in launcher._target_
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.timeout_min) == (1, 1, 720)
    assert launcher.partition is None and launcher.account is None
    assert list(launcher.setup) == ["export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK"]
    assert launcher.submitit_folder == f"{cfg.hydra.sweep.dir}/.submitit/%j"  # in the sweep


def test_debug_fast_checks_a_data_set_in_one_short_epoch(tmp_path):
    run_train(tmp_path, *(a for a in TINY if not a.startswith("epochs=")), "debug=fast")
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["debug"]
    (run_dir,) = (tmp_path / "outputs/debug").glob("*/*")
    with (run_dir / "metrics.csv").open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1"]
    log = (run_dir / "train.log").read_text()
    assert "limit_batches=5: a quick check" in log
    assert (run_dir / "test_metrics.json").is_file() and (run_dir / "report.md").is_file()
