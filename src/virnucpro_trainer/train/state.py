"""The full training state after an epoch (`checkpoints/last.pt`), and putting it back.

Model, optimizer, scheduler, early stopping (best weights, best loss, counter), every random number
generator, the epoch and the metrics so far: continuing from it gives the same result, bit for bit
on the CPU, as a run that was never interrupted. Only tensors and plain types, so it loads with
`torch.load(weights_only=True)`.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import numpy as np
import torch

from virnucpro_trainer.train.early_stopping import EarlyStopping

if TYPE_CHECKING:
    from virnucpro_trainer.train.loop import Training


def _rng_state(shuffle: torch.Generator) -> dict:
    """Every generator a run draws from, as tensors and plain types (weights_only-loadable)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.copy()), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "shuffle": shuffle.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, shuffle: torch.Generator) -> None:
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy(), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    shuffle.set_state(state["shuffle"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _stopper_state(stopper: EarlyStopping) -> dict:
    return {
        "best_loss": stopper.best_loss,
        "best_epoch": stopper.best_epoch,
        "bad_epochs": stopper.bad_epochs,
        "best_state": stopper.best_state,
    }


def _set_stopper_state(stopper: EarlyStopping, state: dict) -> None:
    stopper.best_loss, stopper.best_epoch = state["best_loss"], state["best_epoch"]
    stopper.bad_epochs, stopper.best_state = state["bad_epochs"], state["best_state"]


def training_state(
    epoch: int, t: Training, stopper: EarlyStopping, best_metrics: dict, history: list[dict]
) -> dict:
    """Everything needed to continue after `epoch` exactly as if never interrupted."""
    return {
        "epoch": epoch,
        "model_state_dict": t.model.state_dict(),
        "optimizer_state_dict": t.optimizer.state_dict(),
        "scheduler_state_dict": t.scheduler.state_dict(),
        "early_stopping": _stopper_state(stopper),
        "rng": _rng_state(t.shuffle),
        "best_val_metrics": best_metrics,
        "history": history,
    }


def restore_training_state(
    state: dict, t: Training, stopper: EarlyStopping
) -> tuple[int, dict, list[dict]]:
    """Load `state` into the objects; returns (first epoch to run, best metrics, history)."""
    t.model.load_state_dict(state["model_state_dict"])
    t.optimizer.load_state_dict(state["optimizer_state_dict"])
    t.scheduler.load_state_dict(state["scheduler_state_dict"])
    _set_stopper_state(stopper, state["early_stopping"])
    _set_rng_state(state["rng"], t.shuffle)
    return state["epoch"] + 1, state["best_val_metrics"], state["history"]
