"""Leakage between the sides of a split: source records (genomes) with fragments on two sides.

Records come from the ids by the one rule of data/records.py (`split.record_pattern`).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

PAIRS = (("train", "test"), ("train", "val"))


def leakage_report(sides: dict[str, dict[str, list[str]]]) -> dict:
    """For train/test and train/val: records on both sides, and the rows of the second side
    that belong to them. `sides`: side -> {file: the record of each of its rows on that side}."""
    on_side = {side: {r for rs in of.values() for r in rs} for side, of in sides.items()}
    report = {}
    for a, b in PAIRS:
        shared = on_side[a] & on_side[b]
        report[f"{a}_{b}"] = {
            "shared_records": len(shared),
            f"{b}_rows_in_shared_records": sum(r in shared for rs in sides[b].values() for r in rs),
            f"{b}_rows": sum(len(rs) for rs in sides[b].values()),
            "examples": sorted(shared)[:5],
        }
    return report


def log_leakage(report: dict | None) -> None:
    """Print the report; warn when any record sits on two sides."""
    if report is None:
        log.info("leakage report: not available for this split (made without record ids)")
        return
    for a, b in PAIRS:
        r = report[f"{a}_{b}"]
        text = (
            f"{a}/{b} leakage: {r['shared_records']} source records on both sides, "
            f"{r[f'{b}_rows_in_shared_records']} of {r[f'{b}_rows']} {b} rows belong to them"
        )
        if r["shared_records"]:
            log.warning(
                "%s (e.g. %s): %s scores may be optimistic", text, ", ".join(r["examples"]), b
            )
        else:
            log.info(text)
