"""train.py and evaluate.py in this process: the composed config and the run function, without
Hydra's run (no .hydra/ folder, no train.log: check log text with caplog); the project's paths and
the tiny run every test starts from."""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from hydra import initialize_config_dir, version
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from virnucpro_trainer.config.evaluate import register_eval_configs
from virnucpro_trainer.config.schema import register_configs
from virnucpro_trainer.evaluate.pipeline import evaluate_run
from virnucpro_trainer.train.pipeline import run

if TYPE_CHECKING:
    from hydra._internal.hydra import Hydra

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


@functools.cache
def _hydra() -> Hydra:
    """One Hydra for conf/ per test process, with both scripts' configs registered. Making it
    costs about half as much again as a composition, so tests compose through this one rather
    than each entering `initialize_config_dir`."""
    register_configs()
    register_eval_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return GlobalHydra.instance().hydra


def compose_config(name: str, *overrides: str, hydra_config: bool = False) -> DictConfig:
    """What `hydra.compose(name, overrides)` gives inside `initialize_config_dir(conf/)`, as
    train.py (`name` "train") or evaluate.py ("evaluate") composes it: Hydra's own composition,
    on the one Hydra of `_hydra`."""
    version.setbase("1.3")  # as initialize_config_dir sets it; another test may have changed it
    cfg = _hydra().compose_config(
        config_name=name,
        overrides=list(overrides),
        run_mode=RunMode.RUN,
        from_shell=False,
        with_log_configuration=False,
    )
    if not hydra_config:
        with open_dict(cfg):
            del cfg["hydra"]
    return cfg


def group_options(group: str) -> list[str]:
    """The options of a config group, as Hydra lists them (`python train.py --help`)."""
    return _hydra().config_loader.get_group_options(group)


def compose_train(*overrides: str, hydra_config: bool = False) -> DictConfig:
    """The `train` config with `overrides`, as train.py composes it (relative paths unresolved)."""
    return compose_config("train", *overrides, hydra_config=hydra_config)


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
    cfg = compose_config("evaluate", *overrides)
    out_dir.mkdir(parents=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with working_directory(cwd):
            return evaluate_run(cfg, out_dir)
    finally:
        torch.set_num_threads(threads)
