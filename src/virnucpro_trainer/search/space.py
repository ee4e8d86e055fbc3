"""The search space in Hydra's sweep syntax, as Optuna distributions, and a trial's values back
as command-line overrides; read as the official hydra-optuna-sweeper reads it (docs/sweeps.md).

`hydra.sweeper.params` and sweeps on the command line (the latter win) say what is searched:
`interval(a, b)` a float in [a, b] (`int(interval(a, b))` an integer), `tag(log, ...)` the same
on a log scale, `choice(x, y, ...)` or `x,y,...` one of the values, `range(a, b[, step])` a
number from a to b, both included (an integer where all three are integers). Any other value is
fixed: every trial gets it; a delete (`~key`, `~key=value`) goes to every trial as written.
The deprecated dict-style `hydra.sweeper.search_space` is read too, with a warning.
"""

from __future__ import annotations

import logging
import math

import optuna.distributions as od
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, Transformer

from virnucpro_trainer.entry import hydra_quote
from virnucpro_trainer.errors import UserError

log = logging.getLogger(__name__)

SYNTAX = "interval(a, b), tag(log, interval(a, b)), choice(x, y, ...) or range(a, b, step)"
CHOICE_TYPES = (str, int, float, bool, type(None))


def distribution(override: Override) -> od.BaseDistribution:
    """The Optuna distribution of one sweep override (`key=choice(...)`, ...)."""
    value = override.value()
    if override.is_choice_sweep() or getattr(value, "shuffle", False):
        choices = list(override.sweep_iterator(transformer=Transformer.identity))
        if not all(isinstance(c, CHOICE_TYPES) for c in choices):
            raise ValueError("choices must be numbers, strings, booleans or null")
        return od.CategoricalDistribution(choices)
    if override.is_range_sweep():  # both ends included, as in hydra-optuna-sweeper
        start, stop, step = value.start, value.stop, value.step
        if stop < start or step <= 0:
            raise ValueError("the range is empty")
        if all(isinstance(v, int) for v in (start, stop, step)):
            return od.IntDistribution(start, stop, step=step)
        return od.FloatDistribution(float(start), float(stop), step=float(step))
    if override.is_interval_sweep():
        log_scale = "log" in value.tags
        if log_scale and value.start <= 0:
            raise ValueError("a log interval must start above 0")
        if isinstance(value.start, int) and isinstance(value.end, int):  # int(interval(a, b))
            return od.IntDistribution(value.start, value.end, log=log_scale)
        return od.FloatDistribution(value.start, value.end, log=log_scale)
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
            if override.is_delete():  # `~key`: every trial deletes it
                fixed[line] = line
            elif override.is_sweep_override():
                space[key] = distribution(override)
                fixed.pop(key, None)
            else:
                fixed[key] = line
                space.pop(key, None)
        except Exception as err:  # Hydra's parse errors and ours
            raise UserError(f"cannot search {line!r} (from {where}): {err}") from None
    return space, list(fixed.values())


DICT_STYLE = {  # the deprecated search_space's `type` -> how to write it in `params`
    "float": "interval({low}, {high})",
    "int": "int(interval({low}, {high}))",
    "categorical": "choice({choices})",
}


def params_from_search_space(search_space: dict | None) -> dict[str, str]:
    """The deprecated dict-style `hydra.sweeper.search_space` (`x: {type: float, low: 0, high:
    1, log: true, step: ...}`, `type: int`, `type: categorical` with `choices`) as `params`
    entries, with a warning that shows each one as it is written now."""
    if not search_space:
        return {}
    params = {}
    for key, spec in search_space.items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in DICT_STYLE:
            raise UserError(
                f"hydra.sweeper.search_space.{key}: type must be float, int or categorical, "
                f"got {spec!r}"
            )
        fields = {k: v for k, v in spec.items() if k != "type"}
        if kind == "categorical":
            text = DICT_STYLE[kind].format(choices=", ".join(map(str, fields["choices"])))
        elif fields.get("step") is not None:
            text = f"range({fields['low']}, {fields['high']}, step={fields['step']})"
        else:
            text = DICT_STYLE[kind].format(**fields)
        params[key] = f"tag(log, {text})" if fields.get("log") else text
    lines = "\n".join(f"    {k}: {v}" for k, v in params.items())
    log.warning(
        "hydra.sweeper.search_space is deprecated (removed from hydra-optuna-sweeper); "
        "write hydra.sweeper.params instead:\n  params:\n%s",
        lines,
    )
    return params


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
