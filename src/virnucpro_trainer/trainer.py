"""The training loop: train and validate each epoch, stop early, restore the best weights."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch
from torch import nn

from virnucpro_trainer.data.batches import BatchSource
from virnucpro_trainer.early_stopping import EarlyStopping
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.metrics import classification_metrics
from virnucpro_trainer.reporting import EpochReport
from virnucpro_trainer.training import predict, train_epoch

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    best_epoch: int
    best_loss: float
    best_optimizer_state: dict
    best_val_metrics: dict
    epochs_run: int
    stopped_early: bool


def build_optimizer(model: nn.Module, cfg) -> tuple[torch.optim.Optimizer, object]:
    """SGD (with momentum) or AdamW, each with a StepLR schedule stepped once per epoch."""
    if cfg.name == "sgd":
        opt = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, cfg.scheduler.step_size, cfg.scheduler.gamma)
    return opt, sched


def fit(
    model: nn.Module,
    optimizer,
    scheduler,
    source: BatchSource,
    train_rows: torch.Tensor,
    val_rows: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    eval_batch_size: int,
    patience: int,
    min_delta: float,
    seed: int,
    report: EpochReport,
    bf16: bool = False,
    compiled: nn.Module | None = None,
) -> FitResult:
    """Train until `epochs` or early stopping, then load the best epoch's weights into `model`.

    `compiled` (a torch.compile of `model`, sharing its parameters) runs the batches if given;
    weights are always taken from `model`, so they carry no `_orig_mod.` prefix.
    """
    net = model if compiled is None else compiled
    shuffle = torch.Generator().manual_seed(seed)
    stopper = EarlyStopping(patience, min_delta)
    best_metrics: dict = {}
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        train_loss = train_epoch(
            net,
            source,
            train_rows,
            batch_size,
            optimizer,
            shuffle,
            bf16=bf16,
            desc=f"epoch {epoch}",
        )
        probs, y, val_loss = predict(net, source, val_rows, eval_batch_size, bf16=bf16)
        scheduler.step()
        m = classification_metrics(y, probs)
        now = time.perf_counter()
        report.write(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                **{f"val_{k}": m[k] for k in ("accuracy", "precision", "recall", "f1", "auroc")},
                "lr": lr,
                "epoch_seconds": now - t0,
                "total_seconds": now - start,
            }
        )
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
        if stopper.step(val_loss, epoch, state):
            best_metrics = {"loss": val_loss, **m}
        if stopper.should_stop:
            log.info("early stopping: validation loss has not improved for %d epochs", patience)
            break
    if stopper.best_state is None:
        raise UserError(
            "validation loss was never finite: training diverged; try a lower optimizer.lr"
        )
    model.load_state_dict(stopper.best_state["model"])
    log.info(
        "restored the best weights: epoch %d, validation loss %.4f",
        stopper.best_epoch,
        stopper.best_loss,
    )
    return FitResult(
        stopper.best_epoch,
        stopper.best_loss,
        stopper.best_state["optimizer"],
        best_metrics,
        epoch,
        stopper.should_stop,
    )
