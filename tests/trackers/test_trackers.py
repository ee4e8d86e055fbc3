"""Trackers, the quick part: choosing them with the logger group, their settings' checks, what
goes in as final metrics, and the start-up errors, which come before any data is read.

The runs that read back what MLflow and W&B stored are in e2e/test_trackers_runs.py (e2e: MLflow
sets up its database in ~5 s, W&B starts its own service process)."""

from __future__ import annotations

import math
import sys

import pytest
from omegaconf import OmegaConf

from virnucpro_trainer.config.checks import validate
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.trackers.content import final_metrics
from virnucpro_trainer.trackers.startup import tracking_uri

from helpers import TINY, compose_train, train_in_process

LOCAL_CLOSED_PORT = "http://127.0.0.1:9"  # the discard port: nothing listens there


def switched_on(cfg) -> list[str]:
    return [n for n in ("tensorboard", "mlflow", "wandb") if cfg.logger[n]]


def test_the_logger_group_switches_trackers_on():
    assert switched_on(compose_train()) == []  # logger=none
    assert switched_on(compose_train("logger=wandb")) == ["wandb"]
    several = compose_train("logger=[tensorboard,mlflow,wandb]")
    assert switched_on(several) == ["tensorboard", "mlflow", "wandb"]
    validate(several)


@pytest.fixture(scope="module")
def mlflow_cfg():
    return compose_train("logger=mlflow")


def with_setting(cfg, key: str, value):
    changed = cfg.copy()
    OmegaConf.update(changed, key, value)
    return changed


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("tracking_uri", "outputs/mlflow.db", "logger.tracking_uri must be sqlite:///<file>"),
        ("tracking_uri", "sqlite://x.db", "logger.tracking_uri must be"),
        ("tracking_uri", "http://", "logger.tracking_uri must be"),
        ("mode", "offlne", r"logger.mode must be one of \('online', 'offline', 'disabled'\)"),
        ("experiment_name", " ", "logger.experiment_name must be a non-empty name"),
        ("dir", "/abs", "logger.dir must be a folder name"),
    ],
)
def test_tracker_settings_are_checked(mlflow_cfg, key, value, message):
    with pytest.raises(UserError, match=message):
        validate(with_setting(mlflow_cfg, f"logger.{key}", value))


def test_tracking_uris_of_every_kind_pass(mlflow_cfg):
    for uri in ("sqlite:///x.db", "sqlite:////abs/x.db", "http://host:5000", "file:mlruns"):
        validate(with_setting(mlflow_cfg, "logger.tracking_uri", uri))
    validate(with_setting(mlflow_cfg, "logger.tracking_uri", "postgresql+psycopg2://u@h/db"))


def test_the_default_tracking_uri_is_a_database_under_the_launch_directory(mlflow_cfg, tmp_path):
    assert tracking_uri(mlflow_cfg, tmp_path) == f"sqlite:///{tmp_path}/outputs/mlflow.db"
    relative = with_setting(mlflow_cfg, "logger.tracking_uri", "sqlite:///db/x.db")
    assert tracking_uri(relative, tmp_path) == f"sqlite:///{tmp_path}/db/x.db"


def test_final_metrics_name_every_number_of_the_results():
    test = {
        "loss": 0.3,
        "f1": 0.9,
        "auroc": math.nan,  # one class only: left out
        "confusion_matrix": [[1, 2], [3, 4]],
        "threshold": 0.5,
        "intervals": {"f1": [0.8, 0.95], "auroc": [None, None]},
        "chosen_threshold": {
            "threshold": 0.3,
            "chosen_on": "validation",
            "f1": 0.91,
            "intervals": {"f1": [0.85, 0.97]},
        },
        "cutoffs": {"table": [{"threshold": 0.2}]},
        "best_epoch": 4,
        "stopped_early": True,
        "seed": 1,
        "optimized_metric": {"name": "val_loss", "value": 0.25},
    }
    assert final_metrics(test) == {
        "test_loss": 0.3,
        "test_f1": 0.9,
        "test_threshold": 0.5,
        "test_f1_low": 0.8,
        "test_f1_high": 0.95,
        "test_chosen_threshold": 0.3,
        "test_chosen_f1": 0.91,
        "test_chosen_f1_low": 0.85,
        "test_chosen_f1_high": 0.97,
        "best_epoch": 4.0,
        "stopped_early": 1.0,
        "optimized_value": 0.25,
    }


def nothing_was_read(tmp_path) -> bool:
    """No feature store, no split, no run output: the run stopped before reading data."""
    data = tmp_path / "data/synthetic"
    made = [p for p in ("feature_cache", "test_set") if (data / p).exists()]
    runs = list((tmp_path / "outputs/in_process").glob("*/*"))
    return not made and not runs


@pytest.mark.usefixtures("tiny_data")
def test_a_missing_extra_is_named_with_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if `pip install` had never added it
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(UserError) as err:
        train_in_process(tmp_path, *TINY, "logger=[mlflow,wandb]")
    assert (
        'logger=mlflow needs the mlflow package, which is not installed: pip install -e ".[mlflow]"'
        in str(err.value)
    )
    assert 'pip install -e ".[wandb]"' in str(err.value)
    assert nothing_was_read(tmp_path)


@pytest.mark.usefixtures("tiny_data")
def test_an_unreachable_tracking_server_stops_the_run_at_start_up(tmp_path):
    with pytest.raises(UserError) as err:
        train_in_process(
            tmp_path, *TINY, "logger=mlflow", f"logger.tracking_uri={LOCAL_CLOSED_PORT}"
        )
    message = str(err.value)
    assert (
        f"logger.tracking_uri={LOCAL_CLOSED_PORT}: cannot reach the MLflow tracking server"
        in message
    )
    assert nothing_was_read(tmp_path)


@pytest.mark.usefixtures("tiny_data")
def test_a_tracking_file_that_is_no_database_stops_the_run_at_start_up(tmp_path):
    (tmp_path / "notes.db").write_text("not a database")
    with pytest.raises(UserError, match="notes.db is not an SQLite database"):
        train_in_process(tmp_path, *TINY, "logger=mlflow", "logger.tracking_uri=sqlite:///notes.db")
    assert nothing_was_read(tmp_path)


@pytest.mark.usefixtures("tiny_data")
def test_wandb_online_without_its_server_says_how_to_work_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_BASE_URL", LOCAL_CLOSED_PORT)
    with pytest.raises(UserError, match="cannot reach W&B .* logger.mode=offline"):
        train_in_process(tmp_path, *TINY, "logger=wandb")
    assert nothing_was_read(tmp_path)
