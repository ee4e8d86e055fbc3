"""Data-path benchmark: the old per-sample DataLoader vs the feature store vs compute alone.

    .venv/bin/python benchmarks/data_path.py [--rows 200000] [--files 40] [--repeats 3]
                                             [--workdir DIR] [--keep]
    .venv/bin/python benchmarks/data_path.py --memory-budget-check [--budget-gb 0.4]

A synthetic data set in the merged-file layout (`ensure_synthetic`, float32, 2048 wide) is generated
once into the work directory and reused while its size stays the same. Three designs train the same
MLP (`VirNucProMLP`, batch 32, SGD lr 2e-4 momentum 0.9, CPU, torch's default thread count) on the
same file-level split (the project's `load_or_make_split` with its default settings):

- OLD: `torch.load` of every file into RAM, a Dataset whose `__getitem__` walks the file list for
  every sample, DataLoader(batch_size=32, shuffle=True, num_workers=W) for training and evaluation;
  W in {0, 1, 2} is chosen once by a short probe (`benchmarks/old_trainer.py`).
- NEW: the trainer's own code with its defaults: `find_files`, `open_store` (float32, or float16
  for NEW f16), `load_or_make_split`, `BatchSource`, `train_epoch`, `predict` (eval batch 4096).
  Cold: the feature cache is emptied first, so the store is built; warm: it is already built.
- FLOOR: the model stepping over contiguous slices of a pre-permuted in-memory random tensor with as
  many rows as the training side: no data path at all.

Every measured run is a fresh child process (the parent never imports torch: on Linux a child's
ru_maxrss starts at its parent's resident size). Each run is a real 2-epoch run: data loading,
2 full epochs over the training files with validation after each, then the test files. From it:
training samples/s (both epochs, minus the first 50 steps), evaluation samples/s (all validation
and test passes), seconds from the start of data loading to the end of the first optimizer step,
the wall time of the whole run from the start of data loading, and peak RSS (ru_maxrss, which
includes the ~0.37 GB Python + torch baseline; DataLoader workers are separate processes sharing
the tensors copy-on-write and are not counted). The OS page cache holds the data files throughout
(the machine has RAM to spare), so "cold" means "the store must be built", not "the disk is cold".
Reported: median (min-max) over --repeats; raw numbers in <workdir>/results.json, child logs in
<workdir>/logs/.

--memory-budget-check builds a float32 store about twice --budget-gb and trains one epoch over all
of it with BatchSource(memory_budget_bytes=budget), with and without block_rows=8192 (and with no
budget, for reference), comparing peak RSS with budget + 0.5 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WIDTH = 2048
BATCH = 32
LR, MOMENTUM = 2e-4, 0.9
SEED = 42
WARMUP_STEPS = 50  # training steps left out of the samples/s figure
PROBE_STEPS = 600  # steps per DataLoader worker count when choosing W for OLD
FLOOR_EVAL_BATCH = 4096  # the trainer's eval_batch_size default
BLOCK_ROWS = 8192
DESIGNS = ("OLD", "NEW", "NEW f16", "FLOOR")
CONTENDED = 0.2  # share of the machine's CPU used by other processes that makes a run redone
DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "virnucpro-data-path-bench"


# ---------------------------------------------------------------- child side (imports torch)
# Everything in this section runs in a child process; torch is imported inside these functions.


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def proc_status_mb(field: str) -> float:
    """VmRSS or VmHWM (this process's own high-water mark) from /proc/self/status, in MB."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


class StepClock:
    """Times optimizer steps through a post-step hook: the first, the `warmup`-th and the last."""

    def __init__(self, optimizer, warmup: int):
        self.warmup, self.steps = warmup, 0
        self.first = self.warm = self.last = None
        optimizer.register_step_post_hook(self._on_step)

    def _on_step(self, *_):
        self.steps += 1
        self.last = time.perf_counter()
        if self.steps == 1:
            self.first = self.last
        if self.steps == self.warmup:
            self.warm = self.last


def make_model():
    """The project's model and the optimizer every design uses, seeded alike."""
    import torch

    from virnucpro_trainer.model import VirNucProMLP

    torch.manual_seed(SEED)
    model = VirNucProMLP(WIDTH)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    return model, optimizer


def old_design(spec: dict, model, optimizer) -> dict:
    """OLD: every file read into RAM, per-sample __getitem__, DataLoaders of 32 (old_trainer.py)."""
    import old_trainer

    root, workers = Path(spec["root"]), spec["workers"]
    split = json.loads(Path(spec["split_json"]).read_text())
    state = {}

    def load():
        names = sorted(split["train_files"] + split["val_files"] + split["test_files"])
        files = dict(zip(names, old_trainer.load_files([root / n for n in names]), strict=True))
        for side in ("train", "val", "test"):
            dataset = old_trainer.OldMergedDataset([files[n] for n in split[f"{side}_files"]])
            state[side] = old_trainer.make_loader(dataset, shuffle=side == "train", workers=workers)

    def train(max_steps=None):
        old_trainer.train_epoch(model, state["train"], optimizer, max_steps)

    def evaluate(side):
        old_trainer.evaluate(model, state[side])
        return len(state[side].dataset)

    return {"load": load, "train": train, "evaluate": evaluate}


def default_split(summary: dict, root: Path, spec: dict, cfg):
    """The trainer's split with its default settings (made once, then loaded)."""
    from virnucpro_trainer.data.split import load_or_make_split

    return load_or_make_split(
        summary,
        root,
        Path(spec["split_dir"]),
        cfg.split.unit,
        cfg.split.test_fraction,
        cfg.split.val_fraction,
        cfg.split.seed,
    )


def new_design(spec: dict, model, optimizer) -> dict:
    """NEW: the trainer's data path with its defaults (TrainConfig), as pipeline.run wires it."""
    import torch

    from virnucpro_trainer.config.schema import TrainConfig
    from virnucpro_trainer.data.batches import BatchSource
    from virnucpro_trainer.data.files import find_files
    from virnucpro_trainer.data.split import SIDES
    from virnucpro_trainer.data.store import open_store
    from virnucpro_trainer.train.loop import predict, train_epoch

    cfg = TrainConfig()
    root = Path(spec["root"])
    shuffle = torch.Generator().manual_seed(cfg.seed)
    state = {}

    def load():
        sources = find_files(root, cfg.data.file_glob, cfg.data.viral_dir_substring)
        table = open_store(
            sources, root, Path(spec["cache_dir"]), WIDTH, spec["dtype"], cfg.num_workers
        )
        split = default_split(table.file_summary(), root, spec, cfg)
        state["rows"] = {side: table.rows_of(split.files[side]) for side in SIDES}
        state["source"] = BatchSource(
            table.features,
            table.labels,
            torch.device("cpu"),
            mapping=table.mapping,
            path=table.features_file,
        )

    def train():
        train_epoch(model, state["source"], state["rows"]["train"], BATCH, optimizer, shuffle)

    def evaluate(side):
        predict(model, state["source"], state["rows"][side], cfg.eval_batch_size)
        return len(state["rows"][side])

    return {"load": load, "train": train, "evaluate": evaluate}


def floor_design(spec: dict, model, optimizer) -> dict:
    """FLOOR: contiguous slices of a pre-permuted random tensor already in memory."""
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(SEED)
    n = spec["rows"]["train"]
    x = torch.randn(n, WIDTH, generator=gen)
    y = torch.randint(0, 2, (n,), generator=gen)
    order = torch.randperm(n, generator=gen)
    x, y = x[order], y[order]
    loss_fn = nn.CrossEntropyLoss()

    def train():
        model.train()
        total = torch.zeros(())
        for start in range(0, n - 1, BATCH):  # a last batch of one row is dropped, as NEW does
            xb, yb = x[start : start + BATCH], y[start : start + BATCH]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(yb)

    @torch.no_grad()
    def evaluate(side):
        model.eval()
        rows = min(spec["rows"][side], n)
        total, probs = torch.zeros(()), []
        for start in range(0, rows, FLOOR_EVAL_BATCH):
            stop = min(start + FLOOR_EVAL_BATCH, rows)
            logits = model(x[start:stop])
            total += nn.functional.cross_entropy(logits, y[start:stop], reduction="sum")
            probs.append(torch.softmax(logits, dim=1)[:, 1])
        torch.cat(probs)
        return rows

    return {"load": lambda: None, "train": train, "evaluate": evaluate}


def measure_run(design: dict, optimizer, train_rows: int) -> dict:
    """Load, train 2 epochs validating after each, evaluate the test side; time every part."""
    warmup = max(1, min(WARMUP_STEPS, train_rows // BATCH // 2))
    clock = StepClock(optimizer, warmup)
    train_s = eval_s = 0.0
    eval_rows = 0
    start = time.perf_counter()
    design["load"]()
    loaded = time.perf_counter()
    for epoch in (1, 2):
        t0 = time.perf_counter()
        design["train"]()
        train_s += time.perf_counter() - (clock.warm if epoch == 1 else t0)
        t0 = time.perf_counter()
        eval_rows += design["evaluate"]("val")
        eval_s += time.perf_counter() - t0
    t0 = time.perf_counter()
    eval_rows += design["evaluate"]("test")
    end = time.perf_counter()
    eval_s += end - t0
    return {
        "load_s": loaded - start,
        "first_step_s": clock.first - start,
        "train_samples_per_s": (2 * train_rows - warmup * BATCH) / train_s,
        "eval_samples_per_s": eval_rows / eval_s,
        "wall_2_epochs_s": end - start,
        "train_rows": train_rows,
        "eval_rows": eval_rows,
    }


def probe_old(spec: dict, model, optimizer) -> dict:
    """A short OLD run with `workers` DataLoader workers: training samples/s after a warm-up."""
    design = old_design(spec, model, optimizer)
    steps = min(WARMUP_STEPS + PROBE_STEPS, spec["rows"]["train"] // BATCH)
    warmup = max(1, min(WARMUP_STEPS, steps // 2))
    clock = StepClock(optimizer, warmup)
    design["load"]()
    design["train"](max_steps=steps)
    return {"train_samples_per_s": (clock.steps - warmup) * BATCH / (clock.last - clock.warm)}


def prepare(spec: dict) -> dict:
    """Generate the data set unless it is there, and make (or load) the default file split."""
    from virnucpro_trainer.config.schema import SyntheticConfig, TrainConfig
    from virnucpro_trainer.data.files import find_files
    from virnucpro_trainer.data.synthetic import ensure_synthetic

    root, cfg = Path(spec["root"]), TrainConfig()
    synthetic = SyntheticConfig(
        files_per_class=spec["files"] // 2, rows_per_file=spec["rows_per_file"]
    )
    reused = root.exists()
    start = time.perf_counter()
    ensure_synthetic(root, synthetic, WIDTH)
    seconds = time.perf_counter() - start
    sources = find_files(root, cfg.data.file_glob, cfg.data.viral_dir_substring)
    if not spec["split"]:
        return {"reused": reused, "generate_s": seconds, "files": len(sources)}
    summary = {s.name: (s.label, spec["rows_per_file"]) for s in sources}
    split = default_split(summary, root, spec, cfg)
    rows = {side: len(names) * spec["rows_per_file"] for side, names in split.files.items()}
    files = {side: len(names) for side, names in split.files.items()}
    return {
        "reused": reused,
        "generate_s": seconds,
        "split_json": str(split.path),
        "rows": rows,
        "files": files,
    }


def budget_train(spec: dict, model, optimizer) -> dict:
    """One epoch over every row of the store, with BatchSource under a memory budget (or none)."""
    import torch

    from virnucpro_trainer.config.schema import TrainConfig
    from virnucpro_trainer.data.batches import BatchSource
    from virnucpro_trainer.data.files import find_files
    from virnucpro_trainer.data.store import open_store
    from virnucpro_trainer.train.loop import train_epoch

    root, cfg = Path(spec["root"]), TrainConfig()
    start = time.perf_counter()
    sources = find_files(root, cfg.data.file_glob, cfg.data.viral_dir_substring)
    table = open_store(sources, root, Path(spec["cache_dir"]), WIDTH, "float32", cfg.num_workers)
    opened = time.perf_counter()
    source = BatchSource(
        table.features,
        table.labels,
        torch.device("cpu"),
        mapping=table.mapping,
        path=table.features_file,
        memory_budget_bytes=spec["budget_bytes"],
        block_rows=spec["block_rows"],
    )
    rows = torch.arange(len(table.labels))
    t0 = time.perf_counter()
    train_epoch(model, source, rows, BATCH, optimizer, torch.Generator().manual_seed(SEED))
    epoch_s = time.perf_counter() - t0
    return {
        "open_s": opened - start,
        "epoch_s": epoch_s,
        "train_samples_per_s": len(rows) / epoch_s,
        "where": source.where,
        "features_mb": table.features.numel() * table.features.element_size() / 2**20,
    }


def child_main(spec: dict) -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    task = spec["task"]
    if task == "prepare":
        result = prepare(spec)
    else:
        # Every module any design uses, imported before the baseline so that it is the same
        # for all designs and no design's timings include imports.
        import old_trainer  # noqa: F401
        import torch

        import virnucpro_trainer.config.schema  # noqa: F401
        import virnucpro_trainer.data.batches  # noqa: F401
        import virnucpro_trainer.data.split  # noqa: F401
        import virnucpro_trainer.data.store  # noqa: F401
        import virnucpro_trainer.train.loop  # noqa: F401

        model, optimizer = make_model()
        baseline = proc_status_mb("VmRSS")
        if task == "budget":
            result = budget_train(spec, model, optimizer)
        elif task == "probe":
            result = probe_old(spec, model, optimizer)
        else:
            build = {"OLD": old_design, "NEW": new_design, "FLOOR": floor_design}[task]
            design = build(spec, model, optimizer)
            result = measure_run(design, optimizer, spec["rows"]["train"])
        result.update(
            baseline_rss_mb=baseline,
            peak_rss_mb=peak_rss_mb(),
            hwm_mb=proc_status_mb("VmHWM"),
            torch_version=torch.__version__,
            threads=torch.get_num_threads(),
        )
    print("RESULT " + json.dumps(result), flush=True)


# ---------------------------------------------------------------- parent side (no torch)


def cpu_seconds() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, CPU seconds of this process and its children)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    mine = sum(
        u.ru_utime + u.ru_stime
        for u in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )
    return busy, mine


def run_child(spec: dict, log_dir: Path, name: str) -> dict:
    """Run one task in a fresh Python process; its log goes to <log_dir>/<name>.log.

    Also returns `other_load`: the share of the machine's CPU time (0-1) used by anything but
    this benchmark while the child ran, a sign of a noisy neighbour.
    """
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    busy0, mine0 = cpu_seconds()
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    busy1, mine1 = cpu_seconds()
    other = max(0.0, (busy1 - busy0) - (mine1 - mine0)) / (seconds * os.cpu_count())
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / f"{name}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        sys.exit(f"{name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return {**json.loads(line[len("RESULT ") :]), "process_s": seconds, "other_load": other}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    meminfo = Path("/proc/meminfo").read_text().split()
    return {
        "cpu": names[0] if names else platform.processor(),
        "cores": len(os.sched_getaffinity(0)),
        "ram_gb": round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1),
        "python": platform.python_version(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def cell(s: dict | None) -> str:
    return "n/a" if s is None else f"{fmt(s['median'])} ({fmt(s['min'])}-{fmt(s['max'])})"


# ---------------------------------------------------------------- the benchmark

# key -> (column title, runs it comes from, result key). OLD and FLOOR runs serve as both cold and
# warm: OLD re-reads every file on every run, FLOOR reads nothing.
METRICS = {
    "train": ("train samples/s", "warm", "train_samples_per_s"),
    "eval": ("eval samples/s", "warm", "eval_samples_per_s"),
    "first_cold": ("first step, cold cache (s)", "cold", "first_step_s"),
    "first_warm": ("first step, warm cache (s)", "warm", "first_step_s"),
    "wall_cold": ("2-epoch wall, cold cache (s)", "cold", "wall_2_epochs_s"),
    "wall_warm": ("2-epoch wall, warm cache (s)", "warm", "wall_2_epochs_s"),
    "rss_cold": ("peak RSS, cold cache (MB)", "cold", "peak_rss_mb"),
    "rss_warm": ("peak RSS, warm cache (MB)", "warm", "peak_rss_mb"),
}

# (what, design, compared with (None: the value itself), metric, comparison, target)
TARGETS = [
    ("NEW training samples/s / FLOOR", "NEW", "FLOOR", "train", ">=", 0.90),
    ("NEW eval samples/s / OLD", "NEW", "OLD", "eval", ">=", 10),
    ("NEW 2-epoch wall / OLD, warm cache", "NEW", "OLD", "wall_warm", "<=", 0.7),
    ("NEW 2-epoch wall / OLD, cold cache", "NEW", "OLD", "wall_cold", "<=", 0.7),
    ("NEW first step, warm cache (s)", "NEW", None, "first_warm", "<=", 1.0),
    ("NEW f16 peak RSS / OLD, warm cache", "NEW f16", "OLD", "rss_warm", "<=", 0.6),
    ("NEW f16 peak RSS / OLD, cold cache", "NEW f16", "OLD", "rss_cold", "<=", 0.6),
]


def report_run(repeat: int, run: dict) -> None:
    say(
        f"  repeat {repeat}  {run['design']:<7} {run['cache']:<4}  "
        f"wall {run['wall_2_epochs_s']:6.1f} s  train {run['train_samples_per_s']:7,.0f}/s  "
        f"eval {run['eval_samples_per_s']:8,.0f}/s  first step {run['first_step_s']:6.2f} s  "
        f"peak {run['peak_rss_mb']:6,.0f} MB  other load {run['other_load']:4.0%}"
    )


def choose_old_workers(common: dict, log_dir: Path) -> tuple[int, dict]:
    """Run a short OLD training probe with 0, 1 and 2 DataLoader workers; take the fastest."""
    rates = {}
    for workers in (0, 1, 2):
        spec = {**common, "task": "probe", "workers": workers}
        probe = run_child(spec, log_dir, f"probe-w{workers}")
        rates[workers] = probe["train_samples_per_s"]
        say(
            f"  OLD probe, num_workers={workers}: {rates[workers]:,.0f} training samples/s"
            f"  other load {probe['other_load']:.0%}"
        )
    return max(rates, key=rates.get), rates


def measured(spec: dict, log_dir: Path, name: str, empty: Path | None = None) -> dict:
    """run_child, once more if a noisy neighbour took over CONTENDED of the CPU meanwhile.

    `empty`: a directory removed before every attempt (the feature cache, for a cold run).
    """
    for attempt in (1, 2):
        if empty is not None:
            shutil.rmtree(empty, ignore_errors=True)
        run = run_child(spec, log_dir, name)
        if run["other_load"] <= CONTENDED or attempt == 2:
            return run
        say(f"  {name}: other processes used {run['other_load']:.0%} of the CPU; once more")


def one_repeat(repeat: int, common: dict, base: Path, workers: int, log_dir: Path) -> list[dict]:
    """Every design once, each in its own process: NEW cold then warm (f32, f16), OLD, FLOOR."""
    runs = []
    for design, dtype in (("NEW", "float32"), ("NEW f16", "float16")):
        cache_dir = base / f"feature_cache-{dtype}"
        spec = {**common, "task": "NEW", "dtype": dtype, "cache_dir": str(cache_dir)}
        # Cold: the cache is emptied, so the run builds the store. Warm: it maps that store.
        for cache, empty in (("cold", cache_dir), ("warm", None)):
            name = f"r{repeat}-{design.replace(' ', '-')}-{cache}"
            runs.append({"design": design, "cache": cache, **measured(spec, log_dir, name, empty)})
            report_run(repeat, runs[-1])
    for design, extra in (("OLD", {"workers": workers}), ("FLOOR", {})):
        spec = {**common, "task": design, **extra}
        run = measured(spec, log_dir, f"r{repeat}-{design}")
        runs.append({"design": design, "cache": "n/a", **run})
        report_run(repeat, runs[-1])
    return runs


def summarize(runs: list[dict]) -> dict:
    """{design: {metric: {median, min, max}}} over the repeats."""
    summary = {}
    for design in DESIGNS:
        summary[design] = {}
        for metric, (_, cache, key) in METRICS.items():
            if design == "FLOOR" and key == "first_step_s":
                continue  # FLOOR loads nothing
            mine = [r for r in runs if r["design"] == design and r["cache"] in (cache, "n/a")]
            summary[design][metric] = spread([r[key] for r in mine])
    return summary


def check_targets(summary: dict) -> list[dict]:
    out = []
    for what, design, other, metric, op, target in TARGETS:
        value = summary[design][metric]["median"]
        if other is not None:
            value /= summary[other][metric]["median"]
        met = value >= target if op == ">=" else value <= target
        out.append({"what": what, "value": value, "target": f"{op} {target}", "met": met})
    return out


def benchmark(args: argparse.Namespace, workdir: Path, log_dir: Path) -> dict:
    rows_per_file = args.rows // args.files
    rows = rows_per_file * args.files
    base = workdir / f"data-{rows}x{args.files}"
    root, split_dir = base / "data_merge", base / "test_set"
    say(f"data set: {rows:,} rows x {WIDTH} float32 in {args.files} files under {root}")
    prep_spec = {"task": "prepare", "root": str(root), "split_dir": str(split_dir)}
    prep_spec.update(files=args.files, rows_per_file=rows_per_file, split=True)
    prep = run_child(prep_spec, log_dir, "prepare")
    how = "reused" if prep["reused"] else "generated"
    say(f"  {how} in {prep['generate_s']:.1f} s; split by file, rows per side {prep['rows']}")
    common = {"root": str(root), "split_dir": str(split_dir)}
    common.update(split_json=prep["split_json"], rows=prep["rows"])
    if args.old_workers is None:
        workers, probe = choose_old_workers(common, log_dir)
    else:
        workers, probe = args.old_workers, {}
    say(f"  OLD uses num_workers={workers}")
    runs = []
    for repeat in range(1, args.repeats + 1):
        runs += one_repeat(repeat, common, base, workers, log_dir)
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    summary = summarize(runs)
    dataset = {"rows": rows, "files": args.files, "width": WIDTH, "gb": rows * WIDTH * 4 / 1e9}
    dataset.update(reused=prep["reused"], generate_s=prep["generate_s"])
    dataset.update(split_rows=prep["rows"], split_files=prep["files"])
    return {
        "dataset": dataset,
        "old_workers": workers,
        "old_worker_probe": probe,
        "summary": summary,
        "targets": check_targets(summary),
        "runs": runs,
    }


def print_benchmark(result: dict, command: str, info: dict) -> None:
    ds, split = result["dataset"], result["dataset"]["split_rows"]
    print("# Data-path benchmark\n")
    print(f"command: `{command}`\n")
    print(
        f"machine: {info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB RAM, Python "
        f"{info['python']}, torch {info['torch']}, {info['threads']} torch threads (torch's "
        "default, not set)\n"
    )
    print(
        f"data: {ds['rows']:,} rows x {ds['width']} float32 ({ds['gb']:.2f} GB) in {ds['files']} "
        f"files; split by file: train {split['train']:,} rows, val {split['val']:,}, test "
        f"{split['test']:,}\n"
    )
    print(
        f"{info['repeats']} repeats; every run is a fresh process doing data loading + 2 full "
        "epochs over the training rows + validation after each + test evaluation\n"
    )
    titles = [title for title, _, _ in METRICS.values()]
    print("| design | " + " | ".join(titles) + " |\n|---|" + "---|" * len(titles))
    for design in DESIGNS:
        name = f"OLD (num_workers={result['old_workers']})" if design == "OLD" else design
        cells = [cell(result["summary"][design].get(metric)) for metric in METRICS]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(
        f"\nmedian (min-max). Training samples/s: both epochs, less the first {WARMUP_STEPS} "
        "steps. Eval samples/s: both validation passes and the test pass (OLD: DataLoader "
        "batches of 32; NEW: predict, batches of 4096; FLOOR: slices of 4096). OLD re-reads "
        "every file on every run, so its cold and warm columns are the same runs; FLOOR loads "
        "nothing (its wall time is compute alone). Peak RSS: ru_maxrss of the run's process, "
        f"including the Python + torch baseline (median {info['baseline_mb']:,.0f} MB)."
    )
    if result["old_worker_probe"]:
        probe = ", ".join(f"W={w}: {r:,.0f}/s" for w, r in result["old_worker_probe"].items())
        print(
            f"\nOLD DataLoader num_workers probe (training samples/s over {PROBE_STEPS} steps): "
            f"{probe}; using W={result['old_workers']}"
        )
    print("\n| target | value | wanted | met |\n|---|---|---|---|")
    for t in result["targets"]:
        print(f"| {t['what']} | {t['value']:.2f} | {t['target']} | {'yes' if t['met'] else 'NO'} |")


# ---------------------------------------------------------------- the memory-budget check


def budget_check(args: argparse.Namespace, workdir: Path, log_dir: Path) -> dict:
    budget = int(args.budget_gb * 2**30)
    rows_per_file = 2 * budget // (WIDTH * 4) // args.files  # features about twice the budget
    rows = rows_per_file * args.files
    base = workdir / f"budget-{rows}x{args.files}"
    root = base / "data_merge"
    say(f"memory-budget data set: {rows:,} rows in {args.files} files under {root}")
    prep_spec = {"task": "prepare", "root": str(root), "files": args.files}
    prep_spec.update(rows_per_file=rows_per_file, split=False)
    run_child(prep_spec, log_dir, "budget-prepare")
    common = {"task": "budget", "root": str(root), "cache_dir": str(base / "feature_cache")}
    build = run_child({**common, "budget_bytes": None, "block_rows": None}, log_dir, "budget-build")
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
            runs.append({"variant": variant, **run_child(spec, log_dir, log_name)})
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
        "rows": rows,
        "features_mb": build["features_mb"],
        "budget_mb": budget / 2**20,
        "limit_mb": (budget + 2**29) / 2**20,
        "where": {r["variant"]: r["where"] for r in runs},
        "summary": summary,
        "runs": runs,
    }


def print_budget(result: dict, command: str, info: dict) -> None:
    print("# Memory-budget check\n")
    print(f"command: `{command}`\n")
    print(
        f"machine: {info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB RAM, torch "
        f"{info['torch']}, {info['threads']} torch threads\n"
    )
    print(
        f"store: {result['rows']:,} rows, {result['features_mb']:,.0f} MB of float32 features; "
        f"budget {result['budget_mb']:,.0f} MB; limit = budget + 0.5 GB = "
        f"{result['limit_mb']:,.0f} MB; one epoch over every row, batch {BATCH}\n"
    )
    print(
        "| variant | batches from | baseline RSS (MB) | peak RSS (MB) | within limit | samples/s |"
    )
    print("|---|---|---|---|---|---|")
    for variant, s in result["summary"].items():
        within = "yes" if s["peak_rss_mb"]["max"] <= result["limit_mb"] else "NO"
        print(
            f"| {variant} | {result['where'][variant]} | {fmt(s['baseline_rss_mb']['median'])} | "
            f"{cell(s['peak_rss_mb'])} | {within} | {cell(s['train_samples_per_s'])} |"
        )
    print(
        "\nbaseline RSS: right after imports and creating the model and optimizer; peak RSS: "
        "ru_maxrss of the run's process; median (min-max) over repeats."
    )


# ---------------------------------------------------------------- entry point


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows in the data set")
    parser.add_argument("--files", type=int, default=40, help="files, half of them per class")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--keep", action="store_true", help="keep data and stores for next time")
    parser.add_argument(
        "--old-workers",
        type=int,
        choices=(0, 1, 2),
        help="OLD's DataLoader workers (default: probe)",
    )
    parser.add_argument("--memory-budget-check", action="store_true")
    parser.add_argument("--budget-gb", type=float, default=0.4, help="GiB, with the check above")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(json.loads(args.child))
        return
    if args.files < 6 or args.files % 2:
        parser.error("--files must be even and at least 6 (the split needs 3 files per class)")
    command = " ".join([sys.executable, *sys.argv])
    workdir = args.workdir.resolve()
    info = machine()
    start = time.perf_counter()
    check = args.memory_budget_check
    result = (budget_check if check else benchmark)(args, workdir, workdir / "logs")
    runs = result["runs"]
    info.update(
        torch=runs[0]["torch_version"],
        threads=", ".join(str(t) for t in sorted({r["threads"] for r in runs})),
        baseline_mb=statistics.median(r["baseline_rss_mb"] for r in runs),
        repeats=args.repeats,
        total_s=time.perf_counter() - start,
        load_average_at_end=[round(v, 2) for v in os.getloadavg()],
        contended_runs=sum(r["other_load"] > 0.1 for r in runs),
    )
    (print_budget if check else print_benchmark)(result, command, info)
    out = workdir / ("budget_results.json" if check else "results.json")
    print(
        f"\ntotal {info['total_s'] / 60:.1f} min; {info['contended_runs']} of {len(runs)} runs "
        "saw other processes use over 10% of the machine's CPU; load average "
        f"{info['load_average_at_start']} at start, {info['load_average_at_end']} at end; "
        f"raw results in {out}"
    )
    out.write_text(json.dumps({"command": command, "machine": info, **result}, indent=2) + "\n")


if __name__ == "__main__":
    main()
