"""Typed configuration: the schema every YAML file and command-line override is checked against.

Hydra merges `conf/` onto `TrainConfig` (registered as `train_schema`), so a misspelt key or a value
of the wrong type fails at composition. `validate` then checks ranges and choices before any work.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from virnucpro_trainer.errors import UserError
from virnucpro_trainer.metrics import SCALAR_METRICS, THRESHOLD_METRICS


@dataclass
class SyntheticConfig:
    """Settings of the bundled demo data set (used when `data.synthetic.enabled` is true)."""

    enabled: bool = False
    files_per_class: int = 6
    rows_per_file: int = 1200
    chunks_per_genome: int = 20
    separation: float = 4.0
    seed: int = 0


@dataclass
class DataConfig:
    root: str = "data/data_merge"
    file_glob: str = "*_merged.pt"
    viral_dir_substring: str = "viral"
    dna_dim: int = 768
    protein_dim: int = 1280
    protein_model: str = "fastesm650"
    protein_model_id: str = "Synthyra/FastESM2_650"
    cache_dir: str | None = "${data.root}/../feature_cache"
    storage_dtype: str = "float32"
    memory_budget_gb: float | None = None
    block_rows: int | None = None
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class SplitConfig:
    dir: str = "${data.root}/../test_set/${basename:${data.root}}"
    test_fraction: float = 0.1
    val_fraction: float = 0.1
    seed: int = 42
    unit: str = "file"
    record_pattern: str = r"^(.+?)_chunk_\d+"


@dataclass
class ModelConfig:
    hidden_dim: int = 512
    dropout: float = 0.5
    num_class: int = 2


@dataclass
class SchedulerConfig:
    step_size: int = 10
    gamma: float = 0.85


@dataclass
class OptimizerConfig:
    name: str = "sgd"
    lr: float = 2e-4
    momentum: float = 0.9
    weight_decay: float = 0.0
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)


@dataclass
class LoggerConfig:
    name: str = "none"
    dir: str = "tensorboard"


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    seed: int = 42
    epochs: int = 200
    batch_size: int = 32
    eval_batch_size: int = 4096
    device: str = "auto"
    num_workers: int = 4
    cpu_threads: int | None = None
    features_on_gpu: bool = True
    gpu_memory_margin_gb: float = 2.0
    bf16: bool = False
    compile: bool = False
    compile_mode: str = "default"
    patience: int = 7
    min_delta: float = 0.0
    checkpoint_name: str = "model_fastesm650.pth"
    threshold_metric: str = "f1"
    optimized_metric: str = "val_loss"
    limit_batches: int | None = None
    resume: str | None = None
    verbose: bool = False


# What a run returns to a sweeper (`optimized_metric`): a validation metric at the best epoch.
LOWER_IS_BETTER = ("loss", "brier")
OPTIMIZABLE = tuple(f"val_{m}" for m in ("loss", *SCALAR_METRICS))


def metric_direction(metric: str) -> str:
    """`minimize` or `maximize`: the Optuna direction for an `optimized_metric`."""
    return "minimize" if metric.removeprefix("val_") in LOWER_IS_BETTER else "maximize"


def data_set_name(root: str) -> str:
    """The last part of a data root (`x/data_v2` -> `data_v2`), which names its split folder."""
    return Path(root).resolve().name or "data"


def register_configs() -> None:
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)
    OmegaConf.register_new_resolver("metric_direction", metric_direction, replace=True)
    OmegaConf.register_new_resolver("basename", data_set_name, replace=True)


OPTIMIZERS = ("sgd", "adamw")
DEVICES = ("auto", "cuda", "cpu")
LOGGERS = ("none", "tensorboard")
STORAGE_DTYPES = ("float32", "float16")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
SPLIT_UNITS = ("file", "group")


def _problems(cfg: DictConfig) -> list[str]:
    """Every range or choice violation in `cfg`, as `key: expected, found` strings."""
    checks = [
        ("optimizer.lr", cfg.optimizer.lr > 0, "> 0"),
        ("optimizer.momentum", 0 <= cfg.optimizer.momentum < 1, "in [0, 1)"),
        ("optimizer.weight_decay", cfg.optimizer.weight_decay >= 0, ">= 0"),
        ("optimizer.name", cfg.optimizer.name in OPTIMIZERS, f"one of {OPTIMIZERS}"),
        ("optimizer.scheduler.step_size", cfg.optimizer.scheduler.step_size >= 1, ">= 1"),
        ("optimizer.scheduler.gamma", 0 < cfg.optimizer.scheduler.gamma <= 1, "in (0, 1]"),
        ("split.test_fraction", 0 < cfg.split.test_fraction < 1, "in (0, 1)"),
        ("split.val_fraction", 0 < cfg.split.val_fraction < 1, "in (0, 1)"),
        ("split.unit", cfg.split.unit in SPLIT_UNITS, f"one of {SPLIT_UNITS}"),
        ("model.hidden_dim", cfg.model.hidden_dim >= 1, ">= 1"),
        ("model.dropout", 0 <= cfg.model.dropout < 1, "in [0, 1)"),
        ("model.num_class", cfg.model.num_class == 2, "2 (viral vs host)"),
        ("data.dna_dim", cfg.data.dna_dim >= 0, ">= 0"),
        ("data.protein_dim", cfg.data.protein_dim >= 0, ">= 0"),
        ("data.file_glob", bool(cfg.data.file_glob), "a non-empty pattern"),
        ("data.viral_dir_substring", bool(cfg.data.viral_dir_substring), "a non-empty string"),
        ("data.synthetic.files_per_class", cfg.data.synthetic.files_per_class >= 3, ">= 3"),
        ("data.synthetic.rows_per_file", cfg.data.synthetic.rows_per_file >= 6, ">= 6"),
        ("epochs", cfg.epochs >= 1, ">= 1"),
        ("batch_size", cfg.batch_size >= 1, ">= 1"),
        ("eval_batch_size", cfg.eval_batch_size >= 1, ">= 1"),
        ("device", cfg.device in DEVICES, f"one of {DEVICES}"),
        ("num_workers", cfg.num_workers >= 0, ">= 0"),
        ("cpu_threads", cfg.cpu_threads is None or cfg.cpu_threads >= 1, ">= 1 or null"),
        ("logger.name", cfg.logger.name in LOGGERS, f"one of {LOGGERS}"),
        (
            "threshold_metric",
            cfg.threshold_metric in THRESHOLD_METRICS,
            f"one of {THRESHOLD_METRICS}",
        ),
        (
            "optimized_metric",
            cfg.optimized_metric in OPTIMIZABLE,
            f"a validation metric, one of {OPTIMIZABLE}",
        ),
        (
            "limit_batches",
            cfg.limit_batches is None or cfg.limit_batches >= 1,
            ">= 1 or null",
        ),
        ("gpu_memory_margin_gb", cfg.gpu_memory_margin_gb >= 0, ">= 0"),
        ("compile_mode", cfg.compile_mode in COMPILE_MODES, f"one of {COMPILE_MODES}"),
        (
            "data.storage_dtype",
            cfg.data.storage_dtype in STORAGE_DTYPES,
            f"one of {STORAGE_DTYPES}",
        ),
        (
            "data.memory_budget_gb",
            cfg.data.memory_budget_gb is None or cfg.data.memory_budget_gb > 0,
            "> 0 or null",
        ),
        (
            "data.block_rows",
            cfg.data.block_rows is None or cfg.data.block_rows >= 1,
            ">= 1 or null",
        ),
        ("patience", cfg.patience >= 1, ">= 1"),
        ("min_delta", cfg.min_delta >= 0, ">= 0"),
        (
            "checkpoint_name",
            bool(cfg.checkpoint_name) and "/" not in cfg.checkpoint_name,
            "a plain file name",
        ),
    ]
    try:
        pattern_ok = re.compile(cfg.split.record_pattern).groups >= 1
    except re.error:
        pattern_ok = False
    checks.append(("split.record_pattern", pattern_ok, "a regular expression with a group"))
    problems = [
        f"{key} must be {expected}, got {OmegaConf.select(cfg, key)!r}"
        for key, ok, expected in checks
        if not ok
    ]
    if cfg.data.dna_dim + cfg.data.protein_dim < 1:
        problems.append("data.dna_dim + data.protein_dim must be >= 1")
    if cfg.data.memory_budget_gb is not None and cfg.data.cache_dir is None:
        problems.append(
            "data.memory_budget_gb needs the feature store to read from: set data.cache_dir "
            "(not null), or drop data.memory_budget_gb"
        )
    if cfg.split.test_fraction + cfg.split.val_fraction >= 1:
        problems.append(
            "split.test_fraction + split.val_fraction must be < 1, got "
            f"{cfg.split.test_fraction} + {cfg.split.val_fraction}"
        )
    return problems


def unknown_keys(cfg: DictConfig, schema=None, prefix: str = "") -> list[str]:
    """Keys in `cfg` that the schema does not have, e.g. added with `+optimiser.lr=1`, with the
    nearest known key. Hydra's struct mode stops misspelt keys, but `+` adds them regardless."""
    schema = OmegaConf.structured(TrainConfig) if schema is None else schema
    problems = []
    for key in cfg:
        if key not in schema:
            close = difflib.get_close_matches(str(key), [str(k) for k in schema], n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            problems.append(f"{prefix}{key} is not a setting{hint}")
        elif OmegaConf.is_dict(schema[key]) and OmegaConf.is_dict(cfg[key]):
            problems += unknown_keys(cfg[key], schema[key], f"{prefix}{key}.")
    return problems


def validate(cfg: DictConfig) -> None:
    """Raise a UserError listing every unknown key and out-of-range value in `cfg`."""
    problems = unknown_keys(cfg) + _problems(cfg)
    if problems:
        raise UserError("invalid configuration:\n  " + "\n  ".join(problems))


def as_dict(cfg: DictConfig) -> dict:
    """The resolved config as plain types (for checkpoints: weights_only-loadable)."""
    return OmegaConf.to_container(cfg, resolve=True)


def resolve_paths(cfg: DictConfig) -> None:
    """Make data and split paths absolute against the launch directory (in place)."""
    cfg.data.root = str(Path(to_absolute_path(cfg.data.root)).resolve())
    cfg.split.dir = str(Path(to_absolute_path(cfg.split.dir)).resolve())
    if cfg.data.cache_dir is not None:
        cfg.data.cache_dir = str(Path(to_absolute_path(cfg.data.cache_dir)).resolve())
