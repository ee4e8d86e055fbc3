"""train.py as a real process: command-line overrides and `--cfg`, the files Hydra writes into a
run directory (.hydra/, train.log), and multirun's one directory per job with its summary."""

from __future__ import annotations

import csv
import statistics
import subprocess
import sys

import pytest
import torch
from scipy import stats

from helpers import HYDRA_FILES, ROOT, RUN_FILES, TINY, results, run_dirs, run_train

pytestmark = pytest.mark.e2e


def test_overrides_reach_the_run(tmp_path):
    proc = run_train(tmp_path, *TINY, "optimizer.lr=1e-4", "patience=10", "--cfg", "job")
    assert "patience: 10" in proc.stdout and "lr: 0.0001" in proc.stdout
    run_train(tmp_path, *TINY, "epochs=1", "optimizer=adamw", "hydra.job.chdir=true")
    (run_dir,) = run_dirs(tmp_path)
    cfg = torch.load(run_dir / "model_fastesm650.pth", weights_only=True)["config"]
    assert cfg["optimizer"]["name"] == "adamw"
    assert (run_dir / "../../../data/synthetic/data_merge").resolve().is_dir()
    # a real run's directory: the run function's files, Hydra's, and everything logged
    for name in (*RUN_FILES, *HYDRA_FILES):
        assert (run_dir / name).is_file(), name
    log = (run_dir / "train.log").read_text()
    assert "epoch   1" in log and "test at threshold 0.5" in log


def test_multirun_gives_one_directory_per_seed_with_different_results(tmp_path):
    run_train(tmp_path, *TINY, "--multirun", "seed=1,2")  # the order README.md shows
    (sweep,) = (tmp_path / "outputs/multirun").glob("*/*")
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [j.name for j in jobs] == ["0", "1"]
    for job in jobs:
        for name in (*RUN_FILES, *HYDRA_FILES):
            assert (job / name).is_file(), (job, name)
    one, two = (results(j) for j in jobs)
    assert (one[1]["seed"], two[1]["seed"]) == (1, 2)
    assert one[0] != two[0]
    assert one[1]["split_hash"] == two[1]["split_hash"]  # judged on the same test files

    with (sweep / "summary.csv").open() as f:
        summary = list(csv.DictReader(f))
    assert [(r["job"], r["status"], r["overrides"]) for r in summary] == [
        ("0", "ok", " ".join([*TINY, "seed=1"])),
        ("1", "ok", " ".join([*TINY, "seed=2"])),
    ]
    assert [float(r["f1"]) for r in summary] == [one[1]["f1"], two[1]["f1"]]
    f1s = [one[1]["f1"], two[1]["f1"]]
    md = (sweep / "summary.md").read_text()
    mean, std = statistics.fmean(f1s), statistics.stdev(f1s)
    half = stats.t.ppf(0.975, 1) * std / 2**0.5  # t(0.975, 1 degree of freedom) x sd / sqrt(n)
    assert (
        f"| f1 | 2 | {mean:.4f} | {mean - half:.4f}-{mean + half:.4f} | {std:.4f} | "
        f"{min(f1s):.4f} | {max(f1s):.4f} |" in md
    )
    low, high = one[1]["intervals"]["f1"]
    assert f"| 0 | ok | `{' '.join([*TINY, 'seed=1'])}` |" in md
    assert f"{one[1]['f1']:.4f} ({low:.4f}-{high:.4f})" in md  # each job with its own interval
    assert float(summary[0]["f1_low"]) == low and float(summary[0]["f1_high"]) == high


@pytest.mark.parametrize(
    "command",
    [
        ["train.py", "--help"],
        ["evaluate.py", "--help"],
        ["train.py", "epochs=abc"],  # refused before Hydra starts (not an integer)
        ["train.py", "optimizer.lr=-1"],  # refused by the config's checks, in the run directory
    ],
    ids=" ".join,
)
def test_help_and_a_refused_setting_load_no_torch_scipy_or_sklearn(command, tmp_path):
    # they answer in a second or two, not after the seconds these take to import
    script, *args = command
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / script), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    refused = "=" in command[-1]
    assert done.returncode == (1 if refused else 0), done.stderr[-2000:]
    if command[-1] == "optimizer.lr=-1":
        assert "optimizer.lr must be > 0, got -1.0" in done.stdout + done.stderr
        assert not list(tmp_path.glob("outputs/*/*"))  # the refused run left no directory
    loaded = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert loaded and not loaded & {"torch", "scipy", "sklearn", "matplotlib"}, command
