"""A Hydra callback that compares the checkpoints of `python evaluate.py --multirun ckpt=a,b,...`:
one row per job (checkpoint) with each level's metrics, and whether every job scored the same
sequences (`sequences_sha256` in each metrics.json), so that the numbers compare like for like.

Writes `summary.csv` and `summary.md` in the sweep directory; a failed job (its `error.txt`)
appears with its error, and the sweep then exits with status 1.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from virnucpro_trainer.levels import LEVELS
from virnucpro_trainer.metrics import SCALAR_METRICS
from virnucpro_trainer.sweep_summary import job_dirs, job_start, report_failed

log = logging.getLogger(__name__)

FIRST = ("job", "status", "overrides", "checkpoint", "huggingface_model_id", "data_root")
SHOWN = ("accuracy", "f1", "mcc", "auroc", "auprc", "brier")  # in summary.md


def eval_job_rows(sweep_dir: Path) -> list[dict]:
    """One row per job: its counts, and each level's own-prediction metrics (labelled data)."""
    rows = []
    for job in job_dirs(sweep_dir):
        row = job_start(job)
        rows.append(row)
        if "status" in row:  # failed
            continue
        if not (job / "metrics.json").is_file():
            row.update(status="unfinished")
            continue
        m = json.loads((job / "metrics.json").read_text())
        row.update(
            status="ok",
            **{k: m.get(k, "") for k in FIRST[3:] + ("subset", "aggregate", "sequences_sha256")},
            **m["counts"],
        )
        for level in LEVELS:
            predicted = m.get(level, {}).get("predicted", {})
            row.update({f"{level}_{k}": predicted.get(k) for k in SCALAR_METRICS if predicted})
        if "rows" in m:
            row["rows_loss"] = m["rows"].get("loss")
    return rows


def _cell(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def same_sequences(rows: list[dict]) -> str:
    """A sentence saying whether the finished jobs scored the same sequences."""
    done = [r for r in rows if r["status"] == "ok"]
    digests = {r.get("sequences_sha256") for r in done}
    if len(digests) <= 1:
        return f"All {len(done)} finished jobs scored the same sequences ({done[0]['rows']} rows)."
    return (
        "**The jobs scored different sequences** (different data or subsets): their numbers "
        "are not a comparison on the same sequences."
    )


def write_eval_summary(sweep_dir: Path) -> list[str]:
    """Write summary.csv and summary.md; returns the jobs that did not finish."""
    rows = eval_job_rows(sweep_dir)
    columns = list(dict.fromkeys(k for r in rows for k in r if k != "error")) + ["error"]
    columns = [c for c in FIRST if c in columns] + [c for c in columns if c not in FIRST]
    with (sweep_dir / "summary.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    failed = [r["job"] for r in rows if r["status"] != "ok"]
    lines = [f"# Evaluation sweep: {len(rows)} jobs, {len(rows) - len(failed)} finished", ""]
    if failed:
        lines += [f"**Not finished: jobs {', '.join(failed)}** (see their error.txt)", ""]
    if len(failed) < len(rows):
        lines += [same_sequences(rows), ""]
    for level in LEVELS:
        lines += [f"## {level}", "", "| job | checkpoint | units | " + " | ".join(SHOWN) + " |"]
        lines.append("|---" * (3 + len(SHOWN)) + "|")
        for r in rows:
            if r["status"] == "ok":
                cells = [r["job"], f"`{r['checkpoint']}`", str(r[level])]
                cells += [_cell(r.get(f"{level}_{k}")) for k in SHOWN]
            else:  # the checkpoint as given, and why there are no numbers
                given = [o for o in r["overrides"].split() if o.startswith("ckpt=")]
                cells = [r["job"], f"`{given[0][5:] if given else ''}`", r["status"]]
                cells += [r.get("error", "").replace("|", "\\|")] + [""] * (len(SHOWN) - 1)
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    (sweep_dir / "summary.md").write_text("\n".join(lines))
    log.info("evaluation summary: %s", sweep_dir / "summary.md")
    return failed


class EvalSweepSummary(Callback):
    """Writes the comparison when the multirun ends; exits with status 1 if any job failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        report_failed(write_eval_summary(sweep_dir), sweep_dir)
