"""The benchmark scripts whose measurements start processes, run as a user runs them at a tiny
size: gpu_check.sh (on the CPU), demo_run.py and tracking_overhead.py (tiny demo runs), the
train.py and evaluate.py runs of memory_budget.py, sample_fraction.py and handed_on.py, and one
child process of the scripts that measure in fresh children (tests/benchmarks/ runs those
children in its own process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import _common
from helpers import ROOT, TINY

pytestmark = pytest.mark.e2e


def run_script(*cmd: str, env: dict | None = None) -> str:
    """Run a benchmark (`benchmarks/...` relative to the repository), which must succeed; what
    it printed on stdout."""
    if cmd[0].endswith(".py"):
        cmd = (sys.executable, *cmd)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_gpu_check_runs_on_the_cpu_at_tiny_size():
    env = {**os.environ, "ROWS": "300", "DEVICE": "cpu", "REPEATS": "1", "WARMUP_ROWS": "64"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # this python
    out = run_script("bash", "benchmarks/gpu_check.sh", "--only", "defaults", env=env)
    assert "machine: cpu: " in out and "| defaults (batch 32) |" in out
    assert "compile" not in out and "4096" not in out


def test_demo_run_times_a_tiny_demo():
    out = run_script("benchmarks/demo_run.py", "--runs", "1", *TINY)
    assert "wall seconds per run: " in out and "epochs run 3, best epoch" in out


def test_tracking_overhead_times_a_tiny_demo():
    out = run_script("benchmarks/tracking_overhead.py", "--runs", "1", "--only", "none", *TINY)
    assert "logger=none    wall median" in out and "+0.0%" in out


def test_sample_fraction_runs_at_tiny_size():
    argv = ["--samples", "2", "--sequences", "300", "--rows-per-file", "240", "--epochs", "1"]
    out = run_script("benchmarks/sample_fraction.py", *argv, "--min-sequences", "100")
    assert "2 samples of 300 rows per fraction" in out
    lines = [line for line in out.splitlines() if line.startswith("| 0.2 | rows |")]
    assert len(lines) == 1 and "n/a" not in lines[0].split("|")[3]  # the EM error is there


def test_handed_on_runs_at_tiny_size():
    argv = ["--seeds", "2", "--epochs", "2", "--rows-per-file", "240"]
    out = run_script("benchmarks/handed_on.py", *argv)
    assert "| members' mean |" in out and "| ensemble |" in out
    assert "| scratch |" in out and "| tuned |" in out


def test_memory_budget_runs_train_and_evaluate_at_tiny_size(tmp_path):
    argv = ["--rows", "600", "--files", "6", "--budgets", "0.004", "--no-cold"]
    argv += ["--batch-size", "32", "--limit-batches", "2", "--workdir", str(tmp_path)]
    out = run_script("benchmarks/memory_budget.py", *argv)
    for run in ("warm, budget 0.004", "warm, no budget", "uncached, budget 0.004"):
        assert f"| {run} |" in out
    assert "| evaluate.py subset=test, budget 0.004 |" in out
    runs = json.loads((tmp_path / "memory_budget.json").read_text())["runs"]
    assert len(runs) == 7 and all(r["peak_mb"] > 0 for r in runs)
    assert not (tmp_path / "data_merge").exists()  # no --keep


def test_a_child_runs_in_its_own_process(tmp_path):
    spec = {"task": "generate", "root": str(tmp_path / "data"), "files": 2, "rows_per_file": 10}
    script = ROOT / "benchmarks/memory_budget.py"
    result = _common.run_child(script, spec, tmp_path / "logs", "generate")
    assert result["reused"] is False and result["machine"].startswith("cpu: ")
    assert 0 <= result["other_load"] <= 1 and (tmp_path / "logs/generate.log").exists()
    assert len(list((tmp_path / "data").rglob("*_merged.pt"))) == 2
