"""Shared fixtures: running train.py as a real subprocess and finding its run directories."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TRAIN_PY = ROOT / "train.py"

# A small demo data set and a short run, so an end-to-end run takes a few seconds.
TINY = [
    "data=synthetic",
    "data.synthetic.files_per_class=4",
    "data.synthetic.rows_per_file=240",
    "data.synthetic.chunks_per_genome=5",
    "epochs=3",
    "device=cpu",
]


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
        assert proc.returncode == 0, f"train.py failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


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


def epochs_saved(run_dir: Path) -> int:
    """The last finished epoch in `run_dir/checkpoints/last.pt` (0 before the first)."""
    last = run_dir / "checkpoints/last.pt"
    try:
        return torch.load(last, weights_only=True)["epoch"]
    except (FileNotFoundError, RuntimeError, EOFError):  # not there yet, or being replaced
        return 0


def run_dirs(cwd: Path) -> list[Path]:
    """Single-run directories under cwd/outputs/<date>/<time>/, sorted."""
    return sorted(p for p in (cwd / "outputs").glob("*/*") if p.parent.name != "multirun")


@pytest.fixture
def tiny_args() -> list[str]:
    return list(TINY)
