"""The benchmark scripts still run, at a tiny size, in this process."""

from __future__ import annotations

import runpy
import sys

from helpers import ROOT


def test_gpu_check_benchmark_runs_on_cpu_at_tiny_size(monkeypatch, capsys):
    argv = ["--rows", "300", "--device", "cpu", "--repeats", "1", "--warmup-rows", "64"]
    argv += ["--only", "defaults", "--only", "large"]
    script = ROOT / "benchmarks/epoch_speed.py"
    monkeypatch.setattr(sys, "argv", [str(script), *argv])
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "| defaults (batch 32) |" in out and "| large batch 4096 |" in out
    assert "compile" not in out
