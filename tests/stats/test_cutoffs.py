"""Cut-offs per expected viral fraction, worked out by hand: chosen on validation, reported on
test. FDR at fraction pi: with r = (1 - pi) / pi, FDR = r*FPR / (TPR + r*FPR)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from virnucpro_trainer.config.schema import CutoffConfig
from virnucpro_trainer.reports.tables import cutoff_markdown
from virnucpro_trainer.stats.cutoffs import KEYS, cutoff_table, expected_precision
from virnucpro_trainer.stats.metrics import classification_metrics

# the config's defaults, which cutoff_table no longer copies
FRACTIONS, FDR = tuple(CutoffConfig().viral_fractions), CutoffConfig().target_fdr

# Validation: 4 viral, 10 host. The top score is a host row; 0.6 is a tie (one viral, one host).
VAL_VIRAL = [0.9, 0.8, 0.6, 0.3]
VAL_HOST = [0.95, 0.6, 0.5, 0.25, 0.2, 0.15, 0.12, 0.1, 0.08, 0.05]
Y_VAL = np.array([1] * 4 + [0] * 10)
P_VAL = np.array(VAL_VIRAL + VAL_HOST)
# Candidate thresholds (viral when p >= t), TP of 4 and FP of 10:
#   t     TP FP  TPR   FPR   FDR at pi=0.5 (r=1)      FDR at pi=0.8 (r=0.25)
#   0.95  0  1   0     0.1   1                        1
#   0.9   1  1   0.25  0.1   0.1/0.35 = 0.2857        0.025/0.275 = 0.0909
#   0.8   2  1   0.5   0.1   0.1/0.6  = 0.1667        0.025/0.525 = 0.0476
#   0.6   3  2   0.75  0.2   0.2/0.95 = 0.2105        0.05/0.8    = 0.0625   (tie: both enter)
#   0.5   3  3   0.75  0.3   0.3/1.05 = 0.2857        0.075/0.825 = 0.0909
#   0.3   4  3   1     0.3   0.3/1.3  = 0.2308        0.075/1.075 = 0.0698
#   0.25  4  4   1     0.4   0.4/1.4  = 0.2857        0.1/1.1     = 0.0909
#   ... lower thresholds add only host rows: the FDR only grows.

# Test: 5 viral, 4 host, different scores from validation.
Y_TEST = np.array([1] * 5 + [0] * 4)
P_TEST = np.array([0.85, 0.8, 0.75, 0.4, 0.3] + [0.9, 0.5, 0.3, 0.1])


def row(table, fraction):
    (found,) = [r for r in table if r["viral_fraction"] == fraction]
    return found


def test_expected_precision():
    assert expected_precision(0.5, 0.1, 0.5) == pytest.approx(0.5 / 0.6)
    # 1% viral, recall 0.9, FPR 0.01: 0.009 / (0.009 + 0.0099)
    assert expected_precision(0.9, 0.01, 0.01) == pytest.approx(0.009 / 0.0189)
    assert expected_precision(0.3, 0.0, 0.01) == 1.0  # no false positives: precision exactly 1
    assert math.isnan(expected_precision(0.0, 0.0, 0.5))  # nothing called viral
    assert isinstance(expected_precision(0.5, 0.1, 0.5), float)


def test_target_5_percent_none_at_half_and_a_threshold_at_80_percent():
    table = cutoff_table(Y_VAL, P_VAL, Y_TEST, P_TEST, viral_fractions=(0.5, 0.8), target_fdr=0.05)
    assert [r["viral_fraction"] for r in table] == [0.5, 0.8]
    # pi = 0.5: the lowest FDR of any candidate is 0.1667 > 0.05
    assert row(table, 0.5) == {"viral_fraction": 0.5, **dict.fromkeys(KEYS[1:])}
    # pi = 0.8: only t = 0.8 (FDR 0.0476) qualifies
    r = row(table, 0.8)
    assert r["threshold"] == 0.8
    assert r["val_recall"] == pytest.approx(0.5)
    assert r["val_fpr"] == pytest.approx(0.1)
    assert r["val_expected_precision"] == pytest.approx(0.4 / 0.42)  # 0.8*0.5 / (0.4 + 0.2*0.1)
    # test at 0.8: viral 0.85, 0.8 (>= counts) of 5 -> TPR 0.4; host 0.9 of 4 -> FPR 0.25
    assert r["test_recall"] == pytest.approx(0.4)
    assert r["test_fpr"] == pytest.approx(0.25)
    # precision at 0.8: 0.8*0.4 / (0.32 + 0.2*0.25) = 0.32/0.37
    assert r["test_expected_precision"] == pytest.approx(0.32 / 0.37)
    assert r["test_expected_fdr"] == pytest.approx(0.05 / 0.37)


def test_the_lowest_qualifying_threshold_even_past_one_that_fails():
    # pi = 0.5, target 0.25: 0.8 (0.1667), 0.6 (0.2105) and 0.3 (0.2308) qualify, 0.5 (0.2857)
    # does not; the highest recall is at 0.3 (TPR 1)
    (r,) = cutoff_table(Y_VAL, P_VAL, Y_TEST, P_TEST, viral_fractions=(0.5,), target_fdr=0.25)
    assert r["threshold"] == 0.3
    assert (r["val_recall"], r["val_fpr"]) == pytest.approx((1.0, 0.3))
    assert r["val_expected_precision"] == pytest.approx(1 / 1.3)
    # test at 0.3: all 5 viral (0.3 >= 0.3) -> TPR 1; host 0.9, 0.5, 0.3 of 4 -> FPR 0.75
    # precision at 0.5: 0.5 / (0.5 + 0.375) = 4/7
    assert (r["test_recall"], r["test_fpr"]) == pytest.approx((1.0, 0.75))
    assert r["test_expected_precision"] == pytest.approx(4 / 7)
    assert r["test_expected_fdr"] == pytest.approx(3 / 7)


def test_equal_recall_goes_to_the_highest_threshold():
    # pi = 0.5, target 0.3: t = 0.9 (TPR 1, FPR 0: FDR 0) and t = 0.8 (TPR 1, FPR 1/3: FDR 0.25)
    # qualify with the same recall; 0.8 only adds a false positive, so 0.9 is chosen
    y, p = np.array([1, 0, 0, 0]), np.array([0.9, 0.8, 0.1, 0.05])
    (r,) = cutoff_table(y, p, y, p, viral_fractions=(0.5,), target_fdr=0.3)
    assert (r["threshold"], r["val_recall"], r["val_fpr"]) == (0.9, 1.0, 0.0)


def test_a_tie_in_scores_enters_together():
    # pi = 0.5, target 0.22: 0.8 (0.1667) and 0.6 (0.2105) qualify, 0.3 (0.2308) does not. At
    # 0.6 the viral and the host row enter together (TP 3, FP 2: FPR 0.2); counting the viral
    # row alone would give FPR 0.1 at the same threshold.
    (r,) = cutoff_table(Y_VAL, P_VAL, Y_TEST, P_TEST, viral_fractions=(0.5,), target_fdr=0.22)
    assert r["threshold"] == 0.6
    assert (r["val_recall"], r["val_fpr"]) == pytest.approx((0.75, 0.2))
    assert r["val_expected_precision"] == pytest.approx(0.75 / 0.95)
    # test at 0.6: viral 0.85, 0.8, 0.75 -> TPR 0.6; host 0.9 -> FPR 0.25; precision 0.6/0.85
    assert (r["test_recall"], r["test_fpr"]) == pytest.approx((0.6, 0.25))
    assert r["test_expected_precision"] == pytest.approx(0.6 / 0.85)
    # the project's own metrics at that threshold agree (test recall, 1 - specificity)
    m = classification_metrics(Y_TEST, P_TEST, threshold=r["threshold"])
    assert r["test_recall"] == pytest.approx(m["recall"])
    assert r["test_fpr"] == pytest.approx(1 - m["specificity"])


def test_a_tie_between_the_only_viral_and_a_host_row():
    # viral 0.7 and host 0.7 tie at the top: t = 0.7 has TPR 1, FPR 1/2 -> FDR at 0.5 = 1/3; no
    # threshold calls the viral row alone, so a 5% target is out of reach
    y, p = np.array([1, 0, 0]), np.array([0.7, 0.7, 0.2])
    (r,) = cutoff_table(y, p, y, p, viral_fractions=(0.5,), target_fdr=0.05)
    assert r["threshold"] is None
    (r,) = cutoff_table(y, p, y, p, viral_fractions=(0.5,), target_fdr=0.34)
    assert (r["threshold"], r["val_recall"], r["val_fpr"]) == (0.7, 1.0, 0.5)


def test_no_false_positives_gives_precision_one():
    # validation: viral 0.9, 0.8, 0.6; host 0.7, 0.2
    #   t=0.9: TPR 1/3, FPR 0 | t=0.8: TPR 2/3, FPR 0 | t=0.7: TPR 2/3, FPR 1/2 | lower: worse
    # at 1% viral: FDR at 0.8 is 0 (precision exactly 1); at 0.7: 0.99*0.5 / (0.01*2/3 + 0.495)
    # = 0.987; at 0.6 (TPR 1, FPR 1/2): 0.495 / 0.505 = 0.980. So 0.8, the lowest with FPR 0.
    y_val, p_val = np.array([1, 1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.6, 0.2])
    # test: viral 0.95, 0.5; host 0.85, 0.1 -> at 0.8: TPR 1/2, FPR 1/2
    y_test, p_test = np.array([1, 1, 0, 0]), np.array([0.95, 0.5, 0.85, 0.1])
    (r,) = cutoff_table(y_val, p_val, y_test, p_test, viral_fractions=(0.01,), target_fdr=FDR)
    assert r["threshold"] == 0.8
    assert r["val_fpr"] == 0.0
    assert r["val_recall"] == pytest.approx(2 / 3)
    assert r["val_expected_precision"] == 1.0
    # test precision at 1%: 0.005 / (0.005 + 0.495) = 0.01
    assert (r["test_recall"], r["test_fpr"]) == pytest.approx((0.5, 0.5))
    assert r["test_expected_precision"] == pytest.approx(0.01)
    assert r["test_expected_fdr"] == pytest.approx(0.99)


def test_default_fractions_plain_types_and_json():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    p = np.clip(0.5 * y + rng.normal(0.25, 0.15, y.size), 0, 1)
    table = cutoff_table(y[:1000], p[:1000], y[1000:], p[1000:], FRACTIONS, FDR)
    assert [r["viral_fraction"] for r in table] == [0.01, 0.02, 0.05, 0.1, 0.25, 0.5]
    for r in table:
        assert list(r) == list(KEYS)
        assert all(v is None or type(v) is float for v in r.values())
    json.dumps(table, allow_nan=False)
    # a rarer viral share needs a stricter (higher) threshold for the same FDR
    chosen = [r["threshold"] for r in table if r["threshold"] is not None]
    assert chosen == sorted(chosen, reverse=True)


def test_test_side_undefined_values_are_none():
    # no viral rows on the test side: test recall and the expected precision are undefined
    (r,) = cutoff_table(Y_VAL, P_VAL, np.zeros(3), np.array([0.1, 0.9, 0.2]), (0.8,), FDR)
    assert r["threshold"] == 0.8
    assert r["test_recall"] is None and r["test_expected_precision"] is None
    assert r["test_fpr"] == pytest.approx(1 / 3)


def test_one_class_validation_gives_no_threshold():
    table = cutoff_table(np.ones(3), np.array([0.9, 0.8, 0.7]), Y_TEST, P_TEST, FRACTIONS, FDR)
    assert all(r["threshold"] is None for r in table)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn's warning about one class stays inside
        hosts = cutoff_table(np.zeros(3), [0.9, 0.8, 0.7], Y_TEST, P_TEST, FRACTIONS, FDR)
        empty = cutoff_table([], [], Y_TEST, P_TEST, FRACTIONS, FDR)
    assert all(r["threshold"] is None for r in hosts + empty)


def test_bad_inputs():
    with pytest.raises(ValueError):
        cutoff_table(Y_VAL, P_VAL[:-1], Y_TEST, P_TEST, FRACTIONS, FDR)
    with pytest.raises(ValueError):
        cutoff_table(Y_VAL, P_VAL, Y_TEST, P_TEST, viral_fractions=(0.0,), target_fdr=FDR)
    with pytest.raises(ValueError):
        cutoff_table(Y_VAL, P_VAL, Y_TEST, P_TEST, FRACTIONS, target_fdr=1.0)


def test_markdown():
    table = cutoff_table(Y_VAL, P_VAL, Y_TEST, P_TEST, viral_fractions=(0.5, 0.8), target_fdr=0.05)
    lines = cutoff_markdown(table, 0.05)
    assert "validation" in lines[0] and "5%" in lines[0]
    assert lines[1] == ""
    assert lines[2].startswith("| expected viral fraction | threshold | validation recall |")
    assert lines[4] == "| 50% | none | n/a | n/a | n/a | n/a |"
    assert lines[5] == "| 80% | 0.8 | 0.5000 | 0.4000 | 0.8649 | 0.1351 |"
    assert all(line.count("|") == 7 for line in lines[2:])
