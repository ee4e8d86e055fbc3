"""Shared fixtures: running train.py as a real subprocess and finding its run directories."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def run_dirs(cwd: Path) -> list[Path]:
    """Single-run directories under cwd/outputs/<date>/<time>/, sorted."""
    return sorted(p for p in (cwd / "outputs").glob("*/*") if p.parent.name != "multirun")


@pytest.fixture
def tiny_args() -> list[str]:
    return list(TINY)
