"""Early stopping: patience, min_delta, NaN, and a real copy of the best state (the old trainer
kept references to live tensors)."""

from __future__ import annotations

import math

import torch
from torch import nn

from virnucpro_trainer.train.early_stopping import EarlyStopping

from helpers import clone_state, states_equal


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
