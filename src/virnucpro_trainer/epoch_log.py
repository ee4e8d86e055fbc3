"""The per-epoch log: a log line and a metrics.csv row per epoch (and TensorBoard scalars)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from virnucpro_trainer.errors import UserError

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
    """Appends epoch records to `metrics.csv` (flushed every epoch) and logs them."""

    def __init__(self, path: Path, tensorboard_dir: Path | None = None):
        self.path = path
        self.tensorboard = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise UserError(
                    "logger=tensorboard needs the tensorboard package: "
                    "pip install -e '.[tensorboard]'"
                ) from None
            self.tensorboard = SummaryWriter(str(tensorboard_dir))

    def start(self, history: list[dict]) -> None:
        """(Re)write the file with the epochs done so far (none, or those of a resumed run)."""
        with self.path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(EPOCH_COLUMNS)
            writer.writerows([record[c] for c in EPOCH_COLUMNS] for record in history)

    def write(self, record: dict) -> None:
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([record[c] for c in EPOCH_COLUMNS])
        if self.tensorboard is not None:
            for column in EPOCH_COLUMNS[1:]:
                self.tensorboard.add_scalar(column, record[column], record["epoch"])
            self.tensorboard.flush()
        log.info(
            "epoch %3d  train_loss %.4f  val_loss %.4f  acc %.4f  prec %.4f  rec %.4f  f1 %.4f  "
            "auroc %.4f  lr %.3g  %.1fs (total %.1fs)",
            *(record[c] for c in EPOCH_COLUMNS),
        )
