"""The benchmarks that measure in fresh child processes (data_path.py, memory_budget.py's store
check and speed comparison) at a tiny size, their children run in this process (one child for
real: tests/e2e/test_benchmark_scripts.py)."""

from __future__ import annotations

import json

import pytest


def test_data_path_compares_every_design(run_benchmark, children_in_process, tmp_path):
    argv = ["--rows", "600", "--files", "6", "--repeats", "1", "--old-workers", "0"]
    out = run_benchmark("data_path.py", *argv, "--workdir", str(tmp_path))
    for design in ("| OLD (num_workers=0) |", "| NEW |", "| NEW f16 |", "| FLOOR |"):
        assert design in out
    assert "| NEW training samples/s / FLOOR |" in out and "machine: cpu: " in out
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["dataset"]["split_rows"] == {"train": 200, "val": 200, "test": 200}
    assert {r["design"] for r in result["runs"]} == {"OLD", "NEW", "NEW f16", "FLOOR"}
    assert not (tmp_path / "data-600x6").exists()  # no --keep


def test_data_path_asks_for_enough_files(run_benchmark, capsys):
    with pytest.raises(SystemExit):
        run_benchmark("data_path.py", "--files", "4")
    assert "--files must be even and at least 6" in capsys.readouterr().err


def test_memory_budget_store_check(run_benchmark, children_in_process, tmp_path):
    argv = ["--store-check", "--budgets", "0.004", "--files", "6", "--repeats", "1"]
    out = run_benchmark("memory_budget.py", *argv, "--workdir", str(tmp_path))
    assert "# Memory-budget check" in out
    for variant in ("| no budget |", "| budget |", "| budget, block_rows=8192 |"):
        assert variant in out
    (check,) = json.loads((tmp_path / "store_check.json").read_text())["checks"]
    assert check["rows"] == 6 * (2 * int(0.004 * 2**30) // (2048 * 4) // 6)
    assert len(check["runs"]) == 3


def test_memory_budget_speed_comparison(run_benchmark, children_in_process, tmp_path):
    argv = ["--speed", "--speed-rounds", "1", "--rows", "600", "--files", "6"]
    out = run_benchmark("memory_budget.py", *argv, "--budgets", "0.004", "--workdir", str(tmp_path))
    assert "train: time with budget / without, median of 1:" in out
    assert "score: time with budget / without, median of 1:" in out
