"""Memory-budget benchmark: peak resident memory of real train.py and evaluate.py runs, by stage.

    .venv/bin/python benchmarks/memory_budget.py [--rows 1000000] [--files 100] [--budgets 1 2]
        [--repeats 1] [--batch-size 512] [--limit-batches 400] [--workdir DIR] [--keep]
    .venv/bin/python benchmarks/memory_budget.py --speed [--speed-rounds 5] [--budgets 1 2]
    .venv/bin/python benchmarks/memory_budget.py --store-check [--budgets 0.4] [--files 40]
        [--repeats 3]

Generates `--rows` x 2048 float32 rows of demo data in `--files` merged files under the work
directory (1,000,000 rows: 8.2 GB of .pt files, and the feature store built from them another
8.2 GB; both deleted at the end unless --keep). Every run is `train.py` (one epoch, training
limited to `--limit-batches` shuffled batches drawn from every part of the store, then full
validation, test evaluation, predictions file, report) or `evaluate.py` on a trained run, as a
child process whose resident memory (VmRSS) this script samples every 20 ms, attributing each
sample to the log line that ends the stage; the whole run's peak is the child's ru_maxrss.

- cold: the feature store is deleted first, so the run builds it.
- warm: the store exists and the page cache holds it (the previous run read it).
- uncached: the store exists but is dropped from the page cache first
  (`posix_fadvise(POSIX_FADV_DONTNEED)` on its files), so its rows come from disk.

Each budget is checked against budget + 0.5 GB (GiB budget, as data.memory_budget_gb is read).
Raw results go to <workdir>/memory_budget.json.

--speed instead times training (1,000 batches of 32) and scoring (100,000 consecutive rows, batch
4096) under the largest budget against none, back to back in one process on the warm store,
`--speed-rounds` times, and prints the median ratio (full runs on a shared 2-core machine are too
noisy for a 5% comparison).

--store-check (what `benchmarks/data_path.py --memory-budget-check` was) leaves out train.py: for
each budget (default 0.4 GiB) it builds a float32 store about twice the budget (`--rows` is not
used) and trains one epoch of batch 32 over all of it with BatchSource(memory_budget_bytes=budget),
with and without block_rows=8192 (and with no budget, for reference), each in a fresh process, and
compares the peak RSS with budget + 0.5 GiB. Raw results go to <workdir>/store_check.json.

This script's own process never imports torch outside --speed: on Linux a child's ru_maxrss
starts at its parent's resident size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from _common import (
    BATCH,
    ROOT,
    SEED,
    TRAIN_PY,
    WIDTH,
    cell,
    child_main,
    fmt,
    generate,
    load_average,
    open_demo_store,
    peak_rss_mb,
    proc_status_mb,
    run_child,
    say,
    spread,
    store_source,
    table,
    timed,
    training_task,
)

EVALUATE_PY = ROOT / "evaluate.py"
STAGES = {  # a log line containing this ends the stage named
    "feature store": "store build or open",
    "made a new split": "split",
    "split ": "split",
    "epoch   1": "training + validation",
    "test at threshold": "test evaluation",
    "report:": "predictions file + report",
    "saved the best model": "checkpoint",
    "scoring ": "store open + rows",
    "rows, ": "scoring + prediction files",
}
BLOCK_ROWS = 8192  # --store-check's block_rows variant
DEFAULTS = {  # per mode: --files, --repeats, --budgets
    "runs": {"files": 100, "repeats": 1, "budgets": [1.0, 2.0]},
    "store-check": {"files": 40, "repeats": 3, "budgets": [0.4]},
}


def limit_gb(budget: float) -> float:
    """The limit a budget (GiB) is checked against: the budget + 0.5 GB, in GB."""
    return budget * 2**30 / 1e9 + 0.5


def budget_name(budget: float | None) -> str:
    return "no budget" if budget is None else f"budget {budget:g}"


def budget_override(budget: float | None) -> str:
    return f"data.memory_budget_gb={'null' if budget is None else budget}"


# ---------------------------------------------------------------- train.py and evaluate.py runs


def run(cmd: list[str], log: Path) -> dict:
    """Run `cmd`; its peak RSS per stage (MB, sampled) and in all (ru_maxrss), wall seconds."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = {"now": 0}
    stages: dict[str, float] = {}

    def sample():
        while child.poll() is None:
            try:
                peak["now"] = max(peak["now"], proc_status_mb("VmRSS", child.pid))
            except (OSError, StopIteration):
                break
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    lines = []
    for raw in child.stdout:
        line = raw.decode(errors="replace")
        lines.append(line)
        stage = next((name for key, name in STAGES.items() if key in line), None)
        if stage is not None:
            stages[stage] = max(stages.get(stage, 0), peak["now"])
            peak["now"] = 0
    _, status, usage = os.wait4(child.pid, 0)
    log.write_text("".join(lines))
    if status != 0:
        sys.exit(f"{' '.join(cmd)} failed; see {log}")
    stages["rest"] = peak["now"]
    return {
        "peak_mb": peak_rss_mb(usage),
        "stages_mb": stages,
        "wall_s": time.perf_counter() - start,
    }


def measured(cmd: list[str], log: Path, **what) -> dict:
    """run(cmd) with `what` it was and the 1-minute load average at its start."""
    load = os.getloadavg()[0]
    return {**run(cmd, log), **what, "load1": load}


def epoch_seconds(run_dir: Path) -> float:
    header, row = (run_dir / "metrics.csv").read_text().splitlines()[:2]
    return float(dict(zip(header.split(","), row.split(","), strict=True))["epoch_seconds"])


def drop_from_page_cache(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)


def full_runs(args: argparse.Namespace, work: Path, data: Path, cache: Path, logs: Path) -> list:
    """Cold and warm train.py runs per budget, evaluate.py runs, then uncached train.py runs."""
    train = [
        str(TRAIN_PY),
        f"data.root={data}",
        f"data.cache_dir={cache}",
        f"split.dir={work / 'test_set'}",
        "epochs=1",
        f"batch_size={args.batch_size}",
        f"limit_batches={args.limit_batches}",
    ]
    largest = max(args.budgets)
    plan = []  # (log name, what the run is, cache state, budget, script and its arguments)
    for budget in [] if args.no_cold else args.budgets:
        plan.append((f"cold-{budget}", "cold", "cold", budget, train))
    for repeat in range(args.repeats):
        plan += [(f"warm-{b}-{repeat}", "warm", "warm", b, train) for b in [*args.budgets, None]]
    trained = work / "runs" / f"warm-None-{args.repeats - 1}"
    for budget, subset in [(largest, "test"), (largest, "all"), (None, "all")]:
        evaluate = [str(EVALUATE_PY), f"ckpt={trained}", f"data.root={data}"]
        evaluate += [f"data.cache_dir={cache}", f"subset={subset}"]
        plan.append(
            (f"eval-{budget}-{subset}", f"evaluate.py subset={subset}", "warm", budget, evaluate)
        )
    # last: reading the store from disk is slow
    plan += [(f"uncached-{b}", "uncached", "uncached", b, train) for b in (largest, None)]
    runs = []
    for log_name, what, state, budget, script_args in plan:
        if state == "cold":
            shutil.rmtree(cache, ignore_errors=True)
        if state == "uncached":
            drop_from_page_cache(cache)
        run_dir = work / "runs" / log_name
        shutil.rmtree(run_dir, ignore_errors=True)
        cmd = [sys.executable, *script_args, budget_override(budget), f"hydra.run.dir={run_dir}"]
        name = f"{what}, {budget_name(budget)}"
        result = measured(cmd, logs / f"{log_name}.log", name=name, budget=budget, state=state)
        if script_args is train:
            result["epoch_s"] = epoch_seconds(run_dir)
        print(json.dumps(result), flush=True)
        runs.append(result)
    return runs


def print_runs(runs: list[dict]) -> None:
    def rows():
        for name in dict.fromkeys(r["name"] for r in runs):
            mine = [r for r in runs if r["name"] == name]
            budget, stages = mine[0]["budget"], mine[0]["stages_mb"]
            limit = None if budget is None else limit_gb(budget)
            within = max(r["peak_mb"] for r in mine) * 2**20 / 1e9 <= (limit or 0)
            top = max(stages, key=stages.get)
            yield [
                name,
                f"{statistics.median(r['peak_mb'] for r in mine) * 2**20 / 1e9:.2f}",
                "" if limit is None else f"{limit:.2f}",
                "" if limit is None else "yes" if within else "NO",
                f"{top} ({stages[top] * 2**20 / 1e9:.2f})",
                f"{statistics.median(r.get('epoch_s', float('nan')) for r in mine):.0f}",
                f"{statistics.median(r['wall_s'] for r in mine):.0f}",
                ", ".join(f"{r['load1']:.1f}" for r in mine),
            ]

    print()
    header = ["run", "peak RSS (GB)", "limit (GB)", "within", "largest stage", "epoch (s)"]
    table([*header, "wall (s)", "load"], rows())


# ---------------------------------------------------------------- --speed


def speed(args: argparse.Namespace, cache: Path, data: Path) -> None:
    """Training (batch 32, the default) and scoring speed under a budget against none, back to
    back in one process over two mappings of the same warm store; ratios per round, median."""
    import torch

    from virnucpro_trainer.model import VirNucProMLP, predict
    from virnucpro_trainer.train.loop import Training, train_epoch

    tables = [open_demo_store(data, cache) for _ in range(2)]
    plain = store_source(tables[0])
    kept = store_source(tables[1], memory_budget_bytes=int(max(args.budgets) * 2**30))
    model = VirNucProMLP(WIDTH)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    n = len(tables[0].labels)
    gen, no_seed = torch.Generator().manual_seed(0), torch.Generator()
    ratios = {"train": [], "score": []}
    for _ in range(args.speed_rounds):
        train_rows = torch.randperm(n, generator=gen)[: BATCH * 1000]
        start = int(torch.randint(0, max(1, n - 100_000), (1,), generator=gen))
        score_rows = torch.arange(start, min(n, start + 100_000))
        seconds = {}
        for name, source in (("budget", kept), ("none", plain), ("budget2", kept)):
            seconds[name] = (
                timed(
                    train_epoch,
                    Training(model, optimizer, None, source, shuffle=no_seed),
                    train_rows,
                    BATCH,
                ),  # fmt: skip
                timed(predict, model, source, score_rows, 4096),
            )
        for i, key in enumerate(("train", "score")):  # budget runs before and after: their mean
            with_budget = (seconds["budget"][i] + seconds["budget2"][i]) / 2
            ratios[key].append(with_budget / seconds["none"][i])
        print(f"round: {seconds}, load {os.getloadavg()[0]:.1f}", flush=True)
    for key, values in ratios.items():
        print(
            f"{key}: time with budget / without, median of {len(values)}: "
            f"{statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f})"
        )


# ---------------------------------------------------------------- --store-check


def budget_epoch(spec: dict, model, optimizer) -> dict:
    """A child task: one epoch over every row of the store, with BatchSource under a memory
    budget (or none)."""
    import torch

    from virnucpro_trainer.train.loop import Training, train_epoch

    start = time.perf_counter()
    store = open_demo_store(Path(spec["root"]), Path(spec["cache_dir"]))
    opened = time.perf_counter()
    options = {"memory_budget_bytes": spec["budget_bytes"], "block_rows": spec["block_rows"]}
    source = store_source(store, **options)
    rows = torch.arange(len(store.labels))
    shuffle = torch.Generator().manual_seed(SEED)
    epoch_s = timed(
        train_epoch, Training(model, optimizer, None, source, shuffle=shuffle), rows, BATCH
    )
    return {
        "open_s": opened - start,
        "epoch_s": epoch_s,
        "train_samples_per_s": len(rows) / epoch_s,
        "where": source.where,
        "features_mb": store.features.numel() * store.features.element_size() / 2**20,
    }


TASKS = {
    "generate": generate,
    "budget": training_task(
        budget_epoch, ["virnucpro_trainer.data.store", "virnucpro_trainer.train.loop"]
    ),
}


def store_check(args: argparse.Namespace, budget_gb: float, work: Path, logs: Path) -> dict:
    budget = int(budget_gb * 2**30)
    rows_per_file = 2 * budget // (WIDTH * 4) // args.files  # features about twice the budget
    rows = rows_per_file * args.files
    base = work / f"budget-{rows}x{args.files}"
    root = base / "data_merge"
    say(f"memory-budget data set: {rows:,} rows in {args.files} files under {root}")
    spec = {"task": "generate", "root": str(root), "files": args.files}
    run_child(__file__, {**spec, "rows_per_file": rows_per_file}, logs, "budget-generate")
    common = {"task": "budget", "root": str(root), "cache_dir": str(base / "feature_cache")}
    spec = {**common, "budget_bytes": None, "block_rows": None}
    build = run_child(__file__, spec, logs, "budget-build")
    say(f"  store ready in {build['open_s']:.1f} s: {build['features_mb']:,.0f} MB of features")
    variants = {
        "no budget": (None, None),
        "budget": (budget, None),
        f"budget, block_rows={BLOCK_ROWS}": (budget, BLOCK_ROWS),
    }
    runs = []
    for repeat in range(1, args.repeats + 1):
        for variant, (budget_bytes, block_rows) in variants.items():
            spec = {**common, "budget_bytes": budget_bytes, "block_rows": block_rows}
            log_name = f"budget-r{repeat}-{variant.replace(' ', '').replace(',', '-')}"
            runs.append({"variant": variant, **run_child(__file__, spec, logs, log_name)})
            say(
                f"  repeat {repeat}  {variant:<26} peak {runs[-1]['peak_rss_mb']:6,.0f} MB  "
                f"epoch {runs[-1]['epoch_s']:5.1f} s  other load {runs[-1]['other_load']:4.0%}"
            )
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    keys = ("peak_rss_mb", "baseline_rss_mb", "train_samples_per_s")
    summary = {
        v: {k: spread([r[k] for r in runs if r["variant"] == v]) for k in keys} for v in variants
    }
    return {
        "machine": build["machine"],
        "rows": rows,
        "features_mb": build["features_mb"],
        "budget_mb": budget / 2**20,
        "limit_mb": (budget + 2**29) / 2**20,  # MiB: the budget + 0.5 GiB
        "where": {r["variant"]: r["where"] for r in runs},
        "summary": summary,
        "runs": runs,
    }


def print_store_check(result: dict, command: str) -> None:
    print("# Memory-budget check\n")
    print(f"command: `{command}`\n")
    print(f"machine: {result['machine']}\n")
    print(
        f"store: {result['rows']:,} rows, {result['features_mb']:,.0f} MB of float32 features; "
        f"budget {result['budget_mb']:,.0f} MB; limit = budget + 512 MB = "
        f"{result['limit_mb']:,.0f} MB; one epoch over every row, batch {BATCH}\n"
    )
    table(
        ["variant", "batches from", "baseline RSS (MB)", "peak RSS (MB)", "within limit"]
        + ["samples/s"],
        (
            [
                variant,
                result["where"][variant],
                fmt(s["baseline_rss_mb"]["median"]),
                cell(s["peak_rss_mb"]),
                "yes" if s["peak_rss_mb"]["max"] <= result["limit_mb"] else "NO",
                cell(s["train_samples_per_s"]),
            ]
            for variant, s in result["summary"].items()
        ),
    )
    print(
        "\nbaseline RSS: right after imports and creating the model and optimizer; peak RSS: "
        "ru_maxrss of the run's process; median (min-max) over repeats."
    )


# ---------------------------------------------------------------- entry point


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="not with --store-check")
    parser.add_argument("--files", type=int, help="default 100 (--store-check: 40)")
    parser.add_argument("--budgets", type=float, nargs="+", help="GiB; default 1 2 (0.4)")
    parser.add_argument("--repeats", type=int, help="of each warm run; default 1 (3)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--limit-batches", type=int, default=400)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/virnucpro-memory-budget"))
    parser.add_argument("--speed", action="store_true", help="only the speed comparison")
    parser.add_argument("--speed-rounds", type=int, default=5)
    parser.add_argument("--store-check", action="store_true", help="BatchSource alone, no train.py")
    parser.add_argument("--no-cold", action="store_true", help="leave out the store builds")
    parser.add_argument("--keep", action="store_true", help="keep the data and the store")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser


def main() -> None:
    args = arguments().parse_args()
    if args.child:
        child_main(json.loads(args.child), TASKS)
        return
    defaults = DEFAULTS["store-check" if args.store_check else "runs"]
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    work = args.workdir.resolve()
    data, cache, logs = work / "data_merge", work / "feature_cache", work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    command = " ".join([sys.executable, *sys.argv])
    if args.store_check:
        results = [store_check(args, budget, work, logs) for budget in args.budgets]
        for result in results:
            print_store_check(result, command)
        out = work / "store_check.json"
        out.write_text(json.dumps({"command": command, "checks": results}, indent=2) + "\n")
        return
    spec = {"task": "generate", "root": str(data), "files": args.files}
    made = run_child(__file__, {**spec, "rows_per_file": args.rows // args.files}, logs, "generate")
    if args.speed:
        speed(args, cache, data)
        return
    at_start = load_average()
    runs = full_runs(args, work, data, cache, logs)
    machine = {"machine": made["machine"], "load_average_at_start": at_start}
    machine.update(load_average_at_end=load_average(), args=vars(args) | {"workdir": str(work)})
    (work / "memory_budget.json").write_text(
        json.dumps({"command": command, "machine": machine, "runs": runs}, indent=2, default=str)
    )
    print(f"\nmachine: {made['machine']}")
    print_runs(runs)
    if not args.keep:
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
