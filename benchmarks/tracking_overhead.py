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
than the trackers cost; the seconds waited are what the trackers add to a run's wall time. More
train.py overrides may follow the options (the tests pass a tiny demo).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile

from _common import machine, run_timed, train_command

LOGGERS = {
    "none": ["logger=none"],
    "mlflow": ["logger=mlflow"],
    "wandb": ["logger=wandb", "logger.mode=offline"],
}
WAITED = re.compile(r"the run waited ([0-9.]+) s for them at the start and ([0-9.]+) s at the end")


def timed(cmd: list[str], cwd: str, env: dict) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, the process and its children: W&B's service
    too) and the seconds the training waited for its trackers (0 without any) of one run."""
    wall, cpu, output = run_timed(cmd, cwd, env)
    waited = WAITED.search(output)
    return wall, cpu, sum(map(float, waited.groups())) if waited else 0.0


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each logger")
    parser.add_argument("--epochs", type=int, default=None, help="default: the demo's own")
    parser.add_argument("--only", action="append", choices=list(LOGGERS), help="these loggers")
    parser.add_argument("overrides", nargs="*", help="more train.py overrides")
    return parser


def main() -> None:
    args = arguments().parse_args()
    names = ["none", *[n for n in args.only or LOGGERS if n != "none"]]
    epochs = [] if args.epochs is None else [f"epochs={args.epochs}"]
    base = train_command(*epochs, *args.overrides)
    walls: dict[str, list[float]] = {n: [] for n in names}
    cpus: dict[str, list[float]] = {n: [] for n in names}
    waits: dict[str, list[float]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, **{f"WANDB_{k}_DIR": f"{tmp}/wandb_{k}" for k in ("CACHE", "DATA")}}
        env["WANDB_CONFIG_DIR"] = f"{tmp}/wandb_config"
        for name in names:  # data, feature store, MLflow database: made here, not timed
            warm_up = [*base, "epochs=1", *LOGGERS[name]]
            run_timed(warm_up, tmp, env)
        for _ in range(args.runs):
            for name in names:
                wall, cpu, waited = timed([*base, *LOGGERS[name]], tmp, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
                waits[name].append(waited)
    print(
        f"machine: {machine()}; load {os.getloadavg()[0]:.1f}; {args.runs} runs each"
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
