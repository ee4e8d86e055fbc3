"""The private Optuna and Hydra API the search uses (search/private_api.py), on real studies: each
test fails when an installed Optuna or Hydra changes or removes what the search relies on."""

from __future__ import annotations

import datetime
import inspect
import time
import warnings
from dataclasses import fields

import optuna
import optuna.distributions as od
import pytest
from hydra.core.utils import JobReturn, JobStatus
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from virnucpro_trainer.errors import Pruned
from virnucpro_trainer.search.private_api import (
    HEARTBEAT,
    JournalHeartbeat,
    job_error,
    running_trial,
    storage_of,
    trial_id,
)
from virnucpro_trainer.search.study import known_warnings, retry_callback, retry_history


def test_the_heartbeat_base_asks_for_what_the_journal_heartbeat_defines():
    wanted = {
        "record_heartbeat",
        "_get_stale_trial_ids",
        "get_heartbeat_interval",
        "get_heartbeat_stale_trial_callback",
    }
    assert BaseHeartbeat.__abstractmethods__ <= wanted
    assert list(inspect.signature(BaseHeartbeat._get_stale_trial_ids).parameters) == [
        "self",
        "study_id",
    ]
    assert not JournalHeartbeat.__abstractmethods__  # nothing left to define
    assert issubclass(JournalHeartbeat, BaseStorage)


def lost_trial(study: optuna.Study, seconds_ago: float) -> optuna.trial.FrozenTrial:
    trial = optuna.create_trial(state=TrialState.RUNNING, params={"x": 0.5},
                                distributions={"x": od.FloatDistribution(0, 1)})  # fmt: skip
    trial.datetime_start -= datetime.timedelta(seconds=seconds_ago)
    study.add_trial(trial)
    return study.get_trials()[-1]


def test_optunas_fail_stale_trials_uses_the_journal_heartbeat_and_the_retry(tmp_path):
    storage = JournalHeartbeat(str(tmp_path / "optuna.journal"), 1, 5, retry_callback(1))
    study = optuna.create_study(storage=storage, study_name="s")
    beating, lost = lost_trial(study, 10), lost_trial(study, 10)
    storage.record_heartbeat(trial_id(beating))
    assert study.trials[beating.number].system_attrs[HEARTBEAT] == pytest.approx(time.time(), abs=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the search silences them, nothing else
        with known_warnings():
            optuna.storages.fail_stale_trials(study)
        states = [t.state for t in study.get_trials()]
        assert states == [TrialState.RUNNING, TrialState.FAIL, TrialState.WAITING]
        assert retry_history(study.get_trials()[-1]) == [lost.number]
        assert retry_history(study.trials[beating.number]) == []


def test_a_studys_storage_and_trial_ids(tmp_path):
    for storage in (None, JournalStorage(JournalFileBackend(str(tmp_path / "j.journal")))):
        study = optuna.create_study(storage=storage)
        study.ask()
        trial = study.ask()
        frozen = study.trials[trial.number]
        assert isinstance(storage_of(study), BaseStorage)
        assert trial_id(frozen) == trial_id(trial)
        assert storage_of(study).get_trial(trial_id(trial)).number == trial.number
        assert storage_of(study).set_trial_state_values(trial_id(trial), TrialState.FAIL)
        assert study.trials[trial.number].state == TrialState.FAIL


def test_a_running_trial_opened_elsewhere_reports_and_asks_the_pruner(tmp_path):
    path = str(tmp_path / "optuna.journal")
    asked = optuna.create_study(storage=JournalStorage(JournalFileBackend(path)), study_name="s")
    asked.ask()
    number = asked.ask().number
    # as a trial's run opens it: its own storage object, its own pruner
    study = optuna.load_study(
        study_name="s",
        storage=JournalStorage(JournalFileBackend(path)),
        pruner=optuna.pruners.ThresholdPruner(lower=0.5),
    )
    trial = running_trial(study, number)
    assert isinstance(trial, optuna.Trial) and trial.number == number
    trial.report(0.9, 1)
    assert not trial.should_prune()
    trial.report(0.1, 2)
    assert trial.should_prune()
    assert asked.trials[number].intermediate_values == {1: 0.9, 2: 0.1}
    assert trial.study.trials[number].number == number  # the study it belongs to


def test_a_failed_jobs_exception_is_read_without_raising_it():
    names = {f.name for f in fields(JobReturn)}
    assert "_return_value" in names
    job = JobReturn()
    job.return_value = Pruned({"epoch": 3})  # as Hydra's run_job records an exception
    job.status = JobStatus.FAILED
    assert isinstance(job_error(job), Pruned) and job_error(job).args == ({"epoch": 3},)
    with pytest.raises(Pruned):
        job.return_value  # noqa: B018  the public property raises it again
    done = JobReturn(status=JobStatus.COMPLETED)
    done.return_value = 0.25
    assert job_error(done) is None and done.return_value == 0.25
