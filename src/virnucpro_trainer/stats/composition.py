"""A sample's viral fraction and what it means for each sequence (issue 24).

Two estimators of the fraction pi of a sample's sequences that are viral, both assuming prior
shift only (the sample's viral and host sequences look like the validation ones; new kinds of
viruses break both):

- adjusted classify-and-count (Forman 2008): the observed call rate q at a threshold, corrected
  with the validation TPR and FPR there, (q - FPR) / (TPR - FPR), clipped to [0, 1];
- EM prior adjustment (Saerens, Latinne & Decaestecker 2002) of calibrated probabilities.

At a fraction pi (estimated, or given by a user who knows it) each sequence gets its probability
adjusted to pi, its local FDR (1 - that probability) and its q-value; `calls_at_fdr` calls viral
where the q-value is at most a target FDR (PRESETS, or a number). The interval of the fraction,
resampling genomes: composition_interval.py. Plain numpy arrays in, plain values out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# name -> target FDR, the one copy: evaluate.py's `calls` group is made from it (config/evaluate.py)
PRESETS = {"relaxed": 0.2, "default": 0.1, "conservative": 0.05}
# Below this TPR - FPR the adjusted count divides the call rate's noise by almost nothing.
MIN_RATE_GAP = 0.1
EM_TOLERANCE = 1e-8  # EM stops when the prior moves less than this in one step
EM_MAX_ITERATIONS = 10_000


@dataclass(frozen=True)
class Estimate:
    """An estimated fraction, or NaN with the reason it is not estimable."""

    value: float
    reason: str | None = None


@dataclass(frozen=True)
class PriorFit:
    """EM's estimated prior, the probabilities adjusted to it, and how the iterations ended."""

    prior: float
    adjusted: np.ndarray
    iterations: int
    converged: bool


@dataclass(frozen=True)
class SequenceFDR:
    """Per sequence, at one viral fraction: P(viral) adjusted to it, local FDR, q-value."""

    adjusted: np.ndarray
    local_fdr: np.ndarray
    q_value: np.ndarray


def check_probabilities(values, name: str) -> np.ndarray:
    """`values` as a non-empty 1-D float64 array of numbers in [0, 1], or ValueError."""
    p = np.asarray(values, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {p.shape}")
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise ValueError(f"{name} must lie in [0, 1] (no NaN or infinity)")
    return p


def check_fraction(value: float, name: str, open_interval: bool = False) -> float:
    """`value` as a float in [0, 1] ((0, 1) with `open_interval`), or ValueError."""
    v = float(value)
    inside = 0.0 < v < 1.0 if open_interval else 0.0 <= v <= 1.0
    if not (math.isfinite(v) and inside):
        bounds = "(0, 1)" if open_interval else "[0, 1]"
        raise ValueError(f"{name} must be in {bounds}, got {value!r}")
    return v


def call_rate(scores, threshold: float) -> float:
    """The share of `scores` at or above `threshold` (the observed rate of viral calls)."""
    return float(np.mean(check_probabilities(scores, "scores") >= float(threshold)))


def adjusted_count(
    call_rate: float, tpr: float, fpr: float, min_gap: float = MIN_RATE_GAP
) -> Estimate:
    """Adjusted classify-and-count (Forman 2008): (q - FPR) / (TPR - FPR) clipped to [0, 1].

    call_rate: q, the share of the sample called viral at the threshold; tpr, fpr: the
    validation true and false positive rates at that same threshold. Not estimable (NaN, with
    the reason) when TPR - FPR < `min_gap`: the correction would divide noise by almost nothing.
    """
    q = check_fraction(call_rate, "call_rate")
    tpr, fpr = check_fraction(tpr, "tpr"), check_fraction(fpr, "fpr")
    if not min_gap > 0:
        raise ValueError(f"min_gap must be positive, got {min_gap!r}")
    if tpr - fpr < min_gap:
        return Estimate(
            math.nan,
            f"validation TPR - FPR at the threshold is {tpr - fpr:.3g} (TPR {tpr:.3g}, "
            f"FPR {fpr:.3g}); at least {min_gap:g} is needed to correct the call rate",
        )
    return Estimate(float(np.clip((q - fpr) / (tpr - fpr), 0.0, 1.0)))


def prior_shift(probs, train_prior: float, fraction: float) -> np.ndarray:
    """P(viral) calibrated at prior `train_prior`, re-weighted by Bayes' rule to prior `fraction`:

        p' = (f/pi) p / ((f/pi) p + ((1-f)/(1-pi)) (1-p)),   pi = train_prior, f = fraction.

    The identity when f = pi; all 0 at f = 0 and all 1 at f = 1; the order of the rows is kept.
    """
    p = check_probabilities(probs, "probs")
    pi = check_fraction(train_prior, "train_prior", open_interval=True)
    f = check_fraction(fraction, "fraction")
    return _shift(p, pi, f)


def _shift(p: np.ndarray, pi: float, f: float) -> np.ndarray:
    viral = (f / pi) * p
    total = viral + ((1.0 - f) / (1.0 - pi)) * (1.0 - p)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, viral / np.where(total > 0, total, 1.0), f)


def em_prior(
    probs,
    train_prior: float,
    tol: float = EM_TOLERANCE,
    max_iter: int = EM_MAX_ITERATIONS,
) -> PriorFit:
    """EM prior adjustment (Saerens, Latinne & Decaestecker 2002).

    probs: calibrated P(viral) of the sample's sequences; train_prior: the viral prior they are
    calibrated at (the training rows' viral share, for a model trained with an unweighted loss
    and calibrated by a temperature; the validation rows' share is a noisier stand-in).
    Starting from pi_0 = train_prior, each step adjusts the probabilities to the current prior
    (prior_shift) and takes their mean as the next prior; it stops when the prior moves less
    than `tol` or after `max_iter` steps (`converged` says which). The fixed point is the
    maximum-likelihood viral fraction of the two-class mixture, in [0, 1]; near 0 or 1 EM
    converges slowly (hence the cap; on 100,000 host-only rows it took about 350 steps).
    """
    p = check_probabilities(probs, "probs")
    pi = check_fraction(train_prior, "train_prior", open_interval=True)
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol!r}")
    if int(max_iter) < 1:
        raise ValueError(f"max_iter must be at least 1, got {max_iter!r}")
    prior, steps, converged = pi, 0, False
    while steps < int(max_iter) and not converged:
        new = float(np.mean(_shift(p, pi, prior)))
        converged, prior, steps = abs(new - prior) < tol, new, steps + 1
    return PriorFit(prior, _shift(p, pi, prior), steps, converged)


def q_values(scores, local_fdr) -> np.ndarray:
    """Per sequence, the expected FDR of calling viral every sequence scored at least as high.

    Sequences are taken by descending score; the running mean of their local FDRs is the
    expected FDR of each cut, with tied scores entering together (all take the mean at the end
    of their tie). As in Storey's q-value, each sequence then gets the smallest such FDR of any
    cut that includes it, so q never decreases as the score falls (even where the local FDRs are
    not monotone in the score, e.g. a chunk or record score that is not the probability).
    """
    s = np.asarray(scores, dtype=np.float64)
    fdr = check_probabilities(local_fdr, "local_fdr")
    if s.shape != fdr.shape:
        raise ValueError(f"{s.size} scores but {fdr.size} local FDRs")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    order = np.argsort(-s, kind="stable")
    running = np.cumsum(fdr[order]) / np.arange(1, s.size + 1)
    ordered = s[order]
    tie_end = np.r_[np.flatnonzero(np.diff(ordered) != 0), s.size - 1]
    run = np.repeat(tie_end, np.diff(np.r_[-1, tie_end]))  # each position's tie end
    best = np.minimum.accumulate(running[run][::-1])[::-1]
    out = np.empty_like(best)
    out[order] = np.clip(best, 0.0, 1.0)
    return out


def sequence_fdr(probs, train_prior: float, fraction: float, scores=None) -> SequenceFDR:
    """At viral fraction `fraction`: each sequence's probability adjusted to it (prior_shift),
    its local FDR (1 - adjusted) and its q-value (q_values, ranking by `scores`, by default the
    probabilities themselves)."""
    adjusted = prior_shift(probs, train_prior, fraction)
    local = 1.0 - adjusted
    return SequenceFDR(adjusted, local, q_values(probs if scores is None else scores, local))


def target_fdr(calls: str | float) -> float:
    """A preset's target FDR (relaxed 0.2, default 0.1, conservative 0.05) or a number in (0, 1)."""
    if isinstance(calls, str):
        if calls not in PRESETS:
            raise ValueError(f"calls must be one of {sorted(PRESETS)} or a number, got {calls!r}")
        return PRESETS[calls]
    return check_fraction(calls, "calls", open_interval=True)


def calls_at_fdr(q_value, target: str | float) -> np.ndarray:
    """Viral calls (bool per sequence): q-value at most the target FDR (a preset or a number);
    none for no sequences."""
    q = check_probabilities(q_value, "q_value") if np.size(q_value) else np.empty(0)
    return q <= target_fdr(target) + 1e-12  # float rounding of a running mean at the target
