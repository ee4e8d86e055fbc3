"""What the benchmark scripts share: the machine they ran on, peak memory, other processes' CPU
use, timing and median tables, train.py runs, and child processes that report one result.

Importing this module imports no torch (a child process's ru_maxrss starts at its parent's
resident size, so data_path.py's and memory_budget.py's parents stay small); the functions that
need torch import it themselves.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN_PY = ROOT / "train.py"

# The training every data-path design does: the VirNucPro MLP on 2048-wide rows, batch 32, SGD.
WIDTH = 2048
BATCH = 32
LR, MOMENTUM = 2e-4, 0.9
SEED = 42


# ---------------------------------------------------------------- the machine


def cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def ram_gb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def machine(device: object = "cpu") -> str:
    """One line for a benchmark's output: `runtime.describe` (the device and what it is, the
    CPU threads, the torch version), then the cores available, RAM and Python."""
    import torch

    from virnucpro_trainer.runtime import describe

    return (
        f"{describe(torch.device(device))}; {cores()} cores available, {ram_gb():.1f} GB RAM, "
        f"Python {platform.python_version()}"
    )


# ---------------------------------------------------------------- memory and CPU


def peak_rss_mb(usage: resource.struct_rusage | None = None) -> float:
    """Peak resident size (ru_maxrss) of this process, or of the process `usage` describes."""
    usage = usage or resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_maxrss / (1024 if sys.platform != "darwin" else 2**20)  # KiB on Linux


def proc_status_mb(field: str, pid: int | str = "self") -> float:
    """VmRSS, VmHWM, ... of a process from /proc/<pid>/status, in MB (Linux)."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(line for line in lines if line.startswith(field + ":")).split()[1]) / 1024


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (not idle or waiting), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(
                int, f.readline().split()[1:9]
            )
    except OSError:
        return float("nan")
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds (user + system) of this process and of its children that have ended."""
    usages = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usages)


class OtherLoad:
    """`with OtherLoad() as load:` how busy other processes kept the machine meanwhile: `cores`
    (cores kept busy on average) and `share` (of all the machine's cores, 0-1)."""

    def __enter__(self) -> OtherLoad:
        self._start = (time.perf_counter(), busy_seconds(), own_seconds())
        return self

    def __exit__(self, *_) -> None:
        start, busy, own = self._start
        self.seconds = time.perf_counter() - start
        others = max(0.0, (busy_seconds() - busy) - (own_seconds() - own))
        self.cores = others / self.seconds
        self.share = self.cores / os.cpu_count()


# ---------------------------------------------------------------- timing and tables


def timed(fn: Callable[..., object], *args, **kwargs) -> float:
    """Seconds `fn(*args, **kwargs)` takes."""
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def listed(values: Iterable[float], digits: int = 2) -> str:
    """Every repeat's figure: `1.23, 1.31, 1.27`."""
    return ", ".join(f"{v:.{digits}f}" for v in values)


def medians(seconds: list[float]) -> list[str]:
    """A median table's cells: the median of the repeats, then every repeat (seconds)."""
    return [f"{statistics.median(seconds):.2f}", listed(seconds)]


MEDIANS = ["seconds (median)", "all repeats"]  # the header over medians()


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def fmt(value: float) -> str:
    """Three significant figures or so, thousands separated."""
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def cell(s: dict | None) -> str:
    """A spread as `median (min-max)`."""
    return "n/a" if s is None else f"{fmt(s['median'])} ({fmt(s['min'])}-{fmt(s['max'])})"


def table(header: list[str], rows: Iterable[list[object]]) -> None:
    """Print a Markdown table, each row as soon as it is made (rows may be a generator)."""
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(map(str, row)) + " |", flush=True)


# ---------------------------------------------------------------- train.py runs


def train_command(*overrides: str) -> list[str]:
    """`python train.py data=synthetic <overrides>`: the demo run."""
    return [sys.executable, str(TRAIN_PY), "data=synthetic", *overrides]


def run_timed(cmd: list[str], cwd: str | Path, env: dict | None = None) -> tuple[float, float, str]:
    """Run `cmd`, which must succeed: its wall seconds, CPU seconds (user + system, it and its
    children) and everything it printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout + done.stderr


def run_project_script(script: str, cwd: str | Path, *args: str) -> None:
    """`python <train.py or evaluate.py> args` in `cwd`; on failure the benchmark stops with the
    end of what it printed."""
    done = subprocess.run(
        [sys.executable, str(ROOT / script), *args], cwd=cwd, capture_output=True, text=True
    )
    if done.returncode:
        sys.exit(f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


# ---------------------------------------------------------------- child processes
# A script that measures in fresh processes runs itself with `--child '<spec as JSON>'`; the child
# calls child_main, which prints one line `RESULT <JSON>` for run_child to read.


def say(message: str) -> None:
    """Progress, on stderr (stdout is the report)."""
    print(message, file=sys.stderr, flush=True)


def launch(cmd: list[str]) -> subprocess.CompletedProcess:
    """Start a child and wait for it (the tests run it in their own process instead)."""
    return subprocess.run(cmd, capture_output=True, text=True)


def run_child(script: str | Path, spec: dict, log_dir: Path, name: str) -> dict:
    """Run `script --child <spec>` in a fresh Python; its log goes to <log_dir>/<name>.log.

    Returns the child's result with `process_s` and `other_load`: the share of the machine's CPU
    (0-1) used by anything but this benchmark while the child ran, a sign of a noisy neighbour.
    """
    cmd = [sys.executable, str(Path(script).resolve()), "--child", json.dumps(spec)]
    with OtherLoad() as load:
        done = launch(cmd)
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / f"{name}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        sys.exit(f"{name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    return {**result, "process_s": load.seconds, "other_load": load.share}


def child_main(spec: dict, tasks: dict[str, Callable[[dict], dict]]) -> None:
    """The child's side: run tasks[spec["task"]](spec) and print its result with the machine."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    result = tasks[spec["task"]](spec)
    print("RESULT " + json.dumps({**result, "machine": machine()}), flush=True)


def make_model():
    """The project's model and the optimizer every data-path design uses, seeded alike."""
    import torch

    from virnucpro_trainer.model import VirNucProMLP

    torch.manual_seed(SEED)
    model = VirNucProMLP(WIDTH)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    return model, optimizer


def training_task(
    run: Callable[[dict, object, object], dict], modules: Iterable[str] = ()
) -> Callable[[dict], dict]:
    """A child task that trains: `modules` (every module any task of the script uses) are
    imported and the model and optimizer made before the baseline RSS is read, so that it is the
    same for all tasks and no timing includes imports; then run(spec, model, optimizer). Adds
    the baseline, the peak RSS (ru_maxrss, and VmHWM) and the torch thread count."""

    def task(spec: dict) -> dict:
        import torch

        for module in modules:
            importlib.import_module(module)
        model, optimizer = make_model()
        baseline = proc_status_mb("VmRSS")
        result = run(spec, model, optimizer)
        return {
            **result,
            "baseline_rss_mb": baseline,
            "peak_rss_mb": peak_rss_mb(),
            "hwm_mb": proc_status_mb("VmHWM"),
            "threads": torch.get_num_threads(),
        }

    return task


def generate(spec: dict) -> dict:
    """A child task: the demo data set (`ensure_synthetic`, WIDTH wide) of spec["files"] files of
    spec["rows_per_file"] rows under spec["root"], unless it is there already."""
    from virnucpro_trainer.config.schema import SyntheticConfig
    from virnucpro_trainer.data.synthetic import ensure_synthetic

    root = Path(spec["root"])
    synthetic = SyntheticConfig(
        files_per_class=spec["files"] // 2, rows_per_file=spec["rows_per_file"]
    )
    reused = root.exists()
    seconds = timed(ensure_synthetic, root, synthetic, WIDTH)
    return {"reused": reused, "generate_s": seconds}


def data_files(root: Path) -> list:
    """The merged files under `root`, found as a run with the default settings finds them."""
    from virnucpro_trainer.config.schema import TrainConfig
    from virnucpro_trainer.data.files import find_files

    data = TrainConfig().data
    return find_files(root, data.file_glob, data.viral_dir_substring)


def open_demo_store(root: Path, cache_dir: Path, dtype: str = "float32"):
    """The feature store of the data under `root`, opened with the trainer's defaults as a run
    does; built in `cache_dir` (with the default build threads) unless it is there."""
    from virnucpro_trainer.config.schema import TrainConfig
    from virnucpro_trainer.data.store import open_store

    workers = TrainConfig().num_workers
    return open_store(data_files(root), root, cache_dir, WIDTH, dtype, workers)


def store_source(table, **options):
    """A BatchSource over the store `table` on the CPU as a run makes it; `options`:
    memory_budget_bytes, block_rows."""
    import torch

    from virnucpro_trainer.data.batches import BatchSource, Placement

    where = {"mapping": table.mapping, "path": table.features_file}
    cpu = torch.device("cpu")
    return BatchSource(table.features, table.labels, cpu, Placement(**options), **where)
