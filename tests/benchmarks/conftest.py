"""Fixtures for the benchmark scripts' smoke tests: a script run in this process as
`python benchmarks/<name> ...` would run it, and its child processes (`_common.run_child`) run in
this process too, so that a test needs no `e2e` marker."""

from __future__ import annotations

import contextlib
import io
import runpy
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
import torch

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


class NoOtherLoad(_common.OtherLoad):
    """What `_common.run_child` reports for a child run in this process: no other load. The
    machine's other load (another test worker, say) would only make data_path.py run each child
    twice, and a share of it is the test process itself."""

    def __exit__(self, *_) -> None:
        super().__exit__()
        self.cores = self.share = 0.0


@pytest.fixture
def children_in_process(monkeypatch) -> Iterator[None]:
    """`_common.launch` runs `python script --child <spec>` in this process, with one torch
    thread (as `helpers.train_in_process` does: tiny tensors) and no other load reported."""

    def launch(cmd: list[str]) -> subprocess.CompletedProcess:
        assert cmd[0] == sys.executable
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            run_path(cmd[1], cmd[2:])
        return subprocess.CompletedProcess(cmd, 0, out.getvalue(), "")

    monkeypatch.setattr(_common, "launch", launch)
    monkeypatch.setattr(_common, "OtherLoad", NoOtherLoad)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
