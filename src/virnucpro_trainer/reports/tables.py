"""The tables of a training run's report.md: test metrics with their intervals, the cutoffs for
expected viral fractions, and calibration (plain Markdown lines from test_metrics.json); and the
one number formatter (fmt, fmt_range) that every report and sweep summary writes with."""

from __future__ import annotations

import math

from virnucpro_trainer.stats.effective import describe
from virnucpro_trainer.stats.intervals import MIN_EFFECTIVE_GENOMES

CUT_METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "balanced_accuracy", "mcc")
FREE_METRICS = ("auroc", "auprc", "brier", "ece", "loss")


def fmt(value, interval=None) -> str:
    """`0.9670`, or `0.9670 (0.9580-0.9750)` with an interval; `n/a` for NaN or null."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if not interval or any(v is None or not math.isfinite(v) for v in interval):
        return f"{value:.4f}"
    return f"{value:.4f} ({fmt_range(*interval)})"


def fmt_range(low, high) -> str:
    """`0.9580-0.9750`; `n/a` when either end is NaN or null. With fmt, the one way numbers are
    written in every report and summary."""
    if any(v is None or not math.isfinite(v) for v in (low, high)):
        return "n/a"
    return f"{low:.4f}-{high:.4f}"


def metrics_lines(test: dict) -> list[str]:
    """The test metrics at 0.5 and at the threshold chosen on validation, with intervals."""
    chosen = test["chosen_threshold"]
    at_half, at_chosen = test.get("intervals", {}), chosen.get("intervals", {})
    lines = [
        f"| metric | threshold 0.5 | threshold {chosen['threshold']:.4f} "
        f"(max {chosen['maximising']} on validation) |",
        "|---|---|---|",
    ]
    lines += [
        f"| {m} | {fmt(test[m], at_half.get(m))} | {fmt(chosen[m], at_chosen.get(m))} |"
        for m in CUT_METRICS
    ]
    lines += [f"| {m} | {fmt(test[m], at_half.get(m))} | |" for m in FREE_METRICS if m in test]
    lines += [
        f"| confusion [[TN, FP], [FN, TP]] | {test['confusion_matrix']} | "
        f"{chosen['confusion_matrix']} |",
        "",
    ]
    ci = test.get("ci")
    if ci:
        lines += [
            f"In brackets: {100 * ci['level']:g}% intervals from a {ci['method']} over "
            f"{ci['records']} test {ci['unit']}s ({ci['n_boot']} resamples, seed {ci['seed']}): "
            "fragments of one genome are resampled together (docs/statistics.md).",
            "",
        ]
        lines += effective_lines(ci)
    lines += interval_genomes_lines(test.get("interval_genomes", {}))
    return lines + not_estimable_lines(test.get("not_estimable", {}))


def effective_lines(block: dict) -> list[str]:
    """One line by an interval table: how many genomes its intervals rest on (a level's block
    of metrics.json, or test_metrics.json's `ci`); nothing where the block has no count."""
    if "effective_genomes" not in block:
        return []
    return [
        f"The intervals rest on an {describe(block)}: Kish's (sum n)^2 / sum n^2 over the "
        f"genomes' sizes n. A class worth fewer than {MIN_EFFECTIVE_GENOMES:g} genomes gets "
        "no intervals (docs/statistics.md).",
        "",
    ]


def interval_genomes_lines(genomes: dict) -> list[str]:
    """One line: each interval's own effective number of genomes (how evenly the genomes carry
    its metric), or nothing (a results file from before it was written)."""
    shown = [f"{m} {v:.1f}" for m, v in genomes.items() if v is not None and math.isfinite(v)]
    if not shown:
        return []
    return [
        "How many genomes' worth carry each metric (its own effective number; an interval resting "
        "evenly on 5-12 is the likeliest to miss when genomes differ widely, docs/statistics.md): "
        + ", ".join(shown)
        + ".",
        "",
    ]


def not_estimable_lines(reasons: dict) -> list[str]:
    """Why a metric shows no interval: one line per metric with the reason, or nothing."""
    if not reasons:
        return []
    return [
        "No interval (not estimable):",
        "",
        *[f"- {metric}: {reason}" for metric, reason in reasons.items()],
        "",
    ]


def cutoff_lines(test: dict) -> list[str]:
    cutoffs = test.get("cutoffs")
    if not cutoffs:
        return []
    return ["## Cutoffs for an expected viral fraction", ""] + [
        *cutoff_markdown(cutoffs["table"], cutoffs["target_fdr"]),
        "",
    ]


def calibration_lines(test: dict) -> list[str]:
    c = test.get("calibration")
    if not c:
        return []
    return [
        "## Calibration",
        "",
        f"Temperature scaling: T = {c['temperature']:.4f}, fitted on validation by maximum "
        "likelihood and applied to every probability in this report.",
        "",
        "| | before | after |",
        "|---|---|---|",
        f"| expected calibration error | {fmt(c['ece_before'])} | {fmt(test['ece'])} |",
        f"| Brier score | {fmt(c['brier_before'])} | {fmt(test['brier'])} |",
        "",
    ]


def _percent(value: float) -> str:
    return f"{100 * value:.4g}%"


def cutoff_markdown(table: list[dict], target_fdr: float) -> list[str]:
    """`cutoff_table`'s rows as markdown lines for report.md: a one-line caption, a blank line,
    then the table. "none" where no threshold keeps the expected FDR at or under the target."""
    lines = [
        f"Thresholds chosen on the validation files: for each expected viral fraction, the one "
        f"with the highest recall whose expected false discovery rate is at most "
        f"{_percent(target_fdr)}; recall, precision and FDR measured on the test files at that "
        f'threshold, precision and FDR re-weighted to the fraction ("none": no threshold keeps '
        f"the FDR at or under the target).",
        "",
        "| expected viral fraction | threshold | validation recall | test recall "
        "| test precision at that fraction | test FDR |",
        "|---|---|---|---|---|---|",
    ]
    for row in table:
        fraction = _percent(row["viral_fraction"])
        if row["threshold"] is None:
            lines.append(f"| {fraction} | none | n/a | n/a | n/a | n/a |")
            continue
        cells = [
            f"{row['threshold']:.6g}",  # six significant digits: thresholds near 1 matter
            fmt(row["val_recall"]),
            fmt(row["test_recall"]),
            fmt(row["test_expected_precision"]),
            fmt(row["test_expected_fdr"]),
        ]
        lines.append(f"| {fraction} | " + " | ".join(cells) + " |")
    return lines


def pairs_table(rows: list[tuple[str, str]]) -> list[str]:
    """A two-column markdown table without headers."""
    return ["| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows]]


def split_lines(split: dict) -> list[str]:
    """split.json as the report and the model card show it: each side, the split, the leakage."""
    d = split["distribution"]
    lines = pairs_table([(side, _side_summary(d[side])) for side in ("train", "val", "test")])
    lines += ["", f"Split `{split['hash']}`, unit {split['unit']}, seed {split['seed']}.", ""]
    leakage = split.get("leakage")
    if not leakage:
        return [*lines, "- leakage report: not available for this split"]
    for pair, r in leakage.items():
        side = pair.split("_")[1]
        lines.append(
            f"- {pair.replace('_', '/')} leakage: {r['shared_records']} source "
            f"records on both sides, {r[f'{side}_rows_in_shared_records']} of "
            f"{r[f'{side}_rows']} {side} rows"
        )
    return lines


def _side_summary(d: dict) -> str:
    units = f"{d['viral_files']} viral + {d['non_viral_files']} host files"
    if "viral_records" in d:  # a group split
        units = (
            f"{d['viral_records']} viral + {d['non_viral_records']} host source records "
            f"(in {d['viral_files']} + {d['non_viral_files']} files)"
        )
    return f"{units}, {d['sequences']} rows, viral ratio {d['viral_ratio']}"
