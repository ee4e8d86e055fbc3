"""One evaluation from a composed evaluate config: checkpoint -> data -> scores -> levels ->
metrics and predictions, written into the evaluation's own directory (docs/evaluate.md)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from virnucpro_trainer.atomic import write_json
from virnucpro_trainer.checkpoint import ScoringModel
from virnucpro_trainer.config.evaluate import validate_eval
from virnucpro_trainer.ensemble import ENSEMBLE_FILE, Ensemble, ensemble_block, save_ensemble
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.evaluate.assess import AssessSettings, assess
from virnucpro_trainer.evaluate.inputs import choose_subset, remove_scratch
from virnucpro_trainer.evaluate.members import load_scoring
from virnucpro_trainer.evaluate.outputs import (
    log_summary,
    sequences_digest,
    write_highest_score,
    write_level_table,
    write_prediction_results,
    write_row_table,
)
from virnucpro_trainer.evaluate.scoring import Scored, score
from virnucpro_trainer.levels import Level
from virnucpro_trainer.reports.evaluation import write_eval_report
from virnucpro_trainer.reports.model_card import evaluation_card
from virnucpro_trainer.run_dir import EVAL_RESULT
from virnucpro_trainer.runtime import describe, select_device

log = logging.getLogger(__name__)


def absolute(path: str) -> str:
    return str(Path(to_absolute_path(path)).resolve())


def evaluate_run(cfg: DictConfig, out_dir: Path) -> dict:
    """Score the data `cfg` names with its checkpoint; write everything into `out_dir`.

    Returns metrics.json's content."""
    validate_eval(cfg)
    cfg.data.root = absolute(cfg.data.root)
    cfg.ckpt = absolute(cfg.ckpt) if isinstance(cfg.ckpt, str) else [absolute(c) for c in cfg.ckpt]
    if cfg.data.cache_dir is not None:
        cfg.data.cache_dir = absolute(cfg.data.cache_dir)
    if cfg.cpu_threads is not None:
        torch.set_num_threads(cfg.cpu_threads)
    device = select_device(cfg.device)
    log.info("evaluation directory: %s", out_dir)
    log.info("device %s", describe(device))
    ckpt = OmegaConf.to_object(cfg.ckpt) if OmegaConf.is_list(cfg.ckpt) else cfg.ckpt
    scoring = load_scoring(ckpt, cfg.ensemble.min_members, cfg.ensemble.top_k)
    if cfg.save_ensemble and not isinstance(scoring, Ensemble):
        raise UserError(f"save_ensemble=true needs an ensemble, but ckpt={cfg.ckpt} is one model")
    subset = choose_subset(cfg.subset, scoring, Path(cfg.data.root), cfg.labelled)
    try:
        scored = score(cfg, out_dir, scoring, subset, device)
        return write_all(cfg, out_dir, scoring, subset, scored)
    finally:
        remove_scratch(out_dir)


def write_all(
    cfg: DictConfig, out_dir: Path, scoring: ScoringModel, subset: str, scored: Scored
) -> dict:
    """Levels, the five prediction files, the report, then metrics.json."""
    assessed = assess(scored, scoring, AssessSettings.from_eval_config(cfg))
    levels, counts = assessed.levels, assessed.counts
    metrics = {
        "checkpoint": str(scoring.path),
        "huggingface_model_id": scoring.model_id,
        "data_root": cfg.data.root,
        "subset": subset,
        "labelled": cfg.labelled,
        "aggregate": cfg.aggregate,
        "record_pattern": cfg.record_pattern,
        "temperature": scoring.temperature,
        **ensemble_block(scoring),
        **({"init_from": scoring.metadata["init_from"]} if "init_from" in scoring.metadata else {}),
        "counts": counts,
        "sequences_sha256": sequences_digest(scored.ids),
        **assessed.metrics,
        "estimated_viral_fraction": assessed.fractions,
        "calls": assessed.calls,
        "ood": assessed.ood_metrics,
    }
    if scored.labels is not None:
        log_summary(metrics)
    # metrics.json last: it marks a finished evaluation (an interrupted one leaves none, and its
    # directory is removed as holding no results)
    write_predictions(out_dir, scored, levels, assessed.columns)
    write_eval_report(out_dir, metrics, levels)
    evaluation_card(out_dir, metrics, scoring.metadata)
    if cfg.save_ensemble:
        save_ensemble(out_dir / ENSEMBLE_FILE, scoring)
        log.info("ensemble file: %s", out_dir / ENSEMBLE_FILE)
    write_json(out_dir / EVAL_RESULT, metrics)
    log.info("%d rows, %d chunks, %d records; results in %s", *list(counts.values())[:3], out_dir)
    return metrics


def write_predictions(
    out_dir: Path, scored: Scored, levels: dict[str, Level], extra: dict[str, dict]
) -> None:
    """The three prediction tables (with each unit's FDR and out-of-distribution columns,
    `extra`: Assessment.columns) and the prediction step's two drop-in files (their exact
    format: nothing added)."""
    s, chunks = scored, levels["chunks"]
    rows_path = out_dir / "predictions_rows.tsv"
    write_row_table(
        rows_path, s.ids, s.files, s.labels, s.prob_viral, {"viral": 0.5}, extra["rows"]
    )
    write_level_table(
        out_dir / "predictions_chunks.tsv", chunks, "chunk", "frames", extra["chunks"]
    )
    write_level_table(
        out_dir / "predictions_records.tsv", levels["records"], "record", "chunks", extra["records"]
    )
    write_prediction_results(out_dir / "prediction_results.txt", s.ids, s.prob_host, s.prob_viral)
    write_highest_score(out_dir / "prediction_results_highestscore.csv", chunks)
