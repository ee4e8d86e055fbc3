"""Test evaluation of a trained model: metrics at 0.5 and at a threshold chosen on validation,
and the per-sequence predictions file."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from virnucpro_trainer.atomic import atomic_path
from virnucpro_trainer.data.batches import BatchSource
from virnucpro_trainer.data.table import FeatureTable
from virnucpro_trainer.loop import predict
from virnucpro_trainer.metrics import choose_threshold, classification_metrics

log = logging.getLogger(__name__)


def evaluate(
    model: torch.nn.Module,
    source: BatchSource,
    rows: dict[str, torch.Tensor],
    table: FeatureTable,
    predictions_path: Path,
    *,
    batch_size: int = 4096,
    bf16: bool = False,
    threshold_metric: str = "f1",
) -> tuple[dict, np.ndarray, np.ndarray]:
    """Test metrics at 0.5 and at a threshold chosen on the validation rows (never on test);
    returns them with the test labels and probabilities.

    Also writes `predictions_path` (test_predictions.tsv): one row per test sequence.
    """
    val_probs, val_y, _ = predict(model, source, rows["val"], batch_size, bf16=bf16)
    threshold = choose_threshold(val_y, val_probs, threshold_metric)
    probs, y, loss = predict(model, source, rows["test"], batch_size, bf16=bf16)
    test = {
        "loss": loss,
        **classification_metrics(y, probs),
        "threshold": 0.5,
        "sequences": len(y),
        "viral_sequences": int(y.sum()),
    }
    chosen = classification_metrics(y, probs, threshold)
    test["chosen_threshold"] = {
        "threshold": threshold,
        "chosen_on": "validation",
        "maximising": threshold_metric,
        **chosen,
    }
    for label, m in (("0.5", test), (f"{threshold:.4f} (chosen on validation)", chosen)):
        log.info(
            "test at threshold %s: acc %.4f  prec %.4f  rec %.4f  f1 %.4f  mcc %.4f  "
            "specificity %.4f  confusion [[TN, FP], [FN, TP]] %s",
            label,
            m["accuracy"],
            m["precision"],
            m["recall"],
            m["f1"],
            m["mcc"],
            m["specificity"],
            m["confusion_matrix"],
        )
    log.info(
        "test: loss %.4f  auroc %.4f  auprc %.4f  brier %.4f",
        loss,
        test["auroc"],
        test["auprc"],
        test["brier"],
    )
    write_predictions(predictions_path, table, rows["test"], y, probs, threshold)
    return test, y, probs


def write_predictions(
    path: Path, table: FeatureTable, rows: torch.Tensor, y, probs, threshold: float
) -> None:
    ids, files = table.row_ids(rows), table.row_files(rows)
    lines = ["id\tfile\tlabel\tprob_viral\tpred_at_0.5\tpred_at_threshold"]
    lines += [
        f"{i}\t{f}\t{label}\t{p:.6f}\t{int(p >= 0.5)}\t{int(p >= threshold)}"
        for i, f, label, p in zip(ids, files, y.tolist(), probs.tolist(), strict=True)
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
