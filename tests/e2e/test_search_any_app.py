"""The search sweeper in Hydra apps that are not train.py (tests/e2e/search_apps/): a job's
return value or error ends its trial, never the worker; pruning through `report` in an app that
declares a `trial` node. (The official plugin's example apps: test_search_official_examples.py.)"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from helpers import run_search_app

pytestmark = pytest.mark.e2e


def study_in(sweep: Path, name: str) -> optuna.Study:
    storage = JournalStorage(JournalFileBackend(str(sweep / "optuna.journal")))
    return optuna.load_study(study_name=name, storage=storage)


def test_a_job_without_a_number_fails_its_trial_with_the_reason(tmp_path):
    done = run_search_app(
        "returns.py",
        "--multirun",
        "hydra/sweeper=optuna",
        "hydra/sweeper/sampler=grid",
        f"hydra.sweep.dir={tmp_path}",
        "hydra.sweeper.max_failure_rate=1.0",
        "+ret=choice('number', 'none', 'text', 'pair', 'nan', 'raise')",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    trials = study_in(tmp_path, "optuna").get_trials()
    states = {t.params["+ret"]: t.state.name for t in trials}
    assert states == {
        "number": "COMPLETE", "none": "FAIL", "text": "FAIL", "pair": "FAIL", "nan": "FAIL",
        "raise": "FAIL",
    }  # fmt: skip
    summary = (tmp_path / "summary.md").read_text()
    for reason in (
        "the job returned None: must be a number",
        "the job returned 'abc': must be a number",
        "the job returned (1.0, 2.0): must be a number",
        "the job returned nan: not a finite number",
        "RuntimeError: the job raised",
    ):
        assert reason in summary


def test_the_default_max_failure_rate_stops_at_the_first_failure(tmp_path):
    done = run_search_app(
        "returns.py",
        "--multirun",
        "hydra/sweeper=optuna",
        f"hydra.sweep.dir={tmp_path}",
        "hydra.sweeper.n_trials=5",
        "+ret=raise",
    )
    assert done.returncode == 1
    assert "search stopped: 1 of 1 finished trials failed, more than" in done.stderr
    assert "max_failure_rate=0.0; the last: RuntimeError: the job raised" in done.stderr
    assert len(study_in(tmp_path, "optuna").get_trials()) == 1


def test_any_app_with_a_trial_node_is_pruned_through_report(tmp_path):
    done = run_search_app("steps.py", "--multirun", f"hydra.sweep.dir={tmp_path}")
    assert done.returncode == 0, done.stdout + done.stderr
    trials = study_in(tmp_path, "steps").get_trials()
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert len(trials) == 8 and pruned  # the median pruner stopped some
    assert all(max(t.intermediate_values) < 4 for t in pruned)  # before their last step
    assert "pruned" in (tmp_path / "summary.md").read_text()
