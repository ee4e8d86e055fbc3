"""train.py and evaluate.py in this process: the composed config and the run function, without
Hydra's run (no .hydra/ folder, no train.log: check log text with caplog); the project's paths and
the tiny run every test starts from."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from virnucpro_trainer.config.evaluate import register_eval_configs
from virnucpro_trainer.config.schema import register_configs
from virnucpro_trainer.evaluate.pipeline import evaluate_run
from virnucpro_trainer.train.pipeline import run

ROOT = Path(__file__).resolve().parents[2]
TRAIN_PY = ROOT / "train.py"

# A small demo data set and a short run, so an end-to-end run takes a few seconds.
TINY = [
    "data=synthetic",
    "data.synthetic.files_per_class=4",
    "data.synthetic.rows_per_file=240",
    "data.synthetic.chunks_per_genome=5",
    "epochs=3",
    "device=cpu",
    "cpu_threads=1",  # tiny tensors: more threads only add overhead (much more on a busy machine)
]


# What a run directory holds: the run function's files, and those Hydra adds in a real run.
RUN_FILES = (
    "metrics.csv",
    "split.json",
    "test_metrics.json",
    "model_fastesm650.pth",
    "checkpoints/last.pt",
    "test_predictions.tsv",
)
HYDRA_FILES = ("train.log", ".hydra/config.yaml", ".hydra/overrides.yaml", ".hydra/hydra.yaml")


def compose_train(*overrides: str, hydra_config: bool = False) -> DictConfig:
    """The `train` config with `overrides`, as train.py composes it (relative paths unresolved)."""
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=hydra_config)


@contextlib.contextmanager
def working_directory(path: Path):
    """contextlib.chdir, which Python 3.10 (supported) does not have."""
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def train_in_process(cwd: Path, *overrides: str) -> Path:
    """Run training as `python train.py OVERRIDES` in `cwd` would, in this process; returns the
    run directory, a new `cwd/outputs/in_process/<n>` (which `run_dirs` lists in run order).

    Relative paths (data.root, split.dir, ...) resolve against `cwd`. A UserError propagates."""
    runs = cwd / "outputs/in_process"
    run_dir = runs / f"{len(list(runs.glob('*'))) if runs.is_dir() else 0:03d}"
    run_dir.mkdir(parents=True)  # Hydra's run-directory callback makes it in a real run
    threads = torch.get_num_threads()
    # One thread unless cpu_threads says otherwise: on tiny tensors more only add overhead, and
    # many times more on a busy machine. Restored after: it is this process's setting.
    torch.set_num_threads(1)
    try:
        with working_directory(cwd):
            run(compose_train(*overrides), run_dir)
    finally:
        torch.set_num_threads(threads)
    return run_dir


def evaluate_in_process(cwd: Path, out_dir: Path, *overrides: str) -> dict:
    """Run `python evaluate.py OVERRIDES` in `cwd` as evaluate.py would, in this process, writing
    into `out_dir`; returns metrics.json's content. A UserError propagates."""
    register_eval_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("evaluate", overrides=list(overrides))
    out_dir.mkdir(parents=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with working_directory(cwd):
            return evaluate_run(cfg, out_dir)
    finally:
        torch.set_num_threads(threads)
