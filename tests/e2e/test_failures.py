"""Failures a user can cause, end to end: one clear message, a non-zero exit, nothing lost."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from helpers import ROOT, TINY, run_train

pytestmark = pytest.mark.e2e


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


def test_verbose_shows_the_traceback(tmp_path):
    quiet = run_train(tmp_path, "device=cpu", expect_ok=False)
    loud = run_train(tmp_path, "device=cpu", "verbose=true", expect_ok=False)
    assert quiet.returncode == loud.returncode == 1
    assert "Traceback" not in quiet.stdout + quiet.stderr
    assert "Traceback" in loud.stdout + loud.stderr
    assert "data directory not found" in loud.stdout


@pytest.mark.parametrize(
    ("script", "override", "message"),
    [
        ("evaluate.py", "calls.fdr=abc", "calls.fdr must be a number, got 'abc'"),
        ("evaluate.py", "viral_fraction=abc", "viral_fraction must be a number, got 'abc'"),
        (
            "evaluate.py",
            "calls=bogus",
            "calls must be one of ('conservative', 'default', 'relaxed'), got 'bogus'",
        ),
        ("train.py", "epochs=abc", "epochs must be an integer, got 'abc'"),
        ("train.py", "optimizer=bogus", "optimizer must be one of ('adamw', 'sgd'), got 'bogus'"),
    ],
)
def test_a_value_of_the_wrong_type_or_option_gets_the_projects_one_line(
    tmp_path, script, override, message
):
    # issue 35: not OmegaConf's merge error (full_key, reference_type) or Hydra's search path
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    args = ["ckpt=model.pth", override] if script == "evaluate.py" else [override]
    proc = subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr == f"error: invalid configuration:\n  {message}\n"
    assert not (tmp_path / "outputs").exists()
