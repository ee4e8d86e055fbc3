"""Train the VirNucPro MLP: `python train.py [overrides]` (see README.md and conf/)."""

import logging
import math
import shlex
import signal
import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from virnucpro_trainer.config.schema import register_configs
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.run_dir import discard_if_empty
from virnucpro_trainer.sweeps.training import is_search
from virnucpro_trainer.train.pipeline import run
from virnucpro_trainer.train.resume import check_resume, resume_arguments
from virnucpro_trainer.train.signals import TrainingInterrupted
from virnucpro_trainer.train.state import LAST

register_configs()
log = logging.getLogger("train")


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    # A search sweeper (Optuna) needs a failed trial raised: it marks the trial failed and goes
    # on (hydra.sweeper.max_failure_rate); a NaN return would stop the whole search.
    searching = multirun and is_search(hydra_cfg.sweeper)
    try:
        value = run(cfg, run_dir)
        if searching and not math.isfinite(value):
            raise UserError(f"{cfg.optimized_metric} is {value}: this trial has no score")
        return value
    except (TrainingInterrupted, KeyboardInterrupt) as err:  # the latter: Ctrl-C before training
        signum = getattr(err, "signum", signal.SIGINT)
        if (run_dir / LAST).exists():
            where = f"the state after the last finished epoch is in {run_dir / LAST}"
            hint = f"continue with: python train.py {shlex.quote(f'resume={run_dir}')}"
        else:
            where, hint = "no epoch had finished", "nothing to resume: start the run again"
        log.error("stopped by %s; %s; %s", signal.Signals(signum).name, where, hint)
        say_if_discarded(run_dir, cfg.checkpoint_name)
        sys.exit(128 + signum)
    except Exception as err:
        if isinstance(err, UserError) and not cfg.verbose:
            log.error("error: %s", err)
        else:
            log.exception("error: %s", err)
        if not multirun:
            say_if_discarded(run_dir, cfg.checkpoint_name)
            if isinstance(err, UserError):
                sys.exit(1)
            raise
        # One failing job must not stop a sweep: its error stays in its own directory.
        (run_dir / "error.txt").write_text("".join(traceback.format_exception(err)))
        if searching:
            raise
        return math.nan


def say_if_discarded(run_dir: Path, checkpoint_name: str) -> None:
    """A run that failed before writing any result leaves no directory that looks like a run."""
    if discard_if_empty(run_dir, checkpoint_name):
        print(f"(removed {run_dir}: this run wrote no results)", file=sys.stderr)


if __name__ == "__main__":
    try:
        sys.argv = resume_arguments(sys.argv)
        check_resume(sys.argv, Path(__file__).parent / "conf")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    main()
