"""AUROC and AUPRC of many weighted resamples at once, with each genome's jackknife difference.

The rows are sorted by score once. A block of resamples turns genome multiplicities into integer
row weights (resamples x rows); cumulative sums over the sorted rows give, for every row, the
weight scored above it, from which AUROC (tied pairs count 1/2, as in roc_auc_score) and average
precision (tied scores one threshold, as in average_precision_score) follow exactly. Integer
weights keep the counts exact, so a resample's AUROC equals scikit-learn's on its rows.

A genome's jackknife difference is its influence (the derivative of the metric in the genome's
weight: placement values for AUROC, as in the clustered DeLong variance of Obuchowski 1997; the
same derivative for average precision) divided by 1 - its share of its class, which for AUROC
and a genome of one class is exactly the metric minus the metric without one copy of it.
"""

from __future__ import annotations

import numpy as np


def _group_sums(per_row: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """(resamples x rows) -> (resamples x groups): each resample's sum over each genome's rows
    (one bincount per resample: faster than one over all, whose bin index array is as large)."""
    out = np.empty((len(per_row), n_groups))
    for row, values in zip(out, per_row, strict=True):
        row[:] = np.bincount(groups, weights=values, minlength=n_groups)
    return out


class Ranking:
    """One model's scores, prepared once: the rows sorted by score (descending), split by class,
    and the positions the weighted sums read."""

    def __init__(self, y: np.ndarray, score: np.ndarray, codes: np.ndarray, n_groups: int):
        order = np.argsort(-score, kind="stable")
        key, positive = -score[order], y[order] == 1  # key ascending
        pos_groups, neg_groups = codes[order][positive], codes[order][~positive]
        self.pos_groups, self.neg_groups = pos_groups, neg_groups
        key_pos, key_neg = key[positive], key[~positive]
        # positives at or above each positive; negatives at or above / above each positive;
        # positives above / at or above each negative (tied scores are one threshold)
        self.pos_tp = np.searchsorted(key_pos, key_pos, side="right")
        self.pos_first = np.searchsorted(key_pos, key_pos, side="left")
        self.neg_at_or_above = np.searchsorted(key_neg, key_pos, side="right")
        self.neg_above = np.searchsorted(key_neg, key_pos, side="left")
        self.pos_above_neg = np.searchsorted(key_pos, key_neg, side="left")
        self.pos_at_or_above_neg = np.searchsorted(key_pos, key_neg, side="right")
        self.tied = np.flatnonzero(self.neg_above != self.neg_at_or_above)
        self.neg_ties = bool(np.any(self.pos_above_neg != self.pos_at_or_above_neg))
        self.n_groups = n_groups
        self.pos_per_group = np.bincount(pos_groups, minlength=n_groups).astype(np.float64)
        self.neg_per_group = np.bincount(neg_groups, minlength=n_groups).astype(np.float64)

    def resampled(self, counts: np.ndarray, influence: bool = True) -> tuple[dict, dict]:
        """AUROC and AUPRC for each row of `counts` (resamples x groups, integer multiplicities),
        and each genome's jackknife difference (resamples x groups): AUROC's always, AUPRC's only
        with `influence` (NaN otherwise: it costs as much as all the rest). NaN values (and 0
        differences) for resamples without both classes."""
        wp = np.take(counts, self.pos_groups, axis=1)  # (resamples, positive rows)
        wn = np.take(counts, self.neg_groups, axis=1)  # (resamples, negative rows)
        # dtype: numpy would otherwise widen int32 sums to int64, several times slower here
        cum_pos = np.zeros((len(counts), wp.shape[1] + 1), dtype=counts.dtype)
        np.cumsum(wp, axis=1, dtype=counts.dtype, out=cum_pos[:, 1:])
        cum_neg = np.zeros((len(counts), wn.shape[1] + 1), dtype=counts.dtype)
        np.cumsum(wn, axis=1, dtype=counts.dtype, out=cum_neg[:, 1:])
        del wn
        pos_total = cum_pos[:, -1].astype(np.float64)[:, None]
        neg_total = cum_neg[:, -1].astype(np.float64)[:, None]
        neg_at_or_above = np.take(cum_neg, self.neg_at_or_above, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            auroc = self._auroc(counts, cum_pos, cum_neg, neg_at_or_above, pos_total, neg_total)
            auprc = self._auprc(wp, cum_pos, neg_at_or_above, pos_total, influence)
        one_class = (pos_total[:, 0] == 0) | (neg_total[:, 0] == 0)  # undefined, as in sklearn
        values = {
            k: np.where(one_class, np.nan, v[0]) for k, v in (("auroc", auroc), ("auprc", auprc))
        }
        differences = {"auroc": auroc[1], "auprc": auprc[1]}
        for difference in differences.values():
            if difference is not None:
                difference[~np.isfinite(difference)] = 0.0
        return values, differences

    def _auroc(self, counts, cum_pos, cum_neg, neg_at_or_above, pos_total, neg_total):
        # Per genome, its positives' negative weight at or above them (half the tied subtracted
        # again); N times its positives minus that is their placement sum (times N).
        at_or_above = _group_sums(neg_at_or_above, self.pos_groups, self.n_groups)
        if len(self.tied):
            tied = neg_at_or_above[:, self.tied] - cum_neg[:, self.neg_above[self.tied]]
            at_or_above -= 0.5 * _group_sums(tied, self.pos_groups[self.tied], self.n_groups)
        below = self.pos_per_group * neg_total - at_or_above
        # Per genome, its negatives' positive weight above them plus half the tied (times 2P).
        above = np.take(cum_pos, self.pos_above_neg, axis=1)
        if self.neg_ties:
            above = above + np.take(cum_pos, self.pos_at_or_above_neg, axis=1)
            above = _group_sums(above, self.neg_groups, self.n_groups)
        else:
            above = 2 * _group_sums(above, self.neg_groups, self.n_groups)
        pairs = pos_total * neg_total
        auroc = np.einsum("ij,ij->i", counts, below) / pairs[:, 0]
        share = self.pos_per_group / pos_total + self.neg_per_group / neg_total
        influence = below / pairs + above / (2.0 * pairs) - auroc[:, None] * share
        return auroc, np.where(share < 1, influence / (1.0 - share), 0.0)

    def _auprc(self, wp, cum_pos, neg_at_or_above, pos_total, influence: bool):
        # Each positive's weight times the precision at its score (positives and negatives at or
        # above it); a row drawn zero times adds nothing, max() only keeps 0/0 out of such rows.
        tps = np.take(cum_pos, self.pos_tp, axis=1)
        called = neg_at_or_above  # reused in place: integer sums stay exact and fast
        called += tps
        np.maximum(called, 1, out=called)
        precision = np.divide(tps, called, dtype=np.float64)
        auprc = np.einsum("ij,ij->i", precision, wp, dtype=np.float64) / pos_total[:, 0]
        if not influence:
            return auprc, None
        called = called.astype(np.float64)
        neg_at_or_above = called - tps

        # The derivative of the precisions in a genome's weight: its rows at or above a positive
        # add to that positive's TP (its positives) or FP (its negatives). Summed over the
        # positives at or below each row: suffix sums over the positives.
        def suffix(per_positive):
            prefix = np.zeros((len(wp), wp.shape[1] + 1))
            np.cumsum(per_positive, axis=1, out=prefix[:, 1:])
            return prefix[:, -1:] - prefix

        weight = wp / called**2
        as_tp = suffix(weight * neg_at_or_above)
        as_fp = suffix(weight * tps)
        pos_part = precision + np.take(as_tp, self.pos_first, axis=1)
        neg_part = np.take(as_fp, self.pos_above_neg, axis=1)
        share = self.pos_per_group / pos_total
        influence = (
            _group_sums(pos_part, self.pos_groups, self.n_groups)
            - _group_sums(neg_part, self.neg_groups, self.n_groups)
        ) / pos_total - auprc[:, None] * share
        return auprc, np.where(share < 1, influence / (1.0 - share), 0.0)
