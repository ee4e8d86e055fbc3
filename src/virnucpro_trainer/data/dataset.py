"""The data a run trains on, as its config says: the feature table (mapped from the feature store,
or read into RAM) and the batch source that gathers batches from it."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig

from virnucpro_trainer.config.schema import SyntheticConfig
from virnucpro_trainer.data.batches import BatchSource
from virnucpro_trainer.data.files import SourceFile, find_files
from virnucpro_trainer.data.merged import read_merged
from virnucpro_trainer.data.store import open_store
from virnucpro_trainer.data.synthetic import ensure_synthetic
from virnucpro_trainer.data.table import FeatureTable, build_table


def data_sources(cfg: DictConfig, width: int) -> list[SourceFile]:
    """The files under data.root (the demo data generated first, when the config asks for it)."""
    data_root = Path(cfg.data.root)
    if cfg.data.synthetic.enabled:
        ensure_synthetic(data_root, SyntheticConfig(**cfg.data.synthetic), width)
    return find_files(data_root, cfg.data.file_glob, cfg.data.viral_dir_substring)


def load_table(cfg: DictConfig, sources: list[SourceFile], width: int) -> FeatureTable:
    """The feature table of `sources`: from the feature store (built on first use), or read into
    RAM."""
    if cfg.data.cache_dir is not None:
        return open_store(
            sources,
            Path(cfg.data.root),
            Path(cfg.data.cache_dir),
            width,
            cfg.data.storage_dtype,
            build_workers(cfg, sources),
        )
    return read_into_ram(cfg, sources, width)


def build_workers(cfg: DictConfig, sources: list[SourceFile]) -> int:
    """Threads that build the store: `num_workers`, but under a memory budget only as many as
    half the budget holds files at once (each thread holds one whole input file while it works;
    the other half is for what the build holds besides, ids and buffers, about 0.1 GB)."""
    budget = cfg.data.memory_budget_gb
    if budget is None or not sources:
        return cfg.num_workers
    largest = max(s.path.stat().st_size for s in sources)
    return max(1, min(cfg.num_workers, int(budget * 2**30 / 2) // largest))


def read_into_ram(cfg: DictConfig, sources: list[SourceFile], width: int) -> FeatureTable:
    """Every file's rows in one matrix in RAM, stored as data.storage_dtype."""
    files = [read_merged(s, width) for s in sources]
    table = build_table(files, cfg.num_workers)
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
        path=table.features_file,
        on_gpu=cfg.features_on_gpu,
        gpu_margin_bytes=int(cfg.gpu_memory_margin_gb * 2**30),
        memory_budget_bytes=None if budget is None else int(budget * 2**30),
        block_rows=cfg.data.block_rows,
    )
