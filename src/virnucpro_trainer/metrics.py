"""Classification metrics from viral probabilities, computed with scikit-learn."""

from __future__ import annotations

import math

import numpy as np
from sklearn import metrics as skm


def classification_metrics(
    y_true: np.ndarray, prob_viral: np.ndarray, threshold: float = 0.5
) -> dict:
    """Accuracy, precision, recall, F1 (viral = positive), AUROC and the confusion matrix.

    AUROC is NaN when only one class is present. The confusion matrix is [[TN, FP], [FN, TP]].
    """
    y_pred = (prob_viral >= threshold).astype(np.int64)
    both_classes = len(np.unique(y_true)) == 2
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(skm.precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(skm.recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(skm.f1_score(y_true, y_pred, zero_division=0)),
        "auroc": float(skm.roc_auc_score(y_true, prob_viral)) if both_classes else math.nan,
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=[0, 1]).tolist(),
    }
