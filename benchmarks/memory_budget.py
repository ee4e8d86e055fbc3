"""Memory-budget benchmark: peak resident memory of real train.py and evaluate.py runs, by stage.

    .venv/bin/python benchmarks/memory_budget.py [--rows 1000000] [--files 100] [--budgets 1 2]
        [--repeats 2] [--batch-size 512] [--limit-batches 400] [--workdir DIR] [--keep]

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
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from virnucpro_trainer.runtime import processor

ROOT = Path(__file__).resolve().parents[1]
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


def run(cmd: list[str], log: Path) -> dict:
    """Run `cmd`; its peak RSS per stage (MB, sampled) and in all (ru_maxrss), wall seconds."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = {"now": 0}
    stages: dict[str, float] = {}

    def sample():
        status = Path(f"/proc/{child.pid}/status")
        while child.poll() is None:
            try:
                kb = next(
                    int(x.split()[1])
                    for x in status.read_text().splitlines()
                    if x.startswith("VmRSS")
                )
            except (OSError, StopIteration):
                break
            peak["now"] = max(peak["now"], kb / 1024)
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
        "peak_mb": usage.ru_maxrss / 1024,
        "stages_mb": stages,
        "wall_s": time.perf_counter() - start,
    }


def drop_from_page_cache(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)


def epoch_seconds(run_dir: Path) -> float:
    header, row = (run_dir / "metrics.csv").read_text().splitlines()[:2]
    return float(dict(zip(header.split(","), row.split(","), strict=True))["epoch_seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--budgets", type=float, nargs="+", default=[1.0, 2.0])
    parser.add_argument("--repeats", type=int, default=1, help="of each warm run")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--limit-batches", type=int, default=400)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/virnucpro-memory-budget"))
    parser.add_argument("--speed", action="store_true", help="only the speed comparison")
    parser.add_argument("--speed-rounds", type=int, default=5)
    parser.add_argument("--no-cold", action="store_true", help="leave out the store builds")
    parser.add_argument("--keep", action="store_true", help="keep the data and the store")
    args = parser.parse_args()
    work = args.workdir.resolve()
    data, cache, logs = work / "data_merge", work / "feature_cache", work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    gen = (
        "from pathlib import Path; from virnucpro_trainer.config.schema import SyntheticConfig; "
        "from virnucpro_trainer.data.synthetic import ensure_synthetic; "
        f"ensure_synthetic(Path({str(data)!r}), SyntheticConfig(files_per_class={args.files // 2}, "
        f"rows_per_file={args.rows // args.files}), 2048)"
    )
    subprocess.run([python, "-c", gen], check=True)
    if args.speed:
        speed(args, cache, data)
        return
    common = [
        f"data.root={data}",
        f"data.cache_dir={cache}",
        f"split.dir={work / 'test_set'}",
        "epochs=1",
        f"batch_size={args.batch_size}",
        f"limit_batches={args.limit_batches}",
    ]
    plan = []  # (name, budget, cache state)
    for budget in [] if args.no_cold else args.budgets:
        plan.append((f"cold, budget {budget:g}", budget, "cold"))
    for _ in range(args.repeats):
        for budget in [*args.budgets, None]:
            name = "warm, no budget" if budget is None else f"warm, budget {budget:g}"
            plan.append((name, budget, "warm"))
    runs, last_dir = [], None
    for i, (name, budget, state) in enumerate(plan):
        if state == "cold":
            shutil.rmtree(cache, ignore_errors=True)
        if state == "uncached":
            drop_from_page_cache(cache)
        run_dir = work / "runs" / f"{i:02d}"
        shutil.rmtree(run_dir, ignore_errors=True)
        budget_arg = "null" if budget is None else budget
        cmd = [python, "train.py", *common, f"data.memory_budget_gb={budget_arg}"]
        cmd.append(f"hydra.run.dir={run_dir}")
        load = os.getloadavg()[0]
        result = run(cmd, logs / f"{i:02d}.log")
        result.update(name=name, budget=budget, state=state, load1=load)
        result["epoch_s"] = epoch_seconds(run_dir)
        runs.append(result)
        last_dir = run_dir if state == "warm" and budget is None else last_dir
        print(json.dumps(result), flush=True)
    for budget, subset in [(max(args.budgets), "test"), (max(args.budgets), "all"), (None, "all")]:
        out = work / "eval" / f"{budget}-{subset}"
        shutil.rmtree(out, ignore_errors=True)
        cmd = [python, "evaluate.py", f"ckpt={last_dir}", f"data.root={data}"]
        cmd += [f"data.cache_dir={cache}", f"subset={subset}", f"hydra.run.dir={out}"]
        cmd.append(f"data.memory_budget_gb={'null' if budget is None else budget}")
        load = os.getloadavg()[0]
        result = run(cmd, logs / f"eval-{budget}-{subset}.log")
        name = f"evaluate.py subset={subset}, " + (
            "no budget" if budget is None else f"budget {budget:g}"
        )
        result.update(name=name, budget=budget, state="warm", load1=load)
        runs.append(result)
        print(json.dumps(result), flush=True)
    for budget in (max(args.budgets), None):  # last: reading the store from disk is slow
        drop_from_page_cache(cache)
        run_dir = work / "runs" / f"uncached-{budget}"
        shutil.rmtree(run_dir, ignore_errors=True)
        cmd = [python, "train.py", *common, f"hydra.run.dir={run_dir}"]
        cmd.append(f"data.memory_budget_gb={'null' if budget is None else budget}")
        load = os.getloadavg()[0]
        result = run(cmd, logs / f"uncached-{budget}.log")
        name = "uncached, " + ("no budget" if budget is None else f"budget {budget:g}")
        result.update(name=name, budget=budget, state="uncached", load1=load)
        result["epoch_s"] = epoch_seconds(run_dir)
        runs.append(result)
        print(json.dumps(result), flush=True)
    machine = {
        "cpu": processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "args": vars(args) | {"workdir": str(work)},
    }
    (work / "memory_budget.json").write_text(
        json.dumps({"machine": machine, "runs": runs}, indent=2, default=str)
    )
    print_table(runs)
    if not args.keep:
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)


def speed(args: argparse.Namespace, cache: Path, data: Path) -> None:
    """Training (batch 32, the default) and scoring speed under a budget against none, back to
    back in one process over two mappings of the same warm store; ratios per round, median."""
    import torch

    from virnucpro_trainer.data.batches import BatchSource
    from virnucpro_trainer.data.files import find_files
    from virnucpro_trainer.data.store import open_store
    from virnucpro_trainer.model import VirNucProMLP
    from virnucpro_trainer.train.loop import predict, train_epoch

    sources = find_files(data, "*_merged.pt", "viral")
    tables = [open_store(sources, data, cache, 2048, "float32") for _ in range(2)]
    budget = int(max(args.budgets) * 2**30)
    plain = BatchSource(tables[0].features, tables[0].labels, torch.device("cpu"))
    kept = BatchSource(
        tables[1].features,
        tables[1].labels,
        torch.device("cpu"),
        mapping=tables[1].mapping,
        path=tables[1].features_file,
        memory_budget_bytes=budget,
    )
    model = VirNucProMLP(2048)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    n = len(tables[0].labels)
    gen = torch.Generator().manual_seed(0)
    ratios = {"train": [], "score": []}
    for _ in range(args.speed_rounds):
        train_rows = torch.randperm(n, generator=gen)[: 32 * 1000]
        start = int(torch.randint(0, n - 100_000, (1,), generator=gen))
        score_rows = torch.arange(start, start + 100_000)
        seconds = {}
        for name, source in (("budget", kept), ("none", plain), ("budget2", kept)):
            t0 = time.perf_counter()
            train_epoch(model, source, train_rows, 32, optimizer, torch.Generator())
            t1 = time.perf_counter()
            predict(model, source, score_rows, 4096)
            seconds[name] = (t1 - t0, time.perf_counter() - t1)
        for i, key in enumerate(("train", "score")):  # budget runs before and after: their mean
            with_budget = (seconds["budget"][i] + seconds["budget2"][i]) / 2
            ratios[key].append(with_budget / seconds["none"][i])
        print(f"round: {seconds}, load {os.getloadavg()[0]:.1f}", flush=True)
    for key, values in ratios.items():
        print(
            f"{key}: time with budget / without, median of {len(values)}: "
            f"{statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f})"
        )


def print_table(runs: list[dict]) -> None:
    print(
        "\n| run | peak RSS (GB) | limit (GB) | within | largest stage | epoch (s) | wall (s) |",
        end="",
    )
    print(" load |")
    print("|---|---|---|---|---|---|---|---|")
    for name in dict.fromkeys(r["name"] for r in runs):
        mine = [r for r in runs if r["name"] == name]
        peak = statistics.median(r["peak_mb"] for r in mine) * 2**20 / 1e9
        budget = mine[0]["budget"]
        limit = None if budget is None else budget * 2**30 / 1e9 + 0.5
        within = (
            ""
            if limit is None
            else ("yes" if max(r["peak_mb"] for r in mine) * 2**20 / 1e9 <= limit else "NO")
        )
        stages = mine[0]["stages_mb"]
        top = max(stages, key=stages.get)
        epoch = statistics.median(r.get("epoch_s", float("nan")) for r in mine)
        wall = statistics.median(r["wall_s"] for r in mine)
        loads = ", ".join(f"{r['load1']:.1f}" for r in mine)
        print(
            f"| {name} | {peak:.2f} | {'' if limit is None else f'{limit:.2f}'} | {within} | "
            f"{top} ({stages[top] * 2**20 / 1e9:.2f}) | {epoch:.0f} | {wall:.0f} | {loads} |"
        )


if __name__ == "__main__":
    main()
