"""What tests share, imported as `from helpers import ...` (pyproject.toml puts tests/ on sys.path):

- runs: the project's paths, the tiny run (TINY), and train.py or evaluate.py run in this process
  on a composed config (`train_in_process`, `evaluate_in_process`)
- processes: train.py as a real process (`run_train`, `start_train`), for `e2e` tests only
- results: a run's directories and results
- merged: small writers of merged embedding files
- models: state-dict copies and comparisons, the prediction step's own MLP
"""

from .merged import (
    HOST_DIR,
    MISSING,
    VIRAL_DIR,
    genomes_across_files,
    make_dataset,
    read_all,
    write_merged,
)
from .models import PredictionStepMLP, clone_state, states_equal, tensors
from .processes import SEARCH_APPS, run_search_app, run_train, start_train, wait_for
from .results import epochs_saved, results, run_dirs
from .runs import (
    HYDRA_FILES,
    ROOT,
    RUN_FILES,
    TINY,
    TRAIN_PY,
    compose_config,
    compose_train,
    evaluate_in_process,
    group_options,
    train_in_process,
    working_directory,
)

__all__ = [
    "SEARCH_APPS",
    "run_search_app",
    "HOST_DIR",
    "HYDRA_FILES",
    "MISSING",
    "ROOT",
    "RUN_FILES",
    "TINY",
    "TRAIN_PY",
    "VIRAL_DIR",
    "PredictionStepMLP",
    "clone_state",
    "compose_config",
    "compose_train",
    "epochs_saved",
    "evaluate_in_process",
    "group_options",
    "genomes_across_files",
    "make_dataset",
    "read_all",
    "results",
    "run_dirs",
    "run_train",
    "start_train",
    "states_equal",
    "tensors",
    "train_in_process",
    "wait_for",
    "working_directory",
    "write_merged",
]
