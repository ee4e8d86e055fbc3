"""The benchmark scripts that measure in their own process still run, at a tiny size, here."""

from __future__ import annotations

import re

import pytest


@pytest.mark.slow  # seconds: not in the fast loop
def test_epoch_speed_runs_on_cpu_at_tiny_size(run_benchmark):
    argv = ["--rows", "300", "--device", "cpu", "--repeats", "1", "--warmup-rows", "64"]
    out = run_benchmark("epoch_speed.py", *argv, "--only", "defaults", "--only", "large")
    assert "machine: cpu: " in out
    assert "| defaults (batch 32) |" in out and "| large batch 4096 |" in out
    assert "compile" not in out


def test_eval_speed_runs_at_tiny_size(run_benchmark):
    argv = ["--rows", "64", "--width", "16", "--batch-size", "16", "--repeats", "1"]
    out = run_benchmark("eval_speed.py", *argv, "--storage-dtype", "float16")
    assert "| subset=all | 64 |" in out and "| subset=test | 6 |" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--rows", "2000", "--records", "50", "--n-boot", "20", "--repeats", "1"]
        + ["--row-bootstrap"],
        ["--coverage", "--sets", "3", "--set-records", "20", "--coverage-boot", "20"],
    ],
    ids=["speed", "coverage"],
)
def test_bootstrap_speed_runs_at_tiny_size(run_benchmark, argv):
    out = run_benchmark("bootstrap_speed.py", *argv)
    assert "machine:" in out and "numpy" in out
    assert "| cluster" in out and "| row" in out


@pytest.mark.slow  # seconds: not in the fast loop
def test_interval_coverage_runs_at_tiny_size(run_benchmark):
    argv = ["--sets", "2", "--n-boot", "30", "--paired-sets", "2", "--paired-boot", "20"]
    out = run_benchmark("interval_coverage.py", *argv, "--jobs", "1", "--cases", "0", "4")
    out = out.strip().splitlines()
    assert out[0].startswith("machine: ")
    assert any(line.startswith("The default (studentized): coverage") for line in out)
    for case in ("30 genomes, log-uniform", "100 genomes, log-uniform"):  # cases 0 and 4
        assert any(line.startswith(f"| {case}") for line in out), case
    assert any(line.startswith("The default by the metric's own effective number") for line in out)
    for bin_ in ("0-5", "5-12", "12-inf"):
        assert any(
            line.startswith("| 30 genomes, log-uniform") and f"| {bin_} |" in line for line in out
        )
    number = r"(n/a|\d\.\d{3})"
    assert re.fullmatch(
        rf"coverage: min_tuned={number} min_held_out={number} "
        r"given_lognormal_100=(n/a|\d\.\d{2}) paired_type1=\d\.\d{3}/\d\.\d{3}/\d\.\d{3}",
        out[-1],
    )


@pytest.mark.slow  # seconds: not in the fast loop
def test_the_bins_by_own_effective_genomes_split_the_defaults_sets():
    import interval_coverage as ic

    for i in range(3):
        found = ic.one_set((4, i, 40, 0))  # 100 genomes, log-uniform
        default = found[ic.METHODS[0]]
        for metric, row in default.items():
            bins = [found[name][metric] for name in ic.BY_OWN]
            assert sum(b[3] == 0 for b in bins) == (row[3] == 0)  # given: in exactly one bin
            assert sum(b[0] for b in bins) == row[0]  # and judged there as by the default
            assert sum(b[4] for b in bins) == pytest.approx(row[4])


def test_fdr_calls_runs_at_tiny_size(run_benchmark):
    argv = ["--samples", "2", "--records", "200", "--val-genomes", "150", "--jobs", "1"]
    out = run_benchmark("fdr_calls.py", *argv, "--fractions", "0.01", "0.2", "--n-boot", "20")
    lines = out.strip().splitlines()
    assert lines[0].startswith("machine: ")
    assert any(line.startswith("| 0.2 | records | conformal |") for line in lines)
    assert any(line.startswith("| 0.01 | rows | lfdr |") for line in lines)
    number = r"(\d\.\d{3})"
    assert re.fullmatch(
        rf"fdr: mean_record={number} exceed_record={number} recall_record={number}", lines[-1]
    )


def test_group_split_runs_at_tiny_size(run_benchmark):
    out = run_benchmark("group_split.py", "--rows", "2000", "--repeats", "1")
    assert "viral share of rows: test" in out
    assert "| make |" in out and "| load |" in out and "| rows |" in out


def test_prediction_files_runs_at_tiny_size(run_benchmark):
    out = run_benchmark("prediction_files.py", "--rows", "1200")
    assert "1,200 rows, 200 chunks, 2 records" in out and "peak memory" in out
