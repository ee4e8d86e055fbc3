"""The search sweeper's settings (`hydra.sweeper`, registered by search/hydra_config.py), checked
once with every problem named; the sampler they describe; and the record of what makes a search,
which a later worker must match to join its study."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, fields

from virnucpro_trainer.config.overrides import is_harmless
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.search.study import TrialSeededSampler, known_warnings

DIRECTIONS = ("minimize", "maximize")
DEFAULT_STUDY = "optuna"  # the study of `study_name: null`
MOTPE_REMOVED = (
    "The 'motpe' sampler was removed in Optuna 4.0. Use 'hydra/sweeper/sampler=tpe' instead. "
    "TPESampler now handles multi-objective optimization."
)


@dataclass
class SearchSettings:
    """`hydra.sweeper` (search/hydra_config.py, where each is described)."""

    direction: str | list[str]
    study_name: str
    storage: str | None
    n_trials: int
    n_jobs: int
    sampler: dict
    pruner: dict | None
    params: dict | None
    heartbeat_interval: int
    grace_period: int
    max_retry: int | None
    max_failure_rate: float
    custom_search_space: str | None
    search_space: dict | None  # deprecated: `params` (space.params_from_search_space)

    @property
    def directions(self) -> list[str]:
        return [self.direction] if isinstance(self.direction, str) else list(self.direction)


def _int_at_least(low: int) -> tuple:
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low, f">= {low}")


def _directions_ok(v) -> bool:
    listed = [v] if isinstance(v, str) else v
    return isinstance(listed, list) and bool(listed) and all(d in DIRECTIONS for d in listed)


CHECKS = {
    "direction": (_directions_ok, "minimize or maximize, or a list of them (multi-objective)"),
    "study_name": (lambda v: v is None or isinstance(v, str) and bool(v.strip()), "a name"),
    "n_trials": _int_at_least(1),
    "n_jobs": _int_at_least(1),
    "heartbeat_interval": _int_at_least(1),
    "grace_period": _int_at_least(1),
    "max_retry": (lambda v: v is None or _int_at_least(0)[0](v), "null or >= 0"),
    "max_failure_rate": (
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1,
        "a number from 0 to 1",
    ),
    "custom_search_space": (lambda v: v is None or isinstance(v, str), "null or a function path"),
    "sampler": (lambda v: isinstance(v, dict) and "_target_" in v, "a config with _target_"),
    "params": (lambda v: v is None or isinstance(v, dict), "a mapping of key: search syntax"),
    "search_space": (lambda v: v is None or isinstance(v, dict), "a mapping (deprecated)"),
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
    if "motpe" in str(config.get("sampler", {}).get("_target_", "")).lower():
        problems.append(f"hydra.sweeper.sampler: {MOTPE_REMOVED}")
    if problems:
        raise UserError("invalid search settings:\n  " + "\n  ".join(problems))
    return SearchSettings(**{**config, "study_name": config["study_name"] or DEFAULT_STUDY})


def raise_motpe_removed(*args, **kwargs):
    """`hydra/sweeper/sampler=motpe`'s target: the sampler is gone from Optuna 4."""
    raise ValueError(MOTPE_REMOVED)


def grid_of(distribution) -> list:
    """A distribution's values for Optuna's GridSampler: a choice's values; a stepped range's
    values from its low end up to (not including) its high end, as hydra-optuna-sweeper does."""
    import optuna.distributions as od

    if isinstance(distribution, od.CategoricalDistribution):
        return list(distribution.choices)
    step = getattr(distribution, "step", None)
    if step is None:
        raise UserError("the grid sampler needs choice() or range() for every parameter")
    count = int((distribution.high - distribution.low) // step)
    return [distribution.low + i * step for i in range(count)]


ONE_SEED = ("GridSampler", "QMCSampler")  # samplers seeded once, not per trial
NEEDS = {"CmaEsSampler": "cmaes"}  # a sampler's package that Optuna does not install


def make_sampler(config: dict, space: dict | None = None) -> TrialSeededSampler:
    """The sampler `config` describes (`_target_` and arguments; null arguments take Optuna's
    defaults), seeded per trial (but for ONE_SEED's); a grid sampler gets the grid of `space`."""
    from hydra.utils import instantiate

    config = {k: v for k, v in config.items() if v is not None and k != "_partial_"}
    seed = config.pop("seed", None)
    if config["_target_"].endswith("GridSampler"):
        config["search_space"] = {name: grid_of(d) for name, d in (space or {}).items()}
    if config["_target_"].endswith(ONE_SEED):  # its order of points is made from its seed
        config["seed"], seed = seed, None

    needs = NEEDS.get(config["_target_"].rsplit(".", 1)[-1])
    if needs and importlib.util.find_spec(needs) is None:
        raise UserError(
            f"hydra.sweeper.sampler: {config['_target_']} needs {needs}: pip install {needs}"
        )

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
        key, _, value = line.partition("=")
        if key.startswith("~"):  # a delete, with or without the value it expects
            record[key] = value or "deleted"
            continue
        name = key.lstrip("+")
        if name in ("optimized_metric", "optimized_metrics") or not is_harmless(name):
            record[name] = value
    return record | {name: f"searched: {dist}" for name, dist in space.items()}
