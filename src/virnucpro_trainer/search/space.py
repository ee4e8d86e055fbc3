"""The search space of `hparams_search=optuna` in Hydra's sweep syntax, as Optuna distributions,
and a trial's values back as command-line overrides.

`hydra.sweeper.params` and sweeps on the command line (the latter win) say what is searched:
`interval(a, b)` a float in [a, b], `tag(log, interval(a, b))` the same on a log scale,
`choice(x, y, ...)` or `x,y,...` one of the values, `range(a, b, step)` an integer (or float) of
that range. Any other value is fixed: every trial gets it.
"""

from __future__ import annotations

import math

import optuna.distributions as od
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, Transformer

from virnucpro_trainer.entry import hydra_quote
from virnucpro_trainer.errors import UserError

SYNTAX = "interval(a, b), tag(log, interval(a, b)), choice(x, y, ...) or range(a, b, step)"


def distribution(override: Override) -> od.BaseDistribution:
    """The Optuna distribution of one sweep override (`key=choice(...)`, ...)."""
    value = override.value()
    if override.is_choice_sweep() or getattr(value, "shuffle", False):
        choices = list(override.sweep_iterator(transformer=Transformer.identity))
        if not all(isinstance(c, (str, int, float, bool)) for c in choices):
            raise ValueError("choices must be numbers, strings or booleans")
        return od.CategoricalDistribution(choices)
    if override.is_range_sweep():
        values = list(override.sweep_iterator(transformer=Transformer.identity))
        if not values:
            raise ValueError("the range is empty")
        if all(isinstance(v, int) for v in [*values, value.step]):
            return od.IntDistribution(values[0], values[-1], step=value.step)
        return od.FloatDistribution(values[0], values[-1], step=value.step)
    if override.is_interval_sweep():
        log = "log" in value.tags
        if log and value.start <= 0:
            raise ValueError("a log interval must start above 0")
        return od.FloatDistribution(value.start, value.end, log=log)
    raise ValueError(f"not a search syntax Optuna can use; use {SYNTAX}")


def search_space(
    params: dict[str, str], arguments: list[str]
) -> tuple[dict[str, od.BaseDistribution], list[str]]:
    """(the distributions searched, the fixed overrides every trial gets) from the sweeper's
    `params` and the command line's overrides; a command-line value wins over `params`."""
    lines = [f"{key}={value}" for key, value in params.items()] + list(arguments)
    parser = OverridesParser.create()
    space: dict[str, od.BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for line in lines:
        where = "the command line" if line in arguments else "hydra.sweeper.params"
        try:
            override = parser.parse_override(line)
            key = override.get_key_element()
            if override.is_sweep_override():
                space[key] = distribution(override)
                fixed.pop(key, None)
            else:
                fixed[key] = line
                space.pop(key, None)
        except Exception as err:  # Hydra's parse errors and ours
            raise UserError(f"cannot search {line!r} (from {where}): {err}") from None
    return space, list(fixed.values())


def as_override(name: str, value: object) -> str:
    """`name=value` as Hydra reads it back to the same value."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{name}: cannot pass {value} to a trial")
    elif isinstance(value, (int, float)):
        text = repr(value)
    else:
        text = hydra_quote(str(value))
    return f"{name}={text}"


def pruner_override(pruner: dict | None) -> str:
    """`trial.pruner={...}`: the pruner's settings for the run, which asks it after each epoch."""
    if not pruner:
        return "trial.pruner=null"
    items = []
    for key, value in pruner.items():
        if isinstance(value, (dict, list)):
            raise UserError(f"hydra.sweeper.pruner.{key}: must be a plain value, got {value!r}")
        items.append(as_override(key, value).replace("=", ":", 1))
    return "trial.pruner={" + ",".join(items) + "}"
