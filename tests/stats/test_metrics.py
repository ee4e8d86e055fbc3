"""Classification metrics worked out by hand (stats/test_evaluation.py checks them against
scikit-learn)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from virnucpro_trainer.stats.metrics import classification_metrics

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
