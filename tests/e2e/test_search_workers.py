"""Two search workers (train.py processes) sharing one Optuna study, one killed with SIGKILL in
the middle of a trial: the other fails the lost trial after its heartbeat stops, retries it from
the lost trial's checkpoint, and completes the study; no finished trial's files change."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from virnucpro_trainer.search.study import retry_history

from helpers import TINY, TRAIN_PY, start_train, wait_for

pytestmark = pytest.mark.e2e

N_TRIALS = 4
SEARCH = [
    "hparams_search=optuna",
    f"hydra.sweeper.n_trials={N_TRIALS}",
    "hydra.sweeper.heartbeat_interval=1",
    "hydra.sweeper.grace_period=3",
    "hydra/sweeper/pruner=none",
    "batch_size=choice(32)",  # the same pace for every trial: ~0.1 s an epoch on tiny data
    "patience=choice(20)",
    *TINY,
    "epochs=15",
]


def files_of(run: Path) -> dict[str, str]:
    """Every file under `run` and the hash of its bytes."""
    return {
        str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.rglob("*"))
        if p.is_file()
    }


def start_worker(cwd: Path, log: Path) -> subprocess.Popen:
    """A worker whose output goes to `log` (a pipe nobody reads could fill and stop it)."""
    with log.open("w") as f:
        return subprocess.Popen(
            [sys.executable, str(TRAIN_PY), *SEARCH], cwd=cwd, stdout=f, stderr=subprocess.STDOUT
        )


def test_a_killed_workers_trial_is_failed_retried_from_its_checkpoint_and_the_study_completes(
    tmp_path,
):
    sweep = tmp_path / "outputs/search/virnucpro"
    survivor = start_worker(tmp_path, tmp_path / "survivor.log")
    victim = start_train(tmp_path, *SEARCH)  # read until its first trial, then killed
    try:
        # the victim's first trial: the number its launcher logs, once the trial saved an epoch
        number = None
        for line in victim.stdout:
            if m := re.search(r"\t#(\d+) : ", line):
                number = int(m.group(1))
                break
        assert number is not None, "the victim launched no trial"
        lost = sweep / str(number)
        wait_for(lambda: (lost / "checkpoints/last.pt").is_file(), "the victim's first epoch")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        assert not (lost / "test_metrics.json").exists()  # killed in the middle of its trial
        finished = {
            run.name: files_of(run)
            for run in sweep.iterdir()
            if (run / "test_metrics.json").is_file()
        }
        lost_files = files_of(lost)
        survivor.wait(timeout=300)
    finally:
        for proc in (survivor, victim):
            if proc.poll() is None:
                proc.kill()
    assert survivor.returncode == 0, (tmp_path / "survivor.log").read_text()

    study = optuna.load_study(
        study_name="virnucpro",
        storage=JournalStorage(JournalFileBackend(str(sweep / "optuna.journal"))),
    )
    trials = study.get_trials()
    states = {t.number: t.state for t in trials}
    assert states[number] == optuna.trial.TrialState.FAIL
    (retry,) = [t for t in trials if retry_history(t) == [number]]
    assert retry.state == optuna.trial.TrialState.COMPLETE and retry.params == trials[number].params
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == N_TRIALS and len(trials) == N_TRIALS + 1

    # every trial ran in its own directory, once; the retry continued the lost trial's epochs
    assert sorted(p.name for p in sweep.iterdir() if p.name.isdigit()) == sorted(
        str(t.number) for t in trials
    )
    retry_log = (sweep / str(retry.number) / "train.log").read_text()
    assert f"continues from the training state in {lost}" in retry_log
    assert "resuming after epoch" in retry_log
    for t in complete:
        assert (sweep / str(t.number) / "test_metrics.json").is_file()
        assert (sweep / str(t.number) / ".hydra/overrides.yaml").is_file()
    # nothing a finished trial wrote changed, nor the lost trial's directory
    assert {name: files_of(sweep / name) for name in finished} == finished
    assert files_of(lost) == lost_files
    summary = (sweep / "summary.md").read_text()
    assert f"| {number} | fail |" in summary and f"| {retry.number} | complete |" in summary


def test_the_scaling_benchmark_runs_at_tiny_size():
    argv = ["--repeats", "1", "--trials", "2", "--epochs", "2", "--startup", "1", "--warmup", "1"]
    script = Path(__file__).resolve().parents[2] / "benchmarks/search_scaling.py"
    done = subprocess.run(
        [sys.executable, str(script), *argv, *TINY], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert (
        "| 2 workers, no pruning |" in done.stdout and "| 1 worker, median pruner |" in done.stdout
    )
