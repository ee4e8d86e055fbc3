"""train.py as a real process: for what a process is the point of (signals, exit codes, printed
errors, multirun and launchers, concurrent processes). Only `e2e` tests may call these."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .runs import TRAIN_PY

SEARCH_APPS = Path(__file__).resolve().parents[1] / "e2e" / "search_apps"


def run_search_app(script: str, *args: str) -> subprocess.CompletedProcess:
    """`python tests/e2e/search_apps/<script> ARGS` in that folder (tiny Hydra apps that use the
    search sweeper), whatever its exit status."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run(
        [sys.executable, str(SEARCH_APPS / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=SEARCH_APPS,
    )


def run_train(cwd: Path, *args: str, expect_ok: bool = True) -> subprocess.CompletedProcess:
    """Run `python train.py ARGS` in `cwd`; by default fail the test if it exits non-zero."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    proc = subprocess.run(
        [sys.executable, str(TRAIN_PY), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    if expect_ok:
        assert proc.returncode == 0, (
            f"train.py failed:\n{proc.stdout}\n{proc.stderr}{_job_logs(cwd)}"
        )
    return proc


def _job_logs(cwd: Path) -> str:
    """The end of each sweep job's log that reports an error: a launcher's job fails in its own
    process (submitit's logs under .submitit/), so train.py's output says only that it did not
    finish."""
    tails = []
    outputs = cwd / "outputs"
    for log in sorted([*outputs.glob("**/train.log"), *outputs.glob("**/.submitit/*/*_log.err")]):
        lines = log.read_text(errors="replace").splitlines()
        if any("ERROR" in line or "Traceback" in line for line in lines):
            tails.append(f"\n--- {log}:\n" + "\n".join(lines[-25:]))
    return "".join(tails)


def start_train(cwd: Path, *args: str) -> subprocess.Popen:
    """Start `python train.py ARGS` in `cwd` without waiting; stdout and stderr in one pipe."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.Popen(
        [sys.executable, str(TRAIN_PY), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def wait_for(condition, what: str, timeout: float = 300) -> None:
    """Poll `condition()` until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
