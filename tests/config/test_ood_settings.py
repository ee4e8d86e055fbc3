"""The `ood` settings of train.py and evaluate.py (issue 34): defaults written once, every bad
value one message naming the key, what it must be and what it got."""

from __future__ import annotations

import pytest

from virnucpro_trainer.config.checks import validate
from virnucpro_trainer.config.evaluate import validate_eval
from virnucpro_trainer.errors import UserError

from helpers import compose_config


def make(name: str, *overrides: str):
    return compose_config(name, *overrides)


def test_the_defaults_and_evaluate_py_takes_alpha_from_training():
    train, evaluate = make("train"), make("evaluate", "ckpt=model.pth")
    assert (train.ood.method, train.ood.alpha, train.ood.max_rows) == ("combined", 0.01, 200_000)
    assert (evaluate.ood.method, evaluate.ood.alpha, evaluate.ood.abstain) == ("auto", 0.01, False)
    validate(train)
    validate_eval(evaluate)


def test_every_bad_ood_value_of_training_is_named():
    cfg = make("train", "ood.method=mahalanobis", "ood.alpha=1.5", "ood.max_rows=10")
    with pytest.raises(UserError) as err:
        validate(cfg)
    message = str(err.value)
    methods = "('combined', 'input', 'hidden', 'knn', 'energy', 'none')"
    assert f"ood.method must be one of {methods}, got 'mahalanobis'" in message
    assert "ood.alpha must be in (0, 1): the share of in-distribution units flagged, got 1.5" in (
        message
    )
    assert "ood.max_rows must be >= 100, got 10" in message


@pytest.mark.parametrize("alpha", ["0", "1"])
def test_every_bad_ood_value_of_evaluate_py_is_named(alpha):
    cfg = make("evaluate", "ckpt=model.pth", "ood.method=other", f"ood.alpha={alpha}")
    with pytest.raises(UserError) as err:
        validate_eval(cfg)
    message = str(err.value)
    assert "ood.method must be one of ('auto', 'none', 'combined', 'input'" in message
    assert "ood.alpha must be in (0, 1)" in message and f"got {alpha}" in message
