"""The training loop: train and validate each epoch, stop early, restore the best weights."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from virnucpro_trainer.checkpoint import save_state
from virnucpro_trainer.data.batches import BatchSource
from virnucpro_trainer.early_stopping import EarlyStopping
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.metrics import classification_metrics
from virnucpro_trainer.reporting import EpochReport
from virnucpro_trainer.resume import StopSignals, restore_training_state, training_state
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
    history: list[dict]


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
    config: dict | None = None,
    bf16: bool = False,
    compiled: nn.Module | None = None,
    last_path: Path | None = None,
    resume_from: dict | None = None,
    stop: StopSignals | None = None,
    limit_batches: int | None = None,
) -> FitResult:
    """Train until `epochs` or early stopping, then load the best epoch's weights into `model`.

    `compiled` (a torch.compile of `model`, sharing its parameters) runs the batches if given;
    weights are always taken from `model`, so they carry no `_orig_mod.` prefix. After every
    epoch the whole training state goes to `last_path`; `resume_from` (such a state) continues
    after its epoch. `stop` is checked between batches (see resume.StopSignals). `limit_batches`
    caps the training batches of each epoch.
    """
    net = model if compiled is None else compiled
    shuffle = torch.Generator().manual_seed(seed)
    stopper = EarlyStopping(patience, min_delta)
    best_metrics: dict = {}
    history: list[dict] = []
    first, elapsed = 1, 0.0
    stopped_early = False
    if resume_from is not None:
        first, best_metrics, history = restore_training_state(
            resume_from, model, optimizer, scheduler, stopper, shuffle
        )
        elapsed = history[-1]["total_seconds"]
        log.info("resuming after epoch %d", first - 1)
        if stopper.should_stop:
            first = epochs + 1  # it had stopped early: only the final steps are left
    report.start(history)
    start = time.perf_counter() - elapsed
    for epoch in range(first, epochs + 1):
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
            stop=stop,
            limit=limit_batches,
        )
        probs, y, val_loss = predict(net, source, val_rows, eval_batch_size, bf16=bf16)
        scheduler.step()
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            diverged = f"training diverged in epoch {epoch} (train loss {train_loss}, "
            diverged += f"validation loss {val_loss})"
            if stopper.best_state is None:
                raise UserError(f"{diverged}: try a lower optimizer.lr")
            log.warning("%s; stopping with the best epoch, %d", diverged, stopper.best_epoch)
            stopped_early = True
            break
        m = classification_metrics(y, probs)
        now = time.perf_counter()
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            **{f"val_{k}": m[k] for k in ("accuracy", "precision", "recall", "f1", "auroc")},
            "lr": lr,
            "epoch_seconds": now - t0,
            "total_seconds": now - start,
        }
        history.append(record)
        report.write(record)
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
        if stopper.step(val_loss, epoch, state):
            best_metrics = {"loss": val_loss, **m}
        if last_path is not None:
            save_state(
                last_path,
                training_state(
                    epoch,
                    model,
                    optimizer,
                    scheduler,
                    stopper,
                    shuffle,
                    best_metrics,
                    history,
                    config,
                ),
            )
        if stopper.should_stop:
            log.info("early stopping: validation loss has not improved for %d epochs", patience)
            stopped_early = True
            break
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
        len(history),
        stopped_early or stopper.should_stop,
        history,
    )
