"""benchmarks/ood.py runs, at a tiny size, here (its full run: docs/ood.md)."""

from __future__ import annotations

import re

import pytest


@pytest.mark.slow  # trains a model: not in the fast loop
def test_the_ood_benchmark_runs_at_tiny_size(run_benchmark):
    argv = ["--seeds", "1", "--width", "32", "--rows", "900", "--epochs", "1"]
    out = run_benchmark("ood.py", *argv).strip().splitlines()
    assert out[0].startswith("machine: ")
    for score in ("combined", "input", "hidden", "knn", "energy", "input (exact Ledoit-Wolf)"):
        assert any(line.startswith(f"| {score} | ") for line in out), score
    assert re.fullmatch(
        r"ood: auroc_unseen=\d\.\d{3} auroc_shift=\d\.\d{3} auroc_other_model=\d\.\d{3} "
        r"false_flag=\d\.\d{4}",
        out[-1],
    )
