"""The run directory end to end: a refused run touches nothing, one process at a time, no empty
run directories, unusual path names, unwritable locations, and the project's own --help."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys

import pytest

from virnucpro_trainer.entry import hydra_quote

from helpers import TINY, TRAIN_PY, epochs_saved, run_dirs, run_train, start_train, wait_for

pytestmark = pytest.mark.e2e

LONG = [*TINY, "epochs=12", "patience=50"]


def interrupted(cwd, run_dir: str, *args) -> str:
    """Run LONG into `run_dir` (relative to `cwd`), stop it with SIGINT after two epochs;
    returns its output."""
    proc = start_train(cwd, *LONG, *args, f"hydra.run.dir={hydra_quote(run_dir)}")
    wait_for(lambda: epochs_saved(cwd / run_dir) >= 2, "two epochs")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGINT, out
    return out


def snapshot(folder) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_refused_run_leaves_the_run_it_points_at_untouched_and_resumable(tmp_path):
    interrupted(tmp_path, "runs/v")
    before = snapshot(tmp_path / "runs/v")
    refused = run_train(
        tmp_path, *LONG, "optimizer.lr=0.1", "seed=7", "hydra.run.dir=runs/v", expect_ok=False
    )
    assert refused.returncode == 1
    assert "already holds a training run's results" in refused.stderr
    assert "nothing was written there" in refused.stderr
    assert snapshot(tmp_path / "runs/v") == before  # .hydra/, train.log, metrics.csv, ...
    run_train(tmp_path, "resume=runs/v")
    assert (tmp_path / "runs/v/test_metrics.json").is_file()


def test_a_second_resume_of_a_run_in_progress_is_refused(tmp_path):
    interrupted(tmp_path, "runs/v")
    first = start_train(tmp_path, "resume=runs/v")
    lock = tmp_path / "runs/v/.lock"
    wait_for(lambda: lock.read_text().strip() == str(first.pid), "the first resume's lock")
    first.send_signal(signal.SIGSTOP)  # hold it mid-run, so the second certainly overlaps
    try:
        before = snapshot(tmp_path / "runs/v")
        second = run_train(tmp_path, "resume=runs/v", expect_ok=False)
        assert snapshot(tmp_path / "runs/v") == before
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 1
    assert f"in use by another train.py process (pid {first.pid})" in second.stderr
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out
    epochs = [line.split(",")[0] for line in (tmp_path / "runs/v/metrics.csv").read_text().split()]
    assert epochs[1:] == [str(e) for e in range(1, len(epochs))]  # every epoch once, in order


def test_unusual_characters_in_paths_and_the_printed_resume_command(tmp_path):
    name = 'josé\'s data=1, "x" y'
    data_root, run_dir = f"{name}/data_merge", f"runs/{name}"
    out = interrupted(tmp_path, run_dir, f"data.root={hydra_quote(data_root)}", "seed=5")
    assert (tmp_path / name / "data_merge").is_dir()
    assert (tmp_path / name / "test_set/data_merge").is_dir()
    # the printed command is for a shell: run exactly what it says
    lines = [line for line in out.splitlines() if "continue with: " in line]
    argv = shlex.split(lines[-1].split("continue with: ", 1)[1])
    assert argv[:2] == ["python", "train.py"]
    run_train(tmp_path, *argv[2:])
    assert (tmp_path / run_dir / "test_metrics.json").is_file()


def test_a_run_that_fails_before_training_leaves_no_run_directory(tmp_path):
    proc = run_train(tmp_path, "data.root=missing", expect_ok=False)
    assert proc.returncode == 1 and "data directory not found" in proc.stdout
    assert "this run wrote no results" in proc.stderr
    assert run_dirs(tmp_path) == []


def test_ten_runs_started_together_get_ten_directories(tmp_path):
    # each run stops at config validation, after Hydra has made (and logged into) its directory
    cmd = [sys.executable, str(TRAIN_PY), "optimizer.lr=-1"]
    procs = [
        subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(10)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [1] * 10
    assert all(b"optimizer.lr must be > 0" in out for out, _ in outputs)
    removed = {err.split(b"(removed ")[1].split(b":")[0] for _, err in outputs}
    assert len(removed) == 10  # ten distinct directories, each removed by its own run
    assert run_dirs(tmp_path) == []


def test_unwritable_output_locations_are_named(tmp_path):
    (tmp_path / "a_file").write_text("")
    proc = run_train(tmp_path, *TINY, "hydra.run.dir=a_file/run", expect_ok=False)
    assert proc.returncode == 1
    assert "cannot create the output directory" in proc.stderr and "hydra.run.dir" in proc.stderr
    sweep = run_train(
        tmp_path, "--multirun", *TINY, "seed=1,2", "hydra.sweep.dir=a_file/sweep", expect_ok=False
    )
    assert sweep.returncode == 1 and "hydra.sweep.dir" in sweep.stderr
    assert "Traceback" not in proc.stdout + proc.stderr + sweep.stdout + sweep.stderr


def test_help_shows_the_projects_own_summary(tmp_path):
    proc = run_train(tmp_path, "--help")
    out = proc.stdout
    assert "Train the VirNucPro MLP" in out and "python train.py data=synthetic" in out
    assert "data: merged, synthetic" in out and "optimizer: adamw, sgd" in out
    assert "optimizer:\n  name: sgd\n  lr: 0.0002" in out  # the settings with their defaults
    assert "--hydra-help" in out and "powered by Hydra" not in out
    assert not (tmp_path / "outputs").exists()


def test_a_run_stopped_before_its_first_epoch_ends_leaves_no_directory(tmp_path):
    proc = start_train(tmp_path, *TINY, "epochs=1", "hydra.run.dir=runs/v")
    log = tmp_path / "runs/v/train.log"
    wait_for(lambda: log.exists() and "run directory:" in log.read_text(), "the run to start")
    proc.send_signal(signal.SIGINT)  # while it makes the demo data, or in its first epoch
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGINT
    assert "stopped by SIGINT; no epoch had finished" in out
    assert "this run wrote no results" in out and "Traceback" not in out
    assert not (tmp_path / "runs/v").exists()
