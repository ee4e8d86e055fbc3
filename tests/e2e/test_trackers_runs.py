"""What a run sends to MLflow and W&B, read back through each tracker's own storage: MLflow's
client on the SQLite database, W&B's offline run file (`run-<id>.wandb`: W&B's protobuf records
in the LevelDB log format that `wandb sync` reads).

e2e: MLflow sets up a new database in ~5 s and W&B starts its own service process, so these stay
out of the fast loop (trackers/test_trackers.py has the quick checks; the TensorBoard test in
train/test_pipeline.py runs the trackers' thread on every fast run)."""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from virnucpro_trainer.config.schema import resolve_paths
from virnucpro_trainer.trackers.content import final_metrics, flat_params
from virnucpro_trainer.train.epoch_log import EPOCH_COLUMNS, EpochLog

from helpers import TINY, compose_train, run_train, train_in_process, working_directory

pytestmark = pytest.mark.e2e

PICTURES = ("calibration.png", "confusion_matrix.png", "learning_curves.png", "roc_pr_curves.png")


@pytest.fixture(autouse=True)
def wandb_in_tmp(tmp_path, monkeypatch):
    """W&B's cache, staging and config folders in the test's folder, not the home directory."""
    for name in ("CACHE", "DATA", "CONFIG"):
        monkeypatch.setenv(f"WANDB_{name}_DIR", str(tmp_path / f"wandb_{name.lower()}"))
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)


def epochs_csv(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def as_param(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def run_params(cwd: Path, *overrides: str) -> dict:
    """The flattened config of a run in `cwd`, paths made absolute as the run makes them."""
    cfg = compose_train(*overrides)
    with working_directory(cwd):
        resolve_paths(cfg)
    return flat_params(cfg)


def mlflow_runs(db: Path) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("virnucpro")
    return client, client.search_runs([experiment.experiment_id], order_by=["tags.job_num"])


@pytest.mark.usefixtures("tiny_data")
def test_mlflow_gets_config_epochs_results_and_files(tmp_path):
    run_dir = train_in_process(tmp_path, *TINY, "logger=mlflow", "logger.log_model=true")
    client, (run,) = mlflow_runs(tmp_path / "outputs/mlflow.db")  # the default location
    assert run.info.status == "FINISHED"
    assert run.data.tags["run_dir"] == str(run_dir.resolve())
    params = run_params(tmp_path, *TINY, "logger=mlflow", "logger.log_model=true")
    assert run.data.params == {k: as_param(v) for k, v in params.items()}
    assert run.data.params["cutoffs.viral_fractions"] == "[0.01, 0.02, 0.05, 0.1, 0.25, 0.5]"
    rows = epochs_csv(run_dir)
    for column in EPOCH_COLUMNS[1:]:
        history = client.get_metric_history(run.info.run_id, column)
        assert [(m.step, m.value) for m in history] == [(r["epoch"], r[column]) for r in rows]
    test = json.loads((run_dir / "test_metrics.json").read_text())
    expected = final_metrics(test)
    assert {k: run.data.metrics[k] for k in expected} == pytest.approx(expected)
    assert run.data.metrics["test_f1_low"] == test["intervals"]["f1"][0]
    assert run.data.metrics["test_chosen_mcc"] == test["chosen_threshold"]["mcc"]
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.md", "test_metrics.json", "metrics.csv", *PICTURES} <= files
    assert "model_fastesm650.pth" in files  # logger.log_model=true


@pytest.mark.usefixtures("tiny_data", "no_figures")
def test_a_tracker_failing_during_training_warns_once_and_the_run_goes_on(
    tmp_path, monkeypatch, caplog
):
    db = tmp_path / "mlflow.db"
    write = EpochLog.write

    def write_then_break_the_store(self, record):
        if record["epoch"] == 2:  # the tracker's database loses its metrics table
            with sqlite3.connect(db) as connection:
                connection.execute("DROP TABLE metrics")
        write(self, record)

    monkeypatch.setattr(EpochLog, "write", write_then_break_the_store)
    with caplog.at_level(logging.WARNING):
        run_dir = train_in_process(
            tmp_path, *TINY, "epochs=4", "logger=mlflow", f"logger.tracking_uri=sqlite:///{db}"
        )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    failed = [w for w in warnings if w.startswith("logger=mlflow failed")]
    assert len(failed) == 1 and "left out for the rest of this run" in failed[0]
    assert len(epochs_csv(run_dir)) == 4
    for name in ("test_metrics.json", "report.md", "model_fastesm650.pth", "checkpoints/last.pt"):
        assert (run_dir / name).is_file()
    _, (run,) = mlflow_runs(db)
    assert run.info.status == "FAILED"


# W&B's offline run file: a LevelDB-format log of protobuf records (wandb.proto).
BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def wandb_records(run_file: Path) -> list:
    """Every record of a `run-<id>.wandb` file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = run_file.read_bytes()
    if len(data) < HEADER:  # not written yet
        return []
    assert data[:4] == b":W&B", "not a W&B run file"
    records, pos, pending = [], HEADER, b""
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # the rest of a block is padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk, pos = data[pos + HEADER : pos + HEADER + length], pos + HEADER + length
        if len(chunk) < length:  # still being written
            break
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
        elif kind == 0:
            break
    return records


def wandb_run(offline_dir: Path) -> dict:
    """An offline run's project, group, name, config, history by step, summary and files."""
    (run_file,) = offline_dir.glob("run-*.wandb")
    deadline = time.monotonic() + 60
    while True:  # W&B's service may still be writing the file after run.finish() returned
        records = wandb_records(run_file)
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            break
        assert time.monotonic() < deadline, f"{run_file} has no exit record"
        time.sleep(0.2)
    out = {"config": {}, "history": {}, "summary": {}, "files": set()}
    for record in records:
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            out.update(project=r.project, group=r.run_group, name=r.display_name)
            out["config"].update({u.key: json.loads(u.value_json) for u in r.config.update})
        elif kind == "history":
            items = {
                "/".join(i.nested_key) or i.key: json.loads(i.value_json)
                for i in record.history.item
            }
            out["history"][record.history.step.num] = items
        elif kind == "summary":
            for u in record.summary.update:
                out["summary"]["/".join(u.nested_key) or u.key] = json.loads(u.value_json)
        elif kind == "files":
            out["files"].update(f.path for f in record.files.files)
    return out


@pytest.mark.usefixtures("tiny_data")
def test_wandb_offline_gets_config_epochs_results_and_files(tmp_path):
    run_dir = train_in_process(tmp_path, *TINY, "logger=wandb", "logger.mode=offline")
    (offline_dir,) = (run_dir / "wandb").glob("offline-run-*")
    run = wandb_run(offline_dir)
    assert (run["project"], run["group"]) == ("virnucpro", "")
    params = run_params(tmp_path, *TINY, "logger=wandb", "logger.mode=offline")
    assert {k: run["config"][k] for k in params} == params
    rows = epochs_csv(run_dir)
    for row in rows:
        logged = run["history"][int(row["epoch"])]
        assert {c: logged[c] for c in EPOCH_COLUMNS[1:]} == pytest.approx(
            {c: row[c] for c in EPOCH_COLUMNS[1:]}
        )
    expected = final_metrics(json.loads((run_dir / "test_metrics.json").read_text()))
    assert {k: run["summary"][k] for k in expected} == pytest.approx(expected)
    assert {"report.md", "test_metrics.json", "metrics.csv", *PICTURES} <= run["files"]
    assert "model_fastesm650.pth" not in run["files"]  # only with logger.log_model=true
    assert (offline_dir / "files/report.md").read_bytes() == (run_dir / "report.md").read_bytes()


@pytest.mark.usefixtures("tiny_data")
def test_a_two_job_sweep_is_two_runs_of_one_experiment_or_group(tmp_path):
    loggers = "logger=[tensorboard,mlflow,wandb]"
    run_train(tmp_path, "--multirun", *TINY, "epochs=2", loggers, "logger.mode=offline", "seed=1,2")
    (sweep,) = (tmp_path / "outputs/multirun").glob("*/*")
    client, runs = mlflow_runs(tmp_path / "outputs/mlflow.db")
    assert [r.data.tags["job_num"] for r in runs] == ["0", "1"]
    assert {r.data.tags["sweep_dir"] for r in runs} == {str(sweep.resolve())}
    assert [r.data.params["seed"] for r in runs] == ["1", "2"]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert not any(
        a.path.endswith(".pth") for r in runs for a in client.list_artifacts(r.info.run_id)
    )
    jobs = [
        wandb_run(d) for job in ("0", "1") for d in (sweep / job / "wandb").glob("offline-run-*")
    ]
    group = str(sweep.relative_to(tmp_path))
    assert [(j["group"], j["config"]["seed"]) for j in jobs] == [(group, 1), (group, 2)]
    assert all((sweep / job / "tensorboard").is_dir() for job in ("0", "1"))


@contextlib.contextmanager
def mlflow_ui(cwd: Path):
    """`mlflow ui --backend-store-uri sqlite:///outputs/mlflow.db` in `cwd`, as the docs say to
    run it; yields its address once it answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow), "ui", "--backend-store-uri", "sqlite:///outputs/mlflow.db"]
    server = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its workers in one process group, ended together
    )
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, f"mlflow ui stopped: {server.stderr.read().decode()}"
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{address}/health", timeout=5)
                break
            assert time.monotonic() < deadline, "mlflow ui did not answer"
            time.sleep(0.5)
        yield address
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.usefixtures("tiny_data", "no_figures")
def test_mlflow_ui_shows_the_runs_with_no_server_started_first(tmp_path):
    run_dir = train_in_process(tmp_path, *TINY, "epochs=2", "logger=mlflow")
    with mlflow_ui(tmp_path) as address:
        api = f"{address}/ajax-api/2.0/mlflow"  # what the UI's pages ask
        found = post(f"{api}/experiments/search", {"max_results": 10})["experiments"]
        (experiment,) = [e for e in found if e["name"] == "virnucpro"]
        search = {"experiment_ids": [experiment["experiment_id"]]}
        (run,) = post(f"{api}/runs/search", search)["runs"]
        assert run["info"]["run_name"] == str(run_dir.relative_to(tmp_path))
        query = f"path=report.md&run_uuid={run['info']['run_id']}"
        with urllib.request.urlopen(f"{address}/get-artifact?{query}", timeout=30) as report:
            assert report.read() == (run_dir / "report.md").read_bytes()
