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

import numpy as np

from virnucpro_trainer.atomic import write_json
from virnucpro_trainer.data.records import record_codes
from virnucpro_trainer.levels import LEVELS
from virnucpro_trainer.reports.tables import fmt
from virnucpro_trainer.stats.intervals import DEFAULT_METHOD
from virnucpro_trainer.stats.metrics import SCALAR_METRICS
from virnucpro_trainer.stats.paired import clustered_mcnemar, mcnemar, paired_bootstrap
from virnucpro_trainer.sweeps.training import sweep_rows, write_rows

log = logging.getLogger(__name__)

FIRST = ("job", "status", "overrides", "checkpoint", "huggingface_model_id", "data_root")
SHOWN = ("accuracy", "f1", "mcc", "auroc", "auprc", "brier")  # in summary.md


def _fill_evaluation(row: dict, m: dict) -> None:
    row.update(
        **{k: m.get(k, "") for k in FIRST[3:] + ("subset", "aggregate", "sequences_sha256")},
        **m["counts"],
    )
    for level in LEVELS:
        predicted = m.get(level, {}).get("predicted", {})
        row.update({f"{level}_{k}": predicted.get(k) for k in SCALAR_METRICS if predicted})
    if "rows" in m:
        row["rows_loss"] = m["rows"].get("loss")


def eval_job_rows(sweep_dir: Path) -> list[dict]:
    """One row per job: its counts, and each level's own-prediction metrics (labelled data)."""
    return sweep_rows(sweep_dir, "metrics.json", _fill_evaluation)


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
    failed, lines = write_rows(sweep_dir, rows, columns, "Evaluation sweep")
    if len(failed) < len(rows):
        lines += [same_sequences(rows), ""]
    for level in LEVELS:
        # a record's score depends on the job's aggregate: each row says which it used
        extra = ["aggregate"] if level == "records" else []
        head = ["job", "checkpoint", "units", *extra, *SHOWN]
        lines += [f"## {level}", "", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
        for r in rows:
            if r["status"] == "ok":
                cells = [r["job"], f"`{r['checkpoint']}`", str(r[level])]
                cells += [str(r.get(k, "")) for k in extra]
                cells += [fmt(r.get(f"{level}_{k}")) for k in SHOWN]
            else:  # the checkpoint as given, and why there are no numbers
                given = [o for o in r["overrides"].split() if o.startswith("ckpt=")]
                cells = [r["job"], f"`{given[0][5:] if given else ''}`", r["status"]]
                cells += [r.get("error", "").replace("|", "\\|")]
                cells += [""] * (len(head) - len(cells))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += paired_lines(sweep_dir, rows)
    (sweep_dir / "summary.md").write_text("\n".join(lines))
    log.info("evaluation summary: %s", sweep_dir / "summary.md")
    return failed


def scored_rows(job: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A job's row ids, labels and viral probabilities (full precision, from the drop-in file)."""
    with (job / "predictions_rows.tsv").open() as f:
        table = list(csv.DictReader(f, delimiter="\t"))
    with (job / "prediction_results.txt").open() as f:
        probs = [float(r["score2"]) for r in csv.DictReader(f, delimiter="\t")]
    return [r["id"] for r in table], np.array([int(r["label"]) for r in table]), np.array(probs)


def compare_pair(sweep_dir: Path, a: dict, b: dict) -> dict:
    """Job b against job a on the rows both scored, matched by id: paired cluster-bootstrap
    differences and the clustered McNemar test (genomes as the unit), each model at its own
    stored threshold (else 0.5); the row McNemar test, which assumes independent fragments,
    only in comparisons.json."""
    meta = json.loads((sweep_dir / a["job"] / "metrics.json").read_text())
    ids_a, y, prob_a = scored_rows(sweep_dir / a["job"])
    ids_b, _, prob_b = scored_rows(sweep_dir / b["job"])
    prob_b = prob_b[np.argsort(ids_b)][np.argsort(np.argsort(ids_a))]  # b's rows in a's order
    thresholds = [
        json.loads((sweep_dir / j["job"] / "metrics.json").read_text())["rows"]
        .get("at_stored_threshold", {})
        .get("threshold", 0.5)
        for j in (a, b)
    ]
    ci = meta.get("ci", {})
    settings = {k: ci[k] for k in ("n_boot", "level", "seed") if k in ci}
    settings["method"] = ci.get("method_setting", DEFAULT_METHOD)
    groups = record_codes(ids_a, meta["record_pattern"])
    paired = paired_bootstrap(y, prob_a, prob_b, groups, *thresholds, **settings)
    pred_a, pred_b = prob_a >= thresholds[0], prob_b >= thresholds[1]
    row_test = mcnemar(y, pred_a, pred_b)
    return {
        "jobs": [a["job"], b["job"]],
        "thresholds": thresholds,
        "level": ci.get("level", 0.95),
        "method": settings["method"],
        "metrics": paired,
        "clustered_mcnemar": clustered_mcnemar(y, pred_a, pred_b, groups),
        "row_mcnemar": {**row_test, "assumes": "independent fragments (p too small otherwise)"},
    }


def _difference_cell(m: dict) -> str:
    if m["reason"] is not None:
        return f"{m['difference']:+.4f} (not estimable: {m['reason']})"
    return f"{m['difference']:+.4f} ({m['low']:+.4f} to {m['high']:+.4f})"


def paired_lines(sweep_dir: Path, rows: list[dict]) -> list[str]:
    """Each labelled job against the first, on the same sequences; comparisons.json beside."""
    done = [r for r in rows if r["status"] == "ok" and r.get("rows_auroc") is not None]
    if len(done) < 2:
        return []
    base = done[0]
    lines = [f"## Paired comparisons (rows, each job against job {base['job']})", ""]
    comparisons = []
    for other in done[1:]:
        if other["sequences_sha256"] != base["sequences_sha256"]:
            lines += [
                f"**Not compared: job {other['job']} scored other sequences than job "
                f"{base['job']}** (paired statistics need the same rows).",
                "",
            ]
            continue
        c = compare_pair(sweep_dir, base, other)
        comparisons.append(c)
        t = c["clustered_mcnemar"]
        lines += [
            f"| job {other['job']} minus job {base['job']} | job {base['job']} | job "
            f"{other['job']} | difference ({100 * c['level']:g}% interval, by record) |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {k} | {m['a']:.4f} | {m['b']:.4f} | {_difference_cell(m)} |"
            for k, m in c["metrics"].items()
        ]
        lines += [
            "",
            f"Clustered McNemar test (records as the unit) at thresholds "
            f"{c['thresholds'][0]:.4f} and {c['thresholds'][1]:.4f}: {t['b']} rows only job "
            f"{base['job']} gets right, {t['c']} only job {other['job']}, in {t['genomes']} "
            f"records where they differ; p = {t['p_value']:.3g}.",
            "",
        ]
    write_json(sweep_dir / "comparisons.json", {"comparisons": comparisons})
    return lines
