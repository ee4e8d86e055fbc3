"""Intervals of every test metric that resample whole genomes, or the reason there is none.

`genome_intervals` is the public function: labels, scores, the genome of each row, threshold,
level, resamples and seed in; an Interval (low, high, reason) per metric out. Training's
test_metrics.json, evaluate.py's metrics.json, the reports and the sweep summaries all use it
(through interval_block.py); benchmarks/interval_coverage.py measures its coverage
(docs/statistics.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from virnucpro_trainer.stats import interval_methods as im
from virnucpro_trainer.stats.bootstrap import (
    Design,
    Scored,
    check_inputs,
    check_settings,
    standard_errors,
)
from virnucpro_trainer.stats.effective import CLASSES, class_sizes, kish
from virnucpro_trainer.stats.metrics import SCALAR_METRICS
from virnucpro_trainer.stats.names import CI_METHODS

METHODS = CI_METHODS
DEFAULT_METHOD = "studentized"
# Below these, a class's share of the variation cannot be estimated from its genomes: fewer
# genomes holding the class, or an effective number of genomes (sum n)^2 / sum n^2 over the
# genomes' fragment counts n (1 when one genome holds all, k for k equal genomes) below this.
MIN_GENOMES_PER_CLASS = 5
MIN_EFFECTIVE_GENOMES = 3.0
RANGES = {"mcc": (-1.0, 1.0)}  # every other metric lies in [0, 1]
CLASS_OF = {"recall": "viral", "specificity": "host"}  # the metrics that rest on one class


@dataclass(frozen=True)
class Interval:
    """[low, high] of one metric; both NaN and `reason` set when it is not estimable. `genomes`:
    the metric's own effective number of genomes (how evenly the genomes carry its variance,
    interval_methods.effective_clusters; NaN where no resampling was done), on which its
    coverage depends (docs/statistics.md)."""

    low: float
    high: float
    reason: str | None = None
    genomes: float = math.nan

    @property
    def bounds(self) -> list[float]:
        return [self.low, self.high]


def not_estimable(reason: str) -> Interval:
    return Interval(math.nan, math.nan, reason)


def design_problem(y: np.ndarray, codes: np.ndarray, n_groups: int) -> str | None:
    """Why no interval can be trusted on these rows at all (None when they can): one genome in
    all, or a class (of those present) held by too few genomes or dominated by one."""
    if n_groups < 2:
        return "one genome: no variation between genomes to resample"
    per_class = class_sizes(y, codes, n_groups)
    for name, _ in CLASSES:
        sizes = per_class[name][per_class[name] > 0]
        if len(sizes) == 0:
            continue
        if len(sizes) < MIN_GENOMES_PER_CLASS:
            return (
                f"the {name} class is held by {len(sizes)} genome(s); at least "
                f"{MIN_GENOMES_PER_CLASS} are needed"
            )
        effective = kish(sizes)
        if effective < MIN_EFFECTIVE_GENOMES:
            return (
                f"one genome holds {sizes.max() / sizes.sum():.0%} of the {name} fragments "
                f"(effective number of {name} genomes {effective:.1f}, at least "
                f"{MIN_EFFECTIVE_GENOMES:g} needed)"
            )
    return None


@dataclass
class Draws:
    """One metric set's values on the test set and over the resamples: the point values, each
    genome's jackknife difference on the test set, and per resample the value and its standard
    error (for a paired comparison: the differences b - a); and the test set's effective number
    of genomes per class ({"viral", "host"}: effective.kish of the class's genome sizes)."""

    point: dict[str, float]
    jackknife: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    errors: dict[str, np.ndarray]
    classes: dict[str, float] = field(default_factory=dict)

    def own_genomes(self, metric: str) -> float:
        """The metric's own effective number of genomes: interval_methods.effective_clusters of
        its jackknife differences (Interval.genomes)."""
        return im.effective_clusters(self.jackknife[metric])

    def degrees_of_freedom(self, metric: str) -> float:
        """The small-sample floor's degrees of freedom: the metric's own effective number of
        genomes (own_genomes), at most the effective number of the genomes of the class(es) it
        rests on (recall: viral, specificity: host, every other metric: the smaller class),
        minus 1."""
        own = self.own_genomes(metric)
        present = {k: v for k, v in self.classes.items() if v > 0}
        if metric in CLASS_OF and CLASS_OF[metric] in present:
            own = min(own, present[CLASS_OF[metric]])
        elif present:
            own = min(own, *present.values())
        return own - 1.0


def _own(outputs: list[list[tuple[dict, dict]]]) -> list[tuple[dict, dict]]:
    """Every model's every prediction, in order: the draws of intervals."""
    return [pair for per_model in outputs for pair in per_model]


def draw(
    models: list[Scored],
    design: Design,
    n_boot: int,
    seed: int,
    combine=_own,
    auprc_errors: bool = True,
) -> list[Draws]:
    """The Draws of every metric over n_boot resamples, every model seeing the same resamples;
    `combine` turns the models' (values, jackknife differences) per prediction into the
    quantities to draw (by default each prediction's own; paired.py: differences b - a).
    `auprc_errors`: AUPRC's standard error in every resample too (the studentized interval
    needs it; it costs about as much as every other metric together), else NaN."""
    whole = design.everything()
    firsts = combine([model.resampled(whole, None, influence=True) for model in models])
    drawn = [([], []) for _ in firsts]
    # a progress bar on a terminal only (disable=None): silent in logs, files and pipes
    bar = tqdm(total=n_boot, desc="resampling genomes", unit="resample", leave=False, disable=None)
    for counts in design.blocks(n_boot, seed):
        both = design.both_classes(counts)
        outputs = combine([model.resampled(counts, both, auprc_errors) for model in models])
        for (values, errors), (v, d) in zip(drawn, outputs, strict=True):
            values.append(v)
            errors.append(standard_errors(counts, d))
        bar.update(len(counts))
    bar.close()
    sizes = class_sizes(design.y, design.codes, design.n_groups)
    classes = {name: kish(sizes[name]) for name, _ in CLASSES}
    return [
        Draws(
            point={k: float(v[k][0]) for k in SCALAR_METRICS},
            jackknife={k: d[k][0] for k in SCALAR_METRICS},
            values={k: np.concatenate([b[k] for b in values]) for k in SCALAR_METRICS},
            errors={k: np.concatenate([b[k] for b in errors]) for k in SCALAR_METRICS},
            classes=classes,
        )
        for (v, d), (values, errors) in zip(firsts, drawn, strict=True)
    ]


def interval(draws: Draws, metric: str, method: str, level: float, difference=False) -> Interval:
    """One metric's interval by `method` from its draws; not estimable with the reason. The
    bounds are kept inside the metric's range (or, with `difference`, that of a difference)."""
    point = draws.point[metric]
    if not math.isfinite(point):
        return not_estimable("the metric is undefined on these rows")
    values, errors = draws.values[metric], draws.errors[metric]
    own = draws.own_genomes(metric)
    try:
        if method == "percentile":
            low, high = im.percentile(point, values, level)
        elif method == "bca" or not np.isfinite(errors).any():  # AUPRC: no resampled errors
            low, high = im.bca(point, values, draws.jackknife[metric], level)
        else:
            error = float(np.sqrt(np.sum(draws.jackknife[metric] ** 2)))
            df = draws.degrees_of_freedom(metric)
            scale = None if difference else RANGES.get(metric, (0.0, 1.0))
            low, high = im.studentized(point, error, values, errors, level, df, scale)
    except im.NotEstimable as why:
        return Interval(math.nan, math.nan, str(why), own)
    bottom, top = RANGES.get(metric, (0.0, 1.0))
    if difference:
        bottom, top = bottom - top, top - bottom
    low, high = max(low, bottom), min(high, top)
    if not low < high:
        reason = "the interval has zero width: no variation between genomes"
        return Interval(math.nan, math.nan, reason, own)
    return Interval(low, high, None, own)


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")


def intervals_of(
    labels,
    scores,
    genomes,
    predictions: Sequence,
    level: float,
    n_boot: int,
    seed: int,
    methods: Sequence[str] = (DEFAULT_METHOD,),
    ranking=None,
) -> list[dict[str, dict[str, Interval]]]:
    """For each 0/1 prediction of `scores` (e.g. one per threshold): {method: {metric:
    Interval}}, all from the same resamples; Brier comes from the scores, AUROC and AUPRC rank
    by `ranking` when given (what their point values rank by: the logits), else the scores."""
    check_settings(n_boot, level)
    for method in methods:
        check_method(method)
    rank = scores if ranking is None else ranking
    y, (score, rank, *given), codes, n_groups = check_inputs(
        labels, [scores, rank, *predictions], genomes
    )
    problem = design_problem(y, codes, n_groups)
    if problem is not None:
        unknown = {k: not_estimable(problem) for k in SCALAR_METRICS}
        return [{m: dict(unknown) for m in methods} for _ in given]
    design = Design(y, codes, n_groups)
    scored = Scored(y, score, given, codes, n_groups, rank)
    studentized = "studentized" in methods
    per_prediction = draw([scored], design, int(n_boot), seed, auprc_errors=studentized)
    return [
        {m: {k: interval(d, k, m, level) for k in SCALAR_METRICS} for m in methods}
        for d in per_prediction
    ]


def genome_intervals(
    labels,
    scores,
    genomes,
    threshold: float = 0.5,
    level: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    method: str = DEFAULT_METHOD,
    predicted=None,
    ranking=None,
) -> dict[str, Interval]:
    """An interval for every metric of metrics.SCALAR_METRICS, resampling genomes.

    labels: 0/1 per row (1 = viral); scores: viral probabilities; genomes: each row's genome
    (any values np.unique sorts, e.g. data.records.record_codes()); threshold: viral when
    score >= it (or `predicted`, a 0/1 prediction per row, for the threshold metrics); ranking:
    what AUROC and AUPRC rank the rows by, when not the scores (the logits, unrounded and
    unchanged by calibration: pass what the reported values rank by); level: e.g. 0.95;
    n_boot resamples, each drawing as many genomes as there are, with replacement; seed: the same
    seed gives the same intervals. method: "studentized" (the default: bootstrap-t with jackknife
    standard errors, on the logit scale, MCC on Fisher's z), "bca" or "percentile".

    Returns {metric: Interval(low, high, reason)}. Not estimable (NaN, with the reason) when a
    class present is held by fewer than MIN_GENOMES_PER_CLASS genomes or one genome dominates it
    (effective number of genomes below MIN_EFFECTIVE_GENOMES), when the metric is undefined, when
    fewer than half of the resamples define it, or when the resamples do not vary: never a
    zero-width interval. Resamples holding one class only are left out of every metric (when the
    data has both classes). Raises ValueError for labels other than 0/1, NaN or infinite scores,
    arrays of different lengths, or bad settings.
    """
    cut = np.asarray(scores, dtype=np.float64) >= threshold if predicted is None else predicted
    (result,) = intervals_of(
        labels, scores, genomes, [cut], level, n_boot, seed, (method,), ranking
    )
    return result[method]


def cluster_bootstrap(
    y,
    prob,
    groups,
    threshold: float = 0.5,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    method: str = DEFAULT_METHOD,
) -> dict[str, list[float]]:
    """genome_intervals' bounds only: {metric: [low, high]} ([nan, nan] where not estimable)."""
    found = genome_intervals(y, prob, groups, threshold, level, n_boot, seed, method)
    return {k: v.bounds for k, v in found.items()}
