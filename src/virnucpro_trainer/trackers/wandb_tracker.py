"""Weights & Biases: one run per training run in the project logger.experiment_name; a sweep's
jobs share the group named after the sweep directory. W&B's own files go into the run directory
(`wandb/`; WANDB_DIR chooses another place); with logger.mode=offline nothing leaves the machine
until `wandb sync`."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from virnucpro_trainer.trackers.content import RunIdentity

log = logging.getLogger(__name__)

EXIT_CODES = {"FINISHED": 0, "FAILED": 1, "KILLED": 130}


class WandbTracker:
    name = "wandb"

    def __init__(self, project: str, entity: str | None, mode: str):
        self.setting = f"logger.mode={mode}, project {project}"  # named in a start-up error
        self.project = project
        self.entity = entity
        self.mode = mode
        self.run = None

    def start(self, identity: RunIdentity, params: dict) -> None:
        import wandb

        self.run = wandb.init(
            project=self.project,
            entity=self.entity,
            mode=self.mode,
            dir=os.environ.get("WANDB_DIR") or str(identity.run_dir),
            name=identity.name,
            group=identity.group,
            job_type="train",
            config={**params, **{f"run.{k}": v for k, v in identity.tags.items()}},
            notes=identity.tags.get("overrides"),
            settings=wandb.Settings(console="off", quiet=True),
        )

    def log_epochs(self, records: list[dict]) -> None:
        for record in records:
            values = {k: v for k, v in record.items() if k != "epoch"}
            self.run.log(values, step=int(record["epoch"]))

    def log_results(self, metrics: dict[str, float]) -> None:
        self.run.summary.update(metrics)

    def log_files(self, run_dir: Path, files: list[Path]) -> None:
        """Copies in the W&B run's files folder: uploaded at the end, or by `wandb sync`."""
        files_dir = Path(self.run.dir)
        for path in files:
            target = files_dir / path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run_dir / path, target)
            self.run.save(str(target), base_path=str(files_dir), policy="now")

    def close(self, status: str) -> None:
        if self.run is None:
            return
        run, self.run = self.run, None
        offline = self.mode == "offline"
        where = Path(run.dir).parent
        run.finish(exit_code=EXIT_CODES.get(status, 1))
        if offline:
            log.info("W&B offline run in %s; upload it with: wandb sync %s", where, where)
