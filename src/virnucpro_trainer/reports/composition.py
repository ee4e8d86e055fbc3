"""The report's section on the sample itself (issue 24): its estimated viral fraction at each
level with the interval, the units called viral at the target FDR and at each preset (by the
calls' method, issue 33), and the score histograms with the calls' cut-off. Drawn from
metrics.json's `estimated_viral_fraction` and `calls` blocks, so it never disagrees with them."""

from __future__ import annotations

from pathlib import Path

from virnucpro_trainer.levels import Level
from virnucpro_trainer.reports.figures import draw_score_histograms
from virnucpro_trainer.reports.tables import fmt, fmt_range
from virnucpro_trainer.stats.composition import PRESETS

HISTOGRAMS = "score_histograms.png"
# What each method's calls promise, per level (docs/cutoffs-and-calibration.md, measured by
# benchmarks/fdr_calls.py).
METHOD_TEXT = {
    "conformal": "Calls: conformal p-values against the validation's host units of the same "
    "level and size, then Benjamini-Hochberg with the null share 1 - the fraction used (plain BH "
    "without one). At the record level the FDR holds on average over samples like this one, "
    "without trusting the model's calibration; in a single sample it can be higher. Chunks and "
    "rows of one genome are called together, so their FDR is looser: use `record_call`.",
    "lfdr": "Calls: units whose q-value (the expected FDR of calling every unit scored at least "
    "as high, from the calibrated probabilities at the fraction used) is at most the target. "
    "It trusts the calibration's tail.",
}


def fraction_lines(fractions: dict) -> list[str]:
    """The estimates per level and method, with the interval or the reason there is none."""
    lines = [
        "| level | method | viral fraction | interval | units | note |",
        "|---|---|---|---|---|---|",
    ]
    for level, block in fractions.items():
        for method, e in block["methods"].items():
            default = " (default)" if method == block["method"] else ""
            interval = fmt_range(*e["interval"])
            note = e["reason"] or ""
            lines.append(
                f"| {level} | {method}{default} | {fmt(e['value'])} | {interval} | "
                f"{e['n_sequences']} | {note} |"
            )
    return lines


def calls_lines(calls: dict) -> list[str]:
    """The calls at the target FDR and at each preset, per level."""
    method = calls.get("method", "lfdr")
    target = f"called at FDR {fmt(calls['target_fdr'])} ({calls['preset']}, {method})"
    presets = [f"{name} ({t:g})" for name, t in PRESETS.items()]
    lines = [
        f"| level | fraction used | {target} | " + " | ".join(presets) + " | realized FDR "
        "| recall |",
        "|---" * (5 + len(presets)) + "|",
    ]
    for level, block in calls.items():
        if not isinstance(block, dict):
            continue
        if block["called"] is None:
            why = block.get("reason") or block["fraction_source"]
            lines.append(f"| {level} | none: {why} |" + " |" * (3 + len(presets)))
            continue
        used = f"{fmt(block['viral_fraction'])}, {block['fraction_source']}"
        if block.get("reason"):
            used += f"; {block['reason']}"
        by = " | ".join(str(block["by_preset"][name]) for name in PRESETS)
        lines.append(
            f"| {level} | {used} | {block['called']} | {by} | "
            f"{fmt(block.get('realized_fdr'))} | {fmt(block.get('recall'))} |"
        )
    return lines


def calls_summary(calls: dict) -> list[str]:
    """The model card's lines on the calls: method, target, units called per level."""
    method = calls.get("method", "lfdr")
    called = ", ".join(
        f"{level} {'none' if block['called'] is None else block['called']}"
        for level, block in calls.items()
        if isinstance(block, dict)
    )
    return [
        f"- Viral calls at FDR {fmt(calls['target_fdr'])} ({calls['preset']}, {method}): "
        f"{called}. {METHOD_TEXT[method]}",
        "",
    ]


def composition_section(out_dir: Path, metrics: dict, levels: dict[str, Level]) -> list[str]:
    """The section's lines, drawing the histograms into `out_dir`."""
    calls = metrics["calls"]
    panels = {
        name: (level.score, calls[name].get("score_cutoff"))
        for name, level in levels.items()
        if len(level.ids)
    }
    lines = [
        "## The sample: viral fraction and calls",
        "",
        "The share of the sample's units that are viral, estimated from the scores with the "
        "checkpoint's validation rates (docs/cutoffs-and-calibration.md); the interval "
        "resamples the sample's genomes and the validation's. "
        + METHOD_TEXT[calls.get("method", "lfdr")],
        "",
        *fraction_lines(metrics["estimated_viral_fraction"]),
        "",
        *calls_lines(calls),
        "",
    ]
    if panels:
        draw_score_histograms(panels, out_dir / HISTOGRAMS)
        lines += [f"![Scores per level, with the calls' cut-off]({HISTOGRAMS})", ""]
    return lines
