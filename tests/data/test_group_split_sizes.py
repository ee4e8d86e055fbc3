"""The group split aims at each class's share of rows, not of records: records of 1 to 5,000 rows
(a phage next to a bacterial genome) still give each side the requested fraction of the rows."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from virnucpro_trainer.data.group_split import (
    assign_records,
    fill_side,
    log_row_fractions,
    swap_closer,
)

SIDES = ("train", "val", "test")
CLASSES = {"non_viral": 0, "viral": 1}


def mixed_records(n_per_class: int, seed: int, kind: str) -> tuple[dict, dict]:
    """(labels, sizes) of `n_per_class` records per class of 1 to 5,000 rows: log-uniform, or
    mostly small records and a few of thousands of rows (phages and bacterial genomes)."""
    rng = np.random.default_rng(seed)
    n = 2 * n_per_class
    if kind == "log-uniform":
        raw = np.exp(rng.uniform(0, np.log(5000), n))
    else:  # Pareto: half the records under 40 rows, a few at the 5,000 cap
        raw = 20 * (rng.pareto(1.0, n) + 1) - 19
    sizes = np.clip(np.round(raw), 1, 5000).astype(int)
    sizes[:4] = [1, 1, 5000, 5000]  # the extremes in both classes
    names = [f"NC_{seed:02d}{i:05d}.1" for i in range(n)]
    labels = {name: i % 2 for i, name in enumerate(names)}
    return labels, {name: int(s) for name, s in zip(names, sizes, strict=True)}


def achieved(sides, labels, sizes, label):
    total = sum(s for r, s in sizes.items() if labels[r] == label)
    return {
        side: sum(sizes[r] for r in names if labels[r] == label) / total
        for side, names in sides.items()
    }


@pytest.mark.parametrize("kind", ["log-uniform", "pareto"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("test", "val"), [(0.1, 0.1), (0.2, 0.25)])
def test_each_class_gets_its_share_of_rows(kind, seed, test, val):
    labels, sizes = mixed_records(150, seed, kind)
    assert min(sizes.values()) == 1 and max(sizes.values()) == 5000
    sides, report = assign_records(labels, sizes, test, val, seed)

    placed = [r for names in sides.values() for r in names]
    assert sorted(placed) == sorted(labels)  # every record on exactly one side
    requested = {"test": test, "val": val * (1 - test), "train": (1 - test) * (1 - val)}
    for class_name, label in CLASSES.items():
        got = achieved(sides, labels, sizes, label)
        for side in SIDES:
            assert any(labels[r] == label for r in sides[side])  # every class on every side
            entry = report[class_name][side]
            assert entry["requested"] == pytest.approx(requested[side])
            assert entry["achieved"] == pytest.approx(got[side], abs=1e-6)
            of_side = [sizes[r] for r in sides[side] if labels[r] == label]
            assert entry["rows"] == sum(of_side) and entry["records"] == len(of_side)
            assert entry["largest_record_rows"] == max(of_side)
        for side in ("test", "val"):
            assert abs(got[side] - requested[side]) <= 0.01, (class_name, side, got[side])
        assert report[class_name]["rows"] == sum(s for r, s in sizes.items() if labels[r] == label)


def test_same_seed_same_split_other_seed_another():
    labels, sizes = mixed_records(150, 0, "log-uniform")
    first = assign_records(labels, sizes, 0.1, 0.1, seed=5)
    backwards = (dict(reversed(labels.items())), dict(reversed(sizes.items())))
    assert assign_records(*backwards, 0.1, 0.1, seed=5) == first
    assert assign_records(labels, sizes, 0.1, 0.1, seed=6)[0]["test"] != first[0]["test"]


def test_records_sized_like_the_reported_genomes():
    # two phages and three RNA viruses against three bacterial assemblies (500 bp chunks): by
    # record count a test fraction of 0.1 put 69% of the rows on the test side
    sizes = {"lambda": 97, "T4": 338, "sars2": 60, "hiv": 19, "flu": 6}
    sizes |= {"ecoli": 5000, "bsub": 1000, "staph": 610}
    labels = {name: int(i < 5) for i, name in enumerate(sizes)}
    sides, report = assign_records(labels, sizes, 0.1, 0.1, seed=42)
    assert report["non_viral"]["test"]["rows"] == 610  # the smallest bacterium, not the largest
    assert "ecoli" in sides["train"]
    test_rows = sum(sizes[r] for r in sides["test"])
    assert test_rows / sum(sizes.values()) < 0.2
    for side in SIDES:
        assert {labels[r] for r in sides[side]} == {0, 1}


def test_fill_side_takes_what_fits_then_the_record_that_comes_closest():
    sizes = {"a": 150, "b": 60, "c": 40, "d": 7, "e": 500}
    chosen, rest = fill_side(["a", "b", "c", "d", "e"], sizes, target=100, reserve=1)
    assert chosen == ["b", "c"] and rest == ["a", "d", "e"]  # 100: exact
    chosen, rest = fill_side(["e", "a"], {"e": 500, "a": 150}, target=10, reserve=1)
    assert chosen == ["a"] and rest == ["e"]  # nothing fits: the smallest, so the side has one
    chosen, rest = fill_side(["a", "b", "c"], sizes, target=100, reserve=2)
    assert chosen == ["b"] and rest == ["a", "c"]  # two records left for the other sides


def test_swap_closer_swaps_while_that_helps():
    sizes = {"a": 10, "b": 50, "c": 31, "d": 5}
    side, train = ["a"], ["b", "c", "d"]
    swap_closer(side, train, sizes, target=30)
    assert side == ["c"] and sorted(train) == ["a", "b", "d"]


def test_a_record_larger_than_the_side_is_warned_about(caplog):
    # each host record is far larger than a tenth of the host rows: the test side gets the
    # smallest, and misses its share
    sizes = {"h1": 5000, "h2": 4000, "h3": 3000} | {f"v{i}": 10 + i for i in range(30)}
    labels = {name: int(name.startswith("v")) for name in sizes}
    sides, report = assign_records(labels, sizes, 0.1, 0.1, seed=0)
    assert [r for r in sides["test"] if r.startswith("h")] == ["h3"]
    assert report["non_viral"]["test"]["achieved"] == 0.25
    caplog.set_level(logging.INFO)
    log_row_fractions({"group_method": "rows", "row_fractions": report}, "the/folder")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "the test side holds 25.00% of the non_viral rows, not the requested 10.00%" in w
        and "the largest on this side has 3000 rows" in w
        for w in warnings
    ), warnings
    assert not any("viral rows" in w and "non_viral" not in w for w in warnings)
    assert "group split, viral rows (" in caplog.text
