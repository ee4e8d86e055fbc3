"""Early stopping, the training loop's restore of the best weights, batches, metrics, checkpoint."""

from __future__ import annotations

import copy
import csv
import math
from datetime import datetime

import numpy as np
import pytest
import torch
from torch import nn

from virnucpro_trainer.checkpoint import checkpoint_metadata, load_checkpoint, save_checkpoint
from virnucpro_trainer.config import OptimizerConfig, SchedulerConfig
from virnucpro_trainer.data.batches import BatchSource
from virnucpro_trainer.early_stopping import EarlyStopping
from virnucpro_trainer.epoch_log import EPOCH_COLUMNS, EpochLog
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.loop import FitSettings, fit, predict, train_epoch
from virnucpro_trainer.metrics import classification_metrics
from virnucpro_trainer.model import VirNucProMLP, build_optimizer

from helpers import PredictionStepMLP

CPU = torch.device("cpu")


def clone_state(module: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# EarlyStopping


def test_early_stopping_keeps_a_real_copy_of_the_best_state():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    stopper = EarlyStopping(patience=3)
    assert stopper.step(1.0, 1, {"model": model.state_dict()})
    at_best = clone_state(model)

    with torch.no_grad():
        model.weight.add_(1.0)
        model.bias.zero_()
    assert not stopper.step(2.0, 2, {"model": model.state_dict()})

    assert states_equal(stopper.best_state["model"], at_best)
    model.load_state_dict(stopper.best_state["model"])
    assert states_equal(clone_state(model), at_best)
    assert stopper.best_epoch == 1
    assert stopper.best_loss == 1.0


def test_early_stopping_patience_counts_epochs_without_improvement():
    stopper = EarlyStopping(patience=2)
    history = []
    for epoch, loss in enumerate([1.0, 0.8, 0.9, 0.7, 0.75, 0.7, 0.9], start=1):
        history.append((stopper.step(loss, epoch, {}), stopper.bad_epochs, stopper.should_stop))
    assert history == [
        (True, 0, False),
        (True, 0, False),
        (False, 1, False),
        (True, 0, False),
        (False, 1, False),
        (False, 2, True),  # equal to the best is not an improvement
        (False, 3, True),
    ]
    assert (stopper.best_epoch, stopper.best_loss) == (4, 0.7)


def test_early_stopping_min_delta():
    stopper = EarlyStopping(patience=5, min_delta=0.1)
    assert stopper.step(1.0, 1, {"x": 1})
    assert not stopper.step(0.95, 2, {"x": 2})  # better, but by less than min_delta
    assert stopper.step(0.85, 3, {"x": 3})
    assert (stopper.best_epoch, stopper.best_loss, stopper.best_state) == (3, 0.85, {"x": 3})


def test_early_stopping_ignores_nan():
    stopper = EarlyStopping(patience=1)
    assert not stopper.step(math.nan, 1, {})
    assert stopper.best_state is None
    assert stopper.should_stop


# fit: restoring the best weights (the old trainer kept the last epoch's)


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
        model,
        optimizer,
        scheduler,
        source,
        train_rows,
        val_rows,
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


def fit_overfitting_problem(tmp_path, optimizer_cfg, **options):
    features, labels, train_rows, val_rows = overfitting_problem()
    torch.manual_seed(0)
    model = VirNucProMLP(features.shape[1], hidden_dim=16)
    optimizer, scheduler = build_optimizer(model, optimizer_cfg)
    settings = {"epochs": 5, "patience": 5} | options
    result = fit(
        model,
        optimizer,
        scheduler,
        BatchSource(features, labels, CPU),
        train_rows,
        val_rows,
        FitSettings(batch_size=16, eval_batch_size=32, **settings),
        EpochLog(tmp_path / "metrics.csv"),
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
    train_epoch(model, source, train_rows, 8, optimizer, torch.Generator(), limit=3)
    assert seen == [8, 8, 8]
    seen.clear()
    train_epoch(model, source, train_rows, 8, optimizer, torch.Generator(), limit=100)
    assert len(seen) == 8


# batches: each row's single feature is its own index, so a batch shows which rows it holds


def batch_rows(rows, batch_size, seed, **options):
    n = int(rows.max()) + 1
    source = BatchSource(
        torch.arange(n, dtype=torch.float32)[:, None], torch.zeros(n).long(), CPU, **options
    )
    gen = torch.Generator().manual_seed(seed)
    return [x[:, 0].long() for x, _ in source.train_batches(rows, batch_size, gen)]


def test_train_batches_cover_every_row_once():
    rows = torch.arange(100, 110)
    batches = batch_rows(rows, 4, seed=0)
    assert [len(b) for b in batches] == [4, 4, 2]
    joined = torch.cat(batches)
    assert sorted(joined.tolist()) == rows.tolist()
    assert joined.tolist() != rows.tolist()  # shuffled


def test_train_batches_seeded():
    rows = torch.arange(50)

    def order(seed):
        return torch.cat(batch_rows(rows, 8, seed)).tolist()

    assert order(3) == order(3)
    assert order(3) != order(4)


def test_train_batches_drop_a_trailing_single_row():
    batches = batch_rows(torch.arange(9), 4, seed=0)
    assert [len(b) for b in batches] == [4, 4]
    assert len(set(torch.cat(batches).tolist())) == 8


def test_eval_batches_keep_row_order_and_labels():
    features = torch.arange(10, dtype=torch.float16)[:, None]
    labels = torch.arange(10) % 2
    source = BatchSource(features, labels, CPU)
    rows = torch.tensor([1, 2, 5, 7, 8])
    out = list(source.eval_batches(rows, 2))
    assert [len(y) for _, y in out] == [2, 2, 1]
    x = torch.cat([b for b, _ in out])
    assert x.dtype == torch.float32  # float16 storage, float32 math
    assert x[:, 0].long().tolist() == rows.tolist()
    assert torch.cat([y for _, y in out]).tolist() == (rows % 2).tolist()


# metrics


Y_TRUE = np.array([0, 0, 1, 1, 1, 0])
PROB = np.array([0.1, 0.6, 0.7, 0.4, 0.9, 0.2])


def test_classification_metrics_by_hand():
    # predicted 0,1,1,0,1,0: TN 2 (rows 0, 5), FP 1 (row 1), FN 1 (row 3), TP 2 (rows 2, 4)
    m = classification_metrics(Y_TRUE, PROB)
    assert m["confusion_matrix"] == [[2, 1], [1, 2]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    # 8 of the 9 (viral, host) pairs rank the viral row higher: only 0.4 < 0.6 does not
    assert m["auroc"] == pytest.approx(8 / 9)
    assert all(isinstance(m[k], float) for k in ("accuracy", "precision", "recall", "f1"))


def test_classification_metrics_threshold():
    m = classification_metrics(Y_TRUE, PROB, threshold=0.65)
    assert m["confusion_matrix"] == [[3, 0], [1, 2]]
    assert m["precision"] == 1.0
    assert m["recall"] == pytest.approx(2 / 3)
    edge = classification_metrics(np.array([0, 1]), np.array([0.5, 0.5]))
    assert edge["confusion_matrix"] == [[0, 1], [0, 1]]  # probability == threshold is viral


def test_classification_metrics_one_class():
    m = classification_metrics(np.array([0, 0, 0]), np.array([0.2, 0.7, 0.1]))
    assert math.isnan(m["auroc"])
    assert m["confusion_matrix"] == [[2, 1], [0, 0]]
    assert m["precision"] == 0.0 and m["recall"] == 0.0
    assert m["accuracy"] == pytest.approx(2 / 3)


# checkpoint contract


METADATA_KEYS = {
    "checkpoint_version",
    "model_type",
    "huggingface_model_id",
    "dna_dim",
    "protein_dim",
    "merged_dim",
    "input_dim",
    "hidden_dim",
    "num_class",
    "training_date",
    "pytorch_version",
}


@pytest.fixture
def saved_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = VirNucProMLP(2048)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(8, 2048)
    nn.functional.cross_entropy(model(x), torch.tensor([0, 1] * 4)).backward()
    optimizer.step()
    model.eval()
    path = tmp_path / "model_fastesm650.pth"
    save_checkpoint(
        path,
        epoch=3,
        model_state=model.state_dict(),
        optimizer_state=optimizer.state_dict(),
        best_loss=0.25,
        metadata=checkpoint_metadata(768, 1280, 512, 2, "fastesm650", "Synthyra/FastESM2_650"),
        config={"optimizer": {"lr": 1e-3}},
        split_hash="0123456789abcdef",
    )
    return path, model, x


def test_checkpoint_loads_with_weights_only(saved_checkpoint):
    path, model, _ = saved_checkpoint
    ckpt = torch.load(path, weights_only=True)
    assert {"epoch", "model_state_dict", "optimizer_state_dict", "best_loss", "metadata"} <= set(
        ckpt
    )
    assert ckpt["epoch"] == 3
    assert ckpt["best_loss"] == 0.25
    assert ckpt["config"] == {"optimizer": {"lr": 1e-3}}
    assert ckpt["split_hash"] == "0123456789abcdef"
    assert ckpt["optimizer_state_dict"]["state"][0]["step"] == 1
    assert states_equal(ckpt["model_state_dict"], model.state_dict())
    assert states_equal(load_checkpoint(path)["model_state_dict"], ckpt["model_state_dict"])
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_checkpoint_metadata(saved_checkpoint):
    meta = torch.load(saved_checkpoint[0], weights_only=True)["metadata"]
    assert set(meta) >= METADATA_KEYS
    assert meta["checkpoint_version"] == "2.0.0"
    assert int(meta["checkpoint_version"].split(".")[0]) >= 2
    assert meta["model_type"] == "fastesm650"
    assert meta["huggingface_model_id"] == "Synthyra/FastESM2_650"
    assert (meta["dna_dim"], meta["protein_dim"]) == (768, 1280)
    assert meta["merged_dim"] == 2048
    assert meta["input_dim"] == 2048
    assert meta["hidden_dim"] == 512
    assert meta["num_class"] == 2
    assert meta["pytorch_version"] == torch.__version__
    assert type(meta["pytorch_version"]) is str
    assert datetime.fromisoformat(meta["training_date"]).tzinfo is not None


def test_checkpoint_state_loads_strictly_into_model_and_reference(saved_checkpoint):
    path, model, x = saved_checkpoint
    state = torch.load(path, weights_only=True)["model_state_dict"]
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in state)
    assert all(v.device.type == "cpu" for v in state.values())

    fresh = VirNucProMLP(2048)
    fresh.load_state_dict(state, strict=True)
    reference = PredictionStepMLP()
    reference.load_state_dict(copy.deepcopy(state), strict=True)

    fresh.eval()
    reference.eval()
    with torch.no_grad():
        expected = model(x)
        assert torch.equal(fresh(x), expected)
        assert torch.equal(reference(x), expected)
