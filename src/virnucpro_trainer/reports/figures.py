"""The pictures of the reports (matplotlib's file-only backend): learning curves, ROC and
precision-recall curves, the reliability diagram and the confusion matrix. Each takes plain arrays
and values and writes one PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn import metrics as skm  # noqa: E402

from virnucpro_trainer.stats.calibration import (  # noqa: E402
    calibration_bins,
    expected_calibration_error,
)


def draw_learning_curves(history: list[dict], best_epoch: int, path: Path) -> None:
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


def draw_reliability(
    path: Path,
    y: np.ndarray,
    p_before: np.ndarray,
    p_after: np.ndarray | None = None,
    title: str = "",
) -> None:
    """A reliability diagram (observed viral share against mean predicted probability per
    equal-width bin: the bins and the ECE of stats.calibration, one rule for every reliability
    diagram the project draws) written to `path` as a PNG: the
    `p_before` curve and, if given, the `p_after` curve (e.g. after temperature scaling), each
    with its ECE in the legend."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    curves = [("before", p_before)] + ([] if p_after is None else [("after", p_after)])
    for name, p in curves:
        predicted, observed, _ = calibration_bins(y, p)
        ece = expected_calibration_error(y, p)
        label = name if p_after is not None else "model"
        ax.plot(predicted, observed, marker="o", label=f"{label} (ECE {ece:.4f})")
    ax.set(
        xlim=(-0.02, 1.02),
        ylim=(-0.02, 1.02),
        xlabel="predicted viral probability",
        ylabel="observed viral share",
        title=title or "Reliability diagram",
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(Path(path), dpi=100)
    plt.close(fig)


def draw_score_histograms(panels: dict[str, tuple[np.ndarray, float | None]], path: Path) -> None:
    """One histogram of the scores per level (name -> (scores, score cut-off of the calls or
    None)), log-scaled counts, the cut-off a dashed line."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    for ax, (name, (scores, cutoff)) in zip(axes[0], panels.items(), strict=True):
        ax.hist(np.asarray(scores, dtype=np.float64), bins=50, range=(0, 1), color="tab:blue")
        ax.set_yscale("log")
        if cutoff is not None:
            ax.axvline(cutoff, color="tab:red", linestyle="--", label=f"called from {cutoff:.3g}")
            ax.legend(loc="upper center")
        ax.set_title(name)
        ax.set_xlabel("score")
        ax.set_ylabel("units")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
