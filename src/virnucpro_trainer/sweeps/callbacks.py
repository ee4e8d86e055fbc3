"""The Hydra callbacks that write a sweep's summary when a multirun ends (conf/train.yaml,
conf/evaluate.yaml). Hydra makes them as every run starts, so this module stays light: the
summaries (scikit-learn and scipy, through the intervals) load when a multirun ends, and a run
whose settings are refused answers before they would."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from virnucpro_trainer.config.schema import is_search

log = logging.getLogger(__name__)


def report_failed(failed: list[str], sweep_dir: Path) -> None:
    """Name the jobs that did not finish and exit with status 1."""
    if not failed:
        return
    log.error(
        "%d job(s) of the sweep did not finish: %s (see %s)",
        len(failed),
        ", ".join(failed),
        sweep_dir / "summary.md",
    )
    sys.exit(1)


class SweepSummary(Callback):
    """Writes the summary. A sweep in which any job failed then exits with status 1. A search
    (the Optuna sweeper) writes its own, from its study (search/summary.py)."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        if is_search(config.hydra.sweeper):
            return
        from virnucpro_trainer.sweeps.training import write_summary

        sweep_dir = Path(config.hydra.sweep.dir)
        report_failed(write_summary(sweep_dir), sweep_dir)


class EvalSweepSummary(Callback):
    """Writes the comparison when the multirun ends; exits with status 1 if any job failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from virnucpro_trainer.sweeps.evaluation import write_eval_summary

        sweep_dir = Path(config.hydra.sweep.dir)
        report_failed(write_eval_summary(sweep_dir), sweep_dir)
