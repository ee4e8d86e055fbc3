"""Decision thresholds for a sample's expected viral fraction: chosen on validation, reported
on test.

A balanced test set is about half viral; a metagenome may be 1-2% viral. Recall (TPR) and the
false positive rate (FPR) do not depend on the viral share, precision does:

    precision = pi * TPR / (pi * TPR + (1 - pi) * FPR),   pi = the sample's viral fraction.

So for each expected viral fraction pi, `cutoff_table` picks on the validation side the threshold
with the highest recall whose expected false discovery rate (1 - precision) at pi stays at or under
a target, and reports what that threshold achieves on the test side. See
docs/cutoffs-and-calibration.md.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import roc_curve

# An expected FDR this close above the target still counts as "at or under" it (float rounding).
_TOLERANCE = 1e-12

KEYS = (
    "viral_fraction",
    "threshold",
    "val_recall",
    "val_fpr",
    "val_expected_precision",
    "test_recall",
    "test_fpr",
    "test_expected_precision",
    "test_expected_fdr",
)


def _precision(tpr, fpr, prevalence: float):
    """Element-wise expected precision; NaN where the denominator is 0 (or an input is NaN)."""
    tpr = np.asarray(tpr, dtype=np.float64)
    fpr = np.asarray(fpr, dtype=np.float64)
    called_viral = prevalence * tpr
    denominator = called_viral + (1.0 - prevalence) * fpr
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, called_viral / denominator, np.nan)


def expected_precision(tpr: float, fpr: float, prevalence: float) -> float:
    """The precision a classifier with this recall (TPR) and false positive rate has on a sample
    whose viral fraction is `prevalence`: prevalence*tpr / (prevalence*tpr + (1-prevalence)*fpr).

    NaN when the denominator is 0 (nothing would be called viral). With fpr = 0 and tpr > 0 it is
    exactly 1.
    """
    return float(_precision(tpr, fpr, prevalence))


def _check_labels_scores(y, p, side: str) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"{side}: {y.size} labels but {p.size} probabilities")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{side}: labels must be 0 (host) or 1 (viral)")
    if not np.isfinite(p).all():
        raise ValueError(f"{side}: probabilities must be finite")
    return y.astype(np.int64), p


def _roc_points(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, TPR, FPR) at every distinct score, thresholds descending; a row is viral when
    p >= threshold, so tied scores enter together: scikit-learn's ROC curve without its first
    point (threshold infinity: nothing called). TPR (FPR) is NaN with no viral (host) rows."""
    if p.size == 0:
        empty = np.empty(0)
        return empty, empty, empty
    with warnings.catch_warnings():  # one class: NaN rates, and the table says no threshold
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        fpr, tpr, thresholds = roc_curve(y, p, pos_label=1, drop_intermediate=False)
    return thresholds[1:], tpr[1:], fpr[1:]


def _rate(scores: np.ndarray, threshold: float) -> float:
    """The share of `scores` at or above `threshold` (NaN for none)."""
    return float(np.mean(scores >= threshold)) if scores.size else math.nan


def _best(qualifies: np.ndarray, tpr: np.ndarray) -> int:
    """Of the qualifying thresholds (in descending order), the highest with the best qualifying
    recall: recall never falls as the threshold falls, and a lower threshold with the same
    recall only adds false positives."""
    return int(np.flatnonzero(qualifies & (tpr == tpr[qualifies].max()))[0])


def _plain(value) -> float | None:
    """A plain Python float, or None for NaN / infinity / None (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def cutoff_table(
    y_val,
    p_val,
    y_test,
    p_test,
    viral_fractions: Sequence[float],
    target_fdr: float,
) -> list[dict]:
    """One row per expected viral fraction pi: the threshold chosen on validation, and what it
    achieves on test.

    Validation side only chooses: the candidates are the distinct validation probabilities (a row
    is viral when p >= t). A candidate qualifies when its expected FDR at pi,
    1 - expected_precision(TPR_val(t), FPR_val(t), pi), is at most `target_fdr` (up to 1e-12 of
    float rounding). The chosen threshold is the qualifying one with the highest validation recall,
    and among thresholds with that recall the highest one: a lower threshold with the same recall
    only adds false positives. The expected FDR is not monotone in the threshold, so a lower
    threshold can qualify while a higher one does not; all candidates are checked. With no
    qualifying candidate (or a validation side with one class only) the threshold is None.

    Test side only reports, at the chosen threshold: recall (TPR), FPR, and the expected precision
    and FDR at pi computed from those test TPR and FPR. The test set's own viral share (about half
    on a balanced set) is NOT the sample's, so the test set's plain precision is not reported here;
    TPR and FPR do not depend on the viral share, and the expected precision re-weights them by pi.

    Each row holds the keys of `KEYS` as plain Python floats; None where there is no threshold, and
    None where a value is undefined (e.g. the test side has no viral rows, or calls none viral).
    Vectorised: one ROC curve over validation; the loop is over the fractions only.
    """
    y_val, p_val = _check_labels_scores(y_val, p_val, "validation")
    y_test, p_test = _check_labels_scores(y_test, p_test, "test")
    if not 0 <= target_fdr < 1:
        raise ValueError(f"target_fdr must be in [0, 1), got {target_fdr}")
    fractions = [float(f) for f in viral_fractions]
    if not all(0 < f < 1 for f in fractions):
        raise ValueError(f"viral fractions must be in (0, 1), got {list(viral_fractions)}")
    thresholds, tpr, fpr = _roc_points(y_val, p_val)
    viral_test, host_test = p_test[y_test == 1], p_test[y_test == 0]
    table = []
    for fraction in fractions:
        with np.errstate(invalid="ignore"):
            qualifies = 1.0 - _precision(tpr, fpr, fraction) <= target_fdr + _TOLERANCE
        row = {**dict.fromkeys(KEYS), "viral_fraction": fraction}
        if qualifies.any():
            i = _best(qualifies, tpr)
            threshold = float(thresholds[i])
            test_tpr, test_fpr = _rate(viral_test, threshold), _rate(host_test, threshold)
            test_precision = _precision(test_tpr, test_fpr, fraction)
            row.update(
                threshold=threshold,
                val_recall=_plain(tpr[i]),
                val_fpr=_plain(fpr[i]),
                val_expected_precision=_plain(_precision(tpr[i], fpr[i], fraction)),
                test_recall=_plain(test_tpr),
                test_fpr=_plain(test_fpr),
                test_expected_precision=_plain(test_precision),
                test_expected_fdr=_plain(1.0 - test_precision),
            )
        table.append(row)
    return table
