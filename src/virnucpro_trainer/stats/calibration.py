"""Calibration of the viral probability: expected calibration error, temperature scaling, and
the bins of the reliability diagram (drawn in reports/figures.py).
See docs/cutoffs-and-calibration.md."""

from __future__ import annotations

import logging

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, logit

log = logging.getLogger(__name__)

TEMPERATURE_BOUNDS = (0.05, 20.0)
SCORE_CLIP = 1e-6  # a score of exactly 0 or 1 has no logit: Platt scaling clips it this far in


def _labels_values(y, values, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels and `what` ("probabilities" in [0, 1], or finite "logits") as float64 arrays."""
    y = np.asarray(y, dtype=np.float64).ravel()
    v = np.asarray(values, dtype=np.float64).ravel()
    if y.shape != v.shape:
        raise ValueError(f"{y.size} labels but {v.size} {what}")
    if y.size == 0:
        raise ValueError("no rows")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (host) or 1 (viral)")
    if not np.isfinite(v).all():
        raise ValueError(f"{what} must be finite numbers")
    if what == "probabilities" and not ((v >= 0).all() and (v <= 1).all()):
        raise ValueError("probabilities must lie in [0, 1]")
    return y, v


ECE_BINS = 15  # equal-width bins of the ECE and of every reliability diagram


def calibration_bins(y, p, n_bins: int = ECE_BINS):
    """Per non-empty equal-width bin: (mean predicted, observed viral share, rows).

    Bins are ((m-1)/M, m/M] for m = 1..M, with p = 0 in the first: the same as scikit-learn's
    `calibration_curve(strategy="uniform")`."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    y, p = _labels_values(y, p, "probabilities")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(edges[1:-1], p, side="left")
    counts = np.bincount(ids, minlength=n_bins)
    sum_p = np.bincount(ids, weights=p, minlength=n_bins)
    sum_y = np.bincount(ids, weights=y, minlength=n_bins)
    kept = counts > 0
    return sum_p[kept] / counts[kept], sum_y[kept] / counts[kept], counts[kept]


def expected_calibration_error(y, p, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error of the viral probability `p` against labels `y` (1 viral).

    The rows are put in `n_bins` equal-width bins over [0, 1] by `p` (bin m holds
    (m-1)/M < p <= m/M, and p = 0 goes in the first); ECE = sum over non-empty bins of
    (rows in bin / all rows) * |viral share in bin - mean p in bin|. This is Guo et al. (2017,
    "On calibration of modern neural networks") ECE with the positive-class (viral) probability in
    place of the top-label confidence: the ECE of the binary reliability diagram, the same bins as
    scikit-learn's `calibration_curve(strategy="uniform")`. 0 is perfectly calibrated, per bin.
    """
    y, p = _labels_values(y, p, "probabilities")
    predicted, observed, counts = calibration_bins(y, p, n_bins)
    return float(np.sum(counts * np.abs(observed - predicted)) / y.size)


def _mean_bce(y: np.ndarray, z: np.ndarray) -> float:
    """Mean binary cross-entropy of sigmoid(z), stably: log(1 + e^z) - y*z."""
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def fit_temperature(y, logits) -> float:
    """One temperature T > 0 by maximum likelihood, on validation logits.

    `logits` are the model's viral-minus-host logit differences z (for a 2-class softmax, the
    viral probability is sigmoid(z)), taken as float64 from the model's output: no probability is
    clipped or rounded on the way, so an over-confident model's large logits keep their sizes. T
    minimises the mean binary cross-entropy of sigmoid(z / T) against `y`, searched over log T
    (bounded, T in [0.05, 20]). T > 1 softens an over-confident model, T < 1 sharpens an
    under-confident one. A T at a bound (e.g. perfectly separated validation rows, whose loss
    only falls as T does) is logged as a warning: the calibration is then not trustworthy.
    Returns a plain Python float.
    """
    y, z = _labels_values(y, logits, "logits")
    low, high = np.log(TEMPERATURE_BOUNDS)
    result = minimize_scalar(
        lambda log_t: _mean_bce(y, z / np.exp(log_t)),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-6},
    )
    temperature = float(np.exp(result.x))
    if min(abs(result.x - low), abs(result.x - high)) < 1e-3:
        log.warning(
            "temperature scaling: T = %.4g is at the edge of its range %s (validation rows "
            "perfectly separated, or too few): the calibrated probabilities are not trustworthy",
            temperature,
            TEMPERATURE_BOUNDS,
        )
    return temperature


def apply_temperature(logits, temperature: float) -> np.ndarray:
    """sigmoid(z / T) of the viral-minus-host logits z, as float64. Dividing by T > 0 keeps the
    order of the rows; ranking metrics are computed from the logits themselves, so they are the
    same with and without calibration."""
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    return expit(np.asarray(logits, dtype=np.float64) / float(temperature))


def fit_platt(y, scores) -> tuple[float, float]:
    """Platt scaling of scores in [0, 1] (a chunk's highest frame probability, a record's share
    of viral chunks): (a, b) by maximum likelihood of sigmoid(a * logit(score) + b) against `y`,
    scores clipped to [SCORE_CLIP, 1 - SCORE_CLIP]. Unlike a temperature it has an intercept: a
    maximum over frames or a vote is not centred where the classes balance. The targets are
    Platt's (1999): (n1 + 1) / (n1 + 2) for viral, 1 / (n0 + 2) for host, which keeps the fit
    finite on perfectly separated units (a plain maximum likelihood would run off to infinity)."""
    y, s = _labels_values(y, scores, "scores")
    z = logit(np.clip(s, SCORE_CLIP, 1 - SCORE_CLIP))
    n1 = float(y.sum())
    t = np.where(y == 1, (n1 + 1) / (n1 + 2), 1 / (y.size - n1 + 2))
    result = minimize(lambda ab: _mean_bce(t, ab[0] * z + ab[1]), np.array([1.0, 0.0]))
    return float(result.x[0]), float(result.x[1])


def apply_platt(scores, ab: tuple[float, float]) -> np.ndarray:
    """sigmoid(a * logit(score) + b) as float64; order-preserving when a > 0."""
    z = logit(np.clip(np.asarray(scores, dtype=np.float64), SCORE_CLIP, 1 - SCORE_CLIP))
    return expit(ab[0] * z + ab[1])
