"""Checking a composed config before any work: every unknown key and every value out of range or
not among its choices, all reported at once, each naming the key, what it must be and what it got.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from urllib.parse import urlparse

from omegaconf import DictConfig, OmegaConf

from virnucpro_trainer.config.schema import (
    AGGREGATES,
    LEVELS,
    OBJECTIVES,
    OPTIMIZABLE,
    TrainConfig,
)
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.stats.names import CI_METHODS, OOD_METHODS, THRESHOLD_METRICS

OPTIMIZERS = ("sgd", "adamw")
DEVICES = ("auto", "cuda", "cpu")
WANDB_MODES = ("online", "offline", "disabled")
STORAGE_DTYPES = ("float32", "float16")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
SPLIT_UNITS = ("file", "group")


def _one_of(choices: tuple) -> tuple:
    return (lambda v: v in choices, f"one of {choices}")


def _null_or(check, expected: str) -> tuple:
    return (lambda v: v is None or check(v), f"{expected} or null")


def _is_pattern_with_group(value: str) -> bool:
    try:
        return re.compile(value).groups >= 1
    except re.error:
        return False


# MLflow tracking URIs by scheme; a sqlite URI names a file (sqlite:///relative, sqlite:////absolute).
TRACKING_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "file", "databricks")
TRACKING_URIS = (
    "sqlite:///<file>, http(s)://<server>, postgresql://..., mysql://..., file:<folder> or "
    "databricks"
)


def _is_tracking_uri(value: str) -> bool:
    scheme = value.split(":", 1)[0].split("+", 1)[0] if ":" in value else ""
    if scheme == "sqlite":
        return value.startswith("sqlite:///") and len(value) > len("sqlite:///")
    if scheme in ("http", "https"):
        return bool(urlparse(value).netloc)
    return scheme in TRACKING_SCHEMES


# Each setting's allowed values: key -> (test of its value, what it must be).
# The settings of schema.RuntimeConfig, which both entry points have.
RUNTIME_CHECKS = {
    "eval_batch_size": (lambda v: v >= 1, ">= 1"),
    "device": _one_of(DEVICES),
    "num_workers": (lambda v: v >= 0, ">= 0"),
    "cpu_threads": _null_or(lambda v: v >= 1, ">= 1"),
    "gpu_memory_margin_gb": (lambda v: v >= 0, ">= 0"),
}

CHECKS = {
    **RUNTIME_CHECKS,
    "optimizer.lr": (lambda v: v > 0, "> 0"),
    "optimizer.momentum": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "optimizer.weight_decay": (lambda v: v >= 0, ">= 0"),
    "optimizer.name": _one_of(OPTIMIZERS),
    "optimizer.scheduler.step_size": (lambda v: v >= 1, ">= 1"),
    "optimizer.scheduler.gamma": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "split.test_fraction": (lambda v: 0 < v < 1, "in (0, 1)"),
    "split.val_fraction": (lambda v: 0 < v < 1, "in (0, 1)"),
    "split.unit": _one_of(SPLIT_UNITS),
    "split.record_pattern": (_is_pattern_with_group, "a regular expression with a group"),
    "model.hidden_dim": (lambda v: v >= 1, ">= 1"),
    "model.dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "model.num_class": (lambda v: v == 2, "2 (viral vs host)"),
    "data.dna_dim": (lambda v: v >= 0, ">= 0"),
    "data.protein_dim": (lambda v: v >= 0, ">= 0"),
    "data.file_glob": (bool, "a non-empty pattern"),
    "data.viral_dir_substring": (bool, "a non-empty string"),
    "data.synthetic.files_per_class": (lambda v: v >= 3, ">= 3"),
    "data.synthetic.rows_per_file": (lambda v: v >= 6, ">= 6"),
    "data.storage_dtype": _one_of(STORAGE_DTYPES),
    "data.memory_budget_gb": _null_or(lambda v: v > 0, "> 0"),
    "data.block_rows": _null_or(lambda v: v >= 1, ">= 1"),
    "epochs": (lambda v: v >= 1, ">= 1"),
    "batch_size": (lambda v: v >= 1, ">= 1"),
    "logger.dir": (lambda v: bool(v) and not Path(v).is_absolute(), "a folder name"),
    "logger.experiment_name": (lambda v: bool(v.strip()), "a non-empty name"),
    "logger.tracking_uri": _null_or(_is_tracking_uri, TRACKING_URIS),
    "logger.mode": _one_of(WANDB_MODES),
    "logger.entity": _null_or(bool, "a W&B team or user name"),
    "threshold_metric": _one_of(THRESHOLD_METRICS),
    "ci.n_boot": (lambda v: v >= 20, ">= 20 (1000 or more for publication)"),
    "ci.level": (lambda v: 0.5 <= v < 1, "in [0.5, 1)"),
    "ci.method": _one_of(CI_METHODS),
    "cutoffs.viral_fractions": (
        lambda v: len(v) > 0 and all(0 < x < 1 for x in v),
        "a non-empty list of fractions in (0, 1)",
    ),
    "cutoffs.target_fdr": (lambda v: 0 < v < 1, "in (0, 1)"),
    "calibration": _one_of(("none", "temperature")),
    "test_side.levels": (
        lambda v: "rows" in v and set(v) <= set(LEVELS),
        f"a list of {LEVELS} with rows in it",
    ),
    "test_side.aggregate": _one_of(AGGREGATES),
    "ood.method": _one_of((*OOD_METHODS, "none")),
    "ood.alpha": (lambda v: 0 < v < 1, "in (0, 1): the share of in-distribution units flagged"),
    "ood.max_rows": (lambda v: v >= 100, ">= 100"),
    "optimized_metric": (lambda v: v in OPTIMIZABLE, f"a validation metric, one of {OPTIMIZABLE}"),
    "optimized_metrics": _null_or(
        lambda v: len(v) >= 2 and len(set(v)) == len(v) and set(v) <= set(OBJECTIVES),
        f"a list of two or more different objectives of {OBJECTIVES}",
    ),
    "limit_batches": _null_or(lambda v: v >= 1, ">= 1"),
    "compile_mode": _one_of(COMPILE_MODES),
    "patience": (lambda v: v >= 1, ">= 1"),
    "min_delta": (lambda v: v >= 0, ">= 0"),
    "checkpoint_name": (lambda v: bool(v) and "/" not in v, "a plain file name"),
}


def failed_checks(cfg: DictConfig, checks: dict) -> list[str]:
    """`key must be <expected>, got <value>` for every key of `checks` whose value fails."""
    problems = []
    for key, (ok, expected) in checks.items():
        value = OmegaConf.select(cfg, key)
        if not ok(value):
            problems.append(f"{key} must be {expected}, got {value!r}")
    return problems


def _problems(cfg: DictConfig) -> list[str]:
    """Every range or choice violation in `cfg`, as `key must be <expected>, got <value>`."""
    problems = failed_checks(cfg, CHECKS)
    if cfg.data.dna_dim + cfg.data.protein_dim < 1:
        problems.append("data.dna_dim + data.protein_dim must be >= 1")
    if cfg.data.memory_budget_gb is not None and cfg.data.cache_dir is None:
        problems.append(
            "data.memory_budget_gb needs the feature store to read from: set data.cache_dir "
            "(not null), or drop data.memory_budget_gb"
        )
    if cfg.freeze not in ("none", "hidden"):
        problems.append(f"freeze must be none or hidden, got {cfg.freeze!r}")
    elif cfg.freeze == "hidden" and not cfg.init_from:
        problems.append("freeze=hidden keeps init_from's first layer: give init_from=<run or .pth>")
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
