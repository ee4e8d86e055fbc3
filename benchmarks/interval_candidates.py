"""The interval rules interval_coverage.py weighs against the default, each computed from the
same resamples (intervals.draw's Draws) as the default, so that they differ by rule only.

- `before`: the default until issue 33: bootstrap-t on the metric's own scale, no small-sample
  floor, AUPRC by BCa (no standard error per resample), with one genome allowed to hold up to
  a third of a class (effective number of genomes per class at least 3);
- `t floor, plain scale`: the default's small-sample floor (Draws.degrees_of_freedom) on the
  metric's own scale, not the logit scale;
- `wild cluster`: the wild cluster bootstrap (MacKinnon and Webb 2017; Webb's six-point weights,
  999 draws) of the metric's linearisation, sum_g v_g d_g over the genomes' jackknife
  differences d_g, studentized by the wild draw's own standard error (centred on the rows'
  shares): symmetric, as every wild bootstrap of a linear statistic is;
- `bca` and `percentile`: the other `ci.method` settings (intervals.interval).
"""

from __future__ import annotations

import math

import numpy as np

from virnucpro_trainer.stats import interval_methods as im
from virnucpro_trainer.stats.intervals import RANGES, Draws, Interval, interval, not_estimable

BEFORE_MIN_EFFECTIVE = 3.0
WEBB = np.array([-math.sqrt(1.5), -1.0, -math.sqrt(0.5), math.sqrt(0.5), 1.0, math.sqrt(1.5)])
CANDIDATES = ("before", "t floor, plain scale", "wild cluster", "bca", "percentile")


def _clipped(metric: str, low: float, high: float) -> Interval:
    bottom, top = RANGES.get(metric, (0.0, 1.0))
    low, high = max(low, bottom), min(high, top)
    if not low < high:
        return not_estimable("zero width")
    return Interval(low, high)


def _studentized(draws: Draws, metric: str, level: float, floor: bool) -> Interval:
    point, values, errors = draws.point[metric], draws.values[metric], draws.errors[metric]
    jackknife = draws.jackknife[metric]
    if not math.isfinite(point):
        return not_estimable("undefined")
    try:
        if not floor and metric == "auprc":
            low, high = im.bca(point, values, jackknife, level)
        else:
            error = float(np.sqrt(np.sum(jackknife**2)))
            df = draws.degrees_of_freedom(metric) if floor else math.inf
            low, high = im.studentized(point, error, values, errors, level, df)
    except im.NotEstimable as why:
        return not_estimable(str(why))
    return _clipped(metric, low, high)


def wild_cluster(
    draws: Draws, metric: str, level: float, shares: np.ndarray, rng: np.random.Generator
) -> Interval:
    point, d = draws.point[metric], draws.jackknife[metric]
    error = float(np.sqrt(np.sum(d * d)))
    if not (math.isfinite(point) and error > 0):
        return not_estimable("undefined or no variation")
    v = WEBB[rng.integers(0, 6, size=(999, len(d)))]
    total = v @ d
    own = np.sqrt(np.sum((v * d - np.outer(total, shares)) ** 2, axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = total / own
    t = t[np.isfinite(t)]
    tail = (1.0 - level) / 2
    t_low, t_high = np.quantile(t, [tail, 1.0 - tail])
    return _clipped(metric, point - t_high * error, point - t_low * error)


def candidate_intervals(
    draws: Draws, level: float, effective: dict, shares: np.ndarray, seed
) -> dict[str, dict[str, Interval]]:
    """{candidate: {metric: Interval}} for one test set's draws; `effective`: its effective
    numbers of genomes per class (effective.effective_genomes' first part), `shares`: each
    genome's share of the rows."""
    rng = np.random.default_rng(seed)
    smallest = min(effective["viral"], effective["host"])
    out: dict[str, dict[str, Interval]] = {name: {} for name in CANDIDATES}
    for metric in draws.point:
        if smallest < BEFORE_MIN_EFFECTIVE:
            out["before"][metric] = not_estimable("effective number of genomes")
        else:
            out["before"][metric] = _studentized(draws, metric, level, floor=False)
        out["t floor, plain scale"][metric] = _studentized(draws, metric, level, floor=True)
        out["wild cluster"][metric] = wild_cluster(draws, metric, level, shares, rng)
        for method in ("bca", "percentile"):
            out[method][metric] = interval(draws, metric, method, level)
    return out
