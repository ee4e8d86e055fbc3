"""The one wrapper both entry points (train.py, evaluate.py) run their work in: how an error, an
interrupt or a failed multirun job ends, and removing a directory that holds no results; before
Hydra runs, the command line's options put first and its overrides checked (check_overrides)."""

from __future__ import annotations

import argparse
import difflib
import logging
import math
import re
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from virnucpro_trainer.errors import Interrupted, Pruned, UserError
from virnucpro_trainer.run_dir import discard_if_empty

log = logging.getLogger(__name__)


def hydra_options() -> dict[str, argparse.Action]:
    """Hydra's command-line options (`--multirun`, `-m`, `--cfg`, `--info`, ...), each with its
    argparse action, whose `nargs` says what it takes: 0 no value, None one, "?" an optional one.

    Read from Hydra's own argument parser so that a Hydra release that adds or changes an option
    needs no change here (a hand-kept copy had missed four of hydra-core 1.3's). Hydra offers no
    public list: `get_args_parser` is private (hydra._internal), as is argparse's table of option
    strings; tests/core/test_entry.py fails if either changes."""
    from hydra._internal.utils import get_args_parser

    return dict(get_args_parser()._option_string_actions)


def options_first(argv: list[str]) -> list[str]:
    """`argv` with Hydra's options moved before the overrides, keeping every other order.

    Hydra's argument parser takes overrides only in one run: `train.py data=synthetic --multirun
    seed=1,2,3` would stop with "unrecognized arguments: seed=1,2,3". With the options first,
    both that order and `train.py --multirun data=synthetic seed=1,2,3` work. An option whose
    value is optional (`--info [what]`) takes the next argument only when it is one of its
    choices; without one it is written with its default (`--info=all`), as the override that now
    follows it would be taken for its value."""
    options, rest = split_options(argv)
    return [*argv[:1], *options, *rest]


def split_options(argv: list[str]) -> tuple[list[str], list[str]]:
    """(Hydra's options with their values, the overrides) of `argv` (options_first's rule)."""
    known, options, rest, i = hydra_options(), [], [], 1
    while i < len(argv):
        name, given = argv[i].split("=", 1)[0], "=" in argv[i]
        action, after = known.get(name), argv[i + 1 : i + 2]
        if action is None:
            rest.append(argv[i])
        elif given or action.nargs == 0:
            options.append(argv[i])
        elif action.nargs == "?" and not (after and after[0] in (action.choices or ())):
            options.append(f"{name}={action.const}")
        else:  # the option and its value
            options += argv[i : i + 2]
            i += 1
        i += 1
    return options, rest


# Options that change which config is composed: check_overrides leaves those runs to Hydra.
CONFIG_OPTIONS = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")
KINDS = {"FloatNode": "a number", "IntegerNode": "an integer", "BooleanNode": "true or false"}


def check_overrides(argv: list[str], config_dir: Path, config_name: str) -> None:
    """Before Hydra runs: an override it could not compose, said in the project's form (a
    UserError naming the setting as typed) instead of Hydra's dump: a value of the wrong type
    (`calls.fdr=abc`), an option its group does not have (`calls=bogus`), a key that is not a
    setting. Sweeps (`a,b`) and Hydra's own settings are left to Hydra."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import ConfigCompositionException, MissingConfigException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    options, rest = split_options(argv)
    if any(o.split("=", 1)[0] in CONFIG_OPTIONS for o in options):
        return
    typed = {}
    for arg in rest:
        try:
            override = OverridesParser.create().parse_override(arg)
        except Exception:  # noqa: BLE001 - malformed: Hydra names it itself
            return
        if not override.is_sweep_override() and not override.key_or_group.startswith("hydra"):
            typed[override.key_or_group.lstrip("+~")] = arg
    try:
        with initialize_config_dir(str(config_dir.resolve()), version_base="1.3"):
            compose(config_name, overrides=list(typed.values()))
        return
    except MissingConfigException as err:
        group, _, value = str(err.missing_cfg_file).rpartition("/")
        if group not in typed or not err.options:
            return
        problem = f"{group} must be one of {tuple(err.options)}, got {value!r}"
    except ConfigCompositionException as err:
        cause = err.__cause__
        key = str(getattr(cause, "full_key", ""))
        if isinstance(cause, ValidationError) and key in typed:
            kind = KINDS.get(type(cause.child_node).__name__, str(cause.msg).splitlines()[0])
            problem = f"{key} must be {kind}, got {cause.value!r}"
        elif isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and key in typed:
            parent = getattr(cause, "parent_node", None)
            known = [str(k) for k in parent] if parent is not None else []
            prefix, _, name = key.rpartition(".")
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {prefix}.{close[0]}?".replace(" .", " ") if close else ""
            hint = hint or f"python {config_name}.py --help lists every setting"
            problem = f"{key} is not a setting ({hint})"
        else:
            return
    except Exception:  # noqa: BLE001 - anything else: Hydra reports it as it runs
        return
    raise UserError(f"invalid configuration:\n  {problem}")


def run_task(
    task: Callable[[], float | None],
    out_dir: Path,
    *,
    result_name: str,
    what: str,
    verbose: bool,
    raise_in_multirun: bool = False,
    after_interrupt: Callable[[], str] | None = None,
) -> float | None:
    """Run `task` and return its value; on failure, end the way a user expects.

    A UserError prints one line (the traceback too with `verbose`), anything else its traceback;
    a single run then exits with status 1 (a UserError) or re-raises, after removing `out_dir`
    if it holds no results (`result_name`: the file that marks them, besides the run's own;
    `what`, "run" or "evaluation", names it in the message).
    In a multirun one failed job must not stop the others: its error goes to `error.txt` in its
    own directory and it returns NaN, or re-raises with `raise_in_multirun` (a search sweeper
    marks the trial failed and goes on). A trial stopped by the search's pruner (Pruned) is no
    failure: it is re-raised for the sweeper, with no error.txt. SIGINT or SIGTERM exits with 128 +
    the signal's number; `after_interrupt()` says what is left to continue from.
    """
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        return task()
    except (Interrupted, KeyboardInterrupt) as err:  # the latter: Ctrl-C outside the loop
        signum = getattr(err, "signum", signal.SIGINT)
        detail = f"; {after_interrupt()}" if after_interrupt else ""
        log.error("stopped by %s%s", signal.Signals(signum).name, detail)
        _say_if_discarded(out_dir, result_name, what)
        sys.exit(128 + signum)
    except Pruned:
        raise
    except Exception as err:
        if isinstance(err, UserError) and not verbose:
            log.error("error: %s", err)
        else:
            log.exception("error: %s", err)
        if not multirun:
            _say_if_discarded(out_dir, result_name, what)
            if isinstance(err, UserError):
                sys.exit(1)
            raise
        (out_dir / "error.txt").write_text("".join(traceback.format_exception(err)))
        if raise_in_multirun:
            raise
        return math.nan


def _say_if_discarded(out_dir: Path, result_name: str, what: str) -> None:
    """A job that failed before writing any result leaves no directory that looks like one."""
    if discard_if_empty(out_dir, result_name):
        print(f"(removed {out_dir}: this {what} wrote no results)", file=sys.stderr)


def hydra_quote(value: str) -> str:
    """`value` as a single-quoted Hydra override value: any character, non-ASCII included.

    Inside quotes Hydra un-escapes backslashes only before a quote or at the end.
    """
    escaped = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)
    escaped = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, escaped)
    return f"'{escaped}'"


def override_value(arg: str) -> str:
    """The value of a `key=value` argument: unquoted the way Hydra would when it is quoted,
    else as typed (so `resume=/home/josé/run` works without Hydra's quotes)."""
    value = arg.split("=", 1)[1]
    if value[:1] not in ("'", '"'):
        return value
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return str(OverridesParser.create().parse_override(f"key={value}").value())
    except Exception:  # not valid Hydra quoting: take it as typed
        return value
