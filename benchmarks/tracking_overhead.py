"""What experiment tracking adds to the demo run's wall time: `python train.py data=synthetic` with
logger=none, logger=mlflow (the default SQLite database) and logger=wandb (offline), in turns.

    python benchmarks/tracking_overhead.py --runs 5              # the full demo run
    python benchmarks/tracking_overhead.py --runs 3 --epochs 10  # shorter

The demo data, the MLflow database and W&B's folders are made once before timing (in a temporary
directory, W&B's cache and config there too), so every timed run measures what a user's later runs
cost. The configurations take turns within each round, so a slower spell of a shared machine falls
on all of them alike. Prints, for each, the median wall time and its difference to logger=none,
the median CPU time (the run and its child processes), and the seconds the training waited for
its trackers (each run's last train.log line). On a shared machine the wall times vary by more
than the trackers cost; the seconds waited are what the trackers add to a run's wall time.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from virnucpro_trainer.runtime import processor

TRAIN_PY = Path(__file__).resolve().parents[1] / "train.py"
LOGGERS = {
    "none": ["logger=none"],
    "mlflow": ["logger=mlflow"],
    "wandb": ["logger=wandb", "logger.mode=offline"],
}


WAITED = re.compile(r"the run waited ([0-9.]+) s for them at the start and ([0-9.]+) s at the end")


def timed(cmd: list[str], cwd: str, env: dict) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, the process and its children: W&B's service
    too) and the seconds the training waited for its trackers (0 without any) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    waited = WAITED.search(done.stdout + done.stderr)
    return wall, cpu, sum(map(float, waited.groups())) if waited else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each logger")
    parser.add_argument("--epochs", type=int, default=None, help="default: the demo's own")
    parser.add_argument("--only", action="append", choices=list(LOGGERS), help="these loggers")
    args = parser.parse_args()
    names = ["none", *[n for n in args.only or LOGGERS if n != "none"]]
    base = [sys.executable, str(TRAIN_PY), "data=synthetic"]
    base += [] if args.epochs is None else [f"epochs={args.epochs}"]
    walls: dict[str, list[float]] = {n: [] for n in names}
    cpus: dict[str, list[float]] = {n: [] for n in names}
    waits: dict[str, list[float]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, **{f"WANDB_{k}_DIR": f"{tmp}/wandb_{k}" for k in ("CACHE", "DATA")}}
        env["WANDB_CONFIG_DIR"] = f"{tmp}/wandb_config"
        for name in names:  # data, feature store, MLflow database: made here, not timed
            warm_up = [*base, "epochs=1", *LOGGERS[name]]
            subprocess.run(warm_up, cwd=tmp, env=env, check=True, capture_output=True)
        for _ in range(args.runs):
            for name in names:
                wall, cpu, waited = timed([*base, *LOGGERS[name]], tmp, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
                waits[name].append(waited)
    print(
        f"machine: {processor()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
        f"torch {torch.__version__}, {args.runs} runs each"
        + ("" if args.epochs is None else f", epochs={args.epochs}")
    )
    wall_ref, cpu_ref = statistics.median(walls["none"]), statistics.median(cpus["none"])
    for name in names:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        print(
            f"logger={name:7s} wall median {wall:6.1f} s (min {min(walls[name]):.1f}, max "
            f"{max(walls[name]):.1f}): {100 * (wall / wall_ref - 1):+.1f}%; CPU median "
            f"{cpu:6.1f} s: {cpu - cpu_ref:+.2f} s; waited for the trackers median "
            f"{statistics.median(waits[name]):.2f} s (max {max(waits[name]):.2f}): "
            f"{100 * statistics.median(waits[name]) / wall_ref:.1f}% of logger=none's wall time"
        )


if __name__ == "__main__":
    main()
