"""Typed configuration of `evaluate.py`: the schema conf/evaluate.yaml is composed onto, and the
range and choice checks run before any work. Every default lives here, once; the `data` group is
the one training uses (config.DataConfig)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from virnucpro_trainer.config.checks import CHECKS as TRAIN_CHECKS
from virnucpro_trainer.config.checks import RUNTIME_CHECKS, failed_checks, unknown_keys
from virnucpro_trainer.config.schema import (
    AGGREGATES,
    CIConfig,
    DataConfig,
    OODConfig,
    RuntimeConfig,
    SplitConfig,
    register_configs,
)
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.stats.composition import PRESETS
from virnucpro_trainer.stats.conformal import DEFAULT_METHOD as CALLS_METHOD
from virnucpro_trainer.stats.conformal import METHODS as CALL_METHODS
from virnucpro_trainer.stats.conformal import MIN_BIN_HOSTS
from virnucpro_trainer.stats.names import OOD_METHODS

SUBSETS = ("all", "test")
EVAL_OOD_METHODS = ("auto", "none", *OOD_METHODS)


@dataclass
class CallsConfig:
    """Viral calls at a target false discovery rate: a unit is called viral when its q-value is
    at most `fdr` (docs/cutoffs-and-calibration.md). The presets (the `calls` group, registered
    from stats.composition.PRESETS): calls=relaxed | default | conservative; calls.fdr=0.02 for
    any other target."""

    preset: str = "default"
    fdr: float = PRESETS["default"]
    # conformal: p-values against the validation's host units of the level, then BH with the
    # sample's null share | lfdr: the running mean of the local FDRs (benchmarks/fdr_calls.py)
    method: str = CALLS_METHOD
    # conformal: validation host units per size bin (chunks per record, frames per chunk)
    min_bin_hosts: int = MIN_BIN_HOSTS


@dataclass
class FractionConfig:
    """The estimate of the sample's viral fraction at each level (docs/evaluate.md)."""

    # Fewer units than this at a level: the estimate is withheld (with the reason), not guessed.
    # Below 1,000 the interval spans most of [0, 1] (benchmarks/sample_fraction_sim.py --sizes).
    min_sequences: int = 1000
    n_boot: int = 1000  # joint resamples of the sample's and the validation's genomes
    level: float = 0.95
    seed: int = 0


@dataclass
class EvalOODConfig:
    """Which sequences are unlike the training data (docs/ood.md): the checkpoint's detector."""

    # auto (the checkpoint's own) | none (off) | a method its detector holds (combined: input,
    # hidden)
    method: str = "auto"
    alpha: float = OODConfig.alpha  # a unit is flagged when its p-value is at most this
    # true: flagged units are called `abstain` and left out of the sample's viral fraction
    abstain: bool = False


@dataclass
class EnsembleConfig:
    """An ensemble's members (docs/evaluate.md#ensembles)."""

    # fewer members than this (after failed or missing jobs are skipped) is refused
    min_members: int = 2
    # a search directory as ckpt: its best this many complete trials by the study's objective
    top_k: int = 5


@dataclass
class EvalConfig(RuntimeConfig):
    """What to score, with which checkpoint, and how to summarise it (docs/evaluate.md)."""

    data: DataConfig = field(default_factory=DataConfig)
    # A run directory (its best-model file, `checkpoint_name` from its .hydra/config.yaml) or a
    # checkpoint file (.pth) in the v2 contract. Required. An ensemble: a sweep or search
    # directory, a list ([outputs/a,outputs/b]) or an ensemble file (docs/evaluate.md#ensembles).
    ckpt: Any = None
    save_ensemble: bool = False  # an ensemble's members in one file: <evaluation dir>/ensemble.pth
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    # all | test (only that run's test side, from its split.json; needs ckpt=<run dir>, or an
    # ensemble whose members share a split). null: test when ckpt is a run directory (or such an
    # ensemble) trained on this data.root, else all; an ensemble without a common split of
    # labelled data must be given one.
    subset: str | None = None
    # true: the class comes from the directory, as in training (metrics at every level);
    # false: any folder of *_merged.pt files, nested or flat (predictions only).
    labelled: bool = True
    threshold: float | None = None  # also report metrics at this viral-probability cut-off
    # How a record (genome, contig) scores from its chunks: vote (the share of its chunks that
    # the prediction step calls viral) | mean | max of their scores (docs/evaluate.md, why vote)
    aggregate: str = "vote"
    record_pattern: str = SplitConfig.record_pattern  # the record of a chunk id (group 1)
    # Intervals of every level's metrics, resampling records (record_pattern); as in training
    ci: CIConfig = field(default_factory=CIConfig)
    # The sample's viral fraction, when you know it: the per-unit FDRs and calls use it at every
    # level instead of the estimate (null: estimate it; docs/cutoffs-and-calibration.md).
    viral_fraction: float | None = None
    fraction: FractionConfig = field(default_factory=FractionConfig)
    calls: CallsConfig = field(default_factory=CallsConfig)
    ood: EvalOODConfig = field(default_factory=EvalOODConfig)


def register_eval_configs() -> None:
    register_configs()  # the resolvers the data group's interpolations use
    store = ConfigStore.instance()
    store.store(name="eval_schema", node=EvalConfig)
    for name, fdr in PRESETS.items():  # the calls group: one copy of the presets, in stats/
        store.store(group="calls", name=name, node={"preset": name, "fdr": fdr})


CHECKS = {
    "ckpt": (
        lambda v: bool(v) and (isinstance(v, str) or all(isinstance(c, str) for c in v)),
        "a run directory, a .pth file, a sweep directory or a list of them "
        "(ckpt=outputs/<date>/<time>, ckpt=[outputs/a,outputs/b])",
    ),
    "subset": (lambda v: v is None or v in SUBSETS, f"one of {SUBSETS} or null"),
    "ensemble.min_members": (lambda v: v >= 1, ">= 1"),
    "ensemble.top_k": (lambda v: v >= 1, ">= 1"),
    "threshold": (lambda v: v is None or 0 <= v <= 1, "in [0, 1] or null"),
    "aggregate": (lambda v: v in AGGREGATES, f"one of {AGGREGATES}"),
    "record_pattern": TRAIN_CHECKS["split.record_pattern"],
    "ci.n_boot": TRAIN_CHECKS["ci.n_boot"],
    "ci.level": TRAIN_CHECKS["ci.level"],
    "ci.method": TRAIN_CHECKS["ci.method"],
    "viral_fraction": (lambda v: v is None or 0 <= v <= 1, "in [0, 1] or null"),
    "fraction.min_sequences": (lambda v: v >= 1, "at least 1"),
    "fraction.n_boot": TRAIN_CHECKS["ci.n_boot"],
    "fraction.level": TRAIN_CHECKS["ci.level"],
    "calls.fdr": (lambda v: 0 < v < 1, "in (0, 1): the target false discovery rate"),
    "calls.method": (lambda v: v in CALL_METHODS, f"one of {CALL_METHODS}"),
    "calls.min_bin_hosts": (lambda v: v >= 1, "at least 1: validation host units per size bin"),
    "ood.method": (lambda v: v in EVAL_OOD_METHODS, f"one of {EVAL_OOD_METHODS}"),
    "ood.alpha": TRAIN_CHECKS["ood.alpha"],
    **RUNTIME_CHECKS,
    # the data settings evaluate.py uses, checked as in training
    **{
        key: TRAIN_CHECKS[key]
        for key in (
            "data.storage_dtype",
            "data.file_glob",
            "data.viral_dir_substring",
            "data.memory_budget_gb",
        )
    },
}


def validate_eval(cfg: DictConfig) -> None:
    """Raise a UserError listing every unknown key and bad value in `cfg`."""
    problems = unknown_keys(cfg, OmegaConf.structured(EvalConfig)) + failed_checks(cfg, CHECKS)
    if cfg.subset == "test" and not cfg.labelled:
        problems.append("subset=test needs labelled=true (a run's test side is labelled data)")
    if problems:
        raise UserError("invalid configuration:\n  " + "\n  ".join(problems))
