"""Classification metrics from viral probabilities (viral = positive class), with scikit-learn."""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn import metrics as skm

# the names, for the modules that import them from here as before
from virnucpro_trainer.stats.names import SCALAR_METRICS, THRESHOLD_METRICS  # noqa: F401


def classification_metrics(
    y_true: np.ndarray, prob_viral: np.ndarray, threshold: float = 0.5, ranking=None
) -> dict:
    """Metrics at `threshold` plus threshold-free ones (AUROC, AUPRC, Brier score).

    AUROC and AUPRC rank the rows by `ranking` when given (the model's logits: unrounded, and
    the same before and after calibration, which never reorders rows), else by `prob_viral`;
    they are NaN when only one class is present. The confusion matrix is [[TN, FP], [FN, TP]].
    """
    rank = prob_viral if ranking is None else np.asarray(ranking)
    y_pred = (prob_viral >= threshold).astype(np.int64)
    both_classes = len(np.unique(y_true)) == 2
    (tn, fp), (fn, tp) = skm.confusion_matrix(y_true, y_pred, labels=[0, 1])
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(skm.precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(skm.recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(skm.f1_score(y_true, y_pred, zero_division=0)),
        "specificity": float(tn / (tn + fp)) if tn + fp else math.nan,
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred))
        if both_classes
        else math.nan,
        "mcc": _mcc(y_true, y_pred),
        "auroc": float(skm.roc_auc_score(y_true, rank)) if both_classes else math.nan,
        "auprc": float(skm.average_precision_score(y_true, rank)) if both_classes else math.nan,
        "brier": float(skm.brier_score_loss(y_true, prob_viral, pos_label=1)),
        "confusion_matrix": [[int(tn), int(fp)], [int(fn), int(tp)]],
    }


def metrics_at(
    y_true: np.ndarray, prob_viral: np.ndarray, threshold: float, ranking=None, **about
) -> dict:
    """The one layout of "metrics at a threshold" in every results file (test_metrics.json's
    `chosen_threshold`, metrics.json's `at_0.5`, `at_stored_threshold`, `at_threshold`):
    `threshold`, then what says where it came from (`about`, e.g. chosen_on, maximising), then
    every metric of classification_metrics at it; an `intervals` block may follow."""
    return {
        "threshold": float(threshold),
        **about,
        **classification_metrics(y_true, prob_viral, threshold, ranking),
    }


def _mcc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Matthews' correlation; 0 when only one label occurs (scikit-learn's value), without its
    warning for that case (data of one class is scored on purpose, e.g. a viral-only set)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="A single label was found")
        return float(skm.matthews_corrcoef(y_true, y_pred))


def choose_threshold(y_true: np.ndarray, prob_viral: np.ndarray, metric: str = "f1") -> float:
    """The probability cut-off (predict viral when prob >= it) that maximises `metric`.

    Meant for validation predictions only. Every distinct probability is a candidate, scored at
    once from the ROC curve's counts; ties go to the candidate closest to 0.5.
    """
    fpr, tpr, thresholds = skm.roc_curve(y_true, prob_viral, drop_intermediate=False)
    positives = int(np.sum(y_true == 1))
    negatives = len(y_true) - positives
    tp, fp = tpr * positives, fpr * negatives
    fn, tn = positives - tp, negatives - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        score = {
            "f1": 2 * tp / (2 * tp + fp + fn),
            "balanced_accuracy": (tpr + 1 - fpr) / 2,
            "mcc": (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)),
        }[metric]
    finite = np.isfinite(thresholds) & np.isfinite(score)
    candidates, score = thresholds[finite], score[finite]
    ties = candidates[score == score.max()]
    return float(ties[np.argmin(np.abs(ties - 0.5))])
