"""The reports' lines on out-of-distribution units (issue 34; docs/ood.md): the warnings, to be
read first, and a table per level of the share flagged against alpha. Drawn from metrics.json's
(or test_metrics.json's) `ood` block only, so they never disagree with it."""

from __future__ import annotations

from virnucpro_trainer.levels import LEVELS
from virnucpro_trainer.reports.tables import fmt

MEANING = (
    "Each unit's out-of-distribution p-value compares its score with the validation rows' "
    "(docs/ood.md); a unit is flagged at p <= alpha, so a sample like the training data has "
    "about alpha of its units flagged. The binomial test asks whether more are."
)


def levels_of(block: dict | None) -> list[str]:
    return [name for name in LEVELS if block and isinstance(block.get(name), dict)]


def warning_lines(block: dict | None) -> list[str]:
    """Each level's warning as a quoted paragraph; [] where there is none."""
    lines = []
    for name in levels_of(block):
        text = block[name].get("warning")
        if text:
            lines += [f"> **Unlike the training data ({name}).** {text}", ""]
    return lines


def table_lines(block: dict | None) -> list[str]:
    """The share flagged per level against alpha, or why there is no detector."""
    names = levels_of(block)
    if not names:
        return []
    first = block[names[0]]
    if "reason" in first:
        return [f"No out-of-distribution p-values: {first['reason']}.", ""]
    lines = [
        f"Method `{first['method']}`, alpha {first['alpha']:g}. {MEANING}",
        "",
        "| level | units | flagged | share | binomial p (share > alpha) |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        b = block[name]
        p = "n/a" if b["p_value"] is None else f"{b['p_value']:.2g}"
        lines.append(f"| {name} | {b['n']} | {b['flagged']} | {fmt(b['share'])} | {p} |")
    return [*lines, ""]


def ood_section(block: dict | None, title: str, warnings: bool = True) -> list[str]:
    """A report's section: heading, table, what to expect (training's test side: `expected`),
    the warnings (unless shown elsewhere)."""
    if not levels_of(block):
        return []
    lines = [f"## {title}", "", *table_lines(block)]
    if block.get("expected"):
        lines += [f"Expected: {block['expected']}.", ""]
    return lines + (warning_lines(block) if warnings else [])
