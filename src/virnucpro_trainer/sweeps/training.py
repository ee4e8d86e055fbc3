"""A Hydra callback that summarises a multirun: one row per job, and statistics per metric.

Writes `summary.csv` and `summary.md` in the sweep directory when the sweep ends. A job that failed
(its `error.txt`) or never finished appears with its status, not as a missing row. Each row
also carries the job's `optimized_metric` (what it returned to the sweeper).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path

import yaml

from virnucpro_trainer.reports.tables import fmt_range
from virnucpro_trainer.stats.metrics import SCALAR_METRICS
from virnucpro_trainer.stats.seeds import mean_interval

log = logging.getLogger(__name__)

METRICS = (*SCALAR_METRICS, "loss")


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The sweep's job directories (0, 1, ...), in job order."""
    jobs = [p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    return sorted(jobs, key=lambda p: int(p.name))


def job_start(job: Path) -> dict:
    """A job's number and overrides, and `status=failed` with the last line of its error.txt."""
    path = job / ".hydra/overrides.yaml"
    overrides = (yaml.safe_load(path.read_text()) or []) if path.is_file() else []
    row = {"job": job.name, "overrides": " ".join(overrides)}
    if (job / "error.txt").is_file():
        lines = (job / "error.txt").read_text().strip().splitlines()
        row.update(status="failed", error=lines[-1] if lines else "")
    return row


def sweep_rows(sweep_dir: Path, result: str, fill: Callable[[dict, dict], None]) -> list[dict]:
    """One row per job, in job order: its number, overrides and status (failed, unfinished or ok);
    for an ok job, `fill(row, results)` adds what its `result` JSON file holds."""
    rows = []
    for job in job_dirs(sweep_dir):
        row = job_start(job)
        rows.append(row)
        if "status" in row:  # failed
            continue
        if not (job / result).is_file():
            row["status"] = "unfinished"
            continue
        row["status"] = "ok"
        fill(row, json.loads((job / result).read_text()))
    return rows


def write_rows(
    sweep_dir: Path, rows: list[dict], columns: list[str], title: str
) -> tuple[list[str], list[str]]:
    """Write summary.csv; returns the jobs that did not finish and summary.md's first lines."""
    with (sweep_dir / "summary.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    failed = [r["job"] for r in rows if r["status"] != "ok"]
    lines = [f"# {title}: {len(rows)} jobs, {len(rows) - len(failed)} finished", ""]
    if failed:
        lines += [f"**Not finished: jobs {', '.join(failed)}** (see their error.txt)", ""]
    return failed, lines


def _fill_training(row: dict, test: dict) -> None:
    optimized = test.get("optimized_metric", {})
    row.update(
        best_epoch=test["best_epoch"],
        optimized_metric=optimized.get("name", ""),
        optimized_value=optimized.get("value", ""),
        **{m: test.get(m, math.nan) for m in METRICS},
    )
    for m, (low, high) in test.get("intervals", {}).items():  # None in JSON: NaN
        row[f"{m}_low"], row[f"{m}_high"] = low, high


def job_rows(sweep_dir: Path) -> list[dict]:
    """One row per training job: its test metrics and their intervals."""
    return sweep_rows(sweep_dir, "test_metrics.json", _fill_training)


def statistics_rows(rows: list[dict]) -> list[dict]:
    """Mean, standard deviation (n-1), the t interval of the mean (95%), min and max of each test
    metric over the finished jobs."""
    out = []
    for metric in METRICS:
        values = [r[metric] for r in rows if r["status"] == "ok" and not math.isnan(r[metric])]
        if values:
            m = mean_interval(values, 0.95)
            out.append(
                {
                    "metric": metric,
                    "n": len(values),
                    "mean": m["mean"],
                    "std": m["sd"],
                    "mean_low": m["low"],
                    "mean_high": m["high"],
                    "min": min(values),
                    "max": max(values),
                }
            )
    return out


def job_value(row: dict, metric: str) -> str:
    """`0.9080`, or `0.9080 (0.9010-0.9150)` when the job has an interval for the metric."""
    if f"{metric}_low" not in row:
        return f"{row[metric]:.4f}"
    return f"{row[metric]:.4f} ({fmt_range(row[f'{metric}_low'], row[f'{metric}_high'])})"


def write_summary(sweep_dir: Path) -> list[str]:
    """Write summary.csv and summary.md; returns the jobs that did not finish."""
    rows = job_rows(sweep_dir)
    stats = statistics_rows(rows)
    columns = [
        "job",
        "status",
        "overrides",
        "best_epoch",
        "optimized_metric",
        "optimized_value",
        *METRICS,
        *(f"{m}_{end}" for m in SCALAR_METRICS for end in ("low", "high")),
        "error",
    ]
    failed, lines = write_rows(sweep_dir, rows, columns, "Sweep summary")
    lines += [
        "| test metric | n | mean | 95% interval of the mean | std | min | max |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {s['metric']} | {s['n']} | {s['mean']:.4f} | "
        f"{fmt_range(s['mean_low'], s['mean_high'])} | {s['std']:.4f} | {s['min']:.4f} | "
        f"{s['max']:.4f} |"
        for s in stats
    ]
    lines += [
        "",
        "The interval of the mean is over jobs (t distribution); each job's own intervals "
        "(by source record, in brackets below) say how sure one run's test numbers are.",
        "",
        "| job | status | overrides | returned to the sweeper | test f1 | test auroc | test mcc |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        values = [job_value(r, m) if r["status"] == "ok" else "" for m in ("f1", "auroc", "mcc")]
        returned = ""
        if r["status"] == "ok" and r["optimized_metric"]:
            returned = f"{r['optimized_metric']} {r['optimized_value']:.4f}"
        lines.append(
            f"| {r['job']} | {r['status']} | `{r['overrides']}` | {returned} | "
            f"{' | '.join(values)} |"
        )
    (sweep_dir / "summary.md").write_text("\n".join(lines) + "\n")
    log.info("sweep summary: %s", sweep_dir / "summary.md")
    return failed
