"""The data a run works on, as its `data` settings say: the files, the feature table (mapped from
the feature store, or read into RAM) and the batch source that gathers batches from it. Each
function takes the `data` config node and, separately, the runtime settings it needs."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig

from virnucpro_trainer.config.schema import SyntheticConfig
from virnucpro_trainer.data.batches import BatchSource, Placement
from virnucpro_trainer.data.files import SourceFile, find_files
from virnucpro_trainer.data.merged import read_merged
from virnucpro_trainer.data.store import open_store
from virnucpro_trainer.data.synthetic import ensure_synthetic
from virnucpro_trainer.data.table import FeatureTable, build_table


def data_sources(data: DictConfig, width: int, for_training: bool = True) -> list[SourceFile]:
    """The files under data.root (the demo data generated first, when `data` asks for it); an
    evaluation (not `for_training`) takes data of one class too."""
    data_root = Path(data.root)
    if data.synthetic.enabled:
        ensure_synthetic(data_root, SyntheticConfig(**data.synthetic), width)
    script = "train.py" if for_training else "evaluate.py"
    return find_files(data_root, data.file_glob, data.viral_dir_substring, script, for_training)


def load_table(
    data: DictConfig, sources: list[SourceFile], width: int, num_workers: int
) -> FeatureTable:
    """The feature table of `sources`: from the feature store (built on first use, by up to
    `num_workers` threads), or read into RAM."""
    if data.cache_dir is not None:
        return open_store(
            sources,
            Path(data.root),
            Path(data.cache_dir),
            width,
            data.storage_dtype,
            build_workers(data.memory_budget_gb, num_workers, sources),
        )
    return read_into_ram(sources, width, data.storage_dtype, num_workers)


def build_workers(budget_gb: float | None, num_workers: int, sources: list[SourceFile]) -> int:
    """Threads that build the store: `num_workers`, but under a memory budget only as many as
    half the budget holds files at once (each thread holds one whole input file while it works;
    the other half is for what the build holds besides, ids and buffers, about 0.1 GB)."""
    if budget_gb is None or not sources:
        return num_workers
    largest = max(s.path.stat().st_size for s in sources)
    return max(1, min(num_workers, int(budget_gb * 2**30 / 2) // largest))


def read_into_ram(
    sources: list[SourceFile], width: int, storage_dtype: str, num_workers: int
) -> FeatureTable:
    """Every file's rows in one matrix in RAM, stored as `storage_dtype`."""
    files = [read_merged(s, width) for s in sources]
    table = build_table(files, num_workers)
    if storage_dtype == "float16":
        table.features = table.features.half()
    return table


def make_batch_source(
    data: DictConfig,
    table: FeatureTable,
    device: torch.device,
    features_on_gpu: bool,
    gpu_memory_margin_gb: float,
) -> BatchSource:
    """Batches of `table` on `device`, within data.memory_budget_gb and data.block_rows."""
    budget = data.memory_budget_gb
    placement = Placement(
        on_gpu=features_on_gpu,
        gpu_margin_bytes=int(gpu_memory_margin_gb * 2**30),
        memory_budget_bytes=None if budget is None else int(budget * 2**30),
        block_rows=data.block_rows,
    )
    return BatchSource(
        table.features,
        table.labels,
        device,
        placement,
        mapping=table.mapping,
        path=table.features_file,
    )
