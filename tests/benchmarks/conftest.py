"""Fixtures for the benchmark scripts' smoke tests: a script run in this process as
`python benchmarks/<name> ...` would run it, and its child processes (`_common.run_child`) run in
this process too, so that a test needs no `e2e` marker."""

from __future__ import annotations

import contextlib
import io
import runpy
import subprocess
import sys
from collections.abc import Callable

import pytest

import _common
from helpers import ROOT


def run_path(script: str, argv: list[str]) -> None:
    """Run `script` as __main__ with `argv`, as `python script argv...` would."""
    saved = sys.argv
    sys.argv = [script, *argv]
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        sys.argv = saved


@pytest.fixture
def run_benchmark(capsys) -> Callable[..., str]:
    """run_benchmark("epoch_speed.py", "--rows", "300", ...): what the script printed."""

    def run(name: str, *argv: str) -> str:
        capsys.readouterr()
        run_path(str(ROOT / "benchmarks" / name), list(argv))
        return capsys.readouterr().out

    return run


@pytest.fixture
def children_in_process(monkeypatch) -> None:
    """`_common.launch` runs `python script --child <spec>` in this process."""

    def launch(cmd: list[str]) -> subprocess.CompletedProcess:
        assert cmd[0] == sys.executable
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            run_path(cmd[1], cmd[2:])
        return subprocess.CompletedProcess(cmd, 0, out.getvalue(), "")

    monkeypatch.setattr(_common, "launch", launch)
