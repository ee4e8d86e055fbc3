"""One training run from a composed config: data, split, training, test evaluation, checkpoint."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from virnucpro_trainer import __version__
from virnucpro_trainer.checkpoint import (
    atomic_write_bytes,
    checkpoint_metadata,
    load_checkpoint,
    save_checkpoint,
    write_json,
)
from virnucpro_trainer.config import SyntheticConfig, resolve_paths, validate
from virnucpro_trainer.data.batches import BatchSource
from virnucpro_trainer.data.merged import find_files, read_merged
from virnucpro_trainer.data.split import SIDES, load_or_make_split
from virnucpro_trainer.data.store import open_store
from virnucpro_trainer.data.synthetic import ensure_synthetic
from virnucpro_trainer.data.table import FeatureTable, build_table
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.metrics import choose_threshold, classification_metrics
from virnucpro_trainer.model import VirNucProMLP
from virnucpro_trainer.report import write_report
from virnucpro_trainer.reporting import EpochReport
from virnucpro_trainer.resume import LAST, StopSignals
from virnucpro_trainer.run_dir import results_in
from virnucpro_trainer.runtime import seed_everything, select_device
from virnucpro_trainer.trainer import FitResult, build_optimizer, fit
from virnucpro_trainer.training import predict

log = logging.getLogger(__name__)


def run(cfg: DictConfig, run_dir: Path) -> float:
    """Train and evaluate as `cfg` says, writing into `run_dir`.

    Returns `cfg.optimized_metric` (a validation metric at the best epoch) for sweepers.
    """
    validate(cfg)
    resolve_paths(cfg)
    if cfg.cpu_threads is not None:
        torch.set_num_threads(cfg.cpu_threads)
    width = cfg.data.dna_dim + cfg.data.protein_dim
    device = select_device(cfg.device)
    seed_everything(cfg.seed, device)
    log.info("run directory: %s", run_dir)
    resume_from = None
    if cfg.resume:
        resume_from = load_checkpoint(run_dir / LAST)
        log.info("resuming %s", run_dir)
    else:
        refuse_used_directory(run_dir, cfg.checkpoint_name)
    log.info(
        "device %s (%d CPU threads), torch %s, virnucpro_trainer %s",
        device,
        torch.get_num_threads(),
        torch.__version__,
        __version__,
    )
    if cfg.limit_batches is not None:
        log.warning("limit_batches=%d: a quick check, not a real training run", cfg.limit_batches)

    # The model and optimizer come first: building an optimizer costs ~1 s of torch imports,
    # which would otherwise delay the first training step after the data is ready.
    model = VirNucProMLP(width, cfg.model.hidden_dim, cfg.model.num_class, cfg.model.dropout)
    model.to(device)
    optimizer, scheduler = build_optimizer(model, cfg.optimizer)
    compiled = torch.compile(model, mode=cfg.compile_mode) if cfg.compile else None

    table = load_table(cfg, width)
    log.info(
        "data: %d files, %d rows of width %d under %s",
        len(table.names),
        len(table.labels),
        width,
        cfg.data.root,
    )
    split = load_or_make_split(
        table.file_summary(),
        Path(cfg.data.root),
        Path(cfg.split.dir),
        cfg.split.unit,
        cfg.split.test_fraction,
        cfg.split.val_fraction,
        cfg.split.seed,
        records=lambda: table.records(cfg.split.record_pattern),
        record_pattern=cfg.split.record_pattern,
        ids=table.ids_digests,
    )
    shutil.copyfile(split.path, run_dir / "split.json")
    if split.records is None:
        rows = {side: table.rows_of(split.files[side]) for side in SIDES}
    else:
        rows = table.rows_of_records(split.records, cfg.split.record_pattern)
    source = make_batch_source(cfg, table, device)
    log.info("features: %s in %s", table.features.dtype, source.where)

    log.info(
        "model: %d parameters; training on %d rows, validating on %d",
        sum(p.numel() for p in model.parameters()),
        len(rows["train"]),
        len(rows["val"]),
    )
    with StopSignals() as stop:
        result = fit(
            model,
            optimizer,
            scheduler,
            source,
            rows["train"],
            rows["val"],
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            eval_batch_size=cfg.eval_batch_size,
            patience=cfg.patience,
            min_delta=cfg.min_delta,
            seed=cfg.seed,
            bf16=cfg.bf16,
            compiled=compiled,
            report=EpochReport(
                run_dir / "metrics.csv",
                run_dir / cfg.logger.dir if cfg.logger.name == "tensorboard" else None,
            ),
            config=OmegaConf.to_container(cfg, resolve=True),
            last_path=run_dir / LAST,
            resume_from=resume_from,
            stop=stop,
            limit_batches=cfg.limit_batches,
        )

    test, y, probs = evaluate(cfg, model, source, rows, run_dir, table)
    objective = float(result.best_val_metrics[cfg.optimized_metric.removeprefix("val_")])
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
    write_report(run_dir, result.history, y, probs, test, split.document, main_settings(cfg))

    save_best_model(cfg, run_dir / cfg.checkpoint_name, model, result, split.hash, test)
    log.info("saved the best model to %s", run_dir / cfg.checkpoint_name)
    log.info("%s at the best epoch: %.6f", cfg.optimized_metric, objective)
    return objective


def load_table(cfg: DictConfig, width: int) -> FeatureTable:
    """The feature table: from the feature store (built on first use), or read into RAM."""
    data_root = Path(cfg.data.root)
    if cfg.data.synthetic.enabled:
        ensure_synthetic(data_root, SyntheticConfig(**cfg.data.synthetic), width)
    sources = find_files(data_root, cfg.data.file_glob, cfg.data.viral_dir_substring)
    if cfg.data.cache_dir is not None:
        return open_store(
            sources,
            data_root,
            Path(cfg.data.cache_dir),
            width,
            cfg.data.storage_dtype,
            cfg.num_workers,
        )
    table = build_table([read_merged(s, width) for s in sources], cfg.num_workers)
    if cfg.data.storage_dtype == "float16":
        table.features = table.features.half()
    return table


def make_batch_source(cfg: DictConfig, table: FeatureTable, device: torch.device) -> BatchSource:
    budget = cfg.data.memory_budget_gb
    return BatchSource(
        table.features,
        table.labels,
        device,
        mapping=table.mapping,
        on_gpu=cfg.features_on_gpu,
        gpu_margin_bytes=int(cfg.gpu_memory_margin_gb * 2**30),
        memory_budget_bytes=None if budget is None else int(budget * 2**30),
        block_rows=cfg.data.block_rows,
    )


def save_best_model(
    cfg: DictConfig,
    path: Path,
    model: torch.nn.Module,
    result: FitResult,
    split_hash: str,
    test: dict,
) -> None:
    """The checkpoint the prediction step loads (see checkpoint.py and README.md)."""
    metadata = checkpoint_metadata(
        cfg.data.dna_dim,
        cfg.data.protein_dim,
        cfg.model.hidden_dim,
        cfg.model.num_class,
        cfg.data.protein_model,
        cfg.data.protein_model_id,
    )
    save_checkpoint(
        path,
        epoch=result.best_epoch,
        model_state=model.state_dict(),
        optimizer_state=result.best_optimizer_state,
        best_loss=result.best_loss,
        metadata=metadata,
        config=OmegaConf.to_container(cfg, resolve=True),
        seed=cfg.seed,
        split_hash=split_hash,
        val_metrics=result.best_val_metrics,
        test_metrics=test,
        trainer_version=__version__,
    )


def refuse_used_directory(run_dir: Path, checkpoint_name: str) -> None:
    """A new run never writes over another run's results. Single runs are checked before Hydra
    writes anything (run_dir.py); this catches a multirun job pointed at a used directory."""
    used = results_in(run_dir, checkpoint_name)
    if used:
        raise UserError(
            f"{run_dir} already holds another run's results ({', '.join(used)}); "
            f"choose another hydra.sweep.dir"
        )


def evaluate(
    cfg: DictConfig,
    model: torch.nn.Module,
    source: BatchSource,
    rows: dict,
    run_dir: Path,
    table: FeatureTable,
) -> dict:
    """Test metrics at 0.5 and at a threshold chosen on the validation files (never on test).

    Also writes test_predictions.tsv: one row per test sequence.
    """
    val_probs, val_y, _ = predict(model, source, rows["val"], cfg.eval_batch_size, bf16=cfg.bf16)
    threshold = choose_threshold(val_y, val_probs, cfg.threshold_metric)
    probs, y, loss = predict(model, source, rows["test"], cfg.eval_batch_size, bf16=cfg.bf16)
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
        "maximising": cfg.threshold_metric,
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
    write_predictions(run_dir / "test_predictions.tsv", table, rows["test"], y, probs, threshold)
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
    atomic_write_bytes(path, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))


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
