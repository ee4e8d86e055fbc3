"""TensorBoard: event files in <run dir>/<logger.dir>; every metrics.csv column as a scalar per
epoch, the final metrics as scalars at the last epoch. View with `tensorboard --logdir outputs`."""

from __future__ import annotations

from pathlib import Path

from virnucpro_trainer.trackers.content import RunIdentity


class TensorBoardTracker:
    name = "tensorboard"

    def __init__(self, folder: str):
        self.setting = f"logger.dir={folder}"  # named in a start-up error
        self.folder = folder
        self.writer = None
        self.last_epoch = 0

    def start(self, identity: RunIdentity, params: dict) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(identity.run_dir / self.folder))

    def log_epochs(self, records: list[dict]) -> None:
        for record in records:
            self.last_epoch = int(record["epoch"])
            for column, value in record.items():
                if column != "epoch":
                    self.writer.add_scalar(column, value, self.last_epoch)
        self.writer.flush()

    def log_results(self, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, self.last_epoch)

    def log_files(self, run_dir: Path, files: list[Path]) -> None:
        """The files stay in the run directory, beside the event files."""

    def close(self, status: str) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
