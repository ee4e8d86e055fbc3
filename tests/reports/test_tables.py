"""The report tables: one number format, and the reason beside a metric without an interval."""

from __future__ import annotations

import math

from virnucpro_trainer.reports.tables import (
    fmt,
    fmt_range,
    interval_genomes_lines,
    not_estimable_lines,
)


def test_one_number_format():
    assert fmt(0.96704) == "0.9670" and fmt(None) == fmt(math.nan) == "n/a"
    assert fmt(0.967, [0.958, 0.975]) == "0.9670 (0.9580-0.9750)"
    assert fmt(0.967, [math.nan, math.nan]) == "0.9670"  # not estimable: the value alone
    assert fmt_range(0.1, 0.2) == "0.1000-0.2000" and fmt_range(None, 0.2) == "n/a"


def test_a_metric_without_an_interval_says_why():
    lines = not_estimable_lines({"recall": "the viral class is held by 1 genome(s)"})
    assert "- recall: the viral class is held by 1 genome(s)" in lines
    assert not_estimable_lines({}) == []


def test_the_report_says_how_many_genomes_carry_each_metric():
    (line, blank) = interval_genomes_lines({"accuracy": 12.345, "auprc": None, "f1": math.nan})
    assert line.endswith(": accuracy 12.3.") and blank == ""  # null or NaN: left out
    assert interval_genomes_lines({}) == []  # a results file from before the key existed
