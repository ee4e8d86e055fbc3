"""`ood.abstain=true` (issue 34; docs/ood.md): units flagged out of distribution are not called.
Their `call` is `abstain`, their FDR columns NA, and the sample's viral fraction, FDRs and calls
are those of the other units; metrics.json keeps the estimate with every unit beside it
(`with_flagged_units`) and counts the abstentions. Also the prediction tables' extra columns of
every level, abstaining or not."""

from __future__ import annotations

import logging

import numpy as np

from virnucpro_trainer.evaluate.composition import (
    COLUMNS,
    LevelComposition,
    composition_metrics,
    compositions,
    table_columns,
)
from virnucpro_trainer.evaluate.ood_levels import LevelOOD, ood_columns
from virnucpro_trainer.levels import Level

log = logging.getLogger(__name__)

ABSTAIN = "abstain"


def kept(level: Level, keep: np.ndarray) -> Level:
    """The level's units where `keep` is true."""
    pick = np.flatnonzero(keep)
    return Level(
        [level.ids[i] for i in pick],
        np.asarray(level.score)[pick],
        np.asarray(level.viral)[pick],
        np.asarray(level.size)[pick],
        None if level.labels is None else np.asarray(level.labels)[pick],
        level.mixed,
        None if level.ranking is None else np.asarray(level.ranking)[pick],
    )


def abstained(
    settings,
    scoring,
    levels: dict[str, Level],
    ood: dict[str, LevelOOD],
    fractions: dict,
    calls: dict,
) -> tuple[dict[str, LevelComposition], dict, dict]:
    """(compositions, estimated_viral_fraction, calls) of the unflagged units, each level's
    estimate with every unit kept beside it and the abstentions counted."""
    rest = {name: kept(level, ~ood[name].flagged) for name, level in levels.items()}
    log.info("ood.abstain: the sample's composition again, without the flagged units (%s)",
             ", ".join(f"{n}: {int(ood[n].flagged.sum())}" for n in levels))  # fmt: skip
    found = compositions(settings, scoring, rest)
    kept_fractions, kept_calls = composition_metrics(found, rest, settings)
    for name in levels:
        kept_fractions[name]["with_flagged_units"] = fractions[name]
        kept_calls[name]["abstained"] = int(ood[name].flagged.sum())
        kept_calls[name]["with_flagged_units"] = calls[name]
    return found, kept_fractions, kept_calls


def spread(values: np.ndarray, keep: np.ndarray, fill) -> np.ndarray:
    """`values` (one per kept unit) at the kept units' places, `fill` elsewhere."""
    dtype = object if values.dtype == bool or fill == ABSTAIN else np.float64
    out = np.full(len(keep), fill, dtype=dtype)
    out[keep] = values.astype(np.int64) if values.dtype == bool else values
    return out


def prediction_columns(
    found: dict[str, LevelComposition],
    levels: dict[str, Level],
    ood: dict[str, LevelOOD],
    abstain: bool,
) -> dict[str, dict[str, np.ndarray]]:
    """Each level's extra columns of the prediction tables: the FDR columns (where the
    composition was asked for; the abstaining units' NA, their call `abstain`), then the
    out-of-distribution ones."""
    out = {}
    for name, level in levels.items():
        n, columns = len(level.ids), {}
        if name in found and abstain and name in ood:
            keep = ~ood[name].flagged
            own = table_columns(found[name], int(keep.sum()))
            columns = {c: spread(own[c], keep, ABSTAIN if c == "call" else np.nan) for c in COLUMNS}
        elif name in found:
            columns = table_columns(found[name], n)
        out[name] = {**columns, **ood_columns(ood.get(name), n)}
    return out
