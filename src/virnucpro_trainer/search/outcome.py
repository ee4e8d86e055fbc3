"""How a trial's job ended, told to the study: its values, pruned, or failed with the reason
(kept in the trial as `failed_because`, shown in summary.md). A job that raises, or returns
anything but one finite number per objective, is a failed trial: never a worker crash, never a
trial left running. Read as hydra-optuna-sweeper reads a return value (a number, or a list or
tuple for several objectives; a string that reads as a number is one)."""

from __future__ import annotations

import contextlib
import logging
import math

import optuna
from hydra.core.utils import JobReturn, JobStatus
from optuna.trial import TrialState

from virnucpro_trainer.errors import Pruned
from virnucpro_trainer.search.private_api import job_error

log = logging.getLogger(__name__)

FAILED_BECAUSE = "failed_because"  # a failed trial's user attribute: why, in one line


def outcome(job: JobReturn, objectives: int) -> tuple[TrialState, list[float] | None, str]:
    """(state, values, why it failed) of a trial whose job ended as `job`: a job that raised,
    or returned anything but `objectives` finite numbers, is a failed trial, never a crash."""
    error = job_error(job)
    if isinstance(error, (Pruned, optuna.TrialPruned)):
        return TrialState.PRUNED, None, ""
    if job.status != JobStatus.COMPLETED:
        return TrialState.FAIL, None, f"{type(error).__name__}: {error}"
    returned = job.return_value
    try:
        values = [float(returned)] if objectives == 1 else [float(v) for v in returned]
    except (TypeError, ValueError):
        wanted = "a number" if objectives == 1 else f"a list or tuple of {objectives} numbers"
        return TrialState.FAIL, None, f"the job returned {returned!r}: must be {wanted}"
    if len(values) != objectives:
        why = f"the job returned {len(values)} values for {objectives} objectives"
        return TrialState.FAIL, None, why
    if not all(math.isfinite(v) for v in values):
        return TrialState.FAIL, None, f"the job returned {returned!r}: not a finite number"
    return TrialState.COMPLETE, values, ""


def tell(study: optuna.Study, trial: optuna.Trial, job: JobReturn) -> str:
    """Tell the study how trial's job ended: its values, pruned, or failed (with why, which is
    returned and kept in the trial)."""
    state, values, why = outcome(job, len(study.directions))
    if why:
        log.warning("trial %d failed: %s", trial.number, why)
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            trial.set_user_attr(FAILED_BECAUSE, why)
    finished = study.tell(trial, values, state=state, skip_if_finished=True)
    if finished.state != state:
        log.warning("trial %d had been marked %s meanwhile", trial.number, finished.state.name)
    log.info("trial %d: %s %s", trial.number, state.name.lower(), values or "")
    return why
