"""stats/conformal.py: conformal p-values, Mondrian size bins, BH with Storey's null share, and
the reason when the validation's host units are too few (issue 33)."""

from __future__ import annotations

import numpy as np
import pytest

from virnucpro_trainer.stats.conformal import (
    bh_qvalues,
    bin_minimum,
    conformal_pvalues,
    floor_problem,
    mondrian_pvalues,
    size_bins,
)


def test_exchangeable_nulls_give_uniform_p_values():
    rng = np.random.default_rng(0)
    below = {0.05: [], 0.1: [], 0.5: []}
    for _ in range(200):  # over calibration sets: the guarantee is marginal
        null, test = rng.standard_t(3, 99), rng.standard_t(3, 50)
        p = conformal_pvalues(test, null)
        assert set(np.round(p * 100).astype(int)) <= set(range(1, 101))  # k / (n + 1)
        for u in below:
            below[u].append(np.mean(p <= u))
    for u, shares in below.items():
        assert np.mean(shares) == pytest.approx(u, abs=0.01)
    # a unit above every null unit gets the smallest p-value, one below all gets 1
    assert conformal_pvalues([10.0, -10.0], rng.normal(size=9)).tolist() == [0.1, 1.0]


def test_ties_count_against_the_unit_and_the_tie_break_decides_first():
    null = np.array([1.0, 1.0, 0.5, 0.2])
    assert conformal_pvalues([1.0], null).tolist() == [3 / 5]  # ties: conservative
    # equal scores, compared by the tie-break: above one of the two tied nulls
    p = conformal_pvalues([1.0], null, tie=[0.7], null_tie=[0.9, 0.3, 0.0, 0.0])
    assert p.tolist() == [2 / 5]
    with pytest.raises(ValueError, match="NaN"):
        conformal_pvalues([np.nan], null)


def test_bh_with_storeys_null_share_by_hand():
    # sorted p-values of ten units; at alpha 0.05 plain BH calls 2 (0.008 <= 2 x 0.005, 0.039 >
    # 3 x 0.005 and no later p(k) <= k x 0.005); with pi0 = 0.5 the thresholds double, k x 0.01:
    # 0.060 <= 6 x 0.01 is the last that holds, so 6 are called
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.060, 0.074, 0.205, 0.212, 0.216])
    shuffled = np.random.default_rng(1).permutation(p.size)
    plain, storey = bh_qvalues(p[shuffled]), bh_qvalues(p[shuffled], null_share=0.5)
    assert int(np.sum(plain <= 0.05)) == 2 and int(np.sum(storey <= 0.05)) == 6
    # q_(k) = min over j >= k of pi0 m p_(j) / j
    expected = [0.005, 0.02, 0.042, 0.042, 0.042, 0.05, 0.074 * 5 / 7, 0.108, 0.108, 0.108]
    assert np.sort(storey) == pytest.approx(expected)
    assert np.all(np.diff(storey[np.argsort(p[shuffled])]) >= 0)  # never falls as p rises
    with pytest.raises(ValueError, match="null_share"):
        bh_qvalues(p, null_share=0.0)


def test_mondrian_bins_merge_from_the_largest_sizes_down():
    sizes = np.r_[np.full(300, 1), np.full(150, 3), np.full(100, 5), np.full(30, 9), [100] * 5]
    bins = size_bins(sizes, min_hosts=200)
    # from the top: 5 + 30 + 100 short of 200 until the 2-3 bin joins (285); size 1 alone: 300
    assert bins.as_list() == [
        {"sizes": [1, 1], "hosts": 300},
        {"sizes": [2, None], "hosts": 285},
    ]
    assert bins.of([1, 2, 7, 5000]).tolist() == [0, 1, 1, 1]
    # the smallest sizes, short of the minimum, join the next larger bin
    short = size_bins(np.r_[np.full(50, 1), np.full(300, 2)], min_hosts=200)
    assert short.as_list() == [{"sizes": [1, None], "hosts": 350}]
    assert size_bins(np.full(10, 4), min_hosts=200).as_list() == [{"sizes": [1, None], "hosts": 10}]
    fine = size_bins(np.r_[np.full(5, 1), np.full(5, 2), np.full(5, 4), np.full(5, 8)], 5)
    assert [b["sizes"] for b in fine.as_list()] == [[1, 1], [2, 3], [4, 7], [8, None]]


def test_a_bin_holds_enough_hosts_to_resolve_bhs_threshold_for_the_sample():
    # 5% viral among 2,000, target 0.1: BH calls the 100 viral units at p <= 0.00526, so a bin
    # needs 5 / 0.00526 = 950 host units; at 50% (p <= 0.1) the minimum itself, 100
    assert bin_minimum(100, units=2000, null_share=0.95, target=0.1) == 950
    assert bin_minimum(100, units=2000, null_share=0.5, target=0.1) == 100
    # no fraction (plain BH): one viral unit, p <= 0.1 / 2000, so every host unit in one bin
    assert bin_minimum(100, units=2000, null_share=1.0, target=0.1) == 100_000


def test_mondrian_p_values_compare_a_unit_with_its_own_size_bin_only():
    null_scores = np.r_[np.zeros(9), np.full(9, 5.0)]  # small units score 0, large ones 5
    null_sizes = np.r_[np.ones(9), np.full(9, 50)]
    bins = size_bins(null_sizes, min_hosts=5)
    p = mondrian_pvalues([1.0, 1.0], [1, 60], null_scores, null_sizes, bins)
    assert p.tolist() == [0.1, 1.0]  # above all small hosts; below all large ones
    assert conformal_pvalues([1.0], null_scores).tolist() == [10 / 19]  # pooled: neither


def test_too_few_host_units_for_the_target_are_named():
    # 2,000 units, 5% viral: BH calls the 100 viral ones at p <= 100 x 0.1 / 1900 = 0.00526
    why = floor_problem(hosts=150, units=2000, null_share=0.95, target=0.1)
    assert "too few validation host units: 150" in why and "1/151" in why
    assert "at least 189 host units are needed" in why
    assert floor_problem(hosts=189, units=2000, null_share=0.95, target=0.1) is None
    # without a fraction (plain BH) the floor must reach target / units for one viral unit
    assert "one viral unit" in floor_problem(hosts=500, units=100, null_share=1.0, target=0.1)
