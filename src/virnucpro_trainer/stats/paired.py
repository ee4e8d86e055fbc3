"""Two models on the same test rows: paired differences with intervals that resample genomes,
the clustered McNemar test of their accuracies (genomes as the unit), and the row McNemar test
(which assumes independent fragments, kept for comparison with texts that report it).
docs/statistics.md.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from virnucpro_trainer.stats.bootstrap import Design, Scored, check_inputs, check_settings
from virnucpro_trainer.stats.intervals import (
    DEFAULT_METHOD,
    Interval,
    check_method,
    design_problem,
    draw,
    interval,
    not_estimable,
)
from virnucpro_trainer.stats.metrics import classification_metrics

PAIRED_METRICS = ("accuracy", "auroc", "auprc", "mcc", "f1")


def _difference(outputs: list) -> list[tuple[dict, dict]]:
    """Model b minus model a: values and jackknife differences (None stays None)."""
    ((values_a, jack_a),), ((values_b, jack_b),) = outputs
    values = {k: values_b[k] - values_a[k] for k in values_a}
    jack = {
        k: None if jack_a[k] is None or jack_b[k] is None else jack_b[k] - jack_a[k] for k in jack_a
    }
    return [(values, jack)]


def paired_bootstrap(
    y,
    prob_a,
    prob_b,
    groups,
    threshold_a: float = 0.5,
    threshold_b: float = 0.5,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    method: str = DEFAULT_METHOD,
) -> dict[str, dict]:
    """Model b against model a on the same test rows, resampling genomes as genome_intervals
    does, with the same resampled genomes for both models in each resample (paired).

    Returns {metric: {"a", "b", "difference", "low", "high", "reason"}} for metric in
    PAIRED_METRICS. "a" and "b" are classification_metrics on all rows (each at its own
    threshold); low and high bound the `level` interval of the difference b - a by `method`
    (studentized by default, from the genomes' jackknife differences of b minus those of a),
    NaN with the reason where it is not estimable (the same rules as genome_intervals). Two
    identical models differ by exactly 0, with the interval [0, 0] (where the genomes allow
    intervals at all).
    """
    check_settings(n_boot, level)
    check_method(method)
    y, (prob_a, prob_b), codes, n_groups = check_inputs(y, [prob_a, prob_b], groups)
    point_a = classification_metrics(y, prob_a, threshold_a)
    point_b = classification_metrics(y, prob_b, threshold_b)
    problem = design_problem(y, codes, n_groups)
    same = threshold_a == threshold_b and np.array_equal(prob_a, prob_b)
    if problem is None and not same:
        models = [
            Scored(y, p, [p >= t], codes, n_groups)
            for p, t in ((prob_a, threshold_a), (prob_b, threshold_b))
        ]
        design = Design(y, codes, n_groups)
        studentized = method == "studentized"
        (drawn,) = draw(models, design, int(n_boot), seed, _difference, studentized)
    out = {}
    for k in PAIRED_METRICS:
        a, b = float(point_a[k]), float(point_b[k])
        if problem is not None:
            found = not_estimable(problem)
        elif same:  # identical predictions: the difference is 0 on any genomes
            found = Interval(0.0, 0.0)
        else:
            found = interval(drawn, k, method, level, difference=True)
        out[k] = {"a": a, "b": b, "difference": b - a}
        out[k].update(low=found.low, high=found.high, reason=found.reason)
    return out


def _disagreements(y, pred_a, pred_b) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).ravel()
    pred_a, pred_b = np.asarray(pred_a).ravel(), np.asarray(pred_b).ravel()
    if not len(y) == len(pred_a) == len(pred_b):
        raise ValueError("y, pred_a and pred_b must have the same length")
    right_a, right_b = pred_a == y, pred_b == y
    return right_a & ~right_b, ~right_a & right_b


def _sign_flips(per_genome: np.ndarray, n_flips: int, seed: int) -> float:
    """Two-sided mid-p-value of sum(d) against its sign-flip distribution: every genome's
    difference d_k keeps or changes its sign with probability 1/2, as it would if the two models
    were exchangeable on that genome. P(|flipped sum| > |sum|) + P(= |sum|) / 2: the mid-p
    keeps the test near its level where a few large genomes make the distribution lumpy
    (Fagerland et al. 2013 recommend it for McNemar's test). Exact (all 2^k flips) for up to 16
    genomes with d_k != 0, otherwise from n_flips seeded random flips. The d_k are integers, so
    the sums are exact."""
    d = per_genome[per_genome != 0]
    observed = abs(d.sum())
    if len(d) <= 16:
        flipped = np.abs((1 - 2 * ((np.arange(2 ** len(d))[:, None] >> np.arange(len(d))) & 1)) @ d)
        return float(np.mean(flipped > observed) + 0.5 * np.mean(flipped == observed))
    rng = np.random.default_rng(seed)
    above = equal = 0
    for start in range(0, n_flips, 1000):
        signs = rng.choice((-1.0, 1.0), size=(min(1000, n_flips - start), len(d)))
        flipped = np.abs(signs @ d)
        above += int(np.sum(flipped > observed))
        equal += int(np.sum(flipped == observed))
    return (above + 0.5 * equal) / n_flips


def clustered_mcnemar(y, pred_a, pred_b, groups, n_flips: int = 10_000, seed: int = 0) -> dict:
    """McNemar's test with genomes as the unit. For genome k, b_k = its rows model a gets right
    and b wrong, c_k the reverse, d_k = b_k - c_k. The statistic of Durkalski et al. (2003, Stat
    Med 22:2417), (sum d_k)^2 / sum d_k^2, is chi-square with 1 df for many genomes of similar
    size; with genome sizes as skewed as real data that approximation is conservative, so the
    p-value is the mid-p of the statistic's sign-flip distribution (each d_k's sign flipped with
    probability 1/2, as when the two models are exchangeable on each genome). Fragments of one
    genome may err together: only genomes are taken as independent.

    Returns {"b", "c" (row totals), "genomes" (with d_k != 0), "chi2", "chi2_p_value"
    (Durkalski's), "p_value" (sign flips, mid-p; 1 when no row differs), "n_flips"}.
    """
    only_a, only_b = _disagreements(y, pred_a, pred_b)
    codes = np.unique(np.asarray(groups).ravel(), return_inverse=True)[1]
    if len(codes) != len(only_a):
        raise ValueError(f"{len(codes)} group codes for {len(only_a)} labels")
    per_genome = np.bincount(codes, weights=only_a) - np.bincount(codes, weights=only_b)
    squares = float(np.sum(per_genome**2))
    chi2 = float(per_genome.sum() ** 2 / squares) if squares > 0 else 0.0
    return {
        "b": int(only_a.sum()),
        "c": int(only_b.sum()),
        "genomes": int(np.count_nonzero(per_genome)),
        "chi2": chi2,
        "chi2_p_value": float(stats.chi2.sf(chi2, df=1)) if squares > 0 else 1.0,
        "p_value": _sign_flips(per_genome, n_flips, seed) if squares > 0 else 1.0,
        "n_flips": n_flips,
    }


def mcnemar(y, pred_a, pred_b) -> dict:
    """McNemar's test of two classifiers' predictions (0/1) on the same rows, taking the rows as
    independent: with fragments of shared genomes its p-value is far too small (a simulation
    with errors clustered by genome rejected a true null 95% of the time); clustered_mcnemar
    is the test to use on fragments.

    b: rows model a gets right and model b wrong; c: rows a gets wrong and b right. Returns
    {"b", "c", "p_value", "exact_p_value", "chi2", "chi2_p_value"}: `p_value` is always the exact
    two-sided binomial p-value (b ~ Binomial(b + c, 1/2) under the null), valid for any b + c
    (1.0 when b + c = 0); "chi2" is the continuity-corrected statistic
    max(|b - c| - 1, 0)^2 / (b + c) with its chi-square (1 df) p-value.
    """
    only_a, only_b = _disagreements(y, pred_a, pred_b)
    b, c = int(only_a.sum()), int(only_b.sum())
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
