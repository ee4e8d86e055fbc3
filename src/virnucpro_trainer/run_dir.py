"""The run directory: claimed before Hydra writes into it, locked while a run uses it, and removed
again when a run fails before it wrote anything of its own.

Hydra writes `.hydra/` and `train.log` into `hydra.run.dir` before the task function starts, so
the checks that protect an earlier run's directory live in a Hydra callback (`on_run_start`), which
runs first. The lock (`flock` on `<run dir>/.lock`) is held until the process exits, so a second
`resume=` of a running or resumed run is refused instead of writing every epoch twice.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import IO

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from virnucpro_trainer.errors import UserError

LOCK = ".lock"
LAST = Path("checkpoints") / "last.pt"  # the training state, for resume=
RESULTS = ("test_metrics.json", str(LAST))
EVAL_RESULT = "metrics.json"  # what makes an evaluation directory hold results

# run dir -> (its open lock file, whether this process created the directory)
_claimed: dict[Path, tuple[IO, bool]] = {}


def results_in(run_dir: Path, checkpoint_name: str) -> list[str]:
    """The result files `run_dir` already holds, of a training run or of an evaluation (neither
    kind may write over the other's): metrics.csv counts once it has an epoch's row (a run
    stopped in its first epoch has only the header)."""
    names = dict.fromkeys((*RESULTS, checkpoint_name, EVAL_RESULT))
    used = [n for n in names if (run_dir / n).exists()]
    try:
        with (run_dir / "metrics.csv").open() as f:
            if len(list(itertools.islice(f, 2))) == 2:  # a header and a row
                used.insert(0, "metrics.csv")
    except OSError:
        pass
    return used


def _make(path: Path, key: str) -> bool:
    """Create `path` (and parents); True when it did not exist. A clear error if it cannot."""
    existed = path.is_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(
            f"cannot create the output directory {path} ({key}): {err.strerror or err}; "
            f"launch from a writable folder or set {key} to a writable location"
        ) from None
    return not existed


def claim(run_dir: Path, resume: bool, checkpoint_name: str, evaluation: bool = False) -> None:
    """Create and lock `run_dir` for this process, or raise a UserError saying why not.

    `evaluation`: for evaluate.py, whose result is metrics.json (`checkpoint_name`) and which
    cannot be resumed."""
    run_dir = run_dir.absolute()
    if not resume:
        used = results_in(run_dir, checkpoint_name)
        if used:
            held = "an evaluation" if used == [EVAL_RESULT] else "a training run"
            hint = ""
            if held == "a training run" and not evaluation:
                resume_arg = shlex.quote(f"resume={run_dir}")
                hint = f", or continue that run with: python train.py {resume_arg}"
            raise UserError(
                f"{run_dir} already holds {held}'s results ({', '.join(used)}); nothing was "
                f"written there. Choose another hydra.run.dir{hint}"
            )
    created = _make(run_dir, "hydra.run.dir")
    handle = (run_dir / LOCK).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise in_use(run_dir, holder, evaluation) from None
    except OSError:  # a file system without locks: go on unguarded rather than not at all
        pass
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    _claimed[run_dir] = (handle, created)


def in_use(run_dir: Path, holder: str, evaluation: bool = False) -> UserError:
    return UserError(
        f"{run_dir} is in use by another {'evaluate' if evaluation else 'train'}.py process "
        f"(pid {holder}); nothing was written there. Wait for it to finish (or stop it)"
        + ("" if evaluation else " before resuming this run")
    )


def refuse_if_locked(run_dir: Path) -> None:
    """Raise the in-use error when another process holds `run_dir`'s lock. `resume=` asks this
    before it reads the run's `.hydra/` files, which the holder's Hydra may be rewriting."""
    try:
        with (run_dir / LOCK).open() as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when closed
    except BlockingIOError:
        holder = (run_dir / LOCK).read_text().strip() or "unknown"
        raise in_use(run_dir, holder) from None
    except OSError:  # no lock file (never run), or a file system without locks
        pass


def discard_if_empty(run_dir: Path, checkpoint_name: str) -> bool:
    """Remove `run_dir` if this process created it and it holds no results (only Hydra's config,
    the log, a metrics.csv header); True if it did. A failed run then leaves nothing that looks
    like a run."""
    run_dir = run_dir.absolute()
    handle, created = _claimed.get(run_dir, (None, False))
    if not created or results_in(run_dir, checkpoint_name):
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    handle.close()
    del _claimed[run_dir]
    return True


class RunDirectoryGuard(Callback):
    """Claims the run (or sweep) directory before Hydra writes anything into it; `evaluation`:
    for evaluate.py (its result is metrics.json)."""

    def __init__(self, evaluation: bool = False):
        self.evaluation = evaluation

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        run_dir = Path(config.hydra.run.dir)
        try:
            if self.evaluation:
                claim(run_dir, False, EVAL_RESULT, evaluation=True)
            else:
                claim(run_dir, bool(config.resume), config.checkpoint_name)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(1)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            _make(Path(config.hydra.sweep.dir).absolute(), "hydra.sweep.dir")
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(1)
