"""The sample's viral fraction and what it means for each unit, at each level (issue 24;
docs/evaluate.md, docs/cutoffs-and-calibration.md).

The checkpoint carries its validation rows' ids, labels and logits and the training rows' viral
share (`validation_scores`). From them each level gets a reference: the validation's units at that
level, built by the same rules as the sample's (levels.py), and a calibration of the level's score
(rows: the checkpoint's temperature where it has one, calibrated at the training prior; otherwise,
and for chunks and records, Platt scaling fitted on the validation's units, calibrated at their
viral share). The prediction files keep the scores as they are; only these numbers use it.
The sample's calibrated scores then give the fraction by both estimators with a genome-resampled
interval (stats/composition_interval.py), and at that fraction (or `viral_fraction=` when the
user knows it) each unit's adjusted probability and local FDR. The calls at the target FDR follow
`calls.method`: `conformal` (the default: conformal p-values against the validation's host units,
then BH with Storey's null share 1 - the fraction; evaluate/calls.py) or `lfdr` (the q-value, the
running mean of the local FDRs).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from virnucpro_trainer.checkpoint import ScoringModel
from virnucpro_trainer.data.records import record_codes
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.evaluate.calls import (
    ConformalCalls,
    Keys,
    conformal_calls,
    host_keys,
    null_levels,
    unit_keys,
)
from virnucpro_trainer.levels import Level, chunk_level, level_genomes, record_level
from virnucpro_trainer.stats.calibration import apply_platt, apply_temperature, fit_platt
from virnucpro_trainer.stats.composition import (
    PRESETS,
    SequenceFDR,
    calls_at_fdr,
    sequence_fdr,
)
from virnucpro_trainer.stats.composition_interval import (
    DEFAULT_METHOD,
    FractionResult,
    estimate_fraction,
)

log = logging.getLogger(__name__)

NO_REFERENCE = (
    "the checkpoint carries no validation scores (it was written before they were stored, or "
    "by another program), so the sample's viral fraction cannot be estimated; give "
    "viral_fraction=<number> for per-unit FDRs and calls, or retrain to store them"
)
COLUMNS = ("prob_viral_adjusted", "local_fdr", "p_value", "q_value", "call")


@dataclass
class Reference:
    """One level's validation units: labels, calibrated probabilities, genomes; how the level's
    scores are calibrated (None: they already are, at `prior`) and the prior they are at."""

    labels: np.ndarray
    probs: np.ndarray
    genomes: np.ndarray
    platt: tuple[float, float] | None
    prior: float
    prior_is_training: bool = False  # rows: the training rows' share, fixed in the resamples

    def calibrate(self, score: np.ndarray) -> np.ndarray:
        s = np.asarray(score, dtype=np.float64)
        return s if self.platt is None else apply_platt(s, self.platt)


def references(validation: dict | None, temperature: float | None, aggregate: str) -> dict:
    """{level: Reference} from a checkpoint's validation_scores; {} when it has none."""
    if not validation:
        return {}
    ids = str(validation["ids"]).split("\n")
    y = np.asarray(validation["labels"], dtype=np.int64)
    z = np.asarray(validation["logits"], dtype=np.float64)
    if len(ids) != y.size or y.size != z.size:
        raise ValueError(f"validation_scores: {len(ids)} ids, {y.size} labels, {z.size} logits")
    probs = expit(z) if temperature is None else apply_temperature(z, temperature)
    pattern = str(validation["record_pattern"])
    chunks, _ = chunk_level(ids, probs, y)
    records, _ = record_level(chunks, pattern, aggregate)
    out = {}
    if temperature is not None:  # calibrated at the training rows' share
        prior = float(validation["train_viral_prior"])
        out["rows"] = Reference(y, probs, record_codes(ids, pattern), None, prior, True)
    rows = Level(ids, probs, probs >= 0.5, np.ones(y.size, np.int64), y)
    for name, level, genomes in (
        ("rows", rows, record_codes(ids, pattern)),
        ("chunks", chunks, record_codes(chunks.ids, pattern)),
        ("records", records, np.arange(len(records.ids))),
    ):
        if name not in out:
            out[name] = platt_reference(level, genomes)
    return out


def platt_reference(level: Level, genomes: np.ndarray) -> Reference:
    """A level's validation units with their scores Platt-scaled (calibrated at the units' viral
    share); left as they are when the units hold one class (nothing to fit)."""
    labels = np.asarray(level.labels, dtype=np.int64)
    platt = fit_platt(labels, level.score) if 0 < labels.sum() < labels.size else None
    probs = level.score if platt is None else apply_platt(level.score, platt)
    return Reference(labels, probs, genomes, platt, float(labels.mean()))


@dataclass
class LevelComposition:
    """One level's estimates (by method), the fraction its units' numbers use and where it came
    from, those numbers (None without a fraction) and the calls at the target FDR by `method`
    (None where it cannot call), with the conformal p-values where the validation has them."""

    estimates: dict[str, FractionResult]
    fraction: float | None
    source: str  # "estimated (em)", "given (viral_fraction)" or why there is none
    numbers: SequenceFDR | None
    called: np.ndarray | None
    method: str = "lfdr"
    conformal: ConformalCalls | None = None

    @property
    def q_value(self) -> np.ndarray | None:
        """The q-values the calls are made from (the method's)."""
        if self.method == "conformal":
            return None if self.conformal is None else self.conformal.q_value
        return None if self.numbers is None else self.numbers.q_value


def level_composition(
    level: Level,
    genomes: np.ndarray,
    reference: Reference | None,
    cfg,
    keys: tuple[Keys, Keys] | None = None,
) -> LevelComposition:
    """The level's composition under evaluate config `cfg` (fraction, viral_fraction, calls);
    `keys`: the sample's units and the validation's host units as the conformal p-values compare
    them (evaluate/calls.py), None where the checkpoint has no validation scores."""
    estimates = estimate(level, genomes, reference, cfg.fraction)
    best = estimates[DEFAULT_METHOD]
    method = cfg.calls.method
    if reference is None or not 0 < reference.prior < 1:
        why = NO_REFERENCE if reference is None else best.reason or "one class in validation"
        return LevelComposition(estimates, None, why, None, None, method)
    if cfg.viral_fraction is not None:
        fraction, source = float(cfg.viral_fraction), "given (viral_fraction)"
    elif math.isfinite(best.value):
        fraction, source = best.value, f"estimated ({DEFAULT_METHOD})"
    else:
        fraction, source = None, best.reason or "not estimable"
    numbers, called = None, None
    if fraction is not None:
        probs = np.clip(reference.calibrate(level.score), 0.0, 1.0)
        numbers = sequence_fdr(probs, reference.prior, fraction, scores=level.score)
        called = calls_at_fdr(numbers.q_value, cfg.calls.fdr)
    conformal = None
    if keys is not None:
        conformal = conformal_calls(*keys, cfg.calls.fdr, fraction, cfg.calls.min_bin_hosts)
    if method == "conformal":
        called = None if conformal is None else conformal.called
    return LevelComposition(estimates, fraction, source, numbers, called, method, conformal)


def estimate(level: Level, genomes, reference: Reference | None, settings) -> dict:
    """Both estimators' FractionResult for the level, or the default one withheld with why."""
    n = len(level.ids)
    why = NO_REFERENCE if reference is None else "no units at this level" if not n else None
    if why:
        return {DEFAULT_METHOD: FractionResult(DEFAULT_METHOD, *[math.nan] * 3, n, why)}
    return estimate_fraction(
        reference.calibrate(level.score),
        genomes,
        reference.labels,
        reference.probs,
        reference.genomes,
        0.5,
        n_boot=settings.n_boot,
        level=settings.level,
        seed=settings.seed,
        min_sequences=settings.min_sequences,
        # rows: calibrated at the training rows' share; chunks, records: at the validation's
        train_prior=reference.prior if reference.prior_is_training else None,
    )


def compositions(
    cfg, scoring: ScoringModel, levels: dict[str, Level]
) -> dict[str, LevelComposition]:
    """Each level's estimated viral fraction, per-unit FDRs and calls (evaluate/composition.py)."""
    try:
        refs = references(scoring.validation, scoring.temperature, cfg.aggregate)
    except (KeyError, TypeError, ValueError) as err:  # a hand-made or damaged checkpoint
        raise UserError(
            f"{scoring.path}: its validation_scores cannot be used ({type(err).__name__}: {err}); "
            "expected train_viral_prior, ids, labels, logits and record_pattern, one per "
            "validation row (docs/checkpoint.md)"
        ) from None
    if not refs:
        log.warning("%s: %s", scoring.path, NO_REFERENCE)
    keys = unit_keys(levels, cfg.record_pattern)
    logits = "rows" in levels and levels["rows"].ranking is not None
    found, null = {}, conformal_null(scoring, cfg.aggregate, logits)
    for name, level in levels.items():
        genomes = level_genomes(name, level, cfg.record_pattern)
        pair = (keys[name], null[name]) if name in null and name in keys else None
        found[name] = level_composition(level, genomes, refs.get(name), cfg, pair)
        log_level(name, found[name], cfg.calls.fdr)
    return found


def conformal_null(scoring: ScoringModel, aggregate: str, logits: bool) -> dict[str, Keys]:
    """Each level's validation host units as the conformal p-values compare them (by the rows'
    logits only where the sample's rows carry theirs); {} without validation scores (checked by
    `references` before)."""
    if not scoring.validation:
        return {}
    units = null_levels(scoring.validation, scoring.temperature, aggregate)
    if not logits:
        units["rows"].ranking = None
    pattern = str(scoring.validation["record_pattern"])
    return {n: host_keys(units[n], k) for n, k in unit_keys(units, pattern).items()}


def log_level(name: str, c: LevelComposition, fdr: float) -> None:
    e = c.estimates[DEFAULT_METHOD]
    if math.isfinite(e.value):
        log.info("%s: estimated viral fraction %.4f (%.4f-%.4f, %s) of %d units", name,
                 e.value, e.low, e.high, DEFAULT_METHOD, e.n_sequences)  # fmt: skip
    else:
        log.info("%s: viral fraction not estimated: %s", name, e.reason)
    why = c.conformal.reason if c.method == "conformal" and c.conformal else None
    if c.called is None:
        log.info("%s: no FDR calls (%s)", name, why or c.source)
        return
    used = "none" if c.fraction is None else f"{c.fraction:.4f}"
    log.info("%s: %d of %d called viral at FDR %g (%s), fraction %s (%s)", name,
             int(c.called.sum()), c.called.size, fdr, c.method, used, c.source)  # fmt: skip
    if why:
        log.warning("%s: %s", name, why)


def composition_metrics(found: dict[str, LevelComposition], levels: dict[str, Level], cfg):
    """metrics.json's `estimated_viral_fraction` and `calls` blocks, per level."""
    calls = {"preset": preset_name(cfg.calls), "target_fdr": cfg.calls.fdr,
             "method": cfg.calls.method}  # fmt: skip
    fractions = {}
    for name, c in found.items():
        fractions[name] = {
            **c.estimates[DEFAULT_METHOD].as_dict(),
            "methods": {m: r.as_dict() for m, r in c.estimates.items()},
        }
        block = {"viral_fraction": c.fraction, "fraction_source": c.source, "called": None}
        if c.method == "conformal":
            block["conformal"] = None if c.conformal is None else c.conformal.as_dict()
            block["reason"] = c.source if c.conformal is None else c.conformal.reason
        if c.called is not None:
            score = np.asarray(levels[name].score)
            q = c.q_value
            block["called"] = int(c.called.sum())
            block["score_cutoff"] = float(score[c.called].min()) if c.called.any() else None
            block["by_preset"] = {p: int(calls_at_fdr(q, p).sum()) for p in PRESETS}
            if levels[name].labels is not None:
                block.update(realized(np.asarray(levels[name].labels), c.called))
        calls[name] = block
    return fractions, calls


def preset_name(calls) -> str:
    """The preset's name, or `custom` when calls.fdr is not the preset's own target."""
    return calls.preset if PRESETS.get(calls.preset) == calls.fdr else "custom"


def realized(labels: np.ndarray, called: np.ndarray) -> dict:
    """On labelled data: the calls' realized FDR (false among called) and recall."""
    n_called, viral = int(called.sum()), int(labels.sum())
    true = int(np.sum(called & (labels == 1)))
    return {
        "realized_fdr": (n_called - true) / n_called if n_called else None,
        "recall": true / viral if viral else None,
    }


def table_columns(c: LevelComposition, n: int) -> dict[str, np.ndarray]:
    """The prediction tables' columns for one level: the adjusted probability and local FDR
    (NaN without a fraction), the conformal p-value (NaN without validation scores), the
    method's q-value and call (NaN where it cannot call)."""
    missing = np.full(n, np.nan)
    x, conformal = c.numbers, c.conformal
    q = c.q_value
    return dict(
        zip(
            COLUMNS,
            (
                missing if x is None else x.adjusted,
                missing if x is None else x.local_fdr,
                missing if conformal is None else conformal.p_value,
                missing if q is None else q,
                missing if c.called is None else c.called,
            ),
            strict=True,
        )
    )
