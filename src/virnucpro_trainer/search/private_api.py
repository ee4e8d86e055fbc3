"""Every use the search makes of Optuna's and Hydra's private API, in one place, each saying why
the public API does not do. tests/search/test_private_api.py fails when an installed Optuna or
Hydra changes or removes one of them, rather than a search in the middle of its trials.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import optuna
from hydra.core.utils import JobReturn, JobStatus
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

HEARTBEAT = "heartbeat"  # a journal trial's system attribute: the time of its last heartbeat


def storage_of(study: optuna.Study) -> BaseStorage:
    """The study's storage (`Study._storage`). Optuna records heartbeats and fails a lost trial
    only inside Study.optimize; the workers ask and tell trials themselves, so they do both
    through the storage."""
    return study._storage


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """A trial's id in its storage (`_trial_id`), the key of every storage call: a trial's
    public number counts within its study only."""
    return trial._trial_id


def running_trial(study: optuna.Study, number: int) -> optuna.Trial:
    """Trial `number` of `study` as a live Trial, to report to and ask the pruner. Optuna hands
    a live trial only to the process that asked for it (Study.ask); a trial's run, launched by
    the worker (maybe in another process or on another machine), builds one around the trial's
    id (`Study._study_id`, and `optuna.Trial` made directly)."""
    storage = study._storage
    found = storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    return optuna.Trial(study, found)


def job_error(job: JobReturn) -> BaseException | None:
    """The exception a failed Hydra job raised (`JobReturn._return_value`); None for a job that
    completed. The public `return_value` raises it again, writing to stderr, where the worker
    only looks at it: a pruned trial's job ends in Pruned, which is not a failure."""
    return None if job.status == JobStatus.COMPLETED else job._return_value


class JournalHeartbeat(JournalStorage, BaseHeartbeat):
    """A journal file with Optuna's heartbeat, which Optuna has for databases only. Its base
    (`optuna.storages._heartbeat.BaseHeartbeat`) and the method Optuna's fail_stale_trials calls
    (`_get_stale_trial_ids`) are private. A running trial's last heartbeat is a system attribute
    holding the time (the clocks of machines sharing a journal must agree to within the grace
    period)."""

    def __init__(self, path: str, interval: int, grace: int, retry: Callable | None) -> None:
        super().__init__(JournalFileBackend(path))
        self.interval, self.grace, self.retry = interval, grace, retry

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, HEARTBEAT, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        # the start counts as a heartbeat: a retry inherits its lost trial's old one
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        last = {
            trial_id(t): max(t.system_attrs.get(HEARTBEAT, 0), t.datetime_start.timestamp())
            for t in running
        }
        return [i for i, beat in last.items() if time.time() - beat > self.grace]

    def get_heartbeat_interval(self) -> int:
        return self.interval

    def get_heartbeat_stale_trial_callback(self) -> Callable | None:
        return self.retry

    get_failed_trial_callback = get_heartbeat_stale_trial_callback  # its name before Optuna 4.9
