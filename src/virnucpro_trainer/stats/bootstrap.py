"""Resampling genomes: the vectorised cluster bootstrap behind every interval and paired
comparison, and each row's genome code. Plain numpy arrays in, plain values out.

Test rows are fragments of genomes ("records"), and fragments of one genome are not independent:
each resample draws as many genomes as the test set has, uniformly with replacement, and takes
all rows of every drawn genome. A block of resamples is a (resamples x genomes) array of integer
multiplicities; cells.py and ranking.py turn it into every metric of every resample at once, with
each genome's jackknife difference (for standard errors). The intervals built from these draws:
intervals.py; the method and its measured coverage: docs/statistics.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from virnucpro_trainer.stats.cells import Cells
from virnucpro_trainer.stats.metrics import SCALAR_METRICS
from virnucpro_trainer.stats.ranking import Ranking

# Bytes of one (resamples x rows) int32 array in a block of resamples. Small blocks stay in the
# CPU caches: on 200,000 rows a block of 2 resamples ran faster than blocks of 40 (32 MB arrays),
# and a block's arrays take a few MB in all. Blocks of tens of resamples for small test sets.
_BLOCK_BYTES = 2 * 2**20


def check_inputs(
    y, scores: Sequence, groups
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, int]:
    """Labels as int8 0/1, scores as float64, groups recoded 0..G-1 (in sorted order); G."""
    y = np.asarray(y).ravel()
    n = len(y)
    if n == 0:
        raise ValueError("no rows")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 (host) or 1 (viral)")
    checked = []
    for score in scores:
        score = np.asarray(score, dtype=np.float64).ravel()
        if len(score) != n:
            raise ValueError(f"{len(score)} probabilities for {n} labels")
        if not np.all(np.isfinite(score)):
            raise ValueError("probabilities contain NaN or infinity")
        checked.append(score)
    groups = np.asarray(groups).ravel()
    if len(groups) != n:
        raise ValueError(f"{len(groups)} group codes for {n} labels")
    uniques, codes = np.unique(groups, return_inverse=True)
    return y.astype(np.int8), checked, codes.astype(np.intp), len(uniques)


def check_settings(n_boot: int, level: float) -> None:
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be at least 1, not {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, not {level}")


class Scored:
    """One model's scores on the test rows with one or more 0/1 predictions from them (one per
    threshold, or a level's own prediction): every SCALAR_METRICS value of a block of
    resamples, each prediction's threshold metrics and the shared AUROC and AUPRC (ranking the
    rows by `ranking` where given, e.g. the logits the point values rank by, else by `score`)."""

    def __init__(
        self, y, score, predictions: Sequence[np.ndarray], codes, n_groups: int, ranking=None
    ):
        self.cells = [Cells(y, p, score, codes, n_groups) for p in predictions]
        self.ranking = Ranking(y, score if ranking is None else ranking, codes, n_groups)

    def resampled(
        self, counts: np.ndarray, both: np.ndarray | None, influence: bool = False
    ) -> list[tuple[dict, dict]]:
        """Per prediction: ({metric: values}, {metric: jackknife differences}; AUPRC's only
        with `influence`); with `both` (one flag per resample), resamples without both classes
        are NaN throughout."""
        ranked = self.ranking.resampled(counts, influence)
        out = []
        for cells in self.cells:
            values, differences = cells.resampled(counts)
            values.update(ranked[0])
            differences.update(ranked[1])
            if both is not None and not both.all():
                for name in values:
                    values[name] = np.where(both, values[name], np.nan)
            out.append(({k: values[k] for k in SCALAR_METRICS}, differences))
        return out


def block_size(n_rows: int, n_groups: int, n_boot: int) -> int:
    """Resamples per block: one (resamples x rows) int32 array of about _BLOCK_BYTES."""
    return int(max(1, min(n_boot, _BLOCK_BYTES // (4 * max(n_rows, n_groups)))))


def count_blocks(
    n_groups: int, n_boot: int, block: int, seed: int, dtype: type
) -> Iterator[np.ndarray]:
    """(b, G) multiplicities per block of b resamples: each resample draws G groups uniformly
    with replacement. numpy's Generator gives the same int64 draws in one call as in several,
    so the resamples do not depend on the block size (a test checks)."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, block):
        drawn = rng.integers(0, n_groups, size=(min(block, n_boot - start), n_groups))
        if n_groups <= 2**16:  # one bincount for the block
            drawn += np.arange(len(drawn))[:, None] * n_groups
            flat = np.bincount(drawn.ravel(), minlength=drawn.size)
            yield flat.reshape(drawn.shape).astype(dtype)
            continue
        counts = np.empty(drawn.shape, dtype=dtype)
        for row, draws in zip(counts, drawn, strict=True):  # one resample at a time: cache-sized
            row[:] = np.bincount(draws, minlength=n_groups)
        yield counts


@dataclass
class Design:
    """The test rows and how they fall on genomes: labels, genome codes, genome count."""

    y: np.ndarray
    codes: np.ndarray
    n_groups: int

    def count_type(self) -> type:
        # The largest possible resample (every draw the largest group) must fit the counts.
        largest = int(np.bincount(self.codes).max())
        return np.int32 if self.n_groups * largest < 2**31 - 1 else np.int64

    def __post_init__(self):
        self.viral = np.bincount(self.codes, weights=self.y, minlength=self.n_groups)
        self.host = np.bincount(self.codes, weights=1 - self.y, minlength=self.n_groups)

    def both_classes(self, counts: np.ndarray) -> np.ndarray | None:
        """Per resample: does it hold both classes (None when the data holds one class only)."""
        if self.y.min() == self.y.max():
            return None
        return ((counts @ self.viral) > 0) & ((counts @ self.host) > 0)

    def blocks(self, n_boot: int, seed: int) -> Iterator[np.ndarray]:
        block = block_size(len(self.y), self.n_groups, n_boot)
        return count_blocks(self.n_groups, n_boot, block, seed, self.count_type())

    def everything(self) -> np.ndarray:
        """The test set itself as one 'resample': every genome once."""
        return np.ones((1, self.n_groups), dtype=self.count_type())


def standard_errors(counts: np.ndarray, differences: dict) -> dict[str, np.ndarray]:
    """Per resample, the jackknife standard error of each metric: sqrt(sum over the drawn
    genome copies of their squared jackknife differences)."""
    weights = counts.astype(np.float64)
    return {
        k: np.full(len(counts), np.nan)
        if d is None
        else np.sqrt(np.einsum("ij,ij->i", weights, d * d))
        for k, d in differences.items()
    }
