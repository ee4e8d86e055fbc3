"""The one wrapper both entry points (train.py, evaluate.py) run their work in: how an error, an
interrupt or a failed multirun job ends, and removing a directory that holds no results."""

from __future__ import annotations

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

# Hydra's own command-line options and how many values each takes.
HYDRA_OPTIONS = {
    "--multirun": 0, "-m": 0, "--help": 0, "-h": 0, "--hydra-help": 0, "--version": 0,
    "--resolve": 0, "--cfg": 1, "-c": 1, "--package": 1, "-p": 1, "--config-path": 1, "-cp": 1,
    "--config-name": 1, "-cn": 1, "--config-dir": 1, "-cd": 1,
}  # fmt: skip


def options_first(argv: list[str]) -> list[str]:
    """`argv` with Hydra's options moved before the overrides, keeping every other order.

    Hydra's argument parser takes overrides only in one run: `train.py data=synthetic --multirun
    seed=1,2,3` would stop with "unrecognized arguments: seed=1,2,3". With the options first,
    both that order and `train.py --multirun data=synthetic seed=1,2,3` work."""
    options, rest, i = [], [], 1
    while i < len(argv):
        name = argv[i].split("=", 1)[0]
        if name in HYDRA_OPTIONS:
            takes = 0 if "=" in argv[i] else HYDRA_OPTIONS[name]
            options += argv[i : i + 1 + takes]
            i += 1 + takes
        else:
            rest.append(argv[i])
            i += 1
    return [*argv[:1], *options, *rest]


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
