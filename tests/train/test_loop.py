"""The training loop: fit restores the best epoch's weights (the old trainer kept the last
epoch's), divergence, limit_batches, and the callback after each epoch."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from virnucpro_trainer.config.schema import OptimizerConfig, SchedulerConfig
from virnucpro_trainer.data.batches import BatchSource
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.model import VirNucProMLP, build_optimizer, predict
from virnucpro_trainer.train.epoch_log import EPOCH_COLUMNS, EpochLog
from virnucpro_trainer.train.loop import EpochEnd, FitSettings, Training, fit, train_epoch

from helpers import clone_state, states_equal

CPU = torch.device("cpu")


@pytest.fixture
def one_thread():
    """Tiny tensors: OpenMP threads only add overhead (much more on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class SnapshotReport(EpochLog):
    """Writes metrics.csv as usual and also keeps a copy of the model's weights at each epoch."""

    def __init__(self, path, model):
        super().__init__(path)
        self.model = model
        self.states: dict[int, dict] = {}

    def write(self, record):
        super().write(record)
        self.states[record["epoch"]] = clone_state(self.model)


def overfitting_problem(n=64, width=8):
    """Validation rows are the training rows with opposite labels, so validation loss rises."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n, width, generator=gen)
    y = (x[:, 0] > 0).long()
    features, labels = torch.cat([x, x]), torch.cat([y, 1 - y])
    return features, labels, torch.arange(n), torch.arange(n, 2 * n)


@pytest.mark.parametrize(("patience", "epochs"), [(2, 20), (50, 5)], ids=["stops", "runs_out"])
def test_fit_restores_the_best_epoch_weights(tmp_path, one_thread, patience, epochs):
    features, labels, train_rows, val_rows = overfitting_problem()
    torch.manual_seed(0)
    model = VirNucProMLP(features.shape[1], hidden_dim=16)
    optimizer, scheduler = build_optimizer(model, OptimizerConfig(name="adamw", lr=0.01))
    report = SnapshotReport(tmp_path / "metrics.csv", model)

    source = BatchSource(features, labels, CPU)
    result = fit(
        Training(model, optimizer, scheduler, source),
        {"train": train_rows, "val": val_rows},
        FitSettings(epochs=epochs, batch_size=16, eval_batch_size=32, patience=patience),
        report,
    )

    assert result.best_epoch < result.epochs_run
    assert result.stopped_early == (result.epochs_run < epochs)
    if patience < epochs:
        assert result.epochs_run == result.best_epoch + patience
    else:
        assert result.epochs_run == epochs
    assert states_equal(clone_state(model), report.states[result.best_epoch])
    assert not states_equal(clone_state(model), report.states[result.epochs_run])
    _, _, val_loss = predict(model, source, val_rows, 32)
    assert val_loss == pytest.approx(result.best_loss, rel=1e-6)
    assert result.best_val_metrics["loss"] == result.best_loss
    # the optimizer state handed back is the best epoch's: AdamW counts its steps
    steps_per_epoch = len(list(source.train_batches(train_rows, 16, torch.Generator())))
    assert result.best_optimizer_state["state"][0]["step"] == result.best_epoch * steps_per_epoch

    with (tmp_path / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == EPOCH_COLUMNS
    assert [int(r["epoch"]) for r in rows] == list(range(1, result.epochs_run + 1))
    val_losses = [float(r["val_loss"]) for r in rows]
    assert int(np.argmin(val_losses)) + 1 == result.best_epoch
    assert val_losses[result.best_epoch - 1] == pytest.approx(result.best_loss)
    assert all(float(r["lr"]) == 0.01 for r in rows)


def fit_overfitting_problem(tmp_path, optimizer_cfg, callbacks=None, **options):
    features, labels, train_rows, val_rows = overfitting_problem()
    torch.manual_seed(0)
    model = VirNucProMLP(features.shape[1], hidden_dim=16)
    optimizer, scheduler = build_optimizer(model, optimizer_cfg)
    settings = {"epochs": 5, "patience": 5} | options
    result = fit(
        Training(model, optimizer, scheduler, BatchSource(features, labels, CPU)),
        {"train": train_rows, "val": val_rows},
        FitSettings(batch_size=16, eval_batch_size=32, **settings),
        EpochLog(tmp_path / "metrics.csv"),
        **(callbacks or {}),
    )
    return model, result


def test_divergence_in_the_first_epoch_is_a_clear_error(tmp_path, one_thread):
    with pytest.raises(UserError, match="training diverged in epoch 1 .*lower optimizer.lr"):
        fit_overfitting_problem(tmp_path, OptimizerConfig(lr=1e12))


def test_divergence_later_stops_with_the_best_epoch(tmp_path, one_thread, caplog):
    # lr 0.01 in epoch 1, then 1e12: the weights blow up in epoch 2
    cfg = OptimizerConfig(lr=0.01, scheduler=SchedulerConfig(step_size=1, gamma=1e14))
    model, result = fit_overfitting_problem(tmp_path, cfg)
    assert "training diverged in epoch 2" in caplog.text
    assert (result.best_epoch, result.epochs_run, result.stopped_early) == (1, 1, True)
    assert all(
        torch.isfinite(p).all() for p in model.state_dict().values() if p.is_floating_point()
    )


def test_train_epoch_limit_stops_after_that_many_batches(one_thread):
    features, labels, train_rows, _ = overfitting_problem()  # 64 rows: 8 batches of 8
    model = VirNucProMLP(features.shape[1], hidden_dim=16)
    seen = []
    model.register_forward_hook(lambda _m, inputs, _out: seen.append(len(inputs[0])))
    optimizer, _ = build_optimizer(model, OptimizerConfig())
    source = BatchSource(features, labels, CPU)
    training = Training(model, optimizer, None, source)
    train_epoch(training, train_rows, 8, limit=3)
    assert seen == [8, 8, 8]
    seen.clear()
    train_epoch(training, train_rows, 8, limit=100)
    assert len(seen) == 8


@pytest.mark.parametrize(("patience", "epochs"), [(2, 20), (50, 5)], ids=["stops", "runs_out"])
def test_on_epoch_gets_each_epoch_and_knows_the_last(tmp_path, one_thread, patience, epochs):
    seen: list[EpochEnd] = []
    _, result = fit_overfitting_problem(tmp_path, OptimizerConfig(lr=0.01),
                                        {"on_epoch": seen.append}, epochs=epochs,
                                        patience=patience)  # fmt: skip
    assert result.stopped_early == (patience < epochs)
    assert [end.epoch for end in seen] == list(range(1, result.epochs_run + 1))
    assert [end.last for end in seen] == [False] * (result.epochs_run - 1) + [True]
    assert [end.record for end in seen] == result.history
    assert seen[-1].best_metrics == result.best_val_metrics
    assert seen[0].best_metrics["loss"] == seen[0].record["val_loss"]


class Stop(Exception):
    pass


def test_an_exception_from_on_epoch_stops_the_fit_after_that_epochs_state(tmp_path, one_thread):
    saved = []

    def stop_at_2(end: EpochEnd) -> None:
        if end.epoch == 2:
            raise Stop(end.record)

    callbacks = {"on_epoch": stop_at_2, "save_state": lambda state: saved.append(state["epoch"])}
    with pytest.raises(Stop):
        fit_overfitting_problem(tmp_path, OptimizerConfig(lr=0.01), callbacks)
    assert saved == [1, 2]
    with (tmp_path / "metrics.csv").open() as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2]
