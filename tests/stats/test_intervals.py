"""Genome intervals (stats/intervals.py) where the old percentile intervals failed: coverage under
skewed genome sizes, a class held by one genome, resamples that do not vary; the methods, the
seed, and the paired tests (stats/paired.py). benchmarks/interval_coverage.py measures the same at
full size, on the same simulated genomes (benchmarks/simulators.py); docs/statistics.md shows its
table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from virnucpro_trainer.stats.intervals import (
    METHODS,
    Interval,
    cluster_bootstrap,
    genome_intervals,
    intervals_of,
)
from virnucpro_trainer.stats.metrics import SCALAR_METRICS
from virnucpro_trainer.stats.paired import clustered_mcnemar, mcnemar, paired_bootstrap

import simulators
from helpers import ROOT


def genomes(rng, sizes, viral, effect_sd=1.0):
    """Rows of genomes with the given sizes and classes: labels, scores, genome of each row."""
    genome = np.repeat(np.arange(len(sizes)), sizes)
    y = np.asarray(viral)[genome]
    logit = np.where(y == 1, 1.0, -1.0) + rng.normal(0, effect_sd, len(sizes))[genome]
    logit += rng.normal(0, 0.7, len(genome))
    return y, 1 / (1 + np.exp(-logit)), genome


# --- each interval's own effective number of genomes ---------------------------------------------


@pytest.mark.parametrize("wrong", [2, 10])
def test_each_interval_says_how_many_genomes_carry_its_metric(wrong):
    """Accuracy's errors in `wrong` of 20 viral genomes (20 rows each): its own effective number
    of genomes is (sum d^2)^2 / sum d^4 over each genome's leave-one-out change d, by hand."""
    genome = np.repeat(np.arange(40), 20)
    y = (genome < 20).astype(int)
    prob = np.where(y == 1, 0.9, 0.1)
    prob[(genome < wrong) & (np.arange(len(y)) % 2 == 0)] = 0.2  # half their rows missed
    right = (prob >= 0.5) == y
    d = np.array([right[genome != g].mean() - right.mean() for g in range(40)])
    found = genome_intervals(y, prob, genome, n_boot=200, seed=0)
    assert found["accuracy"].genomes == pytest.approx(np.sum(d**2) ** 2 / np.sum(d**4))
    assert found["specificity"].genomes == 0  # every host row right: no genome carries any


def test_no_resampling_no_genome_count():
    y, prob, genome = np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])
    found = genome_intervals(y, prob, genome, n_boot=50)
    assert all(v.reason is not None and math.isnan(v.genomes) for v in found.values())


# --- not estimable instead of a zero-width interval ----------------------------------------------


def test_a_class_held_by_one_genome_is_not_estimable():
    # One viral genome of 50 fragments, 48 called viral (recall 0.96), and 20 host genomes. The
    # resamples that draw the viral genome all give recall 0.96 (those that miss it have no
    # viral rows): the old percentile interval was [0.96, 0.96], certainty from one genome.
    rng = np.random.default_rng(0)
    sizes = np.r_[50, rng.integers(5, 40, 20)]
    y, prob, genome = genomes(rng, sizes, [1] + [0] * 20)
    prob[:50] = np.r_[np.full(48, 0.9), 0.1, 0.2]
    assert cluster_bootstrap(y, prob, genome, n_boot=200)["recall"] != [0.96, 0.96]
    found = genome_intervals(y, prob, genome, n_boot=200)
    for metric, interval in found.items():
        assert math.isnan(interval.low) and math.isnan(interval.high), metric
        assert interval.reason == "the viral class is held by 1 genome(s); at least 5 are needed"


def test_a_test_side_of_two_genomes_is_not_estimable():
    rng = np.random.default_rng(1)
    y, prob, genome = genomes(rng, [30, 40], [1, 0])
    found = genome_intervals(y, prob, genome, n_boot=100)
    assert all(i.reason and "held by 1 genome" in i.reason for i in found.values())
    paired = paired_bootstrap(y, prob, prob**2, genome, n_boot=100)
    assert all(math.isnan(m["low"]) and m["reason"] for m in paired.values())


def test_one_genome_dominating_a_class_is_not_estimable():
    rng = np.random.default_rng(2)
    sizes = np.r_[2000, rng.integers(1, 10, 9), rng.integers(20, 40, 10)]
    y, prob, genome = genomes(rng, sizes, [1] * 10 + [0] * 10)
    reason = genome_intervals(y, prob, genome, n_boot=100)["accuracy"].reason
    assert reason.startswith("one genome holds 9") and "effective number of viral genomes" in reason


def test_resamples_that_do_not_vary_give_no_interval():
    # No host row is ever called viral: every resample has precision and specificity 1.
    rng = np.random.default_rng(3)
    y, prob, genome = genomes(rng, rng.integers(5, 30, 40), np.arange(40) % 2)
    prob[y == 0] = np.minimum(prob[y == 0], 0.4)
    found = genome_intervals(y, prob, genome, n_boot=200)
    for metric in ("precision", "specificity"):
        assert found[metric].reason.startswith("every resample gives the same value"), metric
    assert found["recall"].low < found["recall"].high


@pytest.mark.parametrize("method", METHODS)
def test_never_a_zero_width_interval(method):
    rng = np.random.default_rng(4)
    for trial in range(6):
        n = int(rng.integers(6, 30))
        y, prob, genome = genomes(rng, rng.integers(1, 60, n), rng.integers(0, 2, n), 2.0)
        prob = np.round(prob, int(rng.integers(0, 3)))  # ties, and 0 and 1 exactly
        for metric, i in genome_intervals(y, prob, genome, n_boot=60, method=method).items():
            assert (i.reason is None and i.low < i.high) or (
                i.reason and math.isnan(i.low) and math.isnan(i.high)
            ), (trial, metric, i)


# --- the method and its settings ----------------------------------------------------------------


def test_same_seed_same_intervals_and_every_metric():
    rng = np.random.default_rng(5)
    y, prob, genome = genomes(rng, rng.integers(1, 200, 40), np.arange(40) % 2)
    first = genome_intervals(y, prob, genome, n_boot=150, seed=7)
    assert list(first) == list(SCALAR_METRICS)
    assert all(isinstance(i, Interval) and type(i.low) is float for i in first.values())
    assert genome_intervals(y, prob, genome, n_boot=150, seed=7) == first
    assert genome_intervals(y, prob, genome, n_boot=150, seed=8) != first
    # the methods share the resamples: one call gives each method what it gives alone
    (together,) = intervals_of(y, prob, genome, [prob >= 0.5], 0.95, 150, 7, METHODS)
    for method in METHODS:
        assert together[method] == genome_intervals(y, prob, genome, n_boot=150, seed=7,
                                                     method=method)  # fmt: skip


def test_bad_settings_raise():
    y, prob, genome = np.array([0, 1]), np.array([0.2, 0.8]), np.array([0, 1])
    with pytest.raises(ValueError, match="method must be one of"):
        genome_intervals(y, prob, genome, method="basic")
    with pytest.raises(ValueError, match="level"):
        genome_intervals(y, prob, genome, level=95)


SKEWED = simulators.Case("60 genomes, 1-300", 60, (1, 300), (1, 300))


@pytest.fixture(scope="module")
def skewed_coverage():
    """Coverage of the 95% intervals over 150 simulated test sets with genome sizes
    log-uniform 1..300 (the benchmark's model, smaller), each method from the same resamples."""
    truth, hits = simulators.truth(SKEWED), {}
    for i in range(150):
        y, prob, genome = simulators.simulate(np.random.default_rng([2024, i]), SKEWED)
        (found,) = intervals_of(y, prob, genome, [prob >= 0.5], 0.95, 200, i, METHODS)
        for method in METHODS:
            for metric in truth:
                got = found[method][metric]
                hits.setdefault((method, metric), []).append(got.low <= truth[metric] <= got.high)
    return {key: float(np.mean(value)) for key, value in hits.items()}


@pytest.mark.stat
@pytest.mark.parametrize("metric", ["accuracy", "auroc", "f1", "mcc"])
def test_skewed_sizes_coverage(skewed_coverage, metric):
    # 150 sets: the standard error at 0.95 is 0.018. The percentile bootstrap's intervals were
    # too narrow here (AUROC 0.87, accuracy 0.90 with this seed; studentized 0.95 and 0.96).
    assert skewed_coverage[("studentized", metric)] >= 0.9, skewed_coverage


@pytest.mark.stat
def test_percentile_undercovers_where_studentized_does_not(skewed_coverage):
    low = min(skewed_coverage[("percentile", k)] for k in ("accuracy", "auroc"))
    assert low < 0.9 < min(skewed_coverage[("studentized", k)] for k in ("accuracy", "auroc"))


# --- paired tests ---------------------------------------------------------------------------------


def test_clustered_mcnemar_by_hand():
    # Genomes 0, 1, 2 have 3, 1 and 2 rows only model a gets right (d_k = 3, 1, 2), genome 3 two
    # rows both get right. The 8 sign flips of (3, 1, 2) sum to 6, 2, 4, 0, 0, -4, -2, -6: none
    # beyond |6|, two at it, so the mid-p is (0 + 2/2) / 8; Durkalski's chi2 = 6^2 / (9 + 1 + 4).
    y = np.ones(8, dtype=int)
    pred_a = np.ones(8, dtype=int)
    pred_b = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    genome = np.array([0, 0, 0, 1, 2, 2, 3, 3])
    result = clustered_mcnemar(y, pred_a, pred_b, genome)
    assert (result["b"], result["c"], result["genomes"]) == (6, 0, 3)
    assert result["p_value"] == 0.125
    assert result["chi2"] == pytest.approx(36 / 14)
    # genomes 1 and 2 as one: d = (3, 3), flips 6, 0, 0, -6: mid-p (2/2) / 4
    genome[3] = 2
    assert clustered_mcnemar(y, pred_a, pred_b, genome)["p_value"] == 0.25
    assert clustered_mcnemar(y, pred_a, pred_a, genome)["p_value"] == 1.0  # no disagreement


@pytest.mark.stat
def test_clustered_mcnemar_keeps_its_level_where_the_row_test_does_not():
    # Two equally good models whose errors cluster by genome (the benchmark's pairs, 40
    # genomes): the row McNemar test rejects most of the time, the clustered test about 5%.
    clustered = rows = 0
    for i in range(200):
        y, a, b, genome = simulators.simulate_pair(np.random.default_rng([5, i]), 40, 0.0)
        clustered += clustered_mcnemar(y, a >= 0.5, b >= 0.5, genome, 2000, i)["p_value"] < 0.05
        rows += mcnemar(y, a >= 0.5, b >= 0.5)["p_value"] < 0.05
    assert 0.01 <= clustered / 200 <= 0.1 and rows / 200 > 0.5, (clustered, rows)


def test_row_mcnemar_is_labelled_and_the_docs_formula_matches_it():
    assert "independent" in mcnemar.__doc__
    text = (ROOT / "docs/statistics.md").read_text()
    assert "max(|b − c| − 1, 0)² / (b + c)" in text
    y = np.ones(6, dtype=int)
    equal = mcnemar(y, np.array([1, 1, 1, 0, 0, 0]), np.array([0, 0, 0, 1, 1, 1]))
    assert (equal["b"], equal["c"], equal["chi2"], equal["chi2_p_value"]) == (3, 3, 0.0, 1.0)


# --- the benchmark's simulation (benchmarks/simulators.py) --------------------------------------


@pytest.mark.stat
def test_the_benchmarks_truth_holds_on_a_large_draw():
    # 20,000 genomes of each kind of case: the metrics of one huge test set are within a few of
    # their standard deviations (genome effects: about 0.003-0.006 here) of the closed forms.
    case = simulators.Case("large", 20_000, (1, 50), (1, 500))
    y, prob, genome = simulators.simulate(np.random.default_rng(0), case)
    from virnucpro_trainer.stats.metrics import classification_metrics

    found, truth = classification_metrics(y, prob), simulators.truth(case)
    for metric, tolerance in (("accuracy", 0.02), ("auroc", 0.02), ("f1", 0.03), ("mcc", 0.03)):
        assert found[metric] == pytest.approx(truth[metric], abs=tolerance), metric
    assert simulators.mean_size(1, 3, True) == pytest.approx(
        (1 * np.log(2) + 2 * np.log(1.5) + 3 * np.log(4 / 3)) / np.log(4)
    )


def test_a_studentized_interval_that_is_unbounded_is_not_estimable():
    from virnucpro_trainer.stats.interval_methods import NotEstimable, studentized

    rng = np.random.default_rng(0)
    values = rng.normal(0.98, 0.01, 1000)
    errors = np.full(1000, 0.01)
    errors[:100] = 0.0  # a tenth of the resamples drew only perfectly classified genomes
    values[:100] = 1.0
    with pytest.raises(NotEstimable, match="unbounded: 10.0% of the resamples"):
        studentized(0.98, 0.01, values, errors, 0.95)
    errors[:100], values[:100] = 0.01, 0.98
    errors[:10] = 0.0  # 1%: within what a 2.5% tail allows, so the interval stays bounded
    values[:10] = 1.0
    low, high = studentized(0.98, 0.01, values, errors, 0.95)
    assert 0.9 < low < 0.98 < high < 1.1
