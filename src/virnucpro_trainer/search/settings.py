"""The search sweeper's settings (`hydra.sweeper`, conf/hydra/sweeper/optuna.yaml), checked
once with every problem named; the sampler they describe; and the record of what makes a search,
which a later worker must match to join its study."""

from __future__ import annotations

from dataclasses import dataclass, fields

from virnucpro_trainer.config.overrides import is_harmless
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.search.study import TrialSeededSampler, known_warnings


@dataclass
class SearchSettings:
    """`hydra.sweeper` (conf/hydra/sweeper/optuna.yaml, where each is described)."""

    direction: str
    study_name: str
    storage: str | None
    n_trials: int
    n_jobs: int
    sampler: dict
    pruner: dict | None
    params: dict
    heartbeat_interval: int
    grace_period: int
    max_retry: int | None


def _int_at_least(low: int) -> tuple:
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low, f">= {low}")


CHECKS = {
    "direction": (lambda v: v in ("minimize", "maximize"), "minimize or maximize"),
    "study_name": (lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty name"),
    "n_trials": _int_at_least(1),
    "n_jobs": _int_at_least(1),
    "heartbeat_interval": _int_at_least(1),
    "grace_period": _int_at_least(1),
    "max_retry": (lambda v: v is None or _int_at_least(0)[0](v), "null or >= 0"),
    "sampler": (lambda v: isinstance(v, dict) and "_target_" in v, "a config with _target_"),
    "params": (lambda v: isinstance(v, dict), "a mapping of key: search syntax"),
    "pruner": (
        lambda v: v is None or isinstance(v, dict) and "_target_" in v,
        "a config with _target_",
    ),
}


def settings_from(config: dict) -> SearchSettings:
    """The sweeper's settings, checked: every problem named with its key, all at once."""
    names = [f.name for f in fields(SearchSettings)]
    problems = [
        f"hydra.sweeper.{k} is not a setting of this sweeper" for k in config if k not in names
    ]
    problems += [f"hydra.sweeper.{k} is missing" for k in names if k not in config]
    problems += [
        f"hydra.sweeper.{key} must be {expected}, got {config[key]!r}"
        for key, (ok, expected) in CHECKS.items()
        if key in config and not ok(config[key])
    ]
    if not problems and config["grace_period"] <= config["heartbeat_interval"]:
        problems.append("hydra.sweeper.grace_period must be longer than heartbeat_interval")
    if problems:
        raise UserError("invalid search settings:\n  " + "\n  ".join(problems))
    return SearchSettings(**config)


def make_sampler(config: dict) -> TrialSeededSampler:
    """The sampler `config` describes (`_target_` and arguments), seeded per trial."""
    from hydra.utils import instantiate

    config = dict(config)
    seed = config.pop("seed", None)

    def make(seed: int | None):
        with known_warnings():  # TPE's constant_liar is experimental
            return instantiate(config if seed is None else {**config, "seed": seed})

    try:
        return TrialSeededSampler(make, seed)
    except Exception as err:
        raise UserError(f"hydra.sweeper.sampler: cannot make {config['_target_']}: {err}") from None


def check_pruner(config: dict | None) -> None:
    """Make the pruner once here, so a bad one stops the worker rather than fail every trial
    (each trial's run makes its own, to ask after every epoch)."""
    from hydra.utils import instantiate

    try:
        instantiate(config) if config else None
    except Exception as err:
        raise UserError(f"hydra.sweeper.pruner: cannot make {config['_target_']}: {err}") from None


def search_record(space: dict, fixed: list[str]) -> dict:
    """What makes a search: each result-changing override and each searched distribution."""
    record = {}
    for line in fixed:
        key, value = line.split("=", 1)
        name = key.lstrip("+~")
        if name == "optimized_metric" or not is_harmless(name):
            record[name] = value
    return record | {name: f"searched: {dist}" for name, dist in space.items()}
