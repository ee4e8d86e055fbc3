"""Test evaluation of a trained model: metrics at 0.5 and at a threshold chosen on validation,
intervals by source record, cutoffs for expected viral fractions, calibration, and the
per-sequence predictions file."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from virnucpro_trainer.config.schema import CIConfig, CutoffConfig
from virnucpro_trainer.data.batches import BatchSource
from virnucpro_trainer.data.records import record_codes
from virnucpro_trainer.data.table import FeatureTable
from virnucpro_trainer.evaluate.outputs import write_row_table
from virnucpro_trainer.model import predict_scores
from virnucpro_trainer.stats.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
)
from virnucpro_trainer.stats.cutoffs import cutoff_table
from virnucpro_trainer.stats.interval_block import interval_blocks
from virnucpro_trainer.stats.metrics import choose_threshold, classification_metrics, metrics_at

log = logging.getLogger(__name__)


@dataclass
class ScoreSettings:
    """How the test side is scored and summarised: keys of the training config (their defaults
    and meaning: config/schema.py)."""

    batch_size: int
    bf16: bool
    threshold_metric: str
    record_pattern: str  # the unit the intervals resample
    ci: CIConfig | None  # None: no intervals
    cutoffs: CutoffConfig
    calibration: str

    @classmethod
    def from_config(cls, cfg: DictConfig) -> ScoreSettings:
        return cls(
            batch_size=cfg.eval_batch_size,
            bf16=cfg.bf16,
            threshold_metric=cfg.threshold_metric,
            record_pattern=cfg.split.record_pattern,
            ci=CIConfig(**cfg.ci),
            cutoffs=CutoffConfig(
                viral_fractions=list(cfg.cutoffs.viral_fractions),
                target_fdr=cfg.cutoffs.target_fdr,
            ),
            calibration=cfg.calibration,
        )


@dataclass
class TestScores:
    """The test side after training: test_metrics.json's content, the labels, the viral
    probabilities (calibrated, if asked) and, when calibrated, those before."""

    metrics: dict
    y: np.ndarray
    probs: np.ndarray
    raw_probs: np.ndarray | None = None
    validation: dict | None = None  # the checkpoint's validation_scores (validation_scores())


def evaluate(
    model: torch.nn.Module,
    source: BatchSource,
    rows: dict[str, torch.Tensor],
    table: FeatureTable,
    predictions_path: Path,
    settings: ScoreSettings,
) -> TestScores:
    """Test metrics at 0.5 and at a threshold chosen on the validation rows (never on test),
    with intervals by source record, the cutoff table and calibration.

    Also writes `predictions_path` (test_predictions.tsv): one row per test sequence.
    """
    s = settings
    val = predict_scores(model, source, rows["val"], s.batch_size, bf16=s.bf16)
    scored = predict_scores(model, source, rows["test"], s.batch_size, bf16=s.bf16)
    val_y, val_probs, y, loss = val.labels, val.probs, scored.labels, scored.loss
    z = scored.logits  # AUROC and AUPRC rank by the logits: calibration cannot change them
    calibrated = calibrate(s.calibration, val_y, val.logits, y, scored.probs, z)
    probs = raw_probs = scored.probs
    if calibrated is not None:
        val_probs, probs = calibrated.pop("val_probs"), calibrated.pop("test_probs")
    threshold = choose_threshold(val_y, val_probs, s.threshold_metric)
    test = {
        "loss": loss,
        **classification_metrics(y, probs, ranking=z),
        "ece": expected_calibration_error(y, probs),
        "threshold": 0.5,
        "sequences": len(y),
        "viral_sequences": int(y.sum()),
    }
    chosen = metrics_at(
        y, probs, threshold, z, chosen_on="validation", maximising=s.threshold_metric
    )
    test["chosen_threshold"] = chosen
    ids = table.row_ids(rows["test"])
    if s.ci is not None and s.ci.enabled:
        add_intervals(test, y, probs, record_codes(ids, s.record_pattern), s.ci)
    test["cutoffs"] = {
        "target_fdr": s.cutoffs.target_fdr,
        "chosen_on": "validation",
        "table": cutoff_table(
            val_y, val_probs, y, probs, s.cutoffs.viral_fractions, s.cutoffs.target_fdr
        ),
    }
    if calibrated is not None:
        test["calibration"] = calibrated
    log_test(test, chosen, threshold)
    write_predictions(predictions_path, table, rows["test"], y, probs, threshold)
    reference = validation_scores(table, rows, val, s.record_pattern)
    return TestScores(test, y, probs, None if calibrated is None else raw_probs, reference)


def validation_scores(table: FeatureTable, rows: dict, val, record_pattern: str) -> dict:
    """What evaluate.py needs to estimate a sample's viral fraction (docs/checkpoint.md): the
    training rows' viral share (the prior the probabilities are calibrated at) and the
    validation rows' ids (newline-joined: one string pickles fast), labels and logits (viral
    minus host, before calibration; the checkpoint's temperature applies to them)."""
    return {
        "train_viral_prior": float(table.labels[rows["train"]].float().mean()),
        "ids": "\n".join(table.row_ids(rows["val"])),
        "labels": torch.as_tensor(val.labels, dtype=torch.uint8),
        "logits": torch.as_tensor(val.logits, dtype=torch.float32),
        "record_pattern": record_pattern,
    }


def calibrate(method: str, val_y, val_logits, y, probs, logits) -> dict | None:
    """Temperature scaling fitted on the validation logits: the temperature, the ECE and Brier
    score before, and both sides' calibrated probabilities (`val_probs`, `test_probs`, from the
    logits); None for `none`."""
    if method == "none":
        return None
    temperature = fit_temperature(val_y, val_logits)
    after = apply_temperature(logits, temperature)
    log.info("temperature scaling: T = %.4f (fitted on validation)", temperature)
    return {
        "method": "temperature",
        "temperature": temperature,
        "fitted_on": "validation",
        "ece_before": expected_calibration_error(y, probs),
        "brier_before": float(np.mean((probs - y) ** 2)),
        "val_probs": apply_temperature(val_logits, temperature),
        "test_probs": after,
    }


def add_intervals(test: dict, y, probs, groups: np.ndarray, ci: CIConfig) -> None:
    """`intervals` ([low, high] per metric) and `not_estimable` (metric: reason) at 0.5 and at
    the chosen threshold, resampling source records; `ci` says how they were made."""
    chosen = test["chosen_threshold"]
    cuts = [probs >= 0.5, probs >= chosen["threshold"]]
    (at_half, at_chosen), described = interval_blocks(y, probs, groups, cuts, ci)
    test.update(at_half)
    chosen.update(at_chosen)
    test["ci"] = {**described, "unit": "source record", "records": int(len(np.unique(groups)))}


def log_test(test: dict, chosen: dict, threshold: float) -> None:
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
        "test: loss %.4f  auroc %.4f  auprc %.4f  brier %.4f  ece %.4f",
        test["loss"],
        test["auroc"],
        test["auprc"],
        test["brier"],
        test["ece"],
    )
    if "intervals" in test:
        low, high = test["intervals"]["auroc"]
        log.info(
            "test auroc %.4f (%.4f-%.4f), %g%% interval by source record (%d records)",
            test["auroc"],
            low,
            high,
            100 * test["ci"]["level"],
            test["ci"]["records"],
        )


def write_predictions(
    path: Path, table: FeatureTable, rows: torch.Tensor, y, probs, threshold: float
) -> None:
    """test_predictions.tsv: evaluate.py's row table, with a call at 0.5 and at the threshold."""
    calls = {"pred_at_0.5": 0.5, "pred_at_threshold": threshold}
    write_row_table(path, table.row_ids(rows), table.row_files(rows), y, probs, calls)
