"""A sample's viral fraction by both estimators, each with an interval that accounts for the
sample's genomes and for the validation it is corrected with, or the reason it is withheld
(issue 24). The estimators: composition.py; the resampling: composition_resample.py.

The interval is the percentile interval of the estimates over `n_boot` joint resamples of the
sample's genomes and the validation's genomes, computed unclipped; widened by t(df) / normal,
df the Welch-Satterthwaite degrees of freedom of the sample's genome residuals (with skewed
genome sizes a few genomes carry the spread, and without it the 95% interval covered about 89%
in simulation); moved with the estimate when that is clipped to 0 or 1 (so a host-only sample
gets [0, upper], not [0, 0]); then kept in [0, 1]. Measured coverage, error and the presets'
realized FDR: benchmarks/sample_fraction_sim.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from virnucpro_trainer.stats.composition import (
    MIN_RATE_GAP,
    adjusted_count,
    check_fraction,
    check_probabilities,
    em_prior,
)
from virnucpro_trainer.stats.composition_resample import GenomeRows, JointDraws

METHODS = ("em", "adjusted_count")
DEFAULT_METHOD = "em"  # see benchmarks/sample_fraction_sim.py
# Below this many sequences the estimate is withheld. Simulated samples with genomes of 1..500
# fragments (benchmarks/sample_fraction_sim.py --sizes): the interval covers at every size (the
# genome rules and the t widening see to that), but below 1,000 sequences (about a dozen such
# genomes) it spans most of [0, 1] (EM at 300: 0.27 to 0.87 wide) and says little.
MIN_SEQUENCES = 1000
MIN_GENOMES = 5  # per sample, and per class in the validation, for an interval
MIN_EFFECTIVE_GENOMES = 3.0  # (sum n)^2 / sum n^2 over the sample's genome sizes n
MIN_DEFINED = 0.9  # share of resamples in which the estimator must be defined


@dataclass(frozen=True)
class FractionResult:
    """One estimator's fraction and interval; NaN with the reason where not estimable
    (`reason` withholds both, `interval_reason` the interval only)."""

    method: str
    value: float
    low: float
    high: float
    n_sequences: int
    reason: str | None = None
    interval_reason: str | None = None

    def as_dict(self) -> dict:
        """metrics.json's `estimated_viral_fraction` block: plain types, None for NaN."""

        def plain(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        return {
            "value": plain(self.value),
            "interval": [plain(self.low), plain(self.high)],
            "method": self.method,
            "n_sequences": self.n_sequences,
            "reason": self.reason or self.interval_reason,
        }


def percentile_interval(point: float, values: np.ndarray, level: float, df: float = math.inf):
    """(low, high, None), or (NaN, NaN, reason): the percentile interval of the unclipped
    resampled `values` around the unclipped `point`, widened by t(df) / normal at the level's
    quantile (a small-sample correction: a spread that rests on a few genomes' residuals is
    itself uncertain), moved to the clipped point, and kept in [0, 1]."""
    defined = np.isfinite(values)
    if not math.isfinite(point):
        return math.nan, math.nan, "the estimator is undefined on the whole sample"
    if defined.mean() < MIN_DEFINED:
        share = 1 - defined.mean()
        return math.nan, math.nan, f"the estimator is undefined in {share:.0%} of resamples"
    alpha = (1.0 - level) / 2
    spread = np.quantile(values[defined] - point, [alpha, 1 - alpha])
    if math.isfinite(df):
        spread = spread * stats.t.ppf(1 - alpha, max(df, 1.0)) / stats.norm.ppf(1 - alpha)
    low, high = np.clip(np.clip(point, 0.0, 1.0) + spread, 0.0, 1.0)
    if not high > low:
        return math.nan, math.nan, "the resamples do not vary: no variation between genomes"
    return float(low), float(high), None


def _effective(sizes: np.ndarray) -> float:
    """(sum n)^2 / sum n^2 over genome sizes n: k for k equal genomes, about 1 when one genome
    holds nearly all rows."""
    return float(sizes.sum() ** 2 / np.sum(sizes**2))


def _problem(sample: GenomeRows, validation: GenomeRows) -> str | None:
    """Why no interval can be trusted (None when it can)."""
    sizes = sample.size[0] + sample.size[1]
    sizes = sizes[sizes > 0]
    effective = _effective(sizes)
    if sizes.size < MIN_GENOMES or effective < MIN_EFFECTIVE_GENOMES:
        return (
            f"the sample holds {sizes.size} genome(s), effectively {effective:.1f}; at least "
            f"{MIN_GENOMES} (effectively {MIN_EFFECTIVE_GENOMES:g}) are needed"
        )
    for label, name in ((1, "viral"), (0, "host")):
        held = len(validation.genomes(label))
        if held < MIN_GENOMES:
            return f"{held} validation genome(s) hold the {name} class; {MIN_GENOMES} are needed"
    return None


def _codes(genomes, n: int, name: str) -> np.ndarray:
    genomes = np.asarray(genomes).ravel()
    if genomes.size != n:
        raise ValueError(f"{name} must give one genome per row ({n}), got {genomes.size}")
    return np.unique(genomes, return_inverse=True)[1].ravel()


@dataclass(frozen=True)
class FractionSettings:
    """How estimate_fraction resamples and when it withholds (its keyword options)."""

    n_boot: int = 1000
    level: float = 0.95
    seed: int = 0
    min_sequences: int = MIN_SEQUENCES
    min_gap: float = MIN_RATE_GAP
    recalibrate: bool = True  # re-fit the temperature on each validation resample
    train_prior: float | None = None


def estimate_fraction(
    sample_probs, sample_genomes, val_labels, val_probs, val_genomes, threshold: float, **options
) -> dict[str, FractionResult]:
    """{method: FractionResult} for each of METHODS: the sample's viral fraction and interval.

    sample_probs: calibrated P(viral) per sample sequence; sample_genomes: each one's genome
    (any values np.unique sorts: record ids or codes); val_labels (0/1), val_probs, val_genomes:
    the validation rows the model was calibrated and thresholded on; threshold: the adjusted
    count's cut-off (viral when prob >= it). `options` (FractionSettings): n_boot, level, seed;
    train_prior, the viral share of the rows the model was trained on (with an unweighted loss,
    the prior its probabilities are calibrated at; None takes the validation's viral share of
    rows, a noisier stand-in that the resamples move). Below `min_sequences` sequences, or with
    a validation of one class, both estimates are withheld with the reason; the adjusted count
    alone when its TPR - FPR < `min_gap`; the interval alone with fewer than MIN_GENOMES genomes
    in the sample or in a validation class. `recalibrate`: re-fit the temperature on each
    validation resample (EM's calibration error).
    """
    s = FractionSettings(**options)
    p, vp, vy, codes, val_codes, threshold, level = _checked(
        sample_probs, sample_genomes, val_labels, val_probs, val_genomes, threshold, s
    )

    def withheld(method: str, reason: str) -> FractionResult:
        return FractionResult(method, math.nan, math.nan, math.nan, p.size, reason)

    if p.size < int(s.min_sequences):
        why = f"{p.size} sequences; the estimate needs at least {int(s.min_sequences)}"
        return {m: withheld(m, why) for m in METHODS}
    if vy.min() == vy.max():
        why = "the validation rows hold one class: no TPR, FPR or prior to correct with"
        return {m: withheld(m, why) for m in METHODS}
    tpr, fpr = float(np.mean(vp[vy == 1] >= threshold)), float(np.mean(vp[vy == 0] >= threshold))
    counted = adjusted_count(float(np.mean(p >= threshold)), tpr, fpr, s.min_gap)
    given = s.train_prior is not None
    prior = check_fraction(s.train_prior, "train_prior", True) if given else float(vy.mean())
    values = {"em": em_prior(p, prior).prior, "adjusted_count": counted.value}
    # The sample's strata: each genome by its mean probability (composition_resample.py).
    genome_mean = np.bincount(codes, weights=p) / np.bincount(codes)
    sample = GenomeRows(p, codes, (genome_mean[codes] >= 0.5).astype(np.int64), threshold)
    validation = GenomeRows(vp, val_codes, vy.astype(np.int64), threshold)
    problem = _problem(sample, validation)
    points, draws, df = {}, {}, {}
    if problem is None:
        joint = JointDraws(sample, validation, MIN_GENOMES, prior if given else None)
        points, draws = joint.run(int(s.n_boot), s.seed, s.recalibrate)
        df = joint.residual_df(points["em"])
    out = {}
    for m in METHODS:
        if m == "adjusted_count" and counted.reason:
            out[m] = withheld(m, counted.reason)
            continue
        low, high, why = math.nan, math.nan, problem
        if problem is None:
            low, high, why = percentile_interval(points[m], draws[m], level, df[m])
        out[m] = FractionResult(m, float(values[m]), low, high, p.size, None, why)
    return out


def _checked(sample_probs, sample_genomes, val_labels, val_probs, val_genomes, threshold, s):
    """estimate_fraction's inputs checked and as arrays; a ValueError naming the culprit."""
    p = check_probabilities(sample_probs, "sample_probs")
    vp = check_probabilities(val_probs, "val_probs")
    vy = np.asarray(val_labels).ravel()
    if vy.shape != vp.shape or not np.isin(vy, (0, 1)).all():
        raise ValueError(f"val_labels must be {vp.size} labels, each 0 (host) or 1 (viral)")
    codes = _codes(sample_genomes, p.size, "sample_genomes")
    val_codes = _codes(val_genomes, vp.size, "val_genomes")
    threshold = check_fraction(threshold, "threshold")
    level = check_fraction(s.level, "level", open_interval=True)
    if int(s.n_boot) < 1:
        raise ValueError(f"n_boot must be at least 1, got {s.n_boot!r}")
    return p, vp, vy, codes, val_codes, threshold, level
