"""Rows, chunks and records: the three levels predictions are reported at, shared by evaluation,
training's test side and the reports.

A row is one reading frame of one chunk, id `<record>_chunk_<k><F|R><1-3>`. A chunk is the rows
sharing an id without its last two characters (the frame); it is viral by the prediction step's
rule, when its highest viral probability is at least its highest non-viral one, and its score
(for curves and thresholds) is its highest viral probability. A record (genome, contig) is the
chunks of one source record (data/records.py: the same rule as the split and the intervals); its
score aggregates its chunks' scores (`mean`, `max`, or `vote`: the share of its chunks that are
viral). A chunk whose id does not match the record pattern is a record of its own.

Rows whose id has no frame suffix belong to no chunk: they are counted and reported, never
guessed at. Plain arrays in, plain arrays out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from virnucpro_trainer.config.schema import LEVELS as LEVELS  # names in metrics.json, reports
from virnucpro_trainer.data.records import record_codes, records_of

FRAME = re.compile(r"[FR][1-3]$")
# The metrics of a level's score that need no threshold (its `predicted` block takes them from the
# score, not from the 0/1 prediction).
THRESHOLD_FREE = ("auroc", "auprc", "brier")


@dataclass
class Level:
    """One level's units, in sorted id order. `labels` is None for unlabelled data."""

    ids: list[str]
    score: np.ndarray  # the viral score used for curves and thresholds
    viral: np.ndarray  # bool: the level's own prediction
    size: np.ndarray  # int64: rows per chunk, or chunks per record
    labels: np.ndarray | None
    mixed: int = 0  # units whose members disagree on the label (labelled to the majority)
    ranking: np.ndarray | None = None  # what AUROC and AUPRC rank by, if not `score` (logits)


def _group(keys: list[str]) -> tuple[list[str], np.ndarray]:
    """Sorted unique keys and each key's position among them."""
    unique, inverse = np.unique(np.asarray(keys, dtype=object), return_inverse=True)
    return [str(k) for k in unique], inverse.astype(np.int64)


def _group_labels(labels: np.ndarray | None, inverse: np.ndarray, n: int):
    """Each group's majority label (ties viral) and how many groups are mixed."""
    if labels is None:
        return None, 0
    count = np.bincount(inverse, minlength=n)
    viral = np.bincount(inverse, weights=labels.astype(np.float64), minlength=n)
    mixed = int(np.sum((viral > 0) & (viral < count)))
    return (viral * 2 >= count).astype(np.int64), mixed


def chunk_level(
    ids: list[str],
    prob_viral: np.ndarray,
    labels: np.ndarray | None = None,
    prob_host: np.ndarray | None = None,
) -> tuple[Level, int]:
    """Chunks from rows, and the number of rows with no frame suffix (left out).

    `prob_host` defaults to 1 - `prob_viral` (two classes); pass the values written out so that
    the chunk rule agrees with them to the last digit."""
    parsed = np.fromiter((FRAME.search(i) is not None for i in ids), bool, len(ids))
    keep = np.flatnonzero(parsed)
    names, inverse = _group([ids[i][:-2] for i in keep])
    n = len(names)
    p1 = np.asarray(prob_viral, dtype=np.float64)[keep]
    p0 = 1.0 - p1 if prob_host is None else np.asarray(prob_host, dtype=np.float64)[keep]
    best_viral = np.full(n, -np.inf)
    best_host = np.full(n, -np.inf)
    np.maximum.at(best_viral, inverse, p1)
    np.maximum.at(best_host, inverse, p0)
    group_labels, mixed = _group_labels(
        None if labels is None else np.asarray(labels)[keep], inverse, n
    )
    level = Level(
        names,
        best_viral,
        best_viral >= best_host,
        np.bincount(inverse, minlength=n).astype(np.int64),
        group_labels,
        mixed,
    )
    return level, int(len(ids) - len(keep))


def record_level(chunks: Level, pattern: str, aggregate: str = "mean") -> tuple[Level, int]:
    """Records from chunks (data/records.py's rule), and the number of chunks the pattern does
    not match: each of those is a record of its own."""
    records, unmatched = records_of(chunks.ids, pattern)
    index = np.arange(len(records))
    names, inverse = _group(records)
    n = len(names)
    size = np.bincount(inverse, minlength=n).astype(np.int64)
    if aggregate == "max":
        score = np.full(n, -np.inf)
        np.maximum.at(score, inverse, chunks.score[index])
    else:
        values = chunks.viral[index] if aggregate == "vote" else chunks.score[index]
        score = np.bincount(inverse, weights=values.astype(np.float64), minlength=n)
        score = score / np.maximum(size, 1)
    group_labels, mixed = _group_labels(
        None if chunks.labels is None else chunks.labels[index], inverse, n
    )
    return Level(names, score, score >= 0.5, size, group_labels, mixed), len(unmatched)


def level_genomes(name: str, level: Level, pattern: str) -> np.ndarray:
    """Each unit's genome code, the unit that intervals resample: rows and chunks by the record
    their id names (`pattern`), records each their own."""
    if name == "records":
        return np.arange(len(level.ids))
    return record_codes(level.ids, pattern)
