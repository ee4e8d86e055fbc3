"""Intervals on collections that are worth few genomes (issue 33): withheld with the reason below
the effective number of genomes they need, wider where a metric rests on few genomes (the
small-sample floor), nearly unchanged where it rests on many; and, behind the stat marker, the
coverage of every metric on a small heavy-tailed family member (benchmarks/interval_coverage.py
measures the whole family; docs/statistics.md has its table)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from virnucpro_trainer.stats import interval_methods as im
from virnucpro_trainer.stats.bootstrap import Design, Scored, check_inputs
from virnucpro_trainer.stats.effective import kish
from virnucpro_trainer.stats.intervals import (
    MIN_EFFECTIVE_GENOMES,
    draw,
    genome_intervals,
    interval,
    intervals_of,
)
from virnucpro_trainer.stats.metrics import SCALAR_METRICS

import collection_family as cf


def genomes(rng, sizes, viral, effect_sd=1.0):
    """Rows of genomes of the given sizes and classes: labels, probabilities, logits, genome."""
    genome = np.repeat(np.arange(len(sizes)), sizes)
    y = np.asarray(viral)[genome]
    logit = np.where(y == 1, 1.0, -1.0) + rng.normal(0, effect_sd, len(sizes))[genome]
    logit += rng.normal(0, 0.7, len(genome))
    return y, 1 / (1 + np.exp(-logit)), logit, genome


def test_withheld_below_the_effective_number_with_the_reason():
    # 12 host genomes of 20 rows; 10 viral genomes, one of them large: the viral class is worth
    # just under MIN_EFFECTIVE_GENOMES genomes, then (the large one smaller) just over.
    rng = np.random.default_rng(0)
    for large, estimable in ((60, False), (25, True)):
        viral = np.r_[large, np.full(9, 5)]
        sizes = np.r_[viral, np.full(12, 20)]
        assert (kish(viral) >= MIN_EFFECTIVE_GENOMES) == estimable, kish(viral)
        y, prob, logit, genome = genomes(rng, sizes, [1] * 10 + [0] * 12)
        found = genome_intervals(y, prob, genome, n_boot=100, ranking=logit)
        reasons = {i.reason for i in found.values()}
        if estimable:
            assert not any(r and "effective number" in r for r in reasons), reasons
            continue
        (reason,) = reasons
        assert f"effective number of viral genomes {kish(viral):.1f}" in reason
        assert f"at least {MIN_EFFECTIVE_GENOMES:g} needed" in reason
        assert all(math.isnan(i.low) and math.isnan(i.high) for i in found.values())


def plain_and_default(y, prob, logit, genome, n_boot=300, seed=0):
    """Per metric: (the bootstrap-t without the floor on the metric's own scale, the same on the
    logit scale, the default: the logit scale with the floor, the metric's effective number of
    genomes), all from the same resamples."""
    y, (score, rank, cut), codes, n = check_inputs(y, [prob, logit, prob >= 0.5], genome)
    (drawn,) = draw([Scored(y, score, [cut], codes, n, rank)], Design(y, codes, n), n_boot, seed)
    out = {}
    for metric in ("accuracy", "recall", "auroc", "auprc", "brier"):
        d, point = drawn.jackknife[metric], drawn.point[metric]
        error = float(np.sqrt(np.sum(d**2)))
        values, errors = drawn.values[metric], drawn.errors[metric]
        plain = im.studentized(point, error, values, errors, 0.95)
        logit_scale = im.studentized(point, error, values, errors, 0.95, bounds=(0.0, 1.0))
        default = interval(drawn, metric, "studentized", 0.95)
        out[metric] = (plain, logit_scale, (default.low, default.high), im.effective_clusters(d))
    return out


def width(bounds) -> float:
    return min(bounds[1], 1.0) - max(bounds[0], 0.0)


def test_the_floor_widens_where_a_metric_rests_on_few_genomes():
    # 10 genomes a class, sizes 1-400 log-uniform: every metric rests on a handful of genomes
    rng = np.random.default_rng(3)
    sizes = np.exp(rng.uniform(0, np.log(400), 20)).astype(int) + 1
    y, prob, logit, genome = genomes(rng, sizes, [1, 0] * 10)
    for metric, (_, logit_scale, default, effective) in plain_and_default(
        y, prob, logit, genome
    ).items():
        assert effective < 4, (metric, effective)
        assert default[0] <= logit_scale[0] and logit_scale[1] <= default[1], metric
        assert width(default) > 1.2 * width(logit_scale), (metric, logit_scale, default)


def test_the_floor_leaves_many_genomes_nearly_unchanged():
    # 600 genomes of 5-15 rows, halfway between 0 and 1: every metric rests on scores of them
    rng = np.random.default_rng(4)
    y, prob, logit, genome = genomes(rng, rng.integers(5, 16, 600), np.arange(600) % 2, 0.5)
    for metric, (plain, _, default, effective) in plain_and_default(y, prob, logit, genome).items():
        assert effective > 30, (metric, effective)
        assert 0.97 < width(default) / width(plain) < 1.1, (metric, plain, default)
        assert abs(sum(default) - sum(plain)) / 2 < 0.1 * width(plain), metric


def test_auprc_is_studentized_with_its_own_standard_errors():
    rng = np.random.default_rng(5)
    y, prob, logit, genome = genomes(rng, rng.integers(5, 40, 60), np.arange(60) % 2)
    y, (score, rank, cut), codes, n = check_inputs(y, [prob, logit, prob >= 0.5], genome)
    scored = Scored(y, score, [cut], codes, n, rank)
    (drawn,) = draw([scored], Design(y, codes, n), 50, 0)
    assert np.isfinite(drawn.errors["auprc"]).all() and (drawn.errors["auprc"] > 0).all()
    (cheap,) = draw([scored], Design(y, codes, n), 50, 0, auprc_errors=False)
    assert np.isnan(cheap.errors["auprc"]).all()
    assert np.array_equal(cheap.values["auprc"], drawn.values["auprc"])


HEAVY = cf.Shape("lognormal", "t3", 0.5, 100)


@pytest.mark.stat
def test_heavy_tailed_coverage_of_every_metric():
    # 100 genomes of lognormal sizes with Student-t genome effects: 120 collections. At a true
    # coverage of 0.95 the standard error is 0.02; every metric must reach 0.9 where estimable
    # (the interval before issue 33 gave 0.86-0.92 on recall and AUPRC here), and the
    # collections must mostly be estimable (>= 0.85; the benchmark's 200 sets give 0.9x).
    truth = cf.truth(HEAVY)
    hits = {k: [] for k in SCALAR_METRICS}
    given = 0
    for i in range(120):
        y, prob, logit, genome = cf.simulate(np.random.default_rng([33, i]), HEAVY)
        (found,) = intervals_of(y, prob, genome, [prob >= 0.5], 0.95, 300, i, ranking=logit)
        given += found["studentized"]["accuracy"].reason is None
        for metric, got in found["studentized"].items():
            if got.reason is None:
                hits[metric].append(got.low <= truth[metric] <= got.high)
    assert given >= 0.85 * 120, given
    coverage = {k: float(np.mean(v)) for k, v in hits.items()}
    assert min(coverage.values()) >= 0.9, coverage
