"""Experiment trackers: TensorBoard, MLflow and Weights & Biases, any of them at once
(`logger=[tensorboard,mlflow]`; docs/trackers.md).

Each gets the same content: every resolved config key as a parameter, every metrics.csv column per
epoch, the final test metrics with their intervals, and the report, pictures and results files
(the best model with logger.log_model=true). pipeline.run starts them right after the config is
checked, before any data is read, and closes them with the run's outcome.

    startup.py   cheap checks at start-up: package installed, tracking location usable
    content.py   the run's name and group, parameters, final metrics, files
    worker.py    the background thread that starts and feeds them (a failure: one warning)
    *_tracker.py one class per tracker: start, log_epochs, log_results, log_files, close
"""

from __future__ import annotations

from pathlib import Path

from hydra.utils import to_absolute_path
from omegaconf import DictConfig

from virnucpro_trainer.trackers.content import flat_params, run_identity
from virnucpro_trainer.trackers.startup import check_trackers, chosen, tracking_uri
from virnucpro_trainer.trackers.worker import Trackers

__all__ = ["Trackers", "start_trackers"]


def _make(name: str, cfg: DictConfig, launch_dir: Path):
    if name == "tensorboard":
        from virnucpro_trainer.trackers.tensorboard_tracker import TensorBoardTracker

        return TensorBoardTracker(cfg.logger.dir)
    if name == "mlflow":
        from virnucpro_trainer.trackers.mlflow_tracker import MLflowTracker

        return MLflowTracker(tracking_uri(cfg, launch_dir), cfg.logger.experiment_name)
    from virnucpro_trainer.trackers.wandb_tracker import WandbTracker

    return WandbTracker(cfg.logger.experiment_name, cfg.logger.entity, cfg.logger.mode)


def start_trackers(cfg: DictConfig, run_dir: Path) -> Trackers:
    """Check the trackers `cfg.logger` chooses (a UserError if one cannot work) and start them in
    the background; with none chosen, a Trackers that does nothing."""
    names = chosen(cfg)
    if not names:
        return Trackers([])
    launch_dir = Path(to_absolute_path(".")).resolve()
    check_trackers(cfg, launch_dir)
    trackers = [_make(name, cfg, launch_dir) for name in names]
    return Trackers(trackers, run_identity(run_dir, launch_dir), flat_params(cfg))
