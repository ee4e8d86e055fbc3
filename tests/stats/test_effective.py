"""The effective number of genomes (stats/effective.py): Kish's (sum n)^2 / sum n^2, overall and
per class, on a hand example, and in the interval block the results files are written from."""

from __future__ import annotations

import numpy as np
import pytest

from virnucpro_trainer.config.schema import CIConfig
from virnucpro_trainer.stats.effective import describe, effective_genomes, kish
from virnucpro_trainer.stats.interval_block import interval_blocks


def test_kish_by_hand():
    assert kish([5, 5, 5, 5]) == 4.0  # k genomes of one size: k
    assert kish([10, 10, 20]) == pytest.approx(40**2 / 600)  # 2.67
    assert kish([1000, 1, 1]) == pytest.approx(1002**2 / 1000002)  # one genome holds all: ~1
    assert kish([]) == 0.0 and kish([0, 0, 3]) == 1.0


def test_effective_genomes_overall_and_per_class():
    # viral genomes "a", "b", "c" of 10, 10, 20 rows; host genomes "d".."g" of 5 rows each
    sizes = {"a": 10, "b": 10, "c": 20, "d": 5, "e": 5, "f": 5, "g": 5}
    genomes = np.repeat(list(sizes), list(sizes.values()))
    labels = np.isin(genomes, ["a", "b", "c"]).astype(int)
    found = effective_genomes(labels, genomes)
    assert found["genomes"] == {"all": 7, "viral": 3, "host": 4}
    assert found["effective_genomes"] == {
        "viral": round(1600 / 600, 2),
        "host": 4.0,
        "all": round(60**2 / 700, 2),
    }
    assert describe(found) == (
        "effective number of genomes 5.1 of 7 (viral 2.7 of 3, host 4.0 of 4)"
    )


def test_the_interval_block_reports_it():
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 50, 30)
    genome = np.repeat(np.arange(30), sizes)
    y = (np.arange(30) % 2)[genome]
    prob = np.clip(0.5 * y + rng.uniform(0, 0.5, len(y)), 0, 1)
    _, described = interval_blocks(y, prob, genome, [prob >= 0.5], CIConfig(n_boot=30))
    assert described["genomes"] == {"all": 30, "viral": 15, "host": 15}
    assert described["effective_genomes"]["all"] == round(kish(sizes), 2)
    assert described["effective_genomes"]["viral"] == round(kish(sizes[1::2]), 2)
