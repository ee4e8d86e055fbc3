"""A search on the demo data: one worker against two sharing one study, and the median pruner
against none.

    python benchmarks/search_scaling.py --repeats 3

Every search is `python train.py data=synthetic cpu_threads=1 hparams_search=optuna` with
`--trials` trials of `--epochs` epochs and Optuna's random sampler, so that trial n draws the same
values in every search (its seed is 42 + n): one worker and two workers run the same trials, and
with and without the pruner the same candidates are tried. In each round, in turns: one worker
without pruning, two workers (the same command started twice at once) without pruning, and one
worker with the median pruner (`--startup` trials never pruned, none before epoch `--warmup`).
Each search is checked: the study holds exactly `--trials` finished trials, each with its own
directory holding its results (test_metrics.json, or pruned.json for a pruned trial), and no
trial was run twice (one start in each train.log). Prints the median wall time of each, its
ratio to one worker's, the CPU seconds of the workers (user + system: the work done, whatever
else the machine ran meanwhile), the epochs all trials ran and the best validation loss found.
More train.py overrides may follow the options (the tests pass a tiny demo).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _common import OtherLoad, listed, machine, run_timed, say, table, train_command


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the three searches")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--startup", type=int, default=3, help="median pruner: n_startup_trials")
    parser.add_argument("--warmup", type=int, default=2, help="median pruner: n_warmup_steps")
    parser.add_argument("overrides", nargs="*", help="more train.py overrides")
    return parser


def search(cwd: Path, name: str, workers: int, pruner: list[str], args) -> dict:
    """Run one search with `workers` processes at once; its wall time and what it found."""
    cmd = train_command(
        "cpu_threads=1",
        "hparams_search=optuna",
        f"hydra.sweeper.study_name={name}",
        f"hydra.sweeper.n_trials={args.trials}",
        "hydra/sweeper/sampler=random",
        f"epochs={args.epochs}",
        *pruner,
        *args.overrides,
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    procs = [
        subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    errors = [p.communicate()[1] for p in procs]
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(getattr(after, f) - getattr(before, f) for f in ("ru_utime", "ru_stime"))
    for proc, err in zip(procs, errors, strict=True):
        if proc.returncode != 0:
            raise SystemExit(f"search {name} failed (exit {proc.returncode}):\n{err[-3000:]}")
    return {"wall": wall, "cpu": cpu, **check(cwd / "outputs/search" / name, args.trials)}


def check(sweep: Path, n_trials: int) -> dict:
    """The search's trials, epochs and best value; SystemExit if it is not as it must be."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(sweep / "optuna.journal")))
    trials = optuna.load_study(study_name=sweep.name, storage=storage).get_trials()
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    problems = [] if len(trials) == len(finished) == n_trials else [f"trials: {trials}"]
    for t in finished:
        run = sweep / str(t.number)
        result = "test_metrics.json" if t.state.name == "COMPLETE" else "pruned.json"
        if not all((run / f).is_file() for f in (result, "metrics.csv", ".hydra/config.yaml")):
            problems.append(f"trial {t.number}: {run} lacks its results")
        if (run / "train.log").read_text().count("run directory:") != 1:
            problems.append(f"trial {t.number} ran more than once")
    if problems:
        raise SystemExit(f"{sweep}: " + "; ".join(problems))
    complete = [t.value for t in finished if t.state.name == "COMPLETE"]
    return {
        "epochs": sum(len(t.intermediate_values) for t in finished),
        "pruned": len(finished) - len(complete),
        "best": min(complete),
    }


def main() -> None:
    args = arguments().parse_args()
    median = [f"hydra.sweeper.pruner.n_startup_trials={args.startup}"]
    median.append(f"hydra.sweeper.pruner.n_warmup_steps={args.warmup}")
    cases = {
        "1 worker, no pruning": (1, ["hydra/sweeper/pruner=none"]),
        "2 workers, no pruning": (2, ["hydra/sweeper/pruner=none"]),
        "1 worker, median pruner": (1, median),
    }
    found: dict[str, list[dict]] = {case: [] for case in cases}
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        run_timed([*train_command(*args.overrides), "epochs=1"], tmp)  # the demo data: not timed
        for r in range(args.repeats):
            for i, (case, (workers, pruner)) in enumerate(cases.items()):
                say(f"round {r + 1}: {case}")
                with OtherLoad() as load:
                    found[case].append(search(Path(tmp), f"r{r}c{i}", workers, pruner, args))
                loads.append(load.share)
    print(f"machine: {machine()}; other processes' share of the CPU: {listed(loads)}")
    base = statistics.median(f["wall"] for f in found["1 worker, no pruning"])
    header = ["search", "wall s (median)", "all", "vs 1 worker", "CPU s (median)", "epochs"]
    header += ["pruned", "best val"]
    rows = []
    for case, runs in found.items():
        walls = [f["wall"] for f in runs]
        rows.append(
            [
                case,
                f"{statistics.median(walls):.1f}",
                listed(walls, 1),
                f"{statistics.median(walls) / base:.2f}",
                f"{statistics.median(f['cpu'] for f in runs):.1f}",
                listed([f["epochs"] for f in runs], 0),
                listed([f["pruned"] for f in runs], 0),
                listed([f["best"] for f in runs], 4),
            ]
        )
    table(header, rows)


if __name__ == "__main__":
    main()
