"""The test side after training. What the checkpoint carries is fitted on the validation rows
(the temperature, the threshold, the cutoffs, the validation scores) and, for the
out-of-distribution detector, on the training rows (train/ood_fit.py) with its validation scores
from the same validation pass; then the best model's test
rows are scored and assessed by the evaluation package (evaluate/scoring.py, evaluate/assess.py:
the code `evaluate.py ckpt=<run> subset=test` runs) and laid out as test_metrics.json, with
test_predictions.tsv beside it."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from virnucpro_trainer.checkpoint import ScoringModel
from virnucpro_trainer.config.schema import CIConfig, CutoffConfig, OODConfig
from virnucpro_trainer.data.batches import BatchSource
from virnucpro_trainer.data.records import record_codes
from virnucpro_trainer.data.table import FeatureTable
from virnucpro_trainer.evaluate.assess import Assessment, AssessSettings, assess
from virnucpro_trainer.evaluate.ood import BatchScorer, with_validation
from virnucpro_trainer.evaluate.outputs import write_row_table
from virnucpro_trainer.evaluate.scoring import Scored, scored_rows
from virnucpro_trainer.model import Predictions, predict_scores
from virnucpro_trainer.stats.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
)
from virnucpro_trainer.stats.cutoffs import cutoff_table
from virnucpro_trainer.stats.effective import EFFECTIVE_KEYS
from virnucpro_trainer.stats.metrics import SCALAR_METRICS, choose_threshold
from virnucpro_trainer.train.ood_fit import fit_detector, fit_rows

log = logging.getLogger(__name__)


@dataclass
class HeldOutSettings:
    """How the test side is scored and summarised: keys of the training config (their defaults
    and meaning: config/schema.py)."""

    batch_size: int
    bf16: bool
    threshold_metric: str
    calibration: str
    cutoffs: CutoffConfig
    assess: AssessSettings  # levels, intervals, composition: evaluate.py's settings
    ood: OODConfig = field(default_factory=OODConfig)  # the detector fitted on training rows
    seed: int = 0  # the training seed: the detector's sample of training rows
    split_unit: str = "file"  # what the test side's flagged share is expected to be
    memory_budget_bytes: int | None = None  # data.memory_budget_gb: caps the detector's sample

    @classmethod
    def from_config(cls, cfg: DictConfig) -> HeldOutSettings:
        return cls(
            batch_size=cfg.eval_batch_size,
            bf16=cfg.bf16,
            threshold_metric=cfg.threshold_metric,
            calibration=cfg.calibration,
            cutoffs=CutoffConfig(
                viral_fractions=list(cfg.cutoffs.viral_fractions),
                target_fdr=cfg.cutoffs.target_fdr,
            ),
            assess=AssessSettings(
                record_pattern=cfg.split.record_pattern,
                aggregate=cfg.test_side.aggregate,
                ci=CIConfig(**cfg.ci),
                levels=tuple(cfg.test_side.levels),
                composition=cfg.test_side.composition,
                ood_alpha=cfg.ood.alpha,
            ),
            ood=OODConfig(**cfg.ood),
            seed=cfg.seed,
            split_unit=cfg.split.unit,
            memory_budget_bytes=(
                None
                if cfg.data.memory_budget_gb is None
                else int(cfg.data.memory_budget_gb * 2**30)
            ),
        )


@dataclass
class HeldOut:
    """test_metrics.json's content, the test labels, the viral probabilities as reported
    (calibrated, if asked) and, when calibrated, those before; the checkpoint's validation
    scores, threshold and temperature."""

    metrics: dict
    y: np.ndarray
    probs: np.ndarray
    raw_probs: np.ndarray | None
    validation: dict
    ood: dict | None = None  # the out-of-distribution detector, for the checkpoint


def score_held_out(
    model: torch.nn.Module,
    source: BatchSource,
    rows: dict[str, torch.Tensor],
    table: FeatureTable,
    predictions_path: Path,
    settings: HeldOutSettings,
    checkpoint_path: Path,
) -> HeldOut:
    """Fit the temperature (if asked) and choose the threshold on the validation rows (never on
    test), then assess the test rows as evaluate.py would with the checkpoint about to be
    written (`checkpoint_path`). Writes `predictions_path` (test_predictions.tsv)."""
    s = settings
    max_rows = fit_rows(s.ood.max_rows, model, source, s.memory_budget_bytes)
    fitted = fit_detector(model, source, rows["train"], s.ood.method, max_rows, s.seed,
                          s.batch_size, s.bf16)  # fmt: skip
    scorer = BatchScorer(model, fitted) if fitted else None
    with scorer or contextlib.nullcontext():
        val = predict_scores(model, source, rows["val"], s.batch_size, bf16=s.bf16, extra=scorer)
    detector = with_validation(fitted, val.extra, scorer.parts) if fitted else None
    temperature = None if s.calibration == "none" else fit_temperature(val.labels, val.logits)
    if temperature is not None:
        log.info("temperature scaling: T = %.4f (fitted on validation)", temperature)
    val_probs = val.probs if temperature is None else apply_temperature(val.logits, temperature)
    threshold = choose_threshold(val.labels, val_probs, s.threshold_metric)
    validation = validation_scores(table, rows, val, s.assess.record_pattern)
    scoring = ScoringModel(
        model, checkpoint_path, {}, None, threshold, temperature, validation, detector
    )
    scored = scored_rows([scoring], source, table, rows["test"], s.batch_size, bf16=s.bf16)
    assessed = assess(scored, scoring, s.assess)
    test = test_metrics(assessed, scored, s)
    test["cutoffs"] = {
        "target_fdr": s.cutoffs.target_fdr,
        "chosen_on": "validation",
        "table": cutoff_table(
            val.labels,
            val_probs,
            scored.labels,
            scored.prob_viral,
            s.cutoffs.viral_fractions,
            s.cutoffs.target_fdr,
        ),
    }
    if temperature is not None:
        test["calibration"] = calibration_block(temperature, scored)
    test.update(more_levels(assessed, s.assess))
    test["ood"] = test_side_ood(assessed, detector, s.split_unit)
    log_test(test, test["chosen_threshold"], threshold)
    extra = assessed.columns["rows"]
    calls = {"pred_at_0.5": 0.5, "pred_at_threshold": threshold}
    write_row_table(
        predictions_path, scored.ids, scored.files, scored.labels, scored.prob_viral, calls, extra
    )
    return HeldOut(
        test, scored.labels, scored.prob_viral, scored.uncalibrated, validation, detector
    )


# What the test side's flagged share should be (test_metrics.json's ood.expected, the reports).
EXPECTED = {
    "file": "the test files are held out as the validation files are, so about alpha of the "
    "test side should be flagged",
    "group": "every test genome is new to the model, as every validation genome is: alpha on "
    "average, but a genome's fragments are flagged together, so with few or unusual test "
    "genomes the share can sit well above alpha, and that is expected",
}


def test_side_ood(assessed: Assessment, detector: dict | None, split_unit: str) -> dict:
    """test_metrics.json's `ood`: each level's flagged share (evaluate.py's block), what is
    expected of it, and what the detector was fitted on."""
    out = {**assessed.ood_metrics, "expected": EXPECTED[split_unit]}
    if detector is not None:
        out["fitted_on"] = detector["fitted_on"]
    return out


def test_metrics(assessed: Assessment, scored: Scored, s: HeldOutSettings) -> dict:
    """test_metrics.json's layout of the rows level: the metrics at 0.5 at the top, those at the
    threshold chosen on validation in `chosen_threshold`, the intervals of both."""
    rows = assessed.metrics["rows"]
    at_half, at_chosen = rows["at_0.5"], rows["at_stored_threshold"]
    test = {
        "loss": rows["loss"],
        **{k: at_half[k] for k in (*SCALAR_METRICS, "confusion_matrix")},
        "ece": expected_calibration_error(scored.labels, scored.prob_viral),
        "threshold": 0.5,
        "sequences": rows["units"],
        "viral_sequences": rows["viral_units"],
        "chosen_threshold": {
            "threshold": at_chosen["threshold"],
            "chosen_on": "validation",
            "maximising": s.threshold_metric,
            **{k: v for k, v in at_chosen.items() if k != "threshold"},
        },
    }
    if "ci" in assessed.metrics:
        test["intervals"] = at_half["intervals"]
        test["not_estimable"] = at_half["not_estimable"]
        test["interval_genomes"] = at_half["interval_genomes"]
        ci = {k: v for k, v in assessed.metrics["ci"].items() if k != "unit"}
        records = len(np.unique(record_codes(scored.ids, s.assess.record_pattern)))
        test["ci"] = {**ci, "unit": "source record", "records": records}
        test["ci"].update({key: rows[key] for key in EFFECTIVE_KEYS if key in rows})
    return test


def more_levels(assessed: Assessment, s: AssessSettings) -> dict:
    """The chunk and record levels and the sample's composition, as evaluate.py's metrics.json
    has them, where test_side asks for them."""
    out: dict = {}
    shown = [name for name in assessed.levels if name != "rows"]
    if shown:
        out["levels"] = {"aggregate": s.aggregate, "counts": assessed.counts}
        out["levels"].update({name: assessed.metrics[name] for name in shown})
    if assessed.found:
        out["estimated_viral_fraction"] = assessed.fractions
        out["calls"] = assessed.calls
    return out


def calibration_block(temperature: float, scored: Scored) -> dict:
    """test_metrics.json's `calibration`: the temperature, and the ECE and Brier score of the
    test probabilities before it."""
    before = scored.uncalibrated
    return {
        "method": "temperature",
        "temperature": temperature,
        "fitted_on": "validation",
        "ece_before": expected_calibration_error(scored.labels, before),
        "brier_before": float(np.mean((before - scored.labels) ** 2)),
    }


def validation_scores(
    table: FeatureTable, rows: dict, val: Predictions, record_pattern: str
) -> dict:
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
