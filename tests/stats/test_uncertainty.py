"""The genome bootstrap (stats/bootstrap.py, cells.py, ranking.py, intervals.py, paired.py,
seeds.py): its metrics equal classification_metrics, its intervals cover the truth on simulated
genomes (and the row bootstrap's do not), paired differences, McNemar's test against a published
example, the mean of a seed sweep, record codes from ids. Skewed genome sizes, methods and not
estimable intervals: test_intervals.py."""

from __future__ import annotations

import math
import runpy
import sys

import numpy as np
import pytest
from scipy import stats

from virnucpro_trainer.data.records import record_codes
from virnucpro_trainer.stats import bootstrap as uncertainty
from virnucpro_trainer.stats import interval_methods as im
from virnucpro_trainer.stats.bootstrap import Design, Scored
from virnucpro_trainer.stats.intervals import cluster_bootstrap, draw
from virnucpro_trainer.stats.metrics import SCALAR_METRICS, classification_metrics
from virnucpro_trainer.stats.paired import PAIRED_METRICS, mcnemar, paired_bootstrap
from virnucpro_trainer.stats.seeds import mean_interval

import simulators
from helpers import ROOT

BENCHMARK = ROOT / "benchmarks/bootstrap_speed.py"


def clustered(seed: int = 0, records: int = 60, decimals: int | None = None):
    y, prob, groups = simulators.simulate_records(np.random.default_rng(seed), records)
    if decimals is not None:
        prob = np.round(prob, decimals)  # many tied scores
    return y, prob, groups


def engine(y, prob, groups, counts, threshold=0.5) -> list[dict]:
    """The bootstrap's metrics for each row of `counts` (genome multiplicities)."""
    codes = np.unique(groups, return_inverse=True)[1]
    scored = Scored(np.asarray(y, dtype=np.int8), prob, [prob >= threshold], codes, counts.shape[1])
    ((values, _),) = scored.resampled(counts, None, influence=True)
    return [{k: values[k][j] for k in SCALAR_METRICS} for j in range(len(counts))]


def point_metrics(y, prob, threshold=0.5) -> dict:
    """The metrics as the bootstrap computes them, on all rows once (each weight 1)."""
    ones = np.ones((1, len(y)), dtype=np.int32)
    return engine(y, prob, np.arange(len(y)), ones, threshold)[0]


def assert_close(mine: dict, reference: dict, tol: float = 1e-9) -> None:
    for k in SCALAR_METRICS:
        if math.isnan(reference[k]):
            assert math.isnan(mine[k]), k
        else:
            assert mine[k] == pytest.approx(reference[k], abs=tol), k


# --- definitions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decimals", "threshold"),
    [(None, 0.5), (1, 0.5), (2, 0.3), (1, 0.7), (0, 0.5)],
    ids=["continuous", "ties", "ties-threshold-0.3", "ties-at-threshold-0.7", "two-values"],
)
def test_point_estimates_equal_classification_metrics(decimals, threshold):
    y, prob, _ = clustered(seed=1, decimals=decimals)
    assert_close(point_metrics(y, prob, threshold), classification_metrics(y, prob, threshold))


def test_point_estimates_on_imbalanced_and_one_class_data():
    y, prob, _ = clustered(seed=2, decimals=2)
    y = y.copy()
    y[np.flatnonzero(y == 1)[5:]] = 0  # 5 viral rows left
    assert_close(point_metrics(y, prob), classification_metrics(y, prob))
    for label in (0, 1):
        one = np.full(len(y), label)
        assert_close(point_metrics(one, prob), classification_metrics(one, prob))


def test_each_resample_equals_classification_metrics_on_its_rows():
    """The weighted computation of a resample equals the metrics of the rows drawn, repeated."""
    y, prob, groups = clustered(seed=3, records=30, decimals=1)
    counts = next(uncertainty.count_blocks(30, 6, 6, seed=4, dtype=np.int32))
    for values, multiplicity in zip(engine(y, prob, groups, counts), counts, strict=True):
        rows = np.repeat(np.arange(len(y)), multiplicity[groups])
        assert_close(values, classification_metrics(y[rows], prob[rows]))


# --- the cluster bootstrap ---------------------------------------------------------------------


def test_cluster_bootstrap_intervals():
    y, prob, groups = clustered(seed=5, records=80)
    ci = cluster_bootstrap(y, prob, groups, n_boot=300, seed=1)
    point = classification_metrics(y, prob)
    assert list(ci) == list(SCALAR_METRICS)
    for k, (low, high) in ci.items():
        assert type(low) is float and type(high) is float
        assert low <= point[k] <= high, k
    assert ci == cluster_bootstrap(y, prob, groups, n_boot=300, seed=1)  # seeded
    assert ci != cluster_bootstrap(y, prob, groups, n_boot=300, seed=2)
    # a wider level gives a wider interval
    wide = cluster_bootstrap(y, prob, groups, n_boot=300, level=0.99, seed=1)
    assert wide["auroc"][0] <= ci["auroc"][0] and wide["auroc"][1] >= ci["auroc"][1]


def test_resamples_do_not_depend_on_block_size_or_group_labels(monkeypatch):
    y, prob, groups = clustered(seed=6, records=40, decimals=2)
    ci = cluster_bootstrap(y, prob, groups, n_boot=50)
    monkeypatch.setattr(uncertainty, "_BLOCK_BYTES", 4 * len(y) * 7)  # blocks of 7 resamples
    assert uncertainty.block_size(len(y), 40, 50) == 7
    assert cluster_bootstrap(y, prob, groups, n_boot=50) == ci
    # any labels that sort the same way: record names, large integers
    names = np.array([f"genome_{g:03d}" for g in groups])
    assert cluster_bootstrap(y, prob, names, n_boot=50) == ci
    assert cluster_bootstrap(y, prob, groups * 1000 + 7, n_boot=50) == ci


def test_row_bootstrap_is_narrower_on_clustered_data():
    y, prob, groups = clustered(seed=7, records=100)
    by_record = cluster_bootstrap(y, prob, groups, n_boot=200)
    by_row = cluster_bootstrap(y, prob, np.arange(len(y)), n_boot=200)
    for k in ("auroc", "accuracy"):
        assert np.diff(by_row[k])[0] < 0.6 * np.diff(by_record[k])[0], k


# Coverage on simulated clustered test sets (simulators.bootstrap_coverage, which
# benchmarks/bootstrap_speed.py --coverage runs with 1000 sets; docs/statistics.md reports its
# figures: cluster 0.94-0.95, row about 0.5). Here 300 sets: at a true coverage of 0.94 the
# observed fraction has binomial standard error sqrt(0.94 * 0.06 / 300) = 0.014, so the band
# [0.88, 0.99] is about 4 SE below and 3.5 SE above (other seeds gave 0.89-0.97). The row
# bootstrap covers about 0.5 (fragments of a genome are 0.67 correlated, 15 per genome on
# average): it must stay below 0.75, 10 SE under the band's lower end, which a method with 0.88
# coverage would not reach by chance. The row bootstrap (the slow one: every row a group) runs on
# the first 80 sets: its standard error there is sqrt(0.5 * 0.5 / 80) = 0.056, so 0.75 is still
# over 4 SE above its coverage.
COVERAGE_SETS, COVERAGE_RECORDS, COVERAGE_BOOT, ROW_SETS = 300, 100, 200, 80


@pytest.fixture(scope="module")
def coverage():
    sets, records, n_boot = COVERAGE_SETS, COVERAGE_RECORDS, COVERAGE_BOOT
    return simulators.bootstrap_coverage(sets, records, n_boot, seed=2024, row_sets=ROW_SETS)


@pytest.mark.stat
@pytest.mark.parametrize("metric", ["auroc", "accuracy"])
def test_cluster_bootstrap_covers_the_truth(coverage, metric):
    assert 0.88 <= coverage["cluster"][metric] <= 0.99, coverage


@pytest.mark.stat
@pytest.mark.parametrize("metric", ["auroc", "accuracy"])
def test_row_bootstrap_undercovers(coverage, metric):
    assert coverage["row"][metric] < 0.75, coverage


@pytest.mark.stat
def test_the_simulations_truth_holds_on_a_large_sample():
    y, prob, _ = simulators.simulate_records(np.random.default_rng(11), 20_000)  # ~300,000 rows
    m = classification_metrics(y, prob)
    # The genome effects make a sample vary like its 20,000 genomes, not its 300,000 rows: over
    # seeds both metrics spread with sd about 0.0025 here, so 0.008 is over 3 sd. A wrong closed
    # form (e.g. without the genome effect, AUROC 0.98) would be far outside.
    assert m["auroc"] == pytest.approx(simulators.TRUE_AUROC, abs=0.008)
    assert m["accuracy"] == pytest.approx(simulators.TRUE_ACCURACY, abs=0.008)


# --- degenerate cases --------------------------------------------------------------------------


def test_single_class_data():
    y, prob, groups = clustered(seed=8, records=30)
    viral = np.ones_like(y)
    ci = cluster_bootstrap(viral, prob, groups, n_boot=100)
    for k in ("auroc", "auprc", "balanced_accuracy", "specificity"):
        assert all(math.isnan(v) for v in ci[k]), k
    for k in ("accuracy", "recall", "brier"):
        low, high = ci[k]
        assert 0.0 <= low < high <= 1.0, k
    assert ci["recall"] == ci["accuracy"]  # all viral: recall is accuracy


def test_one_group_gives_no_interval():
    y, prob, _ = clustered(seed=9, records=10)
    ci = cluster_bootstrap(y, prob, np.zeros(len(y), dtype=int), n_boot=50)
    assert all(math.isnan(low) and math.isnan(high) for low, high in ci.values())
    paired = paired_bootstrap(y, prob, prob, np.zeros(len(y)), n_boot=50)
    assert math.isnan(paired["auroc"]["low"]) and paired["auroc"]["difference"] == 0.0


def test_one_class_resamples_are_left_out():
    """One viral genome among ten: about a third of the resamples miss it; those resamples are
    left out of every metric rather than counted (e.g. as accuracy on host only)."""
    y, prob, groups = clustered(seed=10, records=10)
    y = (groups == 0).astype(np.int8)
    prob = np.clip(prob + 0.3 * y, 0, 1)
    scored = Scored(y, prob, [prob >= 0.5], groups, 10)
    (drawn,) = draw([scored], Design(y, groups, 10), n_boot=400, seed=0)
    invalid = np.isnan(drawn.values["accuracy"])
    assert 0.25 < invalid.mean() < 0.45
    for k in SCALAR_METRICS:
        assert np.array_equal(np.isnan(drawn.values[k]), invalid), k


def test_fewer_than_half_valid_gives_nan():
    values = np.array([0.1, 0.2, 0.3, 0.4] + [np.nan] * 5)
    with pytest.raises(im.NotEstimable, match="fewer than half"):
        im.percentile(0.2, values, 0.95)
    low, high = im.percentile(0.2, np.append(values, 0.5), 0.95)
    assert 0.1 <= low < high <= 0.5


def test_bad_inputs_raise():
    y, prob, groups = clustered(seed=12, records=10)
    with pytest.raises(ValueError, match="NaN"):
        cluster_bootstrap(y, np.where(np.arange(len(y)) == 3, np.nan, prob), groups)
    with pytest.raises(ValueError, match="labels"):
        cluster_bootstrap(y * 2, prob, groups)
    with pytest.raises(ValueError, match="group codes"):
        cluster_bootstrap(y, prob, groups[:-1])
    with pytest.raises(ValueError, match="n_boot"):
        cluster_bootstrap(y, prob, groups, n_boot=0)
    with pytest.raises(ValueError, match="level"):
        paired_bootstrap(y, prob, prob, groups, level=95)


# --- paired comparisons ------------------------------------------------------------------------


def test_a_model_against_itself_differs_by_exactly_zero():
    y, prob, groups = clustered(seed=13, records=50, decimals=2)
    result = paired_bootstrap(y, prob, prob.copy(), groups, n_boot=200)
    assert list(result) == list(PAIRED_METRICS)
    for k, r in result.items():
        assert set(r) == {"a", "b", "difference", "low", "high", "reason"}
        assert r["reason"] is None
        assert r["a"] == r["b"] == classification_metrics(y, prob)[k]
        assert r["difference"] == 0.0 and r["low"] == 0.0 and r["high"] == 0.0, k


def test_a_clearly_better_model_has_an_interval_above_zero():
    rng = np.random.default_rng(14)
    y, weak, groups = clustered(seed=14, records=80)
    logit = np.where(y == 1, 2.5, -2.5) + rng.normal(0, 0.7, len(y))
    strong = 1 / (1 + np.exp(-logit))
    result = paired_bootstrap(y, weak, strong, groups, n_boot=300)
    for k in PAIRED_METRICS:
        r = result[k]
        assert r["difference"] == pytest.approx(r["b"] - r["a"])
        assert 0 < r["low"] <= r["difference"] <= r["high"], k
    # swapped, the interval is the mirror image
    swapped = paired_bootstrap(y, strong, weak, groups, n_boot=300)
    assert swapped["auroc"]["high"] == pytest.approx(-result["auroc"]["low"])


def test_paired_model_a_sees_the_same_resamples_as_cluster_bootstrap():
    """Thresholds apply per model, and model a's resamples are cluster_bootstrap's."""
    y, prob, groups = clustered(seed=15, records=40)
    other = np.clip(prob + 0.05, 0, 1)
    y8 = y.astype(np.int8)
    both = [Scored(y8, p, [p >= t], groups, 40) for p, t in ((prob, 0.4), (other, 0.6))]
    a, _ = draw(both, Design(y8, groups, 40), n_boot=100, seed=3)
    (alone,) = draw([both[0]], Design(y8, groups, 40), n_boot=100, seed=3)
    for k in SCALAR_METRICS:
        np.testing.assert_array_equal(a.values[k], alone.values[k])
    result = paired_bootstrap(y, prob, other, groups, threshold_a=0.4, threshold_b=0.6)
    assert result["f1"]["a"] == classification_metrics(y, prob, 0.4)["f1"]
    assert result["f1"]["b"] == classification_metrics(y, other, 0.6)["f1"]


# --- McNemar -----------------------------------------------------------------------------------


def predictions(b: int, c: int, both_right: int = 0, both_wrong: int = 0):
    """Labels and two models' predictions with the given discordant counts."""
    y = np.ones(b + c + both_right + both_wrong, dtype=int)
    right_a = np.r_[np.ones(b), np.zeros(c), np.ones(both_right), np.zeros(both_wrong)]
    right_b = np.r_[np.zeros(b), np.ones(c), np.ones(both_right), np.zeros(both_wrong)]
    return y, np.where(right_a == 1, y, 1 - y), np.where(right_b == 1, y, 1 - y)


def test_mcnemar_small_published_example():
    # Fagerland, Lydersen & Laake (2013), "The McNemar test for binary matched-pairs data: mid-p
    # and asymptotic are better than exact conditional", BMC Med Res Methodol 13:91, Table 1:
    # airway hyper-responsiveness before/after stem cell transplantation in 21 children
    # (Bentur et al.), discordant pairs 1 and 7, concordant 1 and 12. Published p-values:
    # exact conditional 0.070, asymptotic with continuity correction 0.077.
    result = mcnemar(*predictions(b=1, c=7, both_right=1, both_wrong=12))
    assert (result["b"], result["c"]) == (1, 7)
    assert result["p_value"] == result["exact_p_value"] == pytest.approx(18 / 256)  # 2(1+8)/2^8
    assert round(result["exact_p_value"], 3) == 0.070
    assert result["chi2"] == pytest.approx(25 / 8)  # (|1 - 7| - 1)^2 / 8
    assert round(result["chi2_p_value"], 3) == 0.077


def test_mcnemar_large_published_example():
    # Bland, An Introduction to Medical Statistics (3rd ed., 2000): severe colds reported by
    # 1319 children at age 12 and at 14; discordant pairs 144 (12 only) and 256 (14 only);
    # continuity-corrected chi-square 30.8, P < 0.001 (MedCalc's manual repeats the example).
    result = mcnemar(*predictions(b=144, c=256, both_right=212, both_wrong=707))
    assert round(result["chi2"], 1) == 30.8
    assert result["chi2_p_value"] < 0.001 and result["p_value"] < 0.001
    # the statistic is symmetric in the two models
    assert mcnemar(*predictions(b=256, c=144))["chi2"] == result["chi2"]


def test_mcnemar_without_disagreements():
    y = np.array([0, 1, 1, 0])
    result = mcnemar(y, y, y)
    assert result == {
        "b": 0,
        "c": 0,
        "p_value": 1.0,
        "exact_p_value": 1.0,
        "chi2": 0.0,
        "chi2_p_value": 1.0,
    }
    assert mcnemar(*predictions(b=3, c=3))["p_value"] == 1.0
    assert mcnemar(*predictions(b=3, c=3))["chi2"] == 0.0


# --- a seed sweep's mean -----------------------------------------------------------------------


def test_mean_interval_by_hand():
    values = [0.91, 0.93, 0.92, 0.95, 0.94]
    # mean 0.93; deviations -0.02, 0, -0.01, 0.02, 0.01: sum of squares 0.001, sd sqrt(0.001/4)
    sd = math.sqrt(0.001 / 4)
    half = stats.t.ppf(0.975, df=4) * sd / math.sqrt(5)  # t = 2.7764
    result = mean_interval(values)
    assert set(result) == {"n", "mean", "sd", "low", "high"}
    assert result["n"] == 5
    assert result["mean"] == pytest.approx(0.93)
    assert result["sd"] == pytest.approx(sd)
    assert result["low"] == pytest.approx(0.93 - half) and result["high"] == pytest.approx(
        0.93 + half
    )
    assert half == pytest.approx(0.019632, abs=1e-6)
    ninety = mean_interval(values, level=0.90)
    assert ninety["high"] - ninety["low"] < result["high"] - result["low"]


def test_mean_interval_small_and_missing():
    one = mean_interval([0.9])
    assert one["n"] == 1 and one["mean"] == 0.9
    assert all(math.isnan(one[k]) for k in ("sd", "low", "high"))
    none = mean_interval([])
    assert none["n"] == 0 and math.isnan(none["mean"])
    with_nan = mean_interval([0.91, float("nan"), 0.93])
    assert with_nan["n"] == 2 and with_nan["mean"] == pytest.approx(0.92)
    same = mean_interval([0.5, 0.5, 0.5])
    assert same["sd"] == 0.0 and same["low"] == same["high"] == 0.5


# --- record codes ------------------------------------------------------------------------------


def test_record_codes():
    ids = ["NC_001.1_0", "NC_002.1_0", "NC_001.1_1", "odd", "NC_002.1_3", "odd2", "X_9"]
    codes = record_codes(ids, r"(.+)_\d+$")
    assert codes.tolist() == [0, 1, 0, 2, 1, 3, 4]  # each unmatched id is a record of its own
    assert codes.dtype == np.int64
    # an optional group that takes no part in the match is unmatched too
    assert record_codes(["a-1", "b", "a-2"], r"(?:(\w)-)?\w").tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match="capture group"):
        record_codes(ids, r".+_\d+$")


# --- the benchmark script ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [
            "--rows",
            "2000",
            "--records",
            "40",
            "--n-boot",
            "20",
            "--repeats",
            "1",
            "--row-bootstrap",
        ],
        ["--coverage", "--sets", "3", "--set-records", "20", "--coverage-boot", "20"],
    ],
    ids=["speed", "coverage"],
)
def test_benchmark_runs_at_tiny_size(monkeypatch, capsys, argv):
    monkeypatch.setattr(sys, "argv", [str(BENCHMARK), *argv])
    runpy.run_path(str(BENCHMARK), run_name="__main__")
    out = capsys.readouterr().out
    assert "machine:" in out and "numpy" in out
    assert "| cluster" in out and "| row" in out
