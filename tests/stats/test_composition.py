"""The sample's viral fraction (issue 24): adjusted count and EM against hand-computed cases,
q-values, presets, withheld estimates, and a small coverage simulation with skewed genomes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.special import expit

from virnucpro_trainer.stats.composition import (
    PRESETS,
    adjusted_count,
    call_rate,
    calls_at_fdr,
    em_prior,
    prior_shift,
    q_values,
    sequence_fdr,
    target_fdr,
)
from virnucpro_trainer.stats.composition_interval import (
    DEFAULT_METHOD,
    METHODS,
    estimate_fraction,
    percentile_interval,
)
from virnucpro_trainer.stats.composition_resample import GenomeRows, JointDraws

import simulators

# --- adjusted classify-and-count -------------------------------------------------------------


def test_adjusted_count_by_hand():
    # (0.3 - 0.1) / (0.8 - 0.1) = 2/7
    assert adjusted_count(0.3, 0.8, 0.1).value == pytest.approx(2 / 7)
    assert adjusted_count(0.05, 0.8, 0.1).value == 0.0  # below the FPR: clipped
    assert adjusted_count(0.95, 0.8, 0.1).value == 1.0  # above the TPR: clipped
    assert adjusted_count(0.3, 0.8, 0.1).reason is None


def test_adjusted_count_not_estimable_when_rates_are_close():
    found = adjusted_count(0.5, 0.5, 0.45)
    assert math.isnan(found.value)
    assert "TPR - FPR" in found.reason


def test_call_rate():
    assert call_rate([0.1, 0.5, 0.7, 0.2], 0.5) == 0.5


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"call_rate": 1.5, "tpr": 0.8, "fpr": 0.1}, "call_rate"),
        ({"call_rate": 0.5, "tpr": math.nan, "fpr": 0.1}, "tpr"),
        ({"call_rate": 0.5, "tpr": 0.8, "fpr": -0.1}, "fpr"),
        ({"call_rate": 0.5, "tpr": 0.8, "fpr": 0.1, "min_gap": 0}, "min_gap"),
    ],
)
def test_adjusted_count_names_the_bad_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        adjusted_count(**kwargs)


# --- EM prior adjustment ---------------------------------------------------------------------


def test_prior_shift_by_hand():
    # p = 0.8 at prior 0.5, moved to 0.2: 0.4 * 0.8 / (0.4 * 0.8 + 1.6 * 0.2) = 0.5
    assert prior_shift([0.8], 0.5, 0.2)[0] == pytest.approx(0.5)
    assert prior_shift([0.5], 0.5, 0.2)[0] == pytest.approx(0.2)
    p = np.array([0.0, 0.3, 1.0])
    np.testing.assert_array_equal(prior_shift(p, 0.3, 0.3), p)  # the identity at pi
    np.testing.assert_array_equal(prior_shift(p, 0.3, 0.0), 0.0)
    np.testing.assert_array_equal(prior_shift(p, 0.3, 1.0), 1.0)


def test_em_by_hand():
    # Likelihood ratios p/(1-p) at prior 0.5: 4, 1/4, 1/4, 1/4. The fraction theta solves
    # 3/(1 + 3 theta) - 3 * 0.75/(1 - 0.75 theta) = 0, so theta = 1/12; adjusted to it the
    # probabilities are 4/15 and 1/45 (their mean is 1/12 again: EM's fixed point).
    fit = em_prior([0.8, 0.2, 0.2, 0.2], 0.5)
    assert fit.converged
    assert fit.prior == pytest.approx(1 / 12, abs=1e-6)
    np.testing.assert_allclose(fit.adjusted, [4 / 15, 1 / 45, 1 / 45, 1 / 45], atol=1e-6)


def test_em_recovers_a_known_prior():
    rng = np.random.default_rng(0)
    y = rng.random(20_000) < 0.1
    x = np.where(y, 1.5, -1.5) + rng.normal(0, 1.0, y.size)
    probs = expit(3.0 * x)  # the exact posterior at prior 0.5 for these two normals
    assert em_prior(probs, 0.5).prior == pytest.approx(y.mean(), abs=0.01)


def test_em_stops_at_the_cap():
    fit = em_prior([0.8, 0.2, 0.2, 0.2], 0.5, max_iter=2)
    assert fit.iterations == 2 and not fit.converged


@pytest.mark.parametrize(
    ("probs", "prior", "name"),
    [([0.5, 1.2], 0.5, "probs"), ([], 0.5, "probs"), ([0.5], 0.0, "train_prior")],
)
def test_em_names_the_bad_parameter(probs, prior, name):
    with pytest.raises(ValueError, match=name):
        em_prior(probs, prior)


# --- per-sequence numbers and calls ----------------------------------------------------------


def test_q_values_by_hand():
    np.testing.assert_allclose(q_values([0.9, 0.8, 0.7], [0.1, 0.2, 0.3]), [0.1, 0.15, 0.2])
    # ties enter together: both 0.9s take the mean of their cut, (0.1 + 0.3) / 2
    np.testing.assert_allclose(q_values([0.9, 0.5, 0.9], [0.1, 0.5, 0.3]), [0.2, 0.3, 0.2])
    # local FDRs not monotone in the score: each takes the best cut that includes it
    np.testing.assert_allclose(q_values([3, 2, 1], [0.4, 0.0, 0.2]), [0.2, 0.2, 0.2])


def test_q_values_do_not_decrease_as_the_score_falls():
    rng = np.random.default_rng(1)
    probs = np.round(rng.random(5000), 2)  # many ties
    numbers = sequence_fdr(probs, 0.5, 0.1)
    order = np.argsort(-probs, kind="stable")
    assert np.all(np.diff(numbers.q_value[order]) >= -1e-15)
    for value in np.unique(probs):  # tied scores share one q-value
        assert np.ptp(numbers.q_value[probs == value]) == 0
    np.testing.assert_allclose(numbers.local_fdr, 1 - numbers.adjusted)
    assert np.all(numbers.q_value <= numbers.local_fdr.max() + 1e-12)


def test_presets_and_calls():
    assert target_fdr("relaxed") == 0.2 and target_fdr("default") == 0.1
    assert target_fdr("conservative") == 0.05 and target_fdr(0.02) == 0.02
    assert set(PRESETS) == {"relaxed", "default", "conservative"}
    q = np.array([0.01, 0.05, 0.1, 0.2, 0.5])
    assert calls_at_fdr(q, "conservative").tolist() == [True, True, False, False, False]
    assert calls_at_fdr(q, "default").sum() == 3 and calls_at_fdr(q, "relaxed").sum() == 4
    # a number as a preset's own; a running mean's rounding at the target still called; no units
    assert calls_at_fdr(q, 0.05).tolist() == calls_at_fdr(q, "conservative").tolist()
    assert calls_at_fdr(np.array([0.1 + 1e-13, 0.1 + 1e-9]), 0.1).tolist() == [True, False]
    assert calls_at_fdr(np.array([]), "default").tolist() == []
    with pytest.raises(ValueError, match="q_value"):
        calls_at_fdr(np.array([1.5]), "default")
    with pytest.raises(ValueError, match="calls"):
        target_fdr("strict")
    with pytest.raises(ValueError, match="calls"):
        target_fdr(1.0)


# --- the fraction with its interval ----------------------------------------------------------


def test_an_estimate_clipped_to_zero_keeps_its_spread():
    rng = np.random.default_rng(9)
    values = -0.05 + rng.normal(0, 0.02, 2000)  # unclipped resamples around -0.05
    low, high, reason = percentile_interval(-0.05, values, 0.95)
    assert reason is None and low == 0.0
    assert high == pytest.approx(np.quantile(values + 0.05, 0.975), rel=1e-9)
    assert percentile_interval(0.3, np.full(100, 0.3), 0.95)[2].startswith("the resamples")
    assert "undefined" in percentile_interval(0.3, np.full(100, np.nan), 0.95)[2]


def test_the_binned_em_of_the_resamples_matches_em():
    rng = np.random.default_rng(10)
    y = rng.random(5000) < 0.3
    p = expit(np.where(y, 1.5, -1.5) + rng.normal(0, 1.5, y.size))
    codes = np.arange(y.size) // 10
    sample = GenomeRows(p, codes, np.zeros(y.size, np.int64), 0.5)
    val = GenomeRows(p, codes, y.astype(np.int64), 0.5)
    point, _ = JointDraws(sample, val, 5, 0.4).run(n_boot=2, seed=0, recalibrate=False)
    assert point["em"] == pytest.approx(em_prior(p, 0.4).prior, abs=2e-3)


def validation(rng):
    """A validation set of 100 genomes per class of benchmarks/sample_fraction_sim.py's model
    (simulators.py): labels, calibrated probabilities, genome codes and the temperature."""
    return simulators.validation_set(rng, genomes=100)[:4]


def test_a_host_only_sample_has_an_interval_holding_zero():
    rng = np.random.default_rng(3)
    vy, vp, vg, temperature = validation(rng)
    _, p, g = simulators.sample_at(rng, 0.0, 3000, temperature)
    found = estimate_fraction(p, g, vy, vp, vg, 0.5, n_boot=200, seed=1, train_prior=0.5)
    for method in METHODS:
        r = found[method]
        assert r.reason is None and r.interval_reason is None
        assert r.low == 0.0 < r.high < 0.2, (method, r)
        assert 0.0 <= r.value < 0.05


def test_ten_sequences_are_withheld_with_the_reason():
    rng = np.random.default_rng(4)
    vy, vp, vg, temperature = validation(rng)
    found = estimate_fraction(rng.random(10), np.arange(10), vy, vp, vg, 0.5)
    for method in METHODS:
        r = found[method]
        assert math.isnan(r.value) and math.isnan(r.low) and math.isnan(r.high)
        assert "10 sequences" in r.reason
        block = r.as_dict()
        assert block["value"] is None and block["interval"] == [None, None]
        assert block["n_sequences"] == 10 and "at least" in block["reason"]
        json.dumps(block)


def test_too_few_genomes_withhold_only_the_interval():
    rng = np.random.default_rng(5)
    vy, vp, vg, _ = validation(rng)
    p = rng.random(1000)
    found = estimate_fraction(p, np.arange(1000) % 3, vy, vp, vg, 0.5, n_boot=50)
    r = found["em"]
    assert math.isfinite(r.value) and math.isnan(r.low)
    assert "3 genome(s)" in r.interval_reason


def test_validation_of_one_class_withholds_the_estimate():
    rng = np.random.default_rng(6)
    p = rng.random(2000)
    found = estimate_fraction(p, np.arange(2000), np.zeros(50), rng.random(50), np.arange(50), 0.5)
    assert all("one class" in r.reason for r in found.values())


def test_the_same_seed_gives_the_same_interval():
    rng = np.random.default_rng(7)
    vy, vp, vg, temperature = validation(rng)
    _, p, g = simulators.sample_at(rng, 0.2, 1500, temperature)
    first = estimate_fraction(p, g, vy, vp, vg, 0.5, n_boot=100, seed=11)
    again = estimate_fraction(p, g, vy, vp, vg, 0.5, n_boot=100, seed=11)
    assert first == again


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"sample_genomes": np.arange(3)}, "sample_genomes"),
        ({"val_labels": np.full(200, 2)}, "val_labels"),
        ({"threshold": 1.5}, "threshold"),
        ({"level": 1.0}, "level"),
        ({"n_boot": 0}, "n_boot"),
        ({"sample_probs": np.full(400, np.nan)}, "sample_probs"),
    ],
)
def test_estimate_fraction_names_the_bad_parameter(change, name):
    rng = np.random.default_rng(8)
    args = {
        "sample_probs": rng.random(400),
        "sample_genomes": np.arange(400),
        "val_labels": np.arange(200) % 2,
        "val_probs": rng.random(200),
        "val_genomes": np.arange(200),
        "threshold": 0.5,
    }
    with pytest.raises(ValueError, match=name):
        estimate_fraction(**{**args, **change})


@pytest.mark.stat
def test_intervals_cover_the_true_fraction_with_skewed_genomes():
    """Sixteen samples of 1,500 sequences (genomes of 1..500 fragments, log-uniform) per
    fraction: the default estimator's 95% interval holds the sample's true viral share in most
    of them (benchmarks/sample_fraction_sim.py measures ~0.93-0.97 with more samples)."""
    rng = np.random.default_rng(2024)
    for fraction in (0.05, 0.2, 0.5):
        covered, errors = [], []
        for _ in range(16):
            vy, vp, vg, temperature = validation(rng)
            y, p, g = simulators.sample_at(rng, fraction, 1500, temperature)
            r = estimate_fraction(p, g, vy, vp, vg, 0.5, n_boot=150, seed=0, train_prior=0.5)
            r = r[DEFAULT_METHOD]
            covered.append(r.low <= y.mean() <= r.high)
            errors.append(abs(r.value - y.mean()))
        assert np.mean(covered) >= 0.8, (fraction, np.mean(covered))
        assert np.mean(errors) < 0.1, (fraction, np.mean(errors))
