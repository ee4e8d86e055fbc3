"""From a metric's resampled values to an interval: percentile, BCa and studentized (bootstrap-t).

Each function takes the metric on the test set, its resampled values (and what the method needs:
the genomes' jackknife differences, standard errors) and returns (low, high), or raises
NotEstimable with the reason when the resamples cannot give an interval with honest coverage.
Which method is the default, and why: docs/statistics.md.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

# A t value for a resample whose standard error is 0 although its value differs from the test
# set's (e.g. a resample of perfectly classified genomes): it lies beyond any finite t.
_FAR = 1e6


class NotEstimable(Exception):
    """The interval cannot be trusted; the message says why."""


def _valid(values: np.ndarray) -> np.ndarray:
    """The finite values, checked: at least half the resamples, and not all the same."""
    finite = np.isfinite(values)
    if 2 * finite.sum() < len(values) or not finite.any():
        raise NotEstimable("fewer than half of the resamples define it")
    valid = values[finite]
    if valid.min() == valid.max():
        raise NotEstimable(
            "every resample gives the same value: no variation between genomes to measure"
        )
    return valid


def percentile(point: float, values: np.ndarray, level: float) -> tuple[float, float]:
    """The central `level` interval of the resampled values (numpy's linear percentiles)."""
    tail = (1.0 - level) / 2
    low, high = np.quantile(_valid(values), [tail, 1.0 - tail])
    return float(low), float(high)


def bca(
    point: float, values: np.ndarray, jackknife: np.ndarray, level: float
) -> tuple[float, float]:
    """Bias-corrected and accelerated percentiles (Efron 1987): the bias correction z0 from the
    share of resamples below the test set's value, the acceleration from the genomes' jackknife
    differences, a = sum d^3 / (6 (sum d^2)^1.5)."""
    valid = _valid(values)
    below = (np.sum(valid < point) + 0.5 * np.sum(valid == point)) / len(valid)
    if not 0.0 < below < 1.0:
        raise NotEstimable("every resample lies on one side of the test set's value")
    z0 = stats.norm.ppf(below)
    squares = float(np.sum(jackknife**2))
    accel = float(np.sum(jackknife**3)) / (6.0 * squares**1.5) if squares > 0 else 0.0
    z = stats.norm.ppf([(1.0 - level) / 2, (1.0 + level) / 2])
    adjusted = stats.norm.cdf(z0 + (z0 + z) / (1.0 - accel * (z0 + z)))
    low, high = np.quantile(valid, adjusted)
    return float(low), float(high)


def effective_clusters(jackknife: np.ndarray) -> float:
    """The metric's own effective number of genomes, (sum d^2)^2 / sum d^4 over the genomes'
    jackknife differences d: Kish's formula applied to each genome's share of the variance,
    the feasible effective number of clusters of Carter, Schnepel and Steigerwald (2017). It
    is k when k genomes carry the variance equally, near 1 when one carries it all."""
    squares = np.asarray(jackknife, dtype=np.float64) ** 2
    total = float(squares.sum())
    return total**2 / float(np.sum(squares**2)) if total > 0 else 0.0


def _logit(x, bounds: tuple[float, float]):
    low, high = bounds
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log((np.asarray(x, dtype=np.float64) - low) / (high - np.asarray(x)))


def _slope(x, bounds: tuple[float, float]):
    """d logit / dx: the delta method's factor from a standard error to the logit scale's."""
    low, high = bounds
    with np.errstate(divide="ignore", invalid="ignore"):
        return (high - low) / ((np.asarray(x, dtype=np.float64) - low) * (high - np.asarray(x)))


def _inverse(y: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return float(low + (high - low) * special.expit(y))


def studentized(
    point: float,
    error: float,
    values: np.ndarray,
    errors: np.ndarray,
    level: float,
    df: float = math.inf,
    bounds: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """Bootstrap-t (Efron and Tibshirani 1993, ch. 12.5): t* = (value* - point) / se* over the
    resamples; the interval is point - t*_(1-tail) se to point - t*_(tail) se, where se and se*
    are the jackknife standard errors of the test set and of each resample.

    Small-sample floor: neither end is closer to the point than Student's t quantile at `df`
    degrees of freedom allows (the bootstrap-t quantile or t(df), whichever is farther), so a
    test set that is worth few genomes gets at least the width a t interval on that many gives.
    `bounds`: the metric's range; then the pivot is formed on the logit scale of that range
    (logit(value) and se x d logit / d value, the delta method), where a metric near its bound
    varies more alike across resamples, and the interval maps back inside the range.

    A resample whose standard error is 0 although its value differs from the test set's (e.g.
    only perfectly classified genomes drawn) lies beyond any finite t on its own side; when such
    resamples reach into either tail, that end of the interval is unbounded, and the interval
    is not estimable (rather than the vacuous [0, 1] that clipping would show)."""
    _valid(values)
    if not (math.isfinite(error) and error > 0):
        raise NotEstimable("its standard error is 0: no variation between genomes to measure")
    finite = np.isfinite(values)
    values, errors = values[finite], errors[finite]
    centre = point
    if bounds is not None and bounds[0] < point < bounds[1]:
        centre = float(_logit(point, bounds))
        error = error * float(_slope(point, bounds))
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (_logit(values, bounds) - centre) / (errors * _slope(values, bounds))
    else:
        bounds = None
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (values - point) / errors
    t = np.where(np.isfinite(t), t, np.sign(values - point) * _FAR)
    tail = (1.0 - level) / 2
    t_low, t_high = np.quantile(t, [tail, 1.0 - tail])
    if max(abs(t_low), abs(t_high)) >= _FAR / 2:
        share = float(np.mean(np.abs(t) >= _FAR))
        raise NotEstimable(
            f"unbounded: {share:.1%} of the resamples drew only genomes that do not vary (e.g. "
            f"only perfectly classified ones), more than the {tail:.1%} a tail allows; the errors "
            "sit in too few genomes"
        )
    if math.isfinite(df):
        floor = float(stats.t.ppf(1.0 - tail, max(df, 1.0)))
        t_low, t_high = min(t_low, -floor), max(t_high, floor)
    low, high = centre - t_high * error, centre - t_low * error
    if bounds is not None:
        return _inverse(low, bounds), _inverse(high, bounds)
    return float(low), float(high)
