"""Pictures and `report.md` for one evaluation: per level (rows, chunks, records) its metrics
when the data is labelled, and for any data the sample's viral fraction and calls
(reports/composition.py) and its out-of-distribution units (reports/ood.py: their warnings come
first).

Drawn from the levels and the metrics evaluate.py writes to metrics.json, with reports/figures'
drawing functions (matplotlib's file-only backend). A level with no units gets no pictures; one
with a single class gets no curves (ROC, PR and calibration are undefined). The report says so.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from virnucpro_trainer.atomic import atomic_path
from virnucpro_trainer.levels import LEVELS, THRESHOLD_FREE, Level
from virnucpro_trainer.reports.composition import composition_section
from virnucpro_trainer.reports.figures import draw_confusion, draw_reliability, draw_roc_pr
from virnucpro_trainer.reports.ood import ood_section, warning_lines
from virnucpro_trainer.reports.tables import (
    CUT_METRICS,
    effective_lines,
    fmt,
    interval_genomes_lines,
    not_estimable_lines,
)

log = logging.getLogger(__name__)

MEANING = {
    "rows": "one reading frame of one chunk, scored by the MLP; viral when P(viral) >= "
    "P(non-viral).",
    "chunks": "the frames of one chunk; viral when its highest viral probability is at least "
    "its highest non-viral one; score = its highest viral probability.",
    "records": "the chunks of one record (genome, contig); score = aggregate of its chunks by "
    "`aggregate` ({aggregate}), viral when the score is >= 0.5.",
}


def _columns(block: dict) -> list[tuple[str, str]]:
    """(key, header) of each metric dict present in one level's block, in report order."""
    columns = [("predicted", "predicted")]
    if "at_0.5" in block:
        columns.append(("at_0.5", "at 0.5"))
    if "at_stored_threshold" in block:
        value = fmt(block["at_stored_threshold"]["threshold"])
        columns.append(("at_stored_threshold", f"at stored threshold {value}"))
    if "at_threshold" in block:
        columns.append(("at_threshold", f"at threshold={fmt(block['at_threshold']['threshold'])}"))
    return columns


def level_table(name: str, block: dict) -> list[str]:
    """One level's metrics as a markdown table: a column per threshold block present."""
    columns = _columns(block)
    lines = [
        "| metric | " + " | ".join(header for _, header in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    empty = " |" * (len(columns) - 1)
    intervals = block["predicted"].get("intervals", {})  # of the level's own prediction
    for m in CUT_METRICS:
        cells = [
            fmt(block[k][m], intervals.get(m) if k == "predicted" else None) for k, _ in columns
        ]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    for m in THRESHOLD_FREE:
        lines.append(f"| {m} | {fmt(block['predicted'][m], intervals.get(m))} |{empty}")
    if name == "rows" and "loss" in block:
        lines.append(f"| loss | {fmt(block['loss'])} |{empty}")
    cms = " | ".join(str(block[k]["confusion_matrix"]) for k, _ in columns)
    lines.append(f"| confusion [[TN, FP], [FN, TP]] | {cms} |")
    lines += ["", *effective_lines(block)]
    lines += interval_genomes_lines(block["predicted"].get("interval_genomes", {}))
    return lines + not_estimable_lines(block["predicted"].get("not_estimable", {}))


def draw_level(out_dir: Path, name: str, level: Level, block: dict) -> tuple[list, str]:
    """A level's pictures into `out_dir`: (title, file name) each, and a note on what was left
    out."""
    if not len(level.ids):
        return [], "No units at this level: no metrics and no pictures."
    own = block["predicted"]
    pictures = []
    if len(np.unique(level.labels)) == 2:
        y, score = np.asarray(level.labels), np.asarray(level.score, dtype=np.float64)
        draw_roc_pr(y, score, own, out_dir / f"roc_pr_{name}.png", label=name)
        draw_reliability(
            out_dir / f"calibration_{name}.png", y, score, title=f"Reliability ({name})"
        )
        pictures += [
            (f"ROC and precision-recall curves ({name})", f"roc_pr_{name}.png"),
            (f"Calibration ({name})", f"calibration_{name}.png"),
        ]
        note = ""
    else:
        only = "viral" if int(level.labels[0]) == 1 else "non-viral"
        note = (
            f"Only one class ({only}) at this level: ROC, precision-recall and calibration "
            "curves are undefined and not drawn; AUROC and AUPRC are n/a."
        )
    draw_confusion(own, out_dir / f"confusion_{name}.png", label=f"{name}, own prediction")
    pictures.append((f"Confusion matrix ({name}, own prediction)", f"confusion_{name}.png"))
    return pictures, note


def level_section(out_dir: Path, name: str, level: Level, block: dict) -> list[str]:
    """One level's heading, table, note and picture links (drawing the pictures)."""
    lines = [
        f"## {name.capitalize()}",
        "",
        f"{block['units']} units, {block['viral_units']} viral, "
        f"{block['mixed_label_units']} with mixed labels (labelled by the majority).",
        "",
    ]
    pictures, note = draw_level(out_dir, name, level, block)
    if "predicted" in block:
        lines += [*level_table(name, block), ""]
    if note:
        lines += [note, ""]
    for title, picture in pictures:
        lines += [f"![{title}]({picture})", ""]
    return lines


def header(metrics: dict) -> list[str]:
    """The title, what was evaluated, the counts and what each level means."""
    counts = metrics["counts"]
    lines = [
        f"# Evaluation report: {Path(metrics['checkpoint']).name}",
        "",
        f"- checkpoint: `{metrics['checkpoint']}`",
        f"- data root: `{metrics['data_root']}`",
        f"- subset: {metrics['subset']}",
        f"- aggregate: {metrics['aggregate']} (record pattern `{metrics['record_pattern']}`)",
        "",
        "## Counts",
        "",
        "| | |",
        "|---|---|",
    ]
    lines += [f"| {key.replace('_', ' ')} | {value} |" for key, value in counts.items()]
    lines += ["", "## Levels", ""]
    aggregate = metrics["aggregate"]
    lines += [f"- **{name}**: {MEANING[name].format(aggregate=aggregate)}" for name in LEVELS]
    columns = "`predicted` is the level's own prediction; `at ...` cuts its score there."
    return [*lines, "", columns, ""]


def write_eval_report(out_dir: Path, metrics: dict, levels: dict[str, Level]) -> None:
    """Draw the pictures and write report.md into `out_dir`: each level's metrics where the data
    is labelled, then the sample's composition. `metrics` is metrics.json's content, NaN as float
    or None; `levels` maps rows, chunks and records to their Level."""
    lines = header(metrics) + warning_lines(metrics.get("ood"))  # read before any number
    if all(level.labels is not None for level in levels.values()):
        for name in LEVELS:
            if name in levels:
                lines += level_section(out_dir, name, levels[name], metrics[name])
    lines += composition_section(out_dir, metrics, levels)
    lines += ood_section(metrics.get("ood"), "Is the sample like the training data?", False)
    with atomic_path(out_dir / "report.md") as tmp:
        tmp.write_text("\n".join(lines))
    log.info("report: %s", out_dir / "report.md")
