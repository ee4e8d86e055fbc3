"""What tests share: running train.py (as a real process, or its run function in this process on a
composed config), reading a run's results, and small writers of merged embedding files."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from torch import nn

from virnucpro_trainer.config.evaluate import register_eval_configs
from virnucpro_trainer.config.schema import register_configs
from virnucpro_trainer.data.files import find_files
from virnucpro_trainer.data.merged import read_merged
from virnucpro_trainer.evaluate.pipeline import evaluate_run
from virnucpro_trainer.train.pipeline import run

ROOT = Path(__file__).resolve().parents[1]
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


# train.py in this process: the composed config and the run function, without Hydra's run (no
# .hydra/ folder, no train.log: check log text with caplog).


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


# train.py as a real process: for what a process is the point of (signals, exit codes, printed
# errors, multirun and launchers, concurrent processes).


def run_train(cwd: Path, *args: str, expect_ok: bool = True) -> subprocess.CompletedProcess:
    """Run `python train.py ARGS` in `cwd`; by default fail the test if it exits non-zero."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    proc = subprocess.run(
        [sys.executable, str(TRAIN_PY), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    if expect_ok:
        assert proc.returncode == 0, f"train.py failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def start_train(cwd: Path, *args: str) -> subprocess.Popen:
    """Start `python train.py ARGS` in `cwd` without waiting; stdout and stderr in one pipe."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.Popen(
        [sys.executable, str(TRAIN_PY), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def wait_for(condition, what: str, timeout: float = 300) -> None:
    """Poll `condition()` until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# A run's results


def epochs_saved(run_dir: Path) -> int:
    """The last finished epoch in `run_dir/checkpoints/last.pt` (0 before the first)."""
    last = run_dir / "checkpoints/last.pt"
    try:
        return torch.load(last, weights_only=True)["epoch"]
    except (FileNotFoundError, RuntimeError, EOFError):  # not there yet, or being replaced
        return 0


def run_dirs(cwd: Path) -> list[Path]:
    """Single-run directories under cwd/outputs/<date>/<time>/ (or outputs/in_process/<n>/ from
    `train_in_process`), sorted."""
    return sorted(p for p in (cwd / "outputs").glob("*/*") if p.parent.name != "multirun")


def results(run_dir: Path) -> tuple[list[dict], dict]:
    """metrics.csv without the timing columns, and test_metrics.json: what a seed decides."""
    with open(run_dir / "metrics.csv") as f:
        rows = [
            {k: v for k, v in r.items() if not k.endswith("seconds")} for r in csv.DictReader(f)
        ]
    return rows, json.loads((run_dir / "test_metrics.json").read_text())


# Merged embedding files: real files on disk, deterministic content

VIRAL_DIR = "viral.1.1_merged"
HOST_DIR = "vertebrate_mammalian_merged"

MISSING = object()  # pass as an override to leave that key out of the saved dict


def read_all(root: Path, width: int) -> list:
    """Every merged file under `root` (the default glob and viral substring), read as a run does."""
    return [read_merged(s, width) for s in find_files(root, "*_merged.pt", "viral")]


def write_merged(
    path: Path,
    n_rows: int,
    width: int,
    label: int,
    ids: list[str] | None | object = MISSING,
    seed: int = 0,
    **overrides,
) -> dict:
    """torch.save a merged-file dict at `path` (parents created) and return what was saved.

    `data` is a float32 [n_rows, width] tensor drawn from `seed`; `ids` default to one
    `<stem>_<row>` per row. `overrides` replace keys of the dict (MISSING removes a key).
    """
    gen = torch.Generator().manual_seed(seed)
    obj = {
        "ids": [f"{path.stem}_{i}" for i in range(n_rows)] if ids is MISSING else ids,
        "data": torch.randn(n_rows, width, generator=gen),
        "labels": [label],
    }
    obj.update(overrides)
    obj = {k: v for k, v in obj.items() if v is not MISSING}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return obj


def make_dataset(root: Path, files_per_class: int, rows: int, width: int) -> dict[str, dict]:
    """Write `files_per_class` viral and host files under `root`; returns {name: saved dict}.

    Names are relative to `root` (as `find_files` gives them); every file has its own seed.
    """
    written = {}
    for label, class_dir in ((1, VIRAL_DIR), (0, HOST_DIR)):
        for i in range(files_per_class):
            name = f"{class_dir}/output_{i}_merged.pt"
            written[name] = write_merged(root / name, rows, width, label, seed=1000 * label + i)
    return written


def genomes_across_files(root: Path, width: int, files_per_class=3, genomes=6, chunks=4) -> None:
    """Each class's genomes spread over all its files: fragment k of genome g in file
    (g + k) % files, ids `G<label>_<g>.1_chunk_<k>F1`. Any file split of this data leaks every
    genome; a group split must not."""
    for label, class_dir in ((1, VIRAL_DIR), (0, HOST_DIR)):
        ids = {i: [] for i in range(files_per_class)}
        for g in range(genomes):
            for k in range(chunks):
                ids[(g + k) % files_per_class].append(f"G{label}_{g}.1_chunk_{k}F1")
        for i, file_ids in ids.items():
            path = root / class_dir / f"output_{i}_merged.pt"
            write_merged(path, len(file_ids), width, label, ids=file_ids, seed=10 * label + i)


def clone_state(module: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class PredictionStepMLP(nn.Module):
    """What the prediction step builds and loads strictly, written independently of model.py."""

    def __init__(self):
        super().__init__()
        self.hidden_layer = nn.Linear(2048, 512)
        self.bn1 = nn.BatchNorm1d(512)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.5)
        self.output_layer = nn.Linear(512, 2)

    def forward(self, x):
        return self.output_layer(self.dropout(self.relu(self.bn1(self.hidden_layer(x)))))
