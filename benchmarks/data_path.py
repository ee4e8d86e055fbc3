"""Data-path benchmark: the old per-sample DataLoader vs the feature store vs compute alone.

    .venv/bin/python benchmarks/data_path.py [--rows 200000] [--files 40] [--repeats 3]
                                             [--workdir DIR] [--keep] [--old-workers W]

A synthetic data set in the merged-file layout (`ensure_synthetic`, float32, 2048 wide) is generated
once into the work directory and reused while its size stays the same. Three designs train the same
MLP (`VirNucProMLP`, batch 32, SGD lr 2e-4 momentum 0.9, CPU, torch's default thread count) on the
same file-level split (the project's `load_or_make_split` with its default settings):

- OLD (`old_trainer.py`): `torch.load` of every file into RAM, a Dataset whose `__getitem__` walks
  the file list for every sample, DataLoader(batch_size=32, shuffle=True, num_workers=W) for
  training and evaluation; W in {0, 1, 2} is chosen once by a short probe.
- NEW (`new_trainer.py`): the trainer's own code with its defaults: `find_files`, `open_store`
  (float32, or float16 for NEW f16), `load_or_make_split`, `BatchSource`, `train_epoch`, `predict`
  (eval batch 4096). Cold: the feature cache is emptied first, so the store is built; warm: it is
  already built.
- FLOOR (`model_floor.py`): the model stepping over contiguous slices of a pre-permuted in-memory
  random tensor with as many rows as the training side: no data path at all.

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

The memory-budget check that used to be `--memory-budget-check` here is
`benchmarks/memory_budget.py --store-check`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    BATCH,
    WIDTH,
    cell,
    child_main,
    data_files,
    generate,
    load_average,
    run_child,
    say,
    spread,
    table,
    training_task,
)

WARMUP_STEPS = 50  # training steps left out of the samples/s figure
PROBE_STEPS = 600  # steps per DataLoader worker count when choosing W for OLD
DESIGNS = ("OLD", "NEW", "NEW f16", "FLOOR")
MODULES = {"OLD": "old_trainer", "NEW": "new_trainer", "FLOOR": "model_floor"}  # design: module
CONTENDED = 0.2  # share of the machine's CPU used by other processes that makes a run redone
DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "virnucpro-data-path-bench"


# ---------------------------------------------------------------- child side (imports torch)
# Everything in this section runs in a child process, which imports torch and the designs.


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


def measure_run(spec: dict, model, optimizer) -> dict:
    """The design spec["task"]: load, train 2 epochs validating after each, evaluate the test
    side; time every part."""
    design = importlib.import_module(MODULES[spec["task"]]).design(spec, model, optimizer)
    train_rows = spec["rows"]["train"]
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
    import old_trainer

    design = old_trainer.design(spec, model, optimizer)
    steps = min(WARMUP_STEPS + PROBE_STEPS, spec["rows"]["train"] // BATCH)
    warmup = max(1, min(WARMUP_STEPS, steps // 2))
    clock = StepClock(optimizer, warmup)
    design["load"]()
    design["train"](max_steps=steps)
    return {"train_samples_per_s": (clock.steps - warmup) * BATCH / (clock.last - clock.warm)}


def prepare(spec: dict) -> dict:
    """Generate the data set unless it is there, and make (or load) the default file split."""
    from new_trainer import default_split

    made = generate(spec)
    root, per_file = Path(spec["root"]), spec["rows_per_file"]
    summary = {s.name: (s.label, per_file) for s in data_files(root)}
    split = default_split(summary, root, Path(spec["split_dir"]))
    rows = {side: len(names) * per_file for side, names in split.files.items()}
    files = {side: len(names) for side, names in split.files.items()}
    return {**made, "split_json": str(split.path), "rows": rows, "files": files}


TASKS = {
    "prepare": prepare,
    "probe": training_task(probe_old, MODULES.values()),
    **dict.fromkeys(MODULES, training_task(measure_run, MODULES.values())),
}


# ---------------------------------------------------------------- parent side (no torch)


def child(spec: dict, log_dir: Path, name: str) -> dict:
    """One task of this script in a fresh process."""
    return run_child(__file__, spec, log_dir, name)


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
        probe = child(spec, log_dir, f"probe-w{workers}")
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
        run = child(spec, log_dir, name)
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
    prep_spec.update(files=args.files, rows_per_file=rows_per_file)
    prep = child(prep_spec, log_dir, "prepare")
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
    print(f"machine: {info['machine']}; torch's default thread count (not set)\n")
    print(
        f"data: {ds['rows']:,} rows x {ds['width']} float32 ({ds['gb']:.2f} GB) in {ds['files']} "
        f"files; split by file: train {split['train']:,} rows, val {split['val']:,}, test "
        f"{split['test']:,}\n"
    )
    print(
        f"{info['repeats']} repeats; every run is a fresh process doing data loading + 2 full "
        "epochs over the training rows + validation after each + test evaluation\n"
    )
    table(
        ["design", *(title for title, _, _ in METRICS.values())],
        (
            [
                f"OLD (num_workers={result['old_workers']})" if design == "OLD" else design,
                *(cell(result["summary"][design].get(metric)) for metric in METRICS),
            ]
            for design in DESIGNS
        ),
    )
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
    print()
    table(
        ["target", "value", "wanted", "met"],
        (
            [t["what"], f"{t['value']:.2f}", t["target"], "yes" if t["met"] else "NO"]
            for t in result["targets"]
        ),
    )


def arguments() -> argparse.ArgumentParser:
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
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser


def main() -> None:
    parser = arguments()
    args = parser.parse_args()
    if args.child:
        child_main(json.loads(args.child), TASKS)
        return
    if args.files < 6 or args.files % 2:
        parser.error("--files must be even and at least 6 (the split needs 3 files per class)")
    command = " ".join([sys.executable, *sys.argv])
    workdir = args.workdir.resolve()
    at_start, start = load_average(), time.perf_counter()
    result = benchmark(args, workdir, workdir / "logs")
    runs = result["runs"]
    info = {
        "machine": runs[0]["machine"],
        "threads": sorted({r["threads"] for r in runs}),
        "baseline_mb": statistics.median(r["baseline_rss_mb"] for r in runs),
        "repeats": args.repeats,
        "total_s": time.perf_counter() - start,
        "load_average_at_start": at_start,
        "load_average_at_end": load_average(),
        "contended_runs": sum(r["other_load"] > 0.1 for r in runs),
    }
    print_benchmark(result, command, info)
    out = workdir / "results.json"
    print(
        f"\ntotal {info['total_s'] / 60:.1f} min; {info['contended_runs']} of {len(runs)} runs "
        "saw other processes use over 10% of the machine's CPU; load average "
        f"{info['load_average_at_start']} at start, {info['load_average_at_end']} at end; "
        f"raw results in {out}"
    )
    out.write_text(json.dumps({"command": command, "machine": info, **result}, indent=2) + "\n")


if __name__ == "__main__":
    main()
