"""A run's results: its directories, its checkpoint's epoch, and what a seed decides."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch


def epochs_saved(run_dir: Path) -> int:
    """The last finished epoch in `run_dir/checkpoints/last.pt` (0 before the first)."""
    last = run_dir / "checkpoints/last.pt"
    try:
        return torch.load(last, weights_only=True)["epoch"]
    except (FileNotFoundError, RuntimeError, EOFError):  # not there yet, or being replaced
        return 0


def run_dirs(cwd: Path) -> list[Path]:
    """Single-run directories under cwd/outputs/<date>/<time>/ (or outputs/in_process/<n>/ from
    `train_in_process`), sorted."""
    return sorted(p for p in (cwd / "outputs").glob("*/*") if p.parent.name != "multirun")


def results(run_dir: Path) -> tuple[list[dict], dict]:
    """metrics.csv without the timing columns, and test_metrics.json: what a seed decides."""
    with open(run_dir / "metrics.csv") as f:
        rows = [
            {k: v for k, v in r.items() if not k.endswith("seconds")} for r in csv.DictReader(f)
        ]
    return rows, json.loads((run_dir / "test_metrics.json").read_text())
