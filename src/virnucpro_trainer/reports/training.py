"""Pictures and `report.md` for one run: learning curves, ROC and PR curves, calibration, confusion.

Everything is drawn from what the run wrote (its epoch history, test probabilities, metrics and
split), with matplotlib's file-only backend.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib
from omegaconf import DictConfig

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn import metrics as skm  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402

from virnucpro_trainer.reports.tables import (  # noqa: E402
    calibration_lines,
    cutoff_lines,
    metrics_lines,
)
from virnucpro_trainer.stats.calibration import reliability_plot  # noqa: E402

log = logging.getLogger(__name__)

PICTURES = {
    "learning_curves.png": "Learning curves",
    "roc_pr_curves.png": "ROC and precision-recall curves (test)",
    "calibration.png": "Calibration (test)",
    "confusion_matrix.png": "Confusion matrix (test, threshold 0.5)",
}


def _learning_curves(history: list[dict], best_epoch: int, path: Path) -> None:
    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    axes[0].plot(epochs, [r["train_loss"] for r in history], label="train loss")
    axes[0].plot(epochs, [r["val_loss"] for r in history], label="validation loss")
    axes[1].plot(epochs, [r["val_f1"] for r in history], label="validation F1")
    axes[1].plot(epochs, [r["val_auroc"] for r in history], label="validation AUROC")
    axes[2].plot(epochs, [r["lr"] for r in history], label="learning rate")
    for ax in axes:
        ax.axvline(best_epoch, color="grey", linestyle="--", label=f"best epoch ({best_epoch})")
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _titled(title: str, label: str | None) -> str:
    return title if label is None else f"{title} ({label})"


def draw_roc_pr(
    y: np.ndarray, probs: np.ndarray, scores: dict, path: Path, label: str | None = None
) -> None:
    """ROC and precision-recall curves; `scores` holds `auroc` and `auprc`, `label` goes into
    the titles (e.g. an evaluation level). Needs both classes in `y`."""
    fig, (roc, pr) = plt.subplots(1, 2, figsize=(10, 4.5))
    fpr, tpr, _ = skm.roc_curve(y, probs)
    roc.plot(fpr, tpr, label=f"AUROC {scores['auroc']:.4f}")
    roc.plot([0, 1], [0, 1], color="grey", linestyle=":")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title=_titled("ROC", label))
    precision, recall, _ = skm.precision_recall_curve(y, probs)
    pr.plot(recall, precision, label=f"AUPRC {scores['auprc']:.4f}")
    pr.axhline(y.mean(), color="grey", linestyle=":", label="viral share")
    pr.set(xlabel="recall", ylabel="precision", title=_titled("Precision-recall", label))
    for ax in (roc, pr):
        ax.legend(loc="lower left" if ax is pr else "lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_calibration(
    y: np.ndarray, probs: np.ndarray, scores: dict, path: Path, label: str | None = None
) -> None:
    """Reliability diagram; `scores` holds `brier`, `label` goes into the title."""
    observed, predicted = calibration_curve(y, probs, n_bins=10, strategy="uniform")
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    ax.plot(predicted, observed, marker="o", label=f"model (Brier {scores['brier']:.4f})")
    ax.set(
        xlabel="predicted viral probability",
        ylabel="observed viral share",
        title=_titled("Reliability diagram", label),
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_confusion(scores: dict, path: Path, label: str | None = None) -> None:
    """`scores["confusion_matrix"]` ([[TN, FP], [FN, TP]]) as a picture, titled `label` if set."""
    cm = np.array(scores["confusion_matrix"])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(cm, cmap="Blues")
    for (i, j), value in np.ndenumerate(cm):
        ax.text(
            j,
            i,
            str(value),
            ha="center",
            va="center",
            color="white" if value > cm.max() / 2 else "black",
        )
    ax.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["host", "viral"],
        yticklabels=["host", "viral"],
        xlabel="predicted",
        ylabel="true",
    )
    if label is not None:
        ax.set_title(label)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _table(rows: list[tuple[str, str]]) -> list[str]:
    return ["| | |", "|---|---|", *[f"| {a} | {b} |" for a, b in rows]]


def write_report(
    run_dir: Path,
    history: list[dict],
    y: np.ndarray,
    probs: np.ndarray,
    test: dict,
    split: dict,
    settings: dict,
    raw_probs: np.ndarray | None = None,
) -> None:
    """Draw the pictures and write report.md into `run_dir`; `raw_probs`: the probabilities
    before calibration, when `probs` are calibrated."""
    _learning_curves(history, test["best_epoch"], run_dir / "learning_curves.png")
    draw_roc_pr(y, probs, test, run_dir / "roc_pr_curves.png")
    if raw_probs is None:
        draw_calibration(y, probs, test, run_dir / "calibration.png")
    else:  # temperature scaling: the diagram before and after
        reliability_plot(run_dir / "calibration.png", y, raw_probs, probs, "Reliability (test)")
    draw_confusion(test, run_dir / "confusion_matrix.png")

    lines = [f"# Run report: {run_dir.name}", "", "## Test metrics", "", *metrics_lines(test)]
    lines += cutoff_lines(test) + calibration_lines(test)
    lines += [f"## {title}\n\n![{title}]({name})\n" for name, title in PICTURES.items()]
    d = split["distribution"]
    lines += ["## Data and split", ""]
    lines += _table([(side, _side_summary(d[side])) for side in ("train", "val", "test")])
    lines += ["", f"Split `{split['hash']}`, unit {split['unit']}, seed {split['seed']}.", ""]
    leakage = split.get("leakage")
    if leakage:
        for pair, r in leakage.items():
            side = pair.split("_")[1]
            lines.append(
                f"- {pair.replace('_', '/')} leakage: {r['shared_records']} source "
                f"records on both sides, {r[f'{side}_rows_in_shared_records']} of "
                f"{r[f'{side}_rows']} {side} rows"
            )
    else:
        lines.append("- leakage report: not available for this split")
    lines += ["", "## Settings", ""]
    lines += _table([(k, f"`{v}`") for k, v in settings.items()])
    lines += [
        "",
        f"Best epoch {test['best_epoch']} of {test['epochs_run']} "
        f"({'stopped early' if test['stopped_early'] else 'ran out of epochs'}).",
        "",
    ]
    (run_dir / "report.md").write_text("\n".join(lines))
    log.info("report: %s", run_dir / "report.md")


def _side_summary(d: dict) -> str:
    units = f"{d['viral_files']} viral + {d['non_viral_files']} host files"
    if "viral_records" in d:  # a group split
        units = (
            f"{d['viral_records']} viral + {d['non_viral_records']} host source records "
            f"(in {d['viral_files']} + {d['non_viral_files']} files)"
        )
    return f"{units}, {d['sequences']} rows, viral ratio {d['viral_ratio']}"


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
