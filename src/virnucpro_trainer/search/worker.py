"""One worker of a hyperparameter search: ask the shared study for a trial, run it as one Hydra
job, tell the study its result; again until the study holds `n_trials`. Any number of workers
(the same command, the same storage and study_name) share a study and none waits for another; a
worker with nothing left to ask waits only while other workers' trials run, so that a trial whose
worker was lost is still failed and retried (Optuna's heartbeat) before the search ends.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from virnucpro_trainer.entry import hydra_quote
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.search.outcome import tell
from virnucpro_trainer.search.private_api import storage_of, trial_id
from virnucpro_trainer.search.settings import (
    SearchSettings,
    check_pruner,
    grid_of,
    make_sampler,
    search_record,
)
from virnucpro_trainer.search.space import (
    as_override,
    params_from_search_space,
    pruner_override,
    search_space,
)
from virnucpro_trainer.search.study import (
    join_study,
    known_warnings,
    open_storage,
    retry_callback,
    retry_history,
    storage_spec,
)
from virnucpro_trainer.search.summary import write_search_summary

log = logging.getLogger(__name__)

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
POLL_SECONDS = 1.0  # how often a worker with nothing to ask looks at the others' trials


def counted(trials: Sequence[optuna.trial.FrozenTrial]) -> int:
    """Trials that count toward n_trials: complete, pruned, running, or failed by their own
    error. One failed because its worker was lost does not count: its retry does."""
    retried = {n for t in trials for n in retry_history(t)}
    return sum(
        t.state in COUNTED or (t.state == TrialState.FAIL and t.number not in retried)
        for t in trials
    )


class Heartbeat:
    """`with Heartbeat(storage, trial_ids, seconds):` records the trials' heartbeat at once and
    then every `seconds`, from a thread, while the block runs."""

    def __init__(self, storage, trial_ids: list[int], seconds: int):
        self.storage, self.trial_ids, self.seconds = storage, trial_ids, seconds
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while True:
            for id_ in self.trial_ids:
                try:
                    self.storage.record_heartbeat(id_)
                except Exception as err:  # a finished trial, a storage hiccup: try again later
                    log.debug("heartbeat of trial id %d: %s", id_, err)
            if self.stop.wait(self.seconds):
                return

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.stop.set()
        self.thread.join()


def fail_and_retry(study: optuna.Study, trials: list[optuna.Trial], retry: Callable) -> None:
    """Mark `trials` failed and queue their retries, as when their worker is lost."""
    storage = storage_of(study)
    for trial in trials:
        try:
            if storage.set_trial_state_values(trial_id(trial), TrialState.FAIL):
                retry(study, copy.deepcopy(storage.get_trial(trial_id(trial))))
                log.warning("trial %d stopped: marked failed, to be retried", trial.number)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass


@dataclass
class Search:
    """A worker's search, opened and checked: its study and what every trial gets."""

    settings: SearchSettings
    study: optuna.Study
    space: dict
    fixed: list[str]
    identity: list[str]  # the `trial.*` overrides of an app with a `trial` node, else []
    retry: Callable
    n_trials: int


def open_search(
    s: SearchSettings, arguments: list[str], sweep_dir: Path, trial_node: bool
) -> Search:
    """The study this worker joins, with its space; every refusal (a bad space, sampler,
    pruner or storage, another search in the study) is a UserError raised here, before any
    trial runs."""
    params = {**params_from_search_space(s.search_space), **(s.params or {})}
    space, fixed = search_space(params, arguments)
    spec = storage_spec(s.storage, sweep_dir)
    sampler = make_sampler(s.sampler, space)
    check_pruner(s.pruner)
    if len(s.directions) > 1 and s.pruner and not s.pruner["_target_"].endswith("NopPruner"):
        log.warning(
            "hydra.sweeper.pruner (%s) is not used: Optuna cannot prune a trial of several "
            "objectives, so every trial runs whole",
            s.pruner["_target_"],
        )
    n_trials = s.n_trials
    if s.sampler["_target_"].endswith("GridSampler"):
        points = math.prod(len(grid_of(d)) for d in space.values())
        n_trials = min(n_trials, points)
        log.info("the grid has %d points: %d trials", points, n_trials)
    retry = retry_callback(s.max_retry)
    storage = open_storage(spec, (s.heartbeat_interval, s.grace_period, retry))
    study = join_study(storage, s.study_name, s.directions, sampler, search_record(space, fixed))
    goal = ", ".join(s.directions)
    log.info("study %r in %s: %d trials in all, %s", s.study_name, spec, n_trials, goal)
    identity = [
        f"trial.storage={hydra_quote(spec)}",
        f"trial.study_name={hydra_quote(s.study_name)}",
        pruner_override(s.pruner),
    ]
    return Search(s, study, space, fixed, identity if trial_node else [], retry, n_trials)


def run_search(
    search: Search, sweep_dir: Path, launch: Callable, extend: Callable | None = None
) -> None:
    """Run trials of the study until it holds `n_trials`, then write the summary with its
    pictures; `launch(overrides, first_number)` runs jobs (Hydra's launcher), returning
    their JobReturns; `extend(trial)` (custom_search_space) adds parameters to each trial."""
    s, study = search.settings, search.study
    while (left := trials_left(study, search.n_trials)) is not None:
        if left == 0:  # nothing to ask while other workers' trials run: one may be lost
            time.sleep(min(POLL_SECONDS, s.heartbeat_interval))
            continue
        with known_warnings():  # heartbeats outside Study.optimize: recorded below
            asked = [study.ask(search.space) for _ in range(min(s.n_jobs, left))]
        with Heartbeat(storage_of(study), [trial_id(t) for t in asked], s.heartbeat_interval):
            try:
                overrides = [trial_overrides(search, t, extend) for t in asked]
                jobs = launch(overrides, asked[0].number)
            except BaseException:  # interrupted, or the launcher lost the jobs
                fail_and_retry(study, asked, search.retry)
                raise
        reasons = [
            why for trial, job in zip(asked, jobs, strict=True) if (why := tell(study, trial, job))
        ]
        write_search_summary(study, sweep_dir, pictures=False)
        check_failure_rate(study, s.max_failure_rate, reasons, sweep_dir)
    write_search_summary(study, sweep_dir, pictures=True)
    states = {t.state for t in study.get_trials(deepcopy=False)}
    if TrialState.FAIL in states and not states & {TrialState.COMPLETE, TrialState.PRUNED}:
        raise UserError(f"every trial failed: see {sweep_dir / 'summary.md'} and their error.txt")


def trial_overrides(search: Search, trial: optuna.Trial, extend: Callable | None) -> list[str]:
    """A trial's job: the fixed overrides, its values, and (for an app with a `trial` node)
    which trial of which study it is."""
    if extend is not None:
        extend(trial)
    values = [as_override(k, v) for k, v in trial.params.items()]
    own = [f"trial.number={trial.number}", *search.identity] if search.identity else []
    return [*search.fixed, *values, *own]


def check_failure_rate(study: optuna.Study, most: float, reasons: list[str], sweep_dir) -> None:
    """Stop the search (a UserError) when more than `most` of the study's finished trials failed
    on their own (a trial whose worker was lost and is retried is no failure)."""
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in retry_history(t)}
    failed = sum(t.state == TrialState.FAIL and t.number not in retried for t in trials)
    finished = failed + sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    if failed and failed / finished > most:
        write_search_summary(study, sweep_dir, pictures=True)
        last = f"; the last: {reasons[-1]}" if reasons else ""
        raise UserError(
            f"search stopped: {failed} of {finished} finished trials failed, more than "
            f"hydra.sweeper.max_failure_rate={most}{last}; every reason: {sweep_dir / 'summary.md'}"
        )


def trials_left(study: optuna.Study, n_trials: int) -> int | None:
    """How many trials this worker may ask for now (retries waiting included); 0 while none is
    left but other workers' trials run; None when the search is over. Stale trials (their
    worker lost) are failed and queued for retry first."""
    with known_warnings():
        optuna.storages.fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    waiting = sum(t.state == TrialState.WAITING for t in trials)
    left = max(n_trials - counted(trials), waiting)
    if left <= 0:
        return 0 if any(t.state == TrialState.RUNNING for t in trials) else None
    return left
