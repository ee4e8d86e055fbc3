"""Train the VirNucPro MLP: `python train.py [overrides]` (see README.md and conf/)."""

import functools
import math
import shlex
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from virnucpro_trainer.config.checks import validate
from virnucpro_trainer.config.schema import is_search, register_configs
from virnucpro_trainer.entry import check_overrides, options_first, run_task
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.run_dir import LAST
from virnucpro_trainer.search.trial import (
    check_objectives,
    epoch_reporter,
    is_trial,
    name_objectives,
    run_trial,
)
from virnucpro_trainer.train.resume import check_resume, resume_arguments

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | tuple[float, ...]:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    # A search sweeper (Optuna) needs a failed trial raised: it marks the trial failed (a NaN
    # return would look like a score) and goes on.
    searching = hydra_cfg.mode == RunMode.MULTIRUN and is_search(hydra_cfg.sweeper)

    def train() -> float | tuple[float, ...]:
        # a bad setting is refused here, before the pipeline loads torch, scikit-learn and scipy
        # (seconds), and --help and a refused override never load them
        validate(cfg)
        from virnucpro_trainer.train.pipeline import run

        if searching:  # several objectives: optimized_metrics, one per direction
            check_objectives(cfg.optimized_metrics, hydra_cfg.sweeper.direction)
        if is_trial(cfg.trial):  # reports each epoch to its study; may continue an earlier attempt
            name_objectives(cfg.trial, cfg.optimized_metrics)
            report = epoch_reporter(cfg.trial, cfg.optimized_metric)
            value = run_trial(cfg, run_dir, functools.partial(run, on_epoch=report))
        else:
            value = run(cfg, run_dir)
        values = value if isinstance(value, tuple) else (value,)
        if searching and not all(math.isfinite(v) for v in values):
            names = ", ".join(cfg.optimized_metrics or [cfg.optimized_metric])
            raise UserError(f"{names} is {value}: this trial has no score")
        return value

    def after_interrupt() -> str:
        if (run_dir / LAST).exists() and is_trial(cfg.trial):
            return f"the search's retry of this trial continues from {run_dir / LAST}"
        if (run_dir / LAST).exists():
            resume = shlex.quote(f"resume={run_dir}")
            return (
                f"the state after the last finished epoch is in {run_dir / LAST}; "
                f"continue with: python train.py {resume}"
            )
        return "no epoch had finished; nothing to resume: start the run again"

    return run_task(
        train,
        run_dir,
        result_name=cfg.checkpoint_name,
        what="run",
        verbose=cfg.verbose,
        raise_in_multirun=searching,
        after_interrupt=after_interrupt,
    )


if __name__ == "__main__":
    try:
        sys.argv = options_first(resume_arguments(sys.argv))
        check_resume(sys.argv, Path(__file__).parent / "conf")
        check_overrides(sys.argv, Path(__file__).parent / "conf", "train")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    main()
