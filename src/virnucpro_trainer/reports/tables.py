"""The tables of a training run's report.md: test metrics with their intervals, the cutoffs for
expected viral fractions, and calibration (plain Markdown lines from test_metrics.json)."""

from __future__ import annotations

import math

from virnucpro_trainer.stats.cutoffs import cutoff_markdown

CUT_METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "balanced_accuracy", "mcc")
FREE_METRICS = ("auroc", "auprc", "brier", "ece", "loss")


def fmt(value, interval=None) -> str:
    """`0.9670`, or `0.9670 (0.9580-0.9750)` with an interval; `n/a` for NaN or null."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if not interval or any(v is None or not math.isfinite(v) for v in interval):
        return f"{value:.4f}"
    return f"{value:.4f} ({interval[0]:.4f}-{interval[1]:.4f})"


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
    return lines


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
