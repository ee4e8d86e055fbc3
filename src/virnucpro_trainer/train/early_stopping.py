"""Early stopping on validation loss that keeps a real copy of the best weights, and stopping when
the loss diverges."""

from __future__ import annotations

import copy
import logging
import math

from virnucpro_trainer.errors import UserError

log = logging.getLogger(__name__)


class EarlyStopping:
    """Tracks the best validation loss and a deep copy of whatever state is handed in with it.

    The old trainer kept `model.state_dict()` itself: references to live tensors, so its "best"
    weights silently became the last epoch's. `copy.deepcopy` clones every tensor.
    """

    def __init__(self, patience: int, min_delta: float = 0.0):
        self.patience = patience
        self.min_delta = min_delta
        self.best_loss = math.inf
        self.best_epoch: int | None = None
        self.best_state: dict | None = None
        self.bad_epochs = 0

    def step(self, loss: float, epoch: int, state: dict) -> bool:
        """Record one epoch's validation loss; returns True when it is a new best."""
        if loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.bad_epochs = loss, epoch, 0
            self.best_state = copy.deepcopy(state)
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience

    def diverged(self, epoch: int, losses: dict) -> None:
        """A loss became NaN or infinite in `epoch`: the run stops with the best epoch so far;
        before there is one, it is an error."""
        diverged = (
            f"training diverged in epoch {epoch} (train loss {losses['train_loss']}, "
            f"validation loss {losses['val_loss']})"
        )
        if self.best_state is None:
            raise UserError(f"{diverged}: try a lower optimizer.lr")
        log.warning("%s; stopping with the best epoch, %d", diverged, self.best_epoch)
