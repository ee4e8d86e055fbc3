"""Which genome (source record) a sequence id belongs to: the one rule that the split, the
leakage report, the genome-resampled intervals and evaluate.py's record level all use.

The record is the first group of `record_pattern` matched at the start of the id; the default,
`^(.+)_chunk_\\d+`, takes the id up to its last `_chunk_<n>` (`NC_001416.1_chunk_3F2` ->
`NC_001416.1`, `A_chunk_1_chunk_2F1` -> `A_chunk_1`). An id that does not match is a record of its
own, everywhere; callers count such ids and say so, they never drop them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np


def records_of(ids: Sequence[str], pattern: str) -> tuple[list[str], list[str]]:
    """The record of each id, and the ids the pattern does not match (each its own record)."""
    regex = re.compile(pattern)
    if regex.groups < 1:
        raise ValueError(f"record pattern {pattern!r} has no capture group")
    records, unmatched = [], []
    for i in ids:
        m = regex.match(i)
        record = m.group(1) if m else None
        if record is None:  # no match, or group 1 took no part in it
            record = i
            unmatched.append(i)
        records.append(record)
    return records, unmatched


def record_codes(ids: Sequence[str], pattern: str) -> np.ndarray:
    """Each id's record as an integer code (0, 1, ... in order of first appearance): the groups
    that the genome-resampled intervals draw."""
    records, _ = records_of(ids, pattern)
    first: dict[str, int] = {}
    return np.fromiter((first.setdefault(r, len(first)) for r in records), np.int64, len(records))
