"""MLflow: one run per training run, through MlflowClient (no global active run, so jobs of a
multirun in one process never share one). A sweep's jobs are runs of one experiment with the tag
`sweep_dir`; with a local SQLite database its artifacts go beside it, in `mlartifacts/`."""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from pathlib import Path

from virnucpro_trainer.trackers.content import RunIdentity

BATCH = 100  # parameters per call (MLflow's limit)
TAG_CHARS = 5000  # the longest tag value every MLflow version takes


def _value(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@contextlib.contextmanager
def _one_process_at_a_time(uri: str):
    """Jobs starting together in several processes take turns to create a new SQLite database
    (its tables) and the experiment; a server needs no such lock."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    with open(f"{uri.removeprefix('sqlite:///')}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


class MLflowTracker:
    name = "mlflow"

    def __init__(self, uri: str, experiment_name: str):
        self.setting = f"logger.tracking_uri={uri}"  # named in a start-up error
        self.uri = uri
        self.experiment_name = experiment_name
        self.client = None
        self.run_id: str | None = None

    def start(self, identity: RunIdentity, params: dict) -> None:
        from mlflow.tracking import MlflowClient

        with _one_process_at_a_time(self.uri):
            self.client = MlflowClient(tracking_uri=self.uri)
            experiment_id = self._experiment_id()
        tags = {k: v[:TAG_CHARS] for k, v in identity.tags.items()}
        run = self.client.create_run(experiment_id, tags=tags, run_name=identity.name)
        self.run_id = run.info.run_id
        from mlflow.entities import Param

        items = [Param(k, _value(v)) for k, v in params.items()]
        for i in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + BATCH])

    def _experiment_id(self) -> str:
        experiment = self.client.get_experiment_by_name(self.experiment_name)
        if experiment is not None:
            return experiment.experiment_id
        location = None
        if self.uri.startswith("sqlite:///"):
            db = Path(self.uri.removeprefix("sqlite:///"))
            location = (db.parent / "mlartifacts").as_uri()
        try:
            return self.client.create_experiment(self.experiment_name, artifact_location=location)
        except Exception:  # a job of the same sweep created it first (on a server)
            experiment = self.client.get_experiment_by_name(self.experiment_name)
            if experiment is None:
                raise
            return experiment.experiment_id

    def log_epochs(self, records: list[dict]) -> None:
        """Every column of every record, with its epoch as the step."""
        self._log([(k, v, int(r["epoch"])) for r in records for k, v in r.items() if k != "epoch"])

    def log_results(self, metrics: dict[str, float]) -> None:
        self._log([(k, v, 0) for k, v in metrics.items()])

    def _log(self, values: list[tuple[str, float, int]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key, float(value), now, step) for key, value, step in values]
        for i in range(0, len(metrics), 1000):  # MLflow's limit per call
            self.client.log_batch(self.run_id, metrics=metrics[i : i + 1000])

    def log_files(self, run_dir: Path, files: list[Path]) -> None:
        for path in files:
            folder = path.parent.as_posix()
            self.client.log_artifact(
                self.run_id, str(run_dir / path), None if folder == "." else folder
            )

    def close(self, status: str) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status)
            self.run_id = None
