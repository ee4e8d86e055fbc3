"""Resume after SIGKILL or SIGTERM: the same weights and metrics as a run never interrupted (how
resume= becomes train.py's arguments: train/test_resume_arguments.py)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from helpers import TINY, TRAIN_PY, results, run_dirs, run_train

pytestmark = pytest.mark.e2e

LONG = [*TINY, "epochs=25", "patience=50", "seed=3"]


def start_and_stop(tmp_path, sig: int) -> tuple[subprocess.CompletedProcess, object]:
    """Start a run, wait until it has saved a few epochs, then send `sig` mid-training."""
    before = set(run_dirs(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, str(TRAIN_PY), *LONG],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        new = set(run_dirs(tmp_path)) - before
        last = next(iter(new)) / "checkpoints/last.pt" if new else None
        if last and last.exists() and torch.load(last, weights_only=True)["epoch"] >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=300)
    (run_dir,) = set(run_dirs(tmp_path)) - before
    return subprocess.CompletedProcess(proc.args, proc.returncode, out), run_dir


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run (it also generates the data and the feature store)."""
    tmp = tmp_path_factory.mktemp("resume")
    run_train(tmp, *LONG)
    (run_dir,) = run_dirs(tmp)
    return tmp, run_dir


def same_as_reference(run_dir, reference_dir):
    assert results(run_dir) == results(reference_dir)
    a, b = (
        torch.load(d / "model_fastesm650.pth", weights_only=True) for d in (run_dir, reference_dir)
    )
    assert a["epoch"] == b["epoch"] and a["best_loss"] == b["best_loss"]
    for key, tensor in a["model_state_dict"].items():
        assert torch.equal(tensor, b["model_state_dict"][key]), key


def test_sigkill_mid_epoch_then_resume_gives_identical_results(reference):
    tmp, reference_dir = reference
    proc, run_dir = start_and_stop(tmp, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    stopped_at = torch.load(run_dir / "checkpoints/last.pt", weights_only=True)["epoch"]
    assert 3 <= stopped_at < 25
    assert not (run_dir / "test_metrics.json").exists()

    resumed = run_train(tmp, f"resume={run_dir}")
    assert f"resuming after epoch {stopped_at}" in resumed.stdout
    assert set(run_dirs(tmp)) == {reference_dir, run_dir}  # no new directory
    same_as_reference(run_dir, reference_dir)


def test_sigterm_stops_cleanly_says_how_to_resume_and_resumes(reference):
    tmp, reference_dir = reference
    proc, run_dir = start_and_stop(tmp, signal.SIGTERM)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "stopped by SIGTERM" in proc.stdout
    assert f"python train.py resume={run_dir}" in proc.stdout
    assert "Traceback" not in proc.stdout
    run_train(tmp, f"resume={run_dir}")
    same_as_reference(run_dir, reference_dir)


def test_resume_refuses_changes_that_would_change_results(reference):
    tmp, reference_dir = reference
    finished = run_train(tmp, f"resume={reference_dir}", expect_ok=False)
    assert finished.returncode == 1 and "this run has finished" in finished.stderr
    # the same run as if stopped before its test: resumable, but not with other settings
    stopped = tmp / "stopped"
    shutil.copytree(reference_dir, stopped)
    (stopped / "test_metrics.json").unlink()
    overrides = (stopped / ".hydra/overrides.yaml").read_bytes()
    proc = run_train(tmp, f"resume={stopped}", "optimizer.lr=0.1", "seed=4", expect_ok=False)
    assert proc.returncode == 1
    assert "refusing to resume" in proc.stderr
    assert "optimizer.lr: 0.0002 -> 0.1" in proc.stderr and "seed: 3 -> 4" in proc.stderr
    assert (stopped / ".hydra/overrides.yaml").read_bytes() == overrides  # untouched


def test_resume_of_a_missing_or_foreign_directory_is_a_clear_error(tmp_path):
    proc = run_train(tmp_path, "resume=no/such/run", expect_ok=False)
    assert proc.returncode == 1 and "no such directory" in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = run_train(tmp_path, "resume=empty", expect_ok=False)
    assert proc.returncode == 1 and "not a resumable run" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
