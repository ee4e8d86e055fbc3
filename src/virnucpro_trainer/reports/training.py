"""`report.md` and its pictures for one training run: learning curves, ROC and PR curves,
calibration, confusion, all drawn from what the run wrote (its epoch history, test probabilities,
metrics and split)."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from virnucpro_trainer.reports.figures import (
    draw_confusion,
    draw_learning_curves,
    draw_reliability,
    draw_roc_pr,
)
from virnucpro_trainer.reports.ood import ood_section
from virnucpro_trainer.reports.tables import (
    calibration_lines,
    cutoff_lines,
    metrics_lines,
    pairs_table,
    split_lines,
)

log = logging.getLogger(__name__)

PICTURES = {
    "learning_curves.png": "Learning curves",
    "roc_pr_curves.png": "ROC and precision-recall curves (test)",
    "calibration.png": "Calibration (test)",
    "confusion_matrix.png": "Confusion matrix (test, threshold 0.5)",
}


def write_report(
    run_dir: Path, history: list[dict], test: dict, scores: tuple, split: dict, settings: dict
) -> None:
    """Draw the pictures and write report.md into `run_dir`: the epoch history, the test
    metrics (test_metrics.json's), the test side's scores (labels, probabilities, and those
    before calibration or None), the split and the main settings."""
    y, probs, raw_probs = scores
    draw_learning_curves(history, test["best_epoch"], run_dir / "learning_curves.png")
    draw_roc_pr(y, probs, test, run_dir / "roc_pr_curves.png")
    if raw_probs is None:
        draw_reliability(run_dir / "calibration.png", y, probs, title="Reliability (test)")
    else:  # temperature scaling: the diagram before and after
        draw_reliability(run_dir / "calibration.png", y, raw_probs, probs, "Reliability (test)")
    draw_confusion(test, run_dir / "confusion_matrix.png")

    lines = [f"# Run report: {run_dir.name}", "", "## Test metrics", "", *metrics_lines(test)]
    lines += cutoff_lines(test) + calibration_lines(test)
    lines += ood_section(test.get("ood"), "Is the test side like the training data?")
    lines += [f"## {title}\n\n![{title}]({name})\n" for name, title in PICTURES.items()]
    lines += ["## Data and split", "", *split_lines(split), "", "## Settings", ""]
    lines += pairs_table([(k, f"`{v}`") for k, v in settings.items()])
    lines += [
        "",
        f"Best epoch {test['best_epoch']} of {test['epochs_run']} "
        f"({'stopped early' if test['stopped_early'] else 'ran out of epochs'}).",
        "",
    ]
    (run_dir / "report.md").write_text("\n".join(lines))
    log.info("report: %s", run_dir / "report.md")


def main_settings(cfg: DictConfig) -> dict:
    """The settings a reader of a report wants to see first."""
    opt = cfg.optimizer
    return {
        "data": f"{cfg.data.root} ({cfg.data.dna_dim} + {cfg.data.protein_dim} wide, "
        f"{cfg.data.protein_model})",
        "model": f"MLP hidden {cfg.model.hidden_dim}, dropout {cfg.model.dropout}",
        "optimizer": f"{opt.name} lr {opt.lr} momentum {opt.momentum} weight decay "
        f"{opt.weight_decay}; StepLR {opt.scheduler.step_size}/{opt.scheduler.gamma}",
        "training": f"batch {cfg.batch_size}, up to {cfg.epochs} epochs, patience {cfg.patience}, "
        f"seed {cfg.seed}",
        "split": f"{cfg.split.unit}, test {cfg.split.test_fraction}, validation "
        f"{cfg.split.val_fraction}, seed {cfg.split.seed}",
    }
