"""The per-epoch log: a log line and a metrics.csv row per epoch, and the record to the trackers
(TensorBoard, MLflow, W&B: trackers/)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from virnucpro_trainer.trackers import Trackers

log = logging.getLogger(__name__)

VAL_METRICS = ("accuracy", "precision", "recall", "f1", "auroc")  # validated every epoch
EPOCH_COLUMNS = (
    "epoch",
    "train_loss",
    "val_loss",
    *(f"val_{m}" for m in VAL_METRICS),
    "lr",
    "epoch_seconds",
    "total_seconds",
)


class EpochLog:
    """Appends epoch records to `metrics.csv` (flushed every epoch), logs them and hands them to
    the trackers (which send them from their own thread)."""

    def __init__(self, path: Path, trackers: Trackers | None = None):
        self.path = path
        self.trackers = trackers

    def start(self, history: list[dict]) -> None:
        """(Re)write the file with the epochs done so far (none, or those of a resumed run, which
        the trackers get again: a resumed run is a new tracker run), once the trackers are up."""
        if self.trackers is not None:
            self.trackers.wait_ready()  # a tracker that could not start stops the run here
        with self.path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(EPOCH_COLUMNS)
            writer.writerows([record[c] for c in EPOCH_COLUMNS] for record in history)
        if self.trackers is not None:
            for record in history:
                self.trackers.log_epoch({c: record[c] for c in EPOCH_COLUMNS})

    def write(self, record: dict) -> None:
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([record[c] for c in EPOCH_COLUMNS])
        if self.trackers is not None:
            self.trackers.log_epoch({c: record[c] for c in EPOCH_COLUMNS})
        log.info(
            "epoch %3d  train_loss %.4f  val_loss %.4f  acc %.4f  prec %.4f  rec %.4f  f1 %.4f  "
            "auroc %.4f  lr %.3g  %.1fs (total %.1fs)",
            *(record[c] for c in EPOCH_COLUMNS),
        )
