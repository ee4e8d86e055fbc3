"""Typed configuration: the schema every YAML file and command-line override is checked against.

Hydra merges `conf/` onto `TrainConfig` (registered as `train_schema`), so a misspelt key or a value
of the wrong type fails at composition; config/checks.py's validate then checks ranges and choices
before any work. Every default lives here, once: the YAML files only choose and change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from virnucpro_trainer.stats.names import SCALAR_METRICS


@dataclass
class SyntheticConfig:
    """The bundled demo data: generated once (deterministically) under data.root, then reused."""

    enabled: bool = False
    files_per_class: int = 6
    rows_per_file: int = 1200
    chunks_per_genome: int = 20
    separation: float = 4.0  # distance between the classes along one hidden direction
    seed: int = 0


@dataclass
class DataConfig:
    """Merged DNABERT-S + protein-LM embeddings: <root>/<class dir>/<file_glob>."""

    root: str = "data/data_merge"
    file_glob: str = "*_merged.pt"
    viral_dir_substring: str = "viral"  # a directory whose name contains this holds viral files
    dna_dim: int = 768
    protein_dim: int = 1280  # 2560 for the original ESM2-3B embeddings
    protein_model: str = "fastesm650"  # written into the checkpoint, with the next
    protein_model_id: str = "Synthyra/FastESM2_650"
    # The feature store: all files packed once into one memory-mapped matrix, reused by later
    # runs; null: read the .pt files into RAM on every run.
    cache_dir: str | None = "${data.root}/../feature_cache"
    storage_dtype: str = "float32"  # float16 halves disk and memory; the math stays float32
    memory_budget_gb: float | None = None  # a larger store is read keeping RSS under it + 0.3 GiB
    block_rows: int | None = None  # shuffle blocks of this many rows (sequential reads)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class SplitConfig:
    """The train/validation/test split, stratified by class, made once and reused by every run;
    each data set gets its own folder, named after data.root's last part."""

    dir: str = "${data.root}/../test_set/${basename:${data.root}}"
    test_fraction: float = 0.1
    val_fraction: float = 0.1  # taken from what the test side leaves
    seed: int = 42  # independent of the training seed
    unit: str = "file"  # file | group (every fragment of a source record on one side)
    # The source record (genome) of a fragment id, `NC_001416.1_chunk_3F2` -> `NC_001416.1` (the
    # id up to its last _chunk_<n>; data/records.py): the unit of a group split, of the leakage
    # report, of the intervals and of evaluate.py's record level.
    record_pattern: str = r"^(.+)_chunk_\d+"


@dataclass
class ModelConfig:
    """The VirNucPro MLP: Linear(input, hidden) -> BatchNorm -> ReLU -> Dropout -> Linear(hidden,
    2)."""

    hidden_dim: int = 512
    dropout: float = 0.5
    num_class: int = 2


@dataclass
class SchedulerConfig:
    """StepLR, stepped once per epoch."""

    step_size: int = 10
    gamma: float = 0.85


@dataclass
class OptimizerConfig:
    name: str = "sgd"  # sgd | adamw (conf/optimizer/adamw.yaml: its own lr and weight decay)
    lr: float = 2e-4
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)


@dataclass
class LoggerConfig:
    """Where a run's config, per-epoch metrics, final metrics and report go besides its own files
    (docs/trackers.md). Each option of the logger group switches one tracker on; several at once:
    logger=[tensorboard,mlflow]."""

    tensorboard: bool = False
    mlflow: bool = False
    wandb: bool = False
    dir: str = "tensorboard"  # TensorBoard: event files in this folder of the run directory
    experiment_name: str = "virnucpro"  # the MLflow experiment and the W&B project
    # MLflow: sqlite:///<file>, http(s)://<server>, postgresql://..., file:<dir>; null: the SQLite
    # database outputs/mlflow.db under the launch directory.
    tracking_uri: str | None = None
    mode: str = "online"  # W&B: online | offline (no account or network; wandb sync later)
    entity: str | None = None  # W&B team or user (null: the account's default)
    log_model: bool = False  # also send the best model (checkpoint_name) as an artifact


@dataclass
class CIConfig:
    """Confidence intervals of test metrics: a cluster bootstrap over source records
    (split.record_pattern); fragments of one genome are not independent (docs/statistics.md)."""

    enabled: bool = True
    n_boot: int = 1000  # resamples
    level: float = 0.95
    seed: int = 0  # the resampling seed (intervals are exactly reproducible)
    method: str = "studentized"  # studentized (bootstrap-t) | bca | percentile: docs/statistics.md


@dataclass
class CutoffConfig:
    """Thresholds for an expected viral fraction, chosen on validation so that the expected false
    discovery rate stays at most target_fdr (docs/cutoffs-and-calibration.md)."""

    viral_fractions: list[float] = field(default_factory=lambda: [0.01, 0.02, 0.05, 0.1, 0.25, 0.5])
    target_fdr: float = 0.05


@dataclass
class OODConfig:
    """Out-of-distribution detection (docs/ood.md): a detector fitted on the training rows when
    training ends, carried by the checkpoint, gives every scored sequence a p-value."""

    # combined (input and hidden-layer Mahalanobis, Bonferroni) | input | hidden | knn | energy
    # | none (no detector)
    method: str = "combined"
    alpha: float = 0.01  # a unit is flagged when its p-value is at most this
    max_rows: int = 200_000  # training rows (a seeded sample) the detector is fitted on


# The levels predictions are reported at (levels.py) and how a record scores from its chunks.
LEVELS = ("rows", "chunks", "records")
AGGREGATES = ("mean", "max", "vote")


@dataclass
class TestSideConfig:
    """What training reports of its test side besides the rows (test_metrics.json), computed by
    the code evaluate.py runs (docs/outputs-and-metrics.md#the-test-side)."""

    levels: list[str] = field(default_factory=lambda: list(LEVELS))  # rows always
    aggregate: str = "vote"  # a record's score from its chunks: vote | mean | max (evaluate.py's)
    # The test side's estimated viral fraction, each row's FDR and the calls (calls.fdr 0.1), as
    # evaluate.py reports them for a sample: off, as the test side's fraction is known
    composition: bool = False


@dataclass
class RuntimeConfig:
    """Where and how fast the work runs, never what it computes: the top-level settings that
    train.py and evaluate.py share (each schema below extends this one)."""

    eval_batch_size: int = 4096  # rows per scoring batch (validation, test, evaluate.py)
    device: str = "auto"  # auto | cuda | cpu
    num_workers: int = 4  # threads reading data files at start-up (0: one at a time)
    cpu_threads: int | None = None  # torch CPU threads (null: torch's, or joblib's share)
    # GPU options. Features go to GPU memory once when they fit (keeping the margin free);
    # otherwise batches are gathered on the host and copied through pinned memory.
    features_on_gpu: bool = True
    gpu_memory_margin_gb: float = 2.0
    bf16: bool = False  # bf16 autocast (off: results stay comparable with the old trainer)
    verbose: bool = False  # show the traceback behind an error message


@dataclass
class TrialConfig:
    """Which Optuna trial a run is: set by the search sweeper on each trial it launches
    (hparams_search=optuna, docs/sweeps.md), null in any other run. The run reports its
    validation metric to the trial every epoch and stops when the pruner says so."""

    storage: str | None = None  # the study's storage: a journal file or a database URL
    study_name: str | None = None
    number: int | None = None  # the trial's number in the study (also its directory's name)
    pruner: Any = None  # the pruner's _target_ and arguments


@dataclass
class TrainConfig(RuntimeConfig):
    """Every setting and its default: the one place defaults are written. The YAML files under
    conf/ choose group options and hold only what an option changes."""

    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    seed: int = 42  # training seed (initialisation, shuffling); the split has its own
    epochs: int = 200
    batch_size: int = 32
    compile: bool = False  # torch.compile the model
    # default | reduce-overhead (CUDA graphs) | max-autotune | max-autotune-no-cudagraphs
    compile_mode: str = "default"
    patience: int = 7  # early stopping: epochs without a better validation loss
    min_delta: float = 0.0
    checkpoint_name: str = "model_fastesm650.pth"
    threshold_metric: str = "f1"  # maximised on validation: f1 | mcc | balanced_accuracy
    ci: CIConfig = field(default_factory=CIConfig)
    cutoffs: CutoffConfig = field(default_factory=CutoffConfig)
    # none | temperature: one scalar fitted on validation, applied to every reported probability
    calibration: str = "none"
    test_side: TestSideConfig = field(default_factory=TestSideConfig)
    ood: OODConfig = field(default_factory=OODConfig)  # fitted at the end of every run
    optimized_metric: str = "val_loss"  # returned to a sweeper: a validation metric
    # A multi-objective search's objectives (hparams_search=optuna_pareto): validation metrics
    # and `parameters` (the model's trainable parameter count), returned as a tuple; null: one
    optimized_metrics: list[str] | None = None
    limit_batches: int | None = None  # at most this many batches per epoch (debug=fast)
    resume: str | None = None  # a run directory to continue (docs/troubleshooting.md)
    # Fine-tuning: a new run that starts from these weights (a run directory or a .pth file in
    # the v2 contract), with its own split, optimizer and schedule (docs/checkpoint.md)
    init_from: str | None = None
    freeze: str = "none"  # none | hidden: keep init_from's first layer as it came
    trial: TrialConfig = field(default_factory=TrialConfig)  # set by the search sweeper only


# What a run returns to a sweeper (`optimized_metric`): a validation metric at the best epoch.
LOWER_IS_BETTER = ("loss", "brier")
OPTIMIZABLE = tuple(f"val_{m}" for m in ("loss", *SCALAR_METRICS))
# One of `optimized_metrics` besides those: the model's trainable parameters (fewer is better).
PARAMETERS = "parameters"
OBJECTIVES = (*OPTIMIZABLE, PARAMETERS)


def metric_direction(metric: str) -> str:
    """`minimize` or `maximize`: the Optuna direction for an `optimized_metric` (or one of
    `optimized_metrics`, `parameters` among them)."""
    lower = (*LOWER_IS_BETTER, PARAMETERS)
    return "minimize" if metric.removeprefix("val_") in lower else "maximize"


def data_set_name(root: str) -> str:
    """The last part of a data root (`x/data_v2` -> `data_v2`), which names its split folder."""
    return Path(root).resolve().name or "data"


def register_configs() -> None:
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)
    OmegaConf.register_new_resolver("metric_direction", metric_direction, replace=True)
    OmegaConf.register_new_resolver("basename", data_set_name, replace=True)


def as_dict(cfg: DictConfig) -> dict:
    """The resolved config as plain types (for checkpoints: weights_only-loadable)."""
    return OmegaConf.to_container(cfg, resolve=True)


def resolve_paths(cfg: DictConfig) -> None:
    """Make data and split paths absolute against the launch directory (in place)."""
    cfg.data.root = str(Path(to_absolute_path(cfg.data.root)).resolve())
    cfg.split.dir = str(Path(to_absolute_path(cfg.split.dir)).resolve())
    if cfg.data.cache_dir is not None:
        cfg.data.cache_dir = str(Path(to_absolute_path(cfg.data.cache_dir)).resolve())
    if cfg.init_from:
        cfg.init_from = str(Path(to_absolute_path(cfg.init_from)).resolve())


def is_search(sweeper: DictConfig) -> bool:
    """Whether a sweep is a hyperparameter search (the project's Optuna sweeper), not a grid."""
    return "optuna" in str(sweeper.get("_target_", ""))
