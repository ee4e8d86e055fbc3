"""The training loop: `fit` (epochs, early stopping, the best weights restored, a callback after
each epoch) and one training epoch. Batches come from a BatchSource; nothing here reads files or
configs."""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm import tqdm

from virnucpro_trainer.data.batches import BatchSource
from virnucpro_trainer.model import predict
from virnucpro_trainer.stats.metrics import classification_metrics
from virnucpro_trainer.train.early_stopping import EarlyStopping
from virnucpro_trainer.train.epoch_log import VAL_METRICS, EpochLog
from virnucpro_trainer.train.signals import StopSignals
from virnucpro_trainer.train.state import restore_training_state, training_state

log = logging.getLogger(__name__)


@dataclass
class FitSettings:
    """How to train: the loop's part of the config."""

    epochs: int
    batch_size: int
    eval_batch_size: int
    patience: int
    min_delta: float = 0.0
    seed: int = 0
    bf16: bool = False
    limit_batches: int | None = None  # train on at most this many batches per epoch


@dataclass(frozen=True)
class EpochEnd:
    """What fit's `on_epoch` callback gets after each epoch."""

    epoch: int
    record: dict  # the epoch's row of metrics.csv: losses, validation metrics, lr, seconds
    best_metrics: dict  # the validation metrics at the best epoch so far (early stopping's)
    last: bool  # no epoch follows: the last one allowed, or early stopping stops here


@dataclass
class FitResult:
    best_epoch: int
    best_loss: float
    best_optimizer_state: dict
    best_val_metrics: dict
    epochs_run: int
    stopped_early: bool
    history: list[dict]


@dataclass
class Training:
    """What one fit works on: the model, its optimizer and schedule, the batches, and the
    generator that shuffles them (seeded by fit). `compiled`, a torch.compile of `model` sharing
    its parameters, runs the batches if given; weights are always taken from `model`, so they
    carry no `_orig_mod.` prefix."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    source: BatchSource
    compiled: nn.Module | None = None
    shuffle: torch.Generator = field(default_factory=torch.Generator)

    @property
    def net(self) -> nn.Module:
        return self.model if self.compiled is None else self.compiled


def fit(
    t: Training,
    rows: dict[str, torch.Tensor],
    settings: FitSettings,
    epoch_log: EpochLog,
    *,
    save_state: Callable[[dict], None] | None = None,
    resume_from: dict | None = None,
    stop: StopSignals | None = None,
    on_epoch: Callable[[EpochEnd], None] | None = None,
) -> FitResult:
    """Train on rows["train"] until `settings.epochs` or early stopping (validation loss on
    rows["val"]), then load the best epoch's weights into `t.model`.

    After every epoch `save_state` gets the whole training state; `resume_from` (such a state)
    continues after its epoch. `stop` is checked between batches. `on_epoch` gets each finished
    epoch (after its state is saved); an exception it raises stops the fit, as a pruner does.
    """
    t.shuffle.manual_seed(settings.seed)
    stopper = EarlyStopping(settings.patience, settings.min_delta)
    model, optimizer = t.model, t.optimizer
    first, best_metrics, history = _resume(t, stopper, resume_from, settings.epochs)
    epoch_log.start(history)
    start = time.perf_counter() - (history[-1]["total_seconds"] if history else 0.0)
    stopped_early = False
    for epoch in range(first, settings.epochs + 1):
        record, metrics = run_epoch(t, settings, epoch, rows, start, stop)
        if record is None:  # diverged
            stopper.diverged(epoch, metrics)
            stopped_early = True
            break
        history.append(record)
        epoch_log.write(record)
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
        if stopper.step(record["val_loss"], epoch, state):
            best_metrics = {"loss": record["val_loss"], **metrics}
        if save_state is not None:
            save_state(training_state(epoch, t, stopper, best_metrics, history))
        if on_epoch is not None:
            last = stopper.should_stop or epoch == settings.epochs
            on_epoch(EpochEnd(epoch, record, best_metrics, last))
        if stopper.should_stop:
            log.info(
                "early stopping: validation loss has not improved for %d epochs", settings.patience
            )
            break
    return _finish(model, stopper, best_metrics, history, stopped_early)


def _resume(
    t: Training, stopper: EarlyStopping, state: dict | None, epochs: int
) -> tuple[int, dict, list]:
    """(first epoch to run, best validation metrics, history): from `state` when resuming."""
    if state is None:
        return 1, {}, []
    first, best_metrics, history = restore_training_state(state, t, stopper)
    log.info("resuming after epoch %d", first - 1)
    if stopper.should_stop:
        first = epochs + 1  # it had stopped early: only the final steps are left
    return first, best_metrics, history


def _finish(model, stopper: EarlyStopping, best_metrics, history, stopped_early) -> FitResult:
    """Load the best epoch's weights into `model`; what the fit found."""
    model.load_state_dict(stopper.best_state["model"])
    log.info(
        "restored the best weights: epoch %d, validation loss %.4f",
        stopper.best_epoch,
        stopper.best_loss,
    )
    return FitResult(
        best_epoch=stopper.best_epoch,
        best_loss=stopper.best_loss,
        best_optimizer_state=stopper.best_state["optimizer"],
        best_val_metrics=best_metrics,
        epochs_run=len(history),
        stopped_early=stopped_early or stopper.should_stop,
        history=history,
    )


def run_epoch(
    t: Training,
    s: FitSettings,
    epoch: int,
    rows: dict[str, torch.Tensor],
    start: float,
    stop: StopSignals | None,
) -> tuple[dict | None, dict]:
    """Train one epoch and validate. Returns (the epoch's record, validation metrics), or
    (None, the losses) when a loss is not finite."""
    t0 = time.perf_counter()
    lr = t.optimizer.param_groups[0]["lr"]
    train_loss = train_epoch(t, rows["train"], s.batch_size, bf16=s.bf16, desc=f"epoch {epoch}",
                             stop=stop, limit=s.limit_batches)  # fmt: skip
    probs, y, val_loss = predict(t.net, t.source, rows["val"], s.eval_batch_size, bf16=s.bf16)
    t.scheduler.step()
    if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
        return None, {"train_loss": train_loss, "val_loss": val_loss}
    metrics = classification_metrics(y, probs)
    now = time.perf_counter()
    record = {
        "epoch": epoch,
        "train_loss": train_loss,
        "val_loss": val_loss,
        **{f"val_{k}": metrics[k] for k in VAL_METRICS},
        "lr": lr,
        "epoch_seconds": now - t0,
        "total_seconds": now - start,
    }
    return record, metrics


def train_epoch(
    t: Training,
    rows: torch.Tensor,
    batch_size: int,
    *,
    bf16: bool = False,
    desc: str = "",
    stop: StopSignals | None = None,
    limit: int | None = None,
) -> float:
    """Train `t` for one pass over `rows`, shuffled by `t.shuffle`; the mean training loss.

    `stop` is checked before every batch and raises errors.Interrupted after SIGINT or SIGTERM.
    `limit` stops the pass after that many batches (a quick check, `limit_batches`).
    """
    model, source, optimizer = t.net, t.source, t.optimizer
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    total = torch.zeros((), device=source.device)
    seen = 0
    n_batches = math.ceil(len(rows) / batch_size)
    if limit is not None:
        n_batches = min(n_batches, limit)
    batches = itertools.islice(source.train_batches(rows, batch_size, t.shuffle), n_batches)
    for x, y in tqdm(batches, desc=desc, total=n_batches, leave=False, disable=None):
        if stop is not None:
            stop.check()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(source.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(y)
        seen += len(y)
    return float(total) / seen
