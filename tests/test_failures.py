"""Failures a user can cause, end to end: one clear message, a non-zero exit, nothing lost."""

from __future__ import annotations

import subprocess
import sys

from conftest import TINY, TRAIN_PY, run_dirs, run_train


def test_a_failing_multirun_job_does_not_stop_the_others(tmp_path):
    # job 1 asks for a width the demo data was not made with: a user error in that job only
    proc = run_train(
        tmp_path, "--multirun", *TINY, "epochs=1", "data.protein_dim=1280,2560", expect_ok=False
    )
    assert proc.returncode == 1  # the sweep ran to its end, then reports the failure
    assert "1 job(s) of the sweep did not finish: 1" in proc.stdout
    (sweep,) = (tmp_path / "outputs/multirun").glob("*/*")
    ok, failed = sweep / "0", sweep / "1"
    assert (ok / "test_metrics.json").is_file() and not (ok / "error.txt").exists()
    assert not (failed / "test_metrics.json").exists()
    assert "made with other settings" in (failed / "error.txt").read_text()
    assert "made with other settings" in (failed / "train.log").read_text()
    summary = (sweep / "summary.csv").read_text().splitlines()
    assert summary[1].startswith("0,ok,") and summary[2].startswith("1,failed,")
    assert "made with other settings" in summary[2]
    assert "Not finished: jobs 1" in (sweep / "summary.md").read_text()


def test_a_new_run_never_writes_into_another_runs_directory(tmp_path):
    run_train(tmp_path, *TINY, "epochs=1", "hydra.run.dir=fixed")
    before = (tmp_path / "fixed/metrics.csv").read_bytes()
    proc = run_train(tmp_path, *TINY, "epochs=1", "hydra.run.dir=fixed", expect_ok=False)
    assert proc.returncode == 1
    assert "already holds another run's results" in proc.stdout
    assert (tmp_path / "fixed/metrics.csv").read_bytes() == before


def test_verbose_shows_the_traceback(tmp_path):
    quiet = run_train(tmp_path, "device=cpu", expect_ok=False)
    loud = run_train(tmp_path, "device=cpu", "verbose=true", expect_ok=False)
    assert quiet.returncode == loud.returncode == 1
    assert "Traceback" not in quiet.stdout + quiet.stderr
    assert "Traceback" in loud.stdout + loud.stderr
    assert "data directory not found" in loud.stdout


def test_ten_runs_started_together_get_ten_directories(tmp_path):
    # each run stops at config validation, after Hydra has made its directory
    cmd = [sys.executable, str(TRAIN_PY), "optimizer.lr=-1"]
    procs = [
        subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(10)
    ]
    assert [p.wait(timeout=300) for p in procs] == [1] * 10
    dirs = run_dirs(tmp_path)
    assert len(dirs) == 10
    assert all("optimizer.lr must be > 0" in (d / "train.log").read_text() for d in dirs)
