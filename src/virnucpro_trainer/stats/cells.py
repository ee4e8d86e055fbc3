"""The threshold metrics and the Brier score of many weighted resamples at once, from per-genome
sums, with each genome's jackknife difference (how much the metric moves when one copy of the
genome is left out), from which the studentized intervals take their standard errors.

Every metric here is a function of five totals: true positives, false positives, false negatives,
true negatives and the summed squared error. A resample's totals are its genome multiplicities
times the per-genome sums; leaving one genome out subtracts that genome's sums. Exact, and the
same definitions as metrics.classification_metrics (0 where scikit-learn returns 0 for 0/0).
"""

from __future__ import annotations

import numpy as np

from virnucpro_trainer.stats.metrics import SCALAR_METRICS

# every metric but the ranking ones (ranking.py), in SCALAR_METRICS' order
CELL_METRICS = tuple(m for m in SCALAR_METRICS if m not in ("auroc", "auprc"))


def cell_metrics(tp, fp, fn, tn, squared) -> dict[str, np.ndarray]:
    """CELL_METRICS from arrays of totals (any shape, float64); NaN where a metric is undefined
    (specificity and balanced accuracy without host rows)."""
    total = tp + fp + fn + tn
    positives, negatives = tp + fn, fp + tn
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(positives > 0, tp / positives, 0.0)
        specificity = np.where(negatives > 0, tn / negatives, np.nan)
        mcc_den = np.sqrt((tp + fp) * positives * negatives * (tn + fn))
        return {
            "accuracy": (tp + tn) / total,
            "precision": np.where(tp + fp > 0, tp / (tp + fp), 0.0),
            "recall": recall,
            "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0),
            "specificity": specificity,
            "balanced_accuracy": np.where(
                (positives > 0) & (negatives > 0), (recall + specificity) / 2, np.nan
            ),
            "mcc": np.where(mcc_den > 0, (tp * tn - fp * fn) / mcc_den, 0.0),
            "brier": squared / total,
        }


class Cells:
    """One prediction's per-genome sums: TP, FP, FN, TN (rows) and the squared error of the
    scores, as a (groups, 5) array."""

    def __init__(self, y: np.ndarray, predicted: np.ndarray, score: np.ndarray, codes, n_groups):
        positive, called = y == 1, predicted.astype(bool)
        columns = (
            positive & called,
            ~positive & called,
            positive & ~called,
            ~positive & ~called,
            (score - y) ** 2,
        )
        self.sums = np.stack(
            [np.bincount(codes, weights=c, minlength=n_groups) for c in columns], axis=1
        )
        # Genomes with the same four counts move the count metrics alike when left out (with
        # one genome per row, the row bootstrap, there are at most four kinds): each kind once.
        self.kinds, self.kind_of = np.unique(self.sums[:, :4], axis=0, return_inverse=True)
        self.kind_of = self.kind_of.ravel()

    def resampled(self, counts: np.ndarray) -> tuple[dict, dict]:
        """For each row of `counts` (resamples x groups): every metric's value, and each genome's
        jackknife difference value - value without one copy of that genome (resamples x groups;
        0 where leaving it out makes the metric undefined)."""
        # One matrix-vector product per total: a (resamples x G) @ (G x 5) product is several
        # times slower in OpenBLAS on a busy machine, where its threads wait on each other.
        as_float = counts.astype(np.float64)
        totals = [as_float @ column for column in self.sums.T]
        values = cell_metrics(*totals)
        kinds = [t[:, None] - k[None, :] for t, k in zip(totals[:4], self.kinds.T, strict=True)]
        left_out = cell_metrics(*kinds, totals[4][:, None])  # the Brier score: below
        rows = self.sums[:, :4].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            brier = (totals[4][:, None] - self.sums[:, 4]) / (sum(totals[:4])[:, None] - rows)
        differences = {}
        for name, value in values.items():
            other = brier if name == "brier" else np.take(left_out[name], self.kind_of, axis=1)
            with np.errstate(invalid="ignore"):
                difference = value[:, None] - other
            difference[~np.isfinite(difference)] = 0.0
            differences[name] = difference
        return values, differences
