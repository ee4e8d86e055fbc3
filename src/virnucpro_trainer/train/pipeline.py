"""One training run from a composed config: prepare -> data -> split -> model -> fit -> evaluate
-> outputs, each a call below."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import DictConfig

from virnucpro_trainer import __version__
from virnucpro_trainer.atomic import write_json
from virnucpro_trainer.checkpoint import (
    checkpoint_metadata,
    load_state,
    save_checkpoint,
    save_state,
)
from virnucpro_trainer.config.checks import validate
from virnucpro_trainer.config.schema import PARAMETERS, as_dict, resolve_paths
from virnucpro_trainer.data.dataset import data_sources, load_table, make_batch_source
from virnucpro_trainer.data.split import (
    SIDES,
    Split,
    SplitSettings,
    load_or_make_split,
    run_split,
)
from virnucpro_trainer.data.table import FeatureTable
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.model import VirNucProMLP, build_optimizer
from virnucpro_trainer.reports.model_card import run_card
from virnucpro_trainer.reports.training import main_settings, write_report
from virnucpro_trainer.run_dir import LAST, results_in
from virnucpro_trainer.runtime import describe, seed_everything, select_device
from virnucpro_trainer.trackers import Trackers, start_trackers
from virnucpro_trainer.train.epoch_log import EpochLog
from virnucpro_trainer.train.held_out import HeldOut, HeldOutSettings, score_held_out
from virnucpro_trainer.train.init_from import describe as describe_lineage
from virnucpro_trainer.train.init_from import initial_weights
from virnucpro_trainer.train.loop import EpochEnd, FitResult, FitSettings, Training, fit
from virnucpro_trainer.train.signals import StopSignals

log = logging.getLogger(__name__)


def run(
    cfg: DictConfig, run_dir: Path, on_epoch: Callable[[EpochEnd], None] | None = None
) -> float | tuple[float, ...]:
    """Train and evaluate as `cfg` says, writing into `run_dir` (and to the trackers that
    cfg.logger chooses: checked before any data is read, closed with the run's outcome).
    `on_epoch` is called after each epoch (train/loop.py's fit; a search trial's reporter).

    Returns `cfg.optimized_metric` (a validation metric at the best epoch) for sweepers; with
    `cfg.optimized_metrics`, a tuple of their values (a multi-objective search's).
    """
    device = prepare(cfg, run_dir)
    with start_trackers(cfg, run_dir) as trackers:
        objective = train_and_evaluate(cfg, run_dir, device, trackers, on_epoch)
        trackers.log_results(run_dir, cfg.checkpoint_name, cfg.logger.log_model)
        return objective


def train_and_evaluate(
    cfg: DictConfig,
    run_dir: Path,
    device: torch.device,
    trackers: Trackers,
    on_epoch: Callable[[EpochEnd], None] | None = None,
) -> float | tuple[float, ...]:
    """data -> split -> model -> fit -> evaluate -> outputs; the sweepers' objective(s)."""
    resume_from = load_state(run_dir / LAST) if cfg.resume else None
    # The model and optimizer come first: building an optimizer costs ~1 s of torch imports,
    # which would otherwise delay the first training step after the data is ready.
    width = cfg.data.dna_dim + cfg.data.protein_dim
    model = VirNucProMLP(width, cfg.model.hidden_dim, cfg.model.num_class, cfg.model.dropout)
    lineage = initial_weights(cfg, model, width)  # init_from=, checked before any data is read
    model.to(device)
    optimizer, scheduler = build_optimizer(model, cfg.optimizer)
    compiled = torch.compile(model, mode=cfg.compile_mode) if cfg.compile else None

    table = load_table(cfg.data, data_sources(cfg.data, width), width, cfg.num_workers)
    log.info(
        "data: %d files, %d rows of width %d under %s",
        len(table.names),
        len(table.labels),
        width,
        cfg.data.root,
    )
    split, rows = split_rows(cfg, table, run_dir)
    source = make_batch_source(
        cfg.data, table, device, cfg.features_on_gpu, cfg.gpu_memory_margin_gb
    )
    log.info("features: %s in %s", table.features.dtype, source.where)
    log.info(
        "model: %d parameters; training on %d rows, validating on %d",
        sum(p.numel() for p in model.parameters()),
        len(rows["train"]),
        len(rows["val"]),
    )
    config = as_dict(cfg)
    with StopSignals() as stop:
        result = fit(
            Training(model, optimizer, scheduler, source, compiled),
            rows,
            fit_settings(cfg),
            EpochLog(run_dir / "metrics.csv", trackers),
            save_state=lambda state: save_state(run_dir / LAST, {**state, "config": config}),
            resume_from=resume_from,
            stop=stop,
            on_epoch=on_epoch,
        )
    scores = score_held_out(
        model,
        source,
        rows,
        table,
        run_dir / "test_predictions.tsv",
        HeldOutSettings.from_config(cfg),
        run_dir / cfg.checkpoint_name,
    )
    if lineage is not None:
        scores.metrics["init_from"] = lineage
    return write_outputs(cfg, run_dir, model, result, split, scores)


def prepare(cfg: DictConfig, run_dir: Path) -> torch.device:
    """Check the config, make paths absolute, set threads and seeds; the device to use."""
    validate(cfg)
    resolve_paths(cfg)
    if cfg.cpu_threads is not None:
        torch.set_num_threads(cfg.cpu_threads)
    device = select_device(cfg.device)
    seed_everything(cfg.seed, device)
    log.info("run directory: %s", run_dir)
    if cfg.resume:
        log.info("resuming %s", run_dir)
    else:
        refuse_used_directory(run_dir, cfg.checkpoint_name)
    log.info("device %s, virnucpro_trainer %s", describe(device), __version__)
    if cfg.limit_batches is not None:
        log.warning("limit_batches=%d: a quick check, not a real training run", cfg.limit_batches)
    return device


def split_rows(
    cfg: DictConfig, table: FeatureTable, run_dir: Path
) -> tuple[Split, dict[str, torch.Tensor]]:
    """The split for this data (made on first use), copied into the run; the rows of each side.
    A resumed run keeps its own split, checked against the data found (never a new split)."""
    settings = SplitSettings.from_config(cfg.split)
    files, root, ids = table.file_summary(), Path(cfg.data.root), table.ids_digests
    if cfg.resume:
        split = run_split(run_dir, settings, files, root, ids)
    else:
        records = lambda: table.records(settings.record_pattern)  # noqa: E731
        split = load_or_make_split(files, root, Path(cfg.split.dir), settings, records, ids)
        shutil.copyfile(split.path, run_dir / "split.json")
    if split.records is None:
        return split, {side: table.rows_of(split.files[side]) for side in SIDES}
    return split, table.rows_of_records(split.records, cfg.split.record_pattern)


def fit_settings(cfg: DictConfig) -> FitSettings:
    """The loop's settings: top-level keys of the same names."""
    return FitSettings(**{f.name: cfg[f.name] for f in dataclasses.fields(FitSettings)})


def write_outputs(
    cfg: DictConfig,
    run_dir: Path,
    model: torch.nn.Module,
    result: FitResult,
    split: Split,
    scores: HeldOut,
) -> float | tuple[float, ...]:
    """test_metrics.json, the report and the best model; returns the sweepers' objective (a
    tuple of them with `cfg.optimized_metrics`)."""
    test = scores.metrics
    objective = float(result.best_val_metrics[cfg.optimized_metric.removeprefix("val_")])
    values = objective_values(cfg.optimized_metrics or [], model, result)
    if values:
        test["optimized_metrics"] = [{"name": k, "value": v} for k, v in values.items()]
    test.update(
        best_epoch=result.best_epoch,
        best_val_loss=result.best_loss,
        epochs_run=result.epochs_run,
        stopped_early=result.stopped_early,
        split_hash=split.hash,
        seed=cfg.seed,
        optimized_metric={"name": cfg.optimized_metric, "value": objective},
    )
    write_json(run_dir / "test_metrics.json", test)
    settings = main_settings(cfg)
    if "init_from" in test:
        settings["initial weights"] = describe_lineage(test["init_from"])
    write_report(
        run_dir,
        result.history,
        test,
        (scores.y, scores.probs, scores.raw_probs),
        split.document,
        settings,
    )
    metadata = save_best_model(
        cfg, run_dir / cfg.checkpoint_name, model, result, split.hash, scores
    )
    run_card(run_dir, metadata)
    log.info("saved the best model to %s", run_dir / cfg.checkpoint_name)
    log.info("%s at the best epoch: %.6f", cfg.optimized_metric, objective)
    if values:
        log.info("objectives: %s", ", ".join(f"{k} {v:.6g}" for k, v in values.items()))
        return tuple(values.values())
    return objective


def objective_values(names: list[str], model: torch.nn.Module, result: FitResult) -> dict:
    """Each of a multi-objective search's `optimized_metrics`: a validation metric at the best
    epoch, or `parameters`, the model's trainable parameter count (it grows with the hidden
    width)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        name: float(trainable)
        if name == PARAMETERS
        else float(result.best_val_metrics[name.removeprefix("val_")])
        for name in names
    }


def save_best_model(
    cfg: DictConfig,
    path: Path,
    model: torch.nn.Module,
    result: FitResult,
    split_hash: str,
    scores: HeldOut,
) -> dict:
    """The checkpoint the prediction step loads (see checkpoint.py and docs/checkpoint.md); its
    metadata."""
    test = scores.metrics
    metadata = checkpoint_metadata(
        cfg.data.dna_dim,
        cfg.data.protein_dim,
        cfg.model.hidden_dim,
        cfg.model.num_class,
        cfg.data.protein_model,
        cfg.data.protein_model_id,
    )
    if "init_from" in test:
        metadata["init_from"] = test["init_from"]
    save_checkpoint(
        path,
        epoch=result.best_epoch,
        model_state=model.state_dict(),
        optimizer_state=result.best_optimizer_state,
        best_loss=result.best_loss,
        metadata=metadata,
        config=as_dict(cfg),
        seed=cfg.seed,
        split_hash=split_hash,
        val_metrics=result.best_val_metrics,
        test_metrics=test,
        # The cut-off chosen on validation, for evaluate.py and other readers (plain extra key).
        decision_threshold={
            k: test["chosen_threshold"][k] for k in ("threshold", "chosen_on", "maximising")
        },
        # Thresholds for expected viral fractions and the temperature, if fitted (plain types).
        cutoffs=test["cutoffs"],
        temperature=test.get("calibration", {}).get("temperature"),
        # For evaluate.py's estimate of a sample's viral fraction (issue 24).
        validation_scores=scores.validation,
        # Which sequences are unlike the training data (issue 34; train/ood_fit.py).
        ood=scores.ood,
        trainer_version=__version__,
    )
    return metadata


def refuse_used_directory(run_dir: Path, checkpoint_name: str) -> None:
    """A new run never writes over another run's results. Single runs are checked before Hydra
    writes anything (run_dir.py); this catches a multirun job pointed at a used directory."""
    used = results_in(run_dir, checkpoint_name)
    if used:
        raise UserError(
            f"{run_dir} already holds earlier results ({', '.join(used)}); "
            f"choose another hydra.sweep.dir"
        )
