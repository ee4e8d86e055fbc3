"""The rows' out-of-distribution p-values (evaluate/ood.py) at every level, and what is said about
them (issue 34; docs/ood.md): a chunk's or record's p-value is the Simes combination of its rows'
(a unit is flagged when that is at most ood.alpha; its score is its highest row's); metrics.json's
`ood` block per level with a one-sided binomial test that the flagged share exceeds alpha; the
warning, in the log and for the reports, where that test is significant and the share is above
3 x alpha; the prediction tables' columns `ood_score`, `ood_p`, `ood`."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from virnucpro_trainer.data.records import records_of
from virnucpro_trainer.evaluate.ood import RowOOD
from virnucpro_trainer.levels import FRAME, Level
from virnucpro_trainer.stats.ood import excess_p_value, group_max, simes

log = logging.getLogger(__name__)

COLUMNS = ("ood_score", "ood_p", "ood")
WARN_SHARE = 3  # warn when more than this many times alpha of the units are flagged
WARN_P = 0.05  # ... and the binomial test that the share exceeds alpha says so at this level
UNITS = {  # how the warning names a level's units
    "rows": "sequences (reading frames of a chunk)",
    "chunks": "chunks",
    "records": "records (genomes or contigs)",
}
ASSUMED = (
    "Every number reported about this sample (the calibrated probabilities, the intervals, "
    "the estimated viral fraction, the FDRs, q-values and calls) assumes that the sample "
    "resembles the training data apart from its viral share; for these {units} it does not, "
    "so treat those numbers with caution and look at the flagged ones (the `ood` column)."
)


@dataclass
class LevelOOD:
    """One level's units: score (their highest row's), p-value, flagged."""

    score: np.ndarray
    p: np.ndarray
    flagged: np.ndarray


def row_units(ids: list[str], levels: dict[str, Level], pattern: str) -> dict[str, np.ndarray]:
    """Each row's unit at each level (its index in the level's ids; -1 for a row in none: no
    frame suffix), by the rules of levels.py."""
    out = {"rows": np.arange(len(ids))}
    if "chunks" not in levels and "records" not in levels:
        return out
    chunk_ids = levels["chunks"].ids if "chunks" in levels else None
    if chunk_ids is None:  # records without the chunk level shown: the chunks' ids by its rule
        chunk_ids = sorted({i[:-2] for i in ids if FRAME.search(i)})
    index = {name: k for k, name in enumerate(chunk_ids)}
    chunk = np.fromiter((index[i[:-2]] if FRAME.search(i) else -1 for i in ids), np.int64, len(ids))
    if "chunks" in levels:
        out["chunks"] = chunk
    if "records" in levels:
        names = {name: k for k, name in enumerate(levels["records"].ids)}
        record_of_chunk = np.array([names[r] for r in records_of(chunk_ids, pattern)[0]] or [0])
        out["records"] = np.where(chunk >= 0, record_of_chunk[np.maximum(chunk, 0)], -1)
    return out


def level_ood(
    row: RowOOD, ids: list[str], levels: dict[str, Level], pattern: str, alpha: float
) -> dict[str, LevelOOD]:
    """Each level's scores, p-values and flags ({} without a detector)."""
    if row.p is None:
        return {}
    found = {}
    for name, units in row_units(ids, levels, pattern).items():
        n = len(levels[name].ids)
        inside = units >= 0
        if name == "rows":
            score, p = row.score, row.p
        else:
            score = group_max(row.score[inside], units[inside], n)
            p = simes(row.p[inside], units[inside], n)
        found[name] = LevelOOD(score, p, np.asarray(p <= alpha))
    return found


def ood_metrics(row: RowOOD, found: dict[str, LevelOOD], names, alpha: float) -> dict:
    """metrics.json's `ood`: per level the method, alpha, units, flagged, share and the
    binomial test's p-value, with a warning where it applies (or why there is none)."""
    out = {}
    for name in names:
        block: dict = {"method": row.method, "alpha": alpha}
        if name not in found:
            out[name] = {**block, "reason": row.reason}
            continue
        n, flagged = len(found[name].p), int(found[name].flagged.sum())
        test = excess_p_value(flagged, n, alpha)
        block.update(
            n=n,
            flagged=flagged,
            share=flagged / n if n else None,
            p_value=None if math.isnan(test) else test,
        )
        if name != "rows":
            block["unit_p_value"] = "Simes combination of its rows' p-values"
        block["warning"] = warning(name, block)
        if block["warning"]:
            log.warning("out-of-distribution: %s", block["warning"])
        out[name] = block
    return out


def warning(name: str, block: dict) -> str | None:
    """The warning for one level's block, in words, or None where the share is as expected."""
    n, share, alpha, p = block["n"], block["share"], block["alpha"], block["p_value"]
    if not n or p is None or p > WARN_P or share <= WARN_SHARE * alpha:
        return None
    units = UNITS[name]
    return (
        f"{share:.0%} of the {units} ({block['flagged']:,} of {n:,}) are unlike the data the "
        f"model was trained on (out-of-distribution p-value <= {alpha:g}). Had the sample "
        f"resembled the training data, about {alpha:.0%} would have been flagged (binomial test "
        f"of the excess: p = {p:.2g}). " + ASSUMED.format(units=units)
    )


def ood_columns(found: LevelOOD | None, n: int) -> dict[str, np.ndarray]:
    """The prediction tables' columns for one level (NA throughout without a detector)."""
    if found is None:
        return {name: np.full(n, np.nan) for name in COLUMNS}
    return dict(zip(COLUMNS, (found.score, found.p, found.flagged), strict=True))
