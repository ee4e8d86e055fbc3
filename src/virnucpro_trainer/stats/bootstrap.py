"""How sure a test metric is: intervals that resample genomes, paired model comparisons,
McNemar's test, and the mean of a seed sweep. Plain numpy arrays in, plain Python values out.

Test rows are fragments of genomes ("records"), and fragments of one genome are not independent:
intervals come from a cluster bootstrap that resamples whole records (`groups`), never rows.
The method, its settings and its measured coverage: docs/statistics.md.

The bootstrap is vectorised: each model's rows are sorted by score once; for a block of resamples
the record multiplicities become per-row integer weights, and every metric is computed for all
resamples of the block at once from weighted counts (per-record sums for the threshold metrics and
the Brier score, cumulative sums over the sorted rows for AUROC and AUPRC). Integer weights keep
the counts exact, so the resampled AUROC equals scikit-learn's on the resampled rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence

import numpy as np
from scipy import stats

from virnucpro_trainer.stats.metrics import SCALAR_METRICS, classification_metrics

PAIRED_METRICS = ("auroc", "auprc", "mcc", "f1")

# Bytes of one (resamples x rows) int32 array in a block of resamples. Small blocks stay in the
# CPU caches: on 200,000 rows a block of 2 resamples ran faster than blocks of 40 (32 MB arrays),
# and a block's arrays take a few MB in all. Blocks of tens of resamples for small test sets.
_BLOCK_BYTES = 2 * 2**20


def _check_inputs(
    y: np.ndarray, probs: Sequence[np.ndarray], groups: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, int]:
    """Labels as int8 0/1, probabilities as float64, groups recoded 0..G-1; G."""
    y = np.asarray(y).ravel()
    n = len(y)
    if n == 0:
        raise ValueError("no rows")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 (host) or 1 (viral)")
    checked = []
    for prob in probs:
        prob = np.asarray(prob, dtype=np.float64).ravel()
        if len(prob) != n:
            raise ValueError(f"{len(prob)} probabilities for {n} labels")
        if not np.all(np.isfinite(prob)):
            raise ValueError("probabilities contain NaN or infinity")
        checked.append(prob)
    groups = np.asarray(groups).ravel()
    if len(groups) != n:
        raise ValueError(f"{len(groups)} group codes for {n} labels")
    uniques, codes = np.unique(groups, return_inverse=True)
    return y.astype(np.int8), checked, codes.astype(np.intp), len(uniques)


def _check_settings(n_boot: int, level: float) -> None:
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be at least 1, not {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, not {level}")


class _Scores:
    """One model's scores, prepared once: per-record sums for the threshold metrics and the Brier
    score, and the rows sorted by score (descending), split by class, with the positions that the
    weighted AUROC and AUPRC read from cumulative sums."""

    def __init__(
        self, y: np.ndarray, prob: np.ndarray, codes: np.ndarray, n_groups: int, threshold: float
    ):
        positive = y == 1
        predicted = prob >= threshold
        columns = (
            positive & predicted,  # TP
            ~positive & predicted,  # FP
            positive & ~predicted,  # FN
            ~positive & ~predicted,  # TN
        )
        sums = [np.bincount(codes, weights=c, minlength=n_groups) for c in columns]
        sums.append(np.bincount(codes, weights=(prob - y) ** 2, minlength=n_groups))
        self.group_sums = sums  # per group: TP, FP, FN, TN, squared error

        order = np.argsort(-prob, kind="stable")
        key = -prob[order]  # ascending
        pos_sorted = positive[order]
        self.pos_groups = codes[order][pos_sorted]
        self.neg_groups = codes[order][~pos_sorted]
        key_pos, key_neg = key[pos_sorted], key[~pos_sorted]
        # For each positive (in score order): positives scored at or above it, and negatives
        # scored at or above it and above it. Tied scores form one threshold, as in
        # average_precision_score; tied pairs count 1/2 in AUROC, as in roc_auc_score.
        self.pos_tp = np.searchsorted(key_pos, key_pos, side="right")
        self.pos_tp_plain = bool(np.array_equal(self.pos_tp, np.arange(1, len(key_pos) + 1)))
        self.neg_at_or_above = np.searchsorted(key_neg, key_pos, side="right")
        neg_above = np.searchsorted(key_neg, key_pos, side="left")
        self.tied = np.flatnonzero(neg_above != self.neg_at_or_above)
        self.tied_neg_above = neg_above[self.tied]

    def metrics(self, counts: np.ndarray, mask_one_class: bool = False) -> dict[str, np.ndarray]:
        """Every metric of SCALAR_METRICS for each row of `counts` (resamples x groups, integer
        multiplicities), as classification_metrics defines it on the rows repeated that many
        times; with `mask_one_class`, NaN throughout for resamples that hold one class only."""
        as_float = counts.astype(np.float64)
        # One matrix-vector product per sum: a (resamples x G) @ (G x 5) product is several
        # times slower in OpenBLAS on a busy machine, where its threads wait on each other.
        tp, fp, fn, tn, squared = (as_float @ column for column in self.group_sums)
        del as_float
        total = tp + fp + fn + tn
        positives, negatives = tp + fn, fp + tn
        both = (positives > 0) & (negatives > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            recall = np.where(positives > 0, tp / positives, 0.0)
            specificity = np.where(negatives > 0, tn / negatives, np.nan)
            mcc_den = np.sqrt((tp + fp) * positives * negatives * (tn + fn))
            out = {
                "accuracy": (tp + tn) / total,
                "precision": np.where(tp + fp > 0, tp / (tp + fp), 0.0),
                "recall": recall,
                "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0),
                "specificity": specificity,
                "balanced_accuracy": np.where(both, (recall + specificity) / 2, np.nan),
                "mcc": np.where(mcc_den > 0, (tp * tn - fp * fn) / mcc_den, 0.0),
                "brier": squared / total,
            }
        if both.any():
            out["auroc"], out["auprc"] = self._ranking(counts)
            out["auroc"][~both] = np.nan
            out["auprc"][~both] = np.nan
        else:
            out["auroc"] = np.full(len(counts), np.nan)
            out["auprc"] = np.full(len(counts), np.nan)
        if mask_one_class and not both.all():
            for values in out.values():
                values[~both] = np.nan
        return out

    def _ranking(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weighted AUROC and average precision from cumulative sums over the sorted rows.

        Integer weights in a (resamples, rows) layout: integer cumulative sums along a row are
        several times faster than floating-point ones, and every count stays exact."""
        wp = np.take(counts, self.pos_groups, axis=1)  # (resamples, positive rows)
        wn = np.take(counts, self.neg_groups, axis=1)
        # dtype: numpy would otherwise widen int32 sums to int64, several times slower here
        cum_pos = np.cumsum(wp, axis=1, dtype=counts.dtype)
        cum_neg = np.zeros((len(counts), wn.shape[1] + 1), dtype=counts.dtype)
        np.cumsum(wn, axis=1, dtype=counts.dtype, out=cum_neg[:, 1:])
        del wn
        pos_total = cum_pos[:, -1].astype(np.int64)
        neg_total = cum_neg[:, -1].astype(np.int64)
        # Negative weight scored at or above each positive.
        neg_at_or_above = np.take(cum_neg, self.neg_at_or_above, axis=1)
        # AUROC: the sum over positives of weight x (negative weight below + half the tied), as
        # twice the count: 2 P N - sum wp (neg at or above + neg above). Exact in int64.
        twice = 2 * pos_total * neg_total
        twice -= 2 * np.einsum("ij,ij->i", wp, neg_at_or_above, dtype=np.int64)
        if len(self.tied):
            tied = neg_at_or_above[:, self.tied] - cum_neg[:, self.tied_neg_above]
            twice += np.einsum("ij,ij->i", wp[:, self.tied], tied, dtype=np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            auroc = twice / (2.0 * pos_total * neg_total)
            # AUPRC: each positive's weight times the precision at its score. A row drawn zero
            # times adds nothing; the max() only keeps 0/0 out of such rows.
            tps = cum_pos if self.pos_tp_plain else np.take(cum_pos, self.pos_tp - 1, axis=1)
            predicted = neg_at_or_above
            predicted += tps
            np.maximum(predicted, 1, out=predicted)
            precision = np.divide(tps, predicted, dtype=np.float64)
            auprc = np.einsum("ij,ij->i", precision, wp, dtype=np.float64) / pos_total
        return auroc, auprc


def _block_size(n_rows: int, n_groups: int, n_boot: int) -> int:
    """Resamples per block: one (resamples x rows) int32 array of about _BLOCK_BYTES."""
    return int(max(1, min(n_boot, _BLOCK_BYTES // (4 * max(n_rows, n_groups)))))


def _count_blocks(
    n_groups: int, n_boot: int, block: int, seed: int, dtype: type
) -> Iterator[np.ndarray]:
    """(b, G) multiplicities per block of b resamples: each resample draws G groups uniformly
    with replacement. numpy's Generator gives the same int64 draws in one call as in several,
    so the resamples do not depend on the block size (a test checks)."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, block):
        drawn = rng.integers(0, n_groups, size=(min(block, n_boot - start), n_groups))
        if n_groups <= 2**16:  # one bincount for the block
            drawn += np.arange(len(drawn))[:, None] * n_groups
            flat = np.bincount(drawn.ravel(), minlength=drawn.size)
            yield flat.reshape(drawn.shape).astype(dtype)
            continue
        counts = np.empty(drawn.shape, dtype=dtype)
        for row, draws in zip(counts, drawn, strict=True):  # one resample at a time: cache-sized
            row[:] = np.bincount(draws, minlength=n_groups)
        yield counts


def _resampled(
    y: np.ndarray,
    probs: list[np.ndarray],
    thresholds: list[float],
    codes: np.ndarray,
    n_groups: int,
    n_boot: int,
    seed: int,
) -> list[dict[str, np.ndarray]]:
    """For each model, every metric over the n_boot resamples (NaN where undefined). Resamples
    that hold one class only are NaN throughout when the data itself has both classes."""
    models = [_Scores(y, p, codes, n_groups, t) for p, t in zip(probs, thresholds, strict=True)]
    mask_one_class = bool(y.min() == 0 and y.max() == 1)
    # The largest possible resample (every draw the largest group) must fit the integer counts.
    largest = int(np.bincount(codes).max())
    dtype = np.int32 if n_groups * largest < 2**31 - 1 else np.int64
    blocks: list[list[dict[str, np.ndarray]]] = [[] for _ in models]
    block = _block_size(len(y), n_groups, n_boot)
    for counts in _count_blocks(n_groups, n_boot, block, seed, dtype):
        for model, out in zip(models, blocks, strict=True):
            out.append(model.metrics(counts, mask_one_class))
    return [{k: np.concatenate([b[k] for b in out]) for k in SCALAR_METRICS} for out in blocks]


def _percentile(values: np.ndarray, level: float) -> list[float]:
    """[low, high] of the finite values; [nan, nan] when fewer than half are finite."""
    valid = values[np.isfinite(values)]
    if len(valid) == 0 or 2 * len(valid) < len(values):
        return [math.nan, math.nan]
    tail = (1.0 - level) / 2
    low, high = np.quantile(valid, [tail, 1.0 - tail])
    return [float(low), float(high)]


def cluster_bootstrap(
    y: np.ndarray,
    prob: np.ndarray,
    groups: np.ndarray,
    threshold: float = 0.5,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Percentile bootstrap intervals, resampling whole groups (genomes), for every metric.

    y: 0/1 labels (1 = viral); prob: viral probabilities; groups: one code per row (integers or
    record names, anything np.unique sorts; e.g. group_codes()). Each resample draws as many
    groups as there are, uniformly with replacement, and takes all rows of each drawn group.
    With `groups=np.arange(len(y))` it is the ordinary row bootstrap.

    Returns {metric: [low, high]} for every name in metrics.SCALAR_METRICS, the central `level`
    interval of the resampled values (numpy's linear percentiles). The metrics are those of
    classification_metrics at `threshold` (AUROC, AUPRC and Brier are threshold-free). A
    resample that holds one class only counts as NaN for every metric when the data has both
    classes; resamples where a metric is undefined (NaN) are left out, and a metric with fewer
    than half its resamples valid gets [nan, nan]. With fewer than two groups there is no
    variation between groups to resample: every interval is [nan, nan]. Deterministic for a
    given seed. Raises ValueError for labels other than 0/1, NaN or infinite probabilities, or
    arrays of different lengths.
    """
    _check_settings(n_boot, level)
    y, (prob,), codes, n_groups = _check_inputs(y, [prob], groups)
    if n_groups < 2:
        return {k: [math.nan, math.nan] for k in SCALAR_METRICS}
    (values,) = _resampled(y, [prob], [threshold], codes, n_groups, int(n_boot), seed)
    return {k: _percentile(values[k], level) for k in SCALAR_METRICS}


def paired_bootstrap(
    y: np.ndarray,
    prob_a: np.ndarray,
    prob_b: np.ndarray,
    groups: np.ndarray,
    threshold_a: float = 0.5,
    threshold_b: float = 0.5,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Model b against model a on the same test rows, resampling groups as cluster_bootstrap does,
    with the same resampled groups for both models in each resample (paired).

    Returns {metric: {"a": value_a, "b": value_b, "difference": b - a, "low": ..., "high": ...}}
    for metric in PAIRED_METRICS (auroc, auprc, mcc, f1). "a" and "b" are classification_metrics
    on all rows (each at its own threshold); low and high bound the central `level` interval of
    the resampled differences b - a (NaN when fewer than half the resamples give both values, or
    with fewer than two groups). A model compared with itself gives exactly 0 and [0, 0].
    """
    _check_settings(n_boot, level)
    y, (prob_a, prob_b), codes, n_groups = _check_inputs(y, [prob_a, prob_b], groups)
    point_a = classification_metrics(y, prob_a, threshold_a)
    point_b = classification_metrics(y, prob_b, threshold_b)
    differences = dict.fromkeys(PAIRED_METRICS, np.full(int(n_boot), np.nan))
    if n_groups >= 2:
        values_a, values_b = _resampled(
            y, [prob_a, prob_b], [threshold_a, threshold_b], codes, n_groups, int(n_boot), seed
        )
        differences = {k: values_b[k] - values_a[k] for k in PAIRED_METRICS}
    out = {}
    for k in PAIRED_METRICS:
        low, high = _percentile(differences[k], level)
        a, b = float(point_a[k]), float(point_b[k])
        out[k] = {"a": a, "b": b, "difference": b - a, "low": low, "high": high}
    return out


def point_metrics(y: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """The metrics as the bootstrap computes them, on all rows once (each weight 1); equal to
    classification_metrics up to rounding. For checking the bootstrap's definitions."""
    y, (prob,), codes, n_groups = _check_inputs(y, [prob], np.arange(len(np.ravel(y))))
    ones = np.ones((1, n_groups), dtype=np.int32 if n_groups < 2**31 - 1 else np.int64)
    values = _Scores(y, prob, codes, n_groups, threshold).metrics(ones)
    return {k: float(values[k][0]) for k in SCALAR_METRICS}


def mcnemar(y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> dict:
    """McNemar's test of two classifiers' predictions (0/1) on the same rows.

    b: rows model a gets right and model b wrong; c: rows a gets wrong and b right. Returns
    {"b", "c", "p_value", "exact_p_value", "chi2", "chi2_p_value"}: `p_value` is always the exact
    two-sided binomial p-value (b ~ Binomial(b + c, 1/2) under the null), valid for any b + c
    (1.0 when b + c = 0); "chi2" is the continuity-corrected statistic
    max(|b - c| - 1, 0)^2 / (b + c) with its chi-square (1 df) p-value, for comparison with texts
    that report it. Rows are treated as independent: with fragments of shared genomes the
    p-value is too small; paired_bootstrap resamples genomes instead.
    """
    y = np.asarray(y).ravel()
    pred_a, pred_b = np.asarray(pred_a).ravel(), np.asarray(pred_b).ravel()
    if not len(y) == len(pred_a) == len(pred_b):
        raise ValueError("y, pred_a and pred_b must have the same length")
    right_a, right_b = pred_a == y, pred_b == y
    b = int(np.sum(right_a & ~right_b))
    c = int(np.sum(~right_a & right_b))
    if b + c == 0:
        exact, chi2, chi2_p = 1.0, 0.0, 1.0
    else:
        exact = float(stats.binomtest(b, b + c, 0.5).pvalue)
        chi2 = max(abs(b - c) - 1, 0) ** 2 / (b + c)
        chi2_p = float(stats.chi2.sf(chi2, df=1))
    return {
        "b": b,
        "c": c,
        "p_value": exact,
        "exact_p_value": exact,
        "chi2": float(chi2),
        "chi2_p_value": chi2_p,
    }


def mean_interval(values: Sequence[float] | np.ndarray, level: float = 0.95) -> dict:
    """Summary of a seed sweep's values of one metric.

    Returns {"n", "mean", "sd", "low", "high"}: n the number of values used (NaN values are left
    out), their mean, sample standard deviation (n - 1 divisor) and the Student-t interval of the
    mean at `level`, mean -/+ t(n - 1) * sd / sqrt(n). sd, low and high are NaN when n < 2 (and
    mean too when n = 0).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, not {level}")
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return {"n": n, "mean": mean, "sd": math.nan, "low": math.nan, "high": math.nan}
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf((1.0 + level) / 2, df=n - 1)) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "low": mean - half, "high": mean + half}


def group_codes(ids: Sequence[str], pattern: str) -> np.ndarray:
    """Each row's record (group) code from its id: the first capture group of
    `re.match(pattern, id)`; rows with the same captured text share a code.

    An id that does not match (or whose group 1 does not take part in the match) gets a
    singleton group of its own: it is resampled alone. Codes are 0, 1, ... in order of first
    appearance. Example: pattern r"(.+)_\\d+$" groups "NC_001.1_7" under "NC_001.1".
    """
    compiled = re.compile(pattern)
    if compiled.groups < 1:
        raise ValueError(f"pattern {pattern!r} has no capture group")
    first: dict[tuple[str, object], int] = {}
    codes = np.empty(len(ids), dtype=np.int64)
    for i, record_id in enumerate(ids):
        match = compiled.match(record_id)
        key = match.group(1) if match else None
        codes[i] = first.setdefault(("record", key) if key is not None else ("row", i), len(first))
    return codes
