"""The search's Optuna study: where it is stored, opened with a heartbeat so that a lost worker's
trial is failed and retried (the journal's heartbeat: private_api.py), its sampler seeded per
trial, and the check that a worker joins the search it means to; the retry callback and its
history, and `known_warnings`, which silences Optuna's warnings about what the search uses
knowingly around the calls that warn (never for the whole process).

Storage (`hydra.sweeper.storage`): null, a journal file `optuna.journal` in the sweep directory;
a file path, a journal file there (Optuna's JournalStorage, safe on NFS); or a database URL
(`sqlite:///...`, `postgresql://...`, `mysql://...`), Optuna's RDBStorage.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial

from virnucpro_trainer.errors import UserError
from virnucpro_trainer.search.private_api import JournalHeartbeat

JOURNAL = "optuna.journal"  # the default storage, in the sweep directory
DATABASES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")  # SQLAlchemy's, for RDBStorage
STORAGES = "a journal file path, or a database URL (sqlite:///, postgresql://, mysql://)"
# Optuna 4.9 renamed RetryFailedTrialCallback and the storage's argument for it.
RETRY = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
RETRY_ARGUMENT = "heartbeat_stale_trial_callback" if RETRY else "failed_trial_callback"
RETRY = RETRY or optuna.storages.RetryFailedTrialCallback


@contextmanager
def known_warnings() -> Iterator[None]:
    """For the block inside only, no warning about what the search uses knowingly: Optuna's
    experimental features (the heartbeat, the retry callback and its history, TPE's
    constant_liar), and heartbeats outside Study.optimize (the workers record them: worker.py)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        yield


def retry_callback(max_retry: int | None) -> Callable:
    """Optuna's callback that queues a lost trial again, at most `max_retry` times."""
    with known_warnings():
        return RETRY(max_retry=max_retry)


def retry_history(trial: FrozenTrial) -> list[int]:
    """The numbers of the trials `trial` retries, the first attempt first; [] for none."""
    with known_warnings():
        return RETRY.retry_history(trial)


def storage_spec(storage: str | None, sweep_dir: Path) -> str:
    """The study's storage as any process can reach it: a journal file's absolute path, or a
    database URL (a relative SQLite file made absolute). Raises UserError for anything else."""
    if not storage:
        return str((sweep_dir / JOURNAL).absolute())
    if "://" in storage:
        scheme, rest = storage.split("://", 1)
        if scheme.split("+")[0] not in DATABASES:
            raise UserError(f"hydra.sweeper.storage must be {STORAGES}, got {storage!r}")
        path = rest.removeprefix("/")
        if scheme == "sqlite" and path and not path.startswith((":", "/")):
            return f"sqlite:///{Path(path).absolute()}"
        return storage
    path = Path(storage).expanduser().absolute()
    if path.is_dir():
        raise UserError(f"hydra.sweeper.storage={storage!r} is a directory: name a journal file")
    if path.is_file() and path.read_bytes()[:15] == b"SQLite format 3":
        raise UserError(
            f"hydra.sweeper.storage={storage!r} is an SQLite database: write sqlite:///{path}"
        )
    return str(path)


def open_storage(spec: str, heartbeat: tuple[int, int, Callable] | None = None):
    """The storage `spec` names; with `heartbeat` (interval, grace period, retry callback) a
    worker's, which records heartbeats and fails stale trials, else a run's."""
    try:
        with known_warnings():
            if "://" not in spec and heartbeat:
                Path(spec).parent.mkdir(parents=True, exist_ok=True)
                return JournalHeartbeat(spec, *heartbeat)
            if "://" not in spec:
                return JournalStorage(JournalFileBackend(spec))
            if not heartbeat:
                return RDBStorage(spec)
            interval, grace, retry = heartbeat
            return RDBStorage(
                spec, heartbeat_interval=interval, grace_period=grace, **{RETRY_ARGUMENT: retry}
            )
    except Exception as err:  # a missing driver, a server that does not answer, no permission
        raise UserError(f"cannot open the study's storage {spec!r}: {err}") from None


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """The configured sampler, made anew for every trial with seed + the trial's number: workers
    sharing a study never draw the same values, and a search by one worker repeats exactly."""

    def __init__(self, make: Callable[[int | None], optuna.samplers.BaseSampler], seed):
        self._make, self._seed = make, seed
        self._inner = make(seed)

    def before_trial(self, study, trial) -> None:
        if self._seed is not None:
            self._inner = self._make(self._seed + trial.number)
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        try:
            self._inner.after_trial(study, trial, state, values)
        except RuntimeError as err:  # the grid sampler's study.stop() when its grid is done:
            if "Study.stop" not in str(err):  # the worker counts trials instead
                raise

    def reseed_rng(self) -> None:
        self._inner.reseed_rng()


def join_study(storage, name: str, directions: list[str], sampler, search: dict) -> optuna.Study:
    """The study `name` in `storage`, made by the first worker; a later worker must bring the
    same directions and the same search (`search`: its overrides and parameters), or it is
    refused, naming what differs: two different searches never share one study by accident."""
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        sampler=sampler,
        directions=directions,
        load_if_exists=True,
    )
    found = [d.name.lower() for d in study.directions]
    if found != directions:
        goal = " and ".join(found)
        raise UserError(
            f"study {name!r} is to {goal} its value(s); this worker would "
            f"{' and '.join(directions)}: use the same optimized_metric (direction), or another "
            "hydra.sweeper.study_name"
        )
    saved = study.user_attrs.get("search")
    if saved is None:
        study.set_user_attr("search", search)
    elif saved != search:
        differ = [
            f"{key}: study {saved.get(key)!r}, this worker {search.get(key)!r}"
            for key in sorted(set(saved) | set(search))
            if saved.get(key) != search.get(key)
        ]
        raise UserError(
            f"study {name!r} is another search than this worker's; start the worker with the "
            f"study's settings or choose another hydra.sweeper.study_name:\n  "
            + "\n  ".join(differ)
        )
    return study
