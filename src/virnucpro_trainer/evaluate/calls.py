"""Conformal viral calls at each level (issue 33; `calls.method=conformal`, docs/cutoffs-and-
calibration.md): each unit's conformal p-value against the checkpoint's validation host units of
the same level and size bin (stats/conformal.py), then Benjamini-Hochberg with Storey's null share
1 - the level's viral fraction (estimated, or `viral_fraction=`; plain BH where there is none).

Units are compared by keys that both sides compute alike: rows by their logit (the ranking the
rows' AUROC uses; the probability where the scores carry no logits), chunks by their highest
frame key, records by the mean of their chunks' keys, ties broken by their score (`aggregate`).
Not by the vote share itself: its steps depend on the record's size, so under the null a long
record's vote is unlike a short one's in either direction, while the mean's spread only narrows
as a record grows (a record longer than the validation's in its size bin gets a conservative
p-value; benchmarks/fdr_calls.py --sizes long). Keys are rounded to float32 on both sides, as
the sample's probabilities are. The validation's units are built from its rows by
the sample's own rules (levels.py). Also: each chunk's and row's record call (`record_call`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from virnucpro_trainer.data.records import records_of
from virnucpro_trainer.levels import FRAME, Level, chunk_level, record_level
from virnucpro_trainer.stats.calibration import apply_temperature
from virnucpro_trainer.stats.composition import calls_at_fdr
from virnucpro_trainer.stats.conformal import (
    SizeBins,
    bh_qvalues,
    bin_minimum,
    floor_problem,
    mondrian_pvalues,
    size_bins,
)


@dataclass
class Keys:
    """One level's units as the conformal p-values compare them."""

    score: np.ndarray
    tie: np.ndarray
    size: np.ndarray


@dataclass
class ConformalCalls:
    """A level's conformal p-values, BH q-values and calls (q-value at most the target), the
    null share BH used, the bins, and why nothing was called where the validation's host units
    are too few for it."""

    p_value: np.ndarray
    q_value: np.ndarray
    called: np.ndarray
    null_share: float
    bins: SizeBins
    reason: str | None = None

    def as_dict(self) -> dict:
        """metrics.json's conformal details of a level's `calls` block."""
        return {
            "null_share": self.null_share,
            "validation_hosts": int(self.bins.hosts.sum()),
            "size_bins": self.bins.as_list(),
            "reason": self.reason,
        }


def null_levels(validation: dict, temperature: float | None, aggregate: str) -> dict[str, Level]:
    """The validation's units at each level, scored as the sample's are: float32 probabilities
    (the checkpoint's temperature applied), the rows' logits as their ranking."""
    ids = str(validation["ids"]).split("\n")
    y = np.asarray(validation["labels"], dtype=np.int64)
    z = np.asarray(validation["logits"], dtype=np.float32)
    p64 = expit(z.astype(np.float64)) if temperature is None else apply_temperature(z, temperature)
    p = p64.astype(np.float32)
    rows = Level(ids, p, p >= np.float32(1) - p, np.ones(y.size, np.int64), y, ranking=z)
    chunks, _ = chunk_level(ids, p, y, np.float32(1) - p)
    records, _ = record_level(chunks, str(validation["record_pattern"]), aggregate)
    return {"rows": rows, "chunks": chunks, "records": records}


def _f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).astype(np.float32).astype(np.float64)


def unit_keys(levels: dict[str, Level], pattern: str) -> dict[str, Keys]:
    """Each level's keys (module docstring). A level whose members are missing from the level
    below (units left out upstream) falls back to its own score, with no tie-break."""
    if "rows" not in levels:
        return {}
    rows = levels["rows"]
    logits = rows.ranking is not None
    row_key = _f32(rows.ranking if logits else rows.score)
    out = {"rows": Keys(row_key, np.zeros(row_key.size), np.asarray(rows.size))}
    if "chunks" in levels:
        chunks = levels["chunks"]
        key = _group_max(rows.ids, row_key, chunks.ids)
        if not logits or np.isnan(key).any():
            key = _f32(chunks.score)
        out["chunks"] = Keys(key, np.zeros(key.size), np.asarray(chunks.size))
        if "records" in levels:
            records = levels["records"]
            mean = _group_mean(chunks.ids, out["chunks"].score, records.ids, pattern)
            size = np.asarray(records.size)
            if np.isnan(mean).any():
                out["records"] = Keys(_f32(records.score), np.zeros(mean.size), size)
            else:
                out["records"] = Keys(_f32(mean), _f32(records.score), size)
    return out


def _group_max(row_ids: list[str], values: np.ndarray, chunk_ids: list[str]) -> np.ndarray:
    """Each chunk's highest value over its rows (NaN for a chunk with none)."""
    where = {c: i for i, c in enumerate(chunk_ids)}
    index = np.fromiter(
        (where.get(r[:-2], -1) if FRAME.search(r) else -1 for r in row_ids), np.int64, len(row_ids)
    )
    found = index >= 0
    out = np.full(len(chunk_ids), -np.inf)
    np.maximum.at(out, index[found], values[found])
    return np.where(np.isneginf(out), np.nan, out)


def _group_mean(chunk_ids: list[str], values: np.ndarray, record_ids: list[str], pattern: str):
    """Each record's mean value over its chunks (NaN for a record with none)."""
    where = {r: i for i, r in enumerate(record_ids)}
    names, _ = records_of(chunk_ids, pattern)
    index = np.fromiter((where.get(n, -1) for n in names), np.int64, len(names))
    found = index >= 0
    n = len(record_ids)
    total = np.bincount(index[found], weights=values[found], minlength=n)
    count = np.bincount(index[found], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def host_keys(null: Level, keys: Keys) -> Keys:
    """The validation host units' keys (label 0)."""
    host = np.asarray(null.labels) == 0
    return Keys(keys.score[host], keys.tie[host], keys.size[host])


def conformal_calls(
    sample: Keys, hosts: Keys, target: float, fraction: float | None, min_hosts: int
) -> ConformalCalls:
    """p-values by size bin (at least `min_hosts` validation host units each, more where the
    sample's BH threshold needs them: stats.conformal.bin_minimum), BH at `target` with null
    share 1 - `fraction` (1 without one), and, when nothing is called because no bin's smallest
    p-value can reach BH's threshold for the sample's expected viral units
    (stats.conformal.floor_problem), the reason."""
    pi0 = 1.0 if fraction is None else min(1.0, max(1.0 - float(fraction), 1e-12))
    m = int(sample.score.size)
    bins = size_bins(hosts.size, bin_minimum(min_hosts, m, pi0, target))
    p = mondrian_pvalues(sample.score, sample.size, hosts.score, hosts.size, bins,
                         sample.tie, hosts.tie)  # fmt: skip
    q = bh_qvalues(p, pi0)
    called = calls_at_fdr(q, target)
    problems = [floor_problem(int(n), max(m, 1), pi0, target) for n in bins.hosts]
    reason = None
    if m and not called.any() and all(problems):  # even the best bin cannot reach
        reason = problems[int(np.argmax(bins.hosts))]
    return ConformalCalls(p, q, called, pi0, bins, reason)


def with_record_calls(columns: dict, levels: dict[str, Level], pattern: str) -> dict:
    """The chunk and row tables' `record_call` (their record's `call`), placed after `call`;
    NA where a unit has no record (a row without frame suffix) or the records have no calls."""
    if "records" not in levels or "call" not in columns.get("records", {}):
        return columns
    record_call = columns["records"]["call"]
    where = {r: i for i, r in enumerate(levels["records"].ids)}
    out = dict(columns)
    for name in ("chunks", "rows"):
        if name not in columns or name not in levels:
            continue
        ids = levels[name].ids
        chunk = ids if name == "chunks" else [i[:-2] if FRAME.search(i) else None for i in ids]
        named = [c for c in chunk if c is not None]
        record = iter(records_of(named, pattern)[0])
        index = np.fromiter(
            (-1 if c is None else where.get(next(record), -1) for c in chunk), np.int64, len(ids)
        )
        out[name] = _insert_after(columns[name], "call", "record_call", _pick(record_call, index))
    return out


def _pick(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """values[index], NA (NaN) where index is -1, keeping 1/0 and `abstain` as they print."""
    if values.dtype.kind == "f":
        out = np.full(index.size, np.nan)
        out[index >= 0] = values[index[index >= 0]]
        return out
    plain = [int(v) if isinstance(v, bool | np.bool_) else v for v in values.tolist()]
    return np.array([plain[i] if i >= 0 else math.nan for i in index.tolist()], dtype=object)


def _insert_after(columns: dict, after: str, name: str, values: np.ndarray) -> dict:
    out = {}
    for key, value in columns.items():
        out[key] = value
        if key == after:
            out[name] = values
    return out
