"""The summary of `evaluate.py --multirun`: one row per job, whether the jobs scored the same
sequences, paired comparisons against the first job, failed and unfinished jobs named (the real
multirun: e2e/test_evaluate_cli.py)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from virnucpro_trainer.data.records import record_codes
from virnucpro_trainer.stats.paired import paired_bootstrap
from virnucpro_trainer.sweeps.evaluation import write_eval_summary

PATTERN = r"^(.+?)_chunk_\d+"
IDS = [f"g{g}_chunk_{c}F1" for g in range(30) for c in range(4)]
LABELS = np.array([int(g < 15) for g in range(30) for _ in range(4)])


def job(sweep, n: int, digest: str | None = None, probs=None, error: str | None = None, **more):
    """A job directory as evaluate.py leaves it: overrides, and metrics.json with the two row
    tables (or error.txt)."""
    folder = sweep / str(n)
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra/overrides.yaml").write_text(f"- ckpt=model_{n}.pth\n")
    if error is not None:
        (folder / "error.txt").write_text(f"Traceback ...\nUserError: {error}\n")
    if digest is None:
        return
    probs = np.full(len(IDS), 0.5) if probs is None else probs
    block = {"predicted": {"accuracy": 0.8, "f1": 0.7, "mcc": 0.5, "auroc": more.get("auroc")}}
    metrics = {
        "checkpoint": f"/abs/model_{n}.pth",
        "subset": "all",
        "aggregate": more.get("aggregate", "vote"),
        "record_pattern": PATTERN,
        "counts": {"rows": len(IDS), "chunks": len(IDS), "records": 30},
        "sequences_sha256": digest,
        "ci": {"n_boot": 200, "level": 0.9, "seed": 3},
        "rows": {**block, "loss": 0.4, **more.get("rows", {})},
        "chunks": block,
        "records": {"units": 30, "predicted": {"accuracy": 1.0, "auroc": None}},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    order = more.get("order", range(len(IDS)))
    rows = ["id\tfile\tlabel\tprob_viral\tviral"]
    rows += [f"{IDS[i]}\tf.pt\t{LABELS[i]}\t{probs[i]:.6f}\t{int(probs[i] >= 0.5)}" for i in order]
    drop_in = ["Sequence_ID\tPrediction\tscore1\tscore2"]
    drop_in += [f"{IDS[i]}\tvirus\t{1 - probs[i]}\t{probs[i]}" for i in order]
    (folder / "predictions_rows.tsv").write_text("\n".join(rows) + "\n")
    (folder / "prediction_results.txt").write_text("\n".join(drop_in) + "\n")


def test_one_row_per_checkpoint_and_the_same_sequences(tmp_path):
    job(tmp_path, 0, "abc", auroc=0.91)
    job(tmp_path, 1, "abc", auroc=0.87)
    assert write_eval_summary(tmp_path) == []
    with (tmp_path / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["checkpoint"] for r in rows] == ["/abs/model_0.pth", "/abs/model_1.pth"]
    assert [r["rows_auroc"] for r in rows] == ["0.91", "0.87"] and rows[0]["rows_loss"] == "0.4"
    summary = (tmp_path / "summary.md").read_text()
    assert "All 2 finished jobs scored the same sequences (120 rows)" in summary
    assert "| 1 | `/abs/model_1.pth` | 120 | 0.8000 | 0.7000 | 0.5000 | 0.8700 |" in summary
    # records: which aggregate made each job's record scores, and no AUROC
    assert "| job | checkpoint | units | aggregate | accuracy |" in summary
    assert "| 0 | `/abs/model_0.pth` | 30 | vote | 1.0000 | n/a |" in summary


def test_paired_comparison_matches_rows_by_id_at_each_stored_threshold(tmp_path):
    rng = np.random.default_rng(0)
    a = np.clip(0.3 * LABELS + 0.7 * rng.random(len(IDS)), 0, 1)
    b = np.clip(0.6 * LABELS + 0.4 * rng.random(len(IDS)), 0, 1)  # clearly better
    stored = {"rows": {"at_stored_threshold": {"threshold": 0.4}}}
    job(tmp_path, 0, "same", a, auroc=0.7)
    job(tmp_path, 1, "same", b, auroc=0.9, order=rng.permutation(len(IDS)), **stored)
    job(tmp_path, 2, "same", a, auroc=0.7)  # job 0's model again
    write_eval_summary(tmp_path)
    (better, itself) = json.loads((tmp_path / "comparisons.json").read_text())["comparisons"]
    assert better["jobs"] == ["0", "1"] and better["thresholds"] == [0.5, 0.4]
    expected = paired_bootstrap(
        LABELS, a, b, record_codes(IDS, PATTERN), 0.5, 0.4, n_boot=200, level=0.9, seed=3
    )
    for metric, m in expected.items():
        assert better["metrics"][metric]["difference"] == pytest.approx(m["difference"])
        assert better["metrics"][metric]["low"] == pytest.approx(m["low"])
    assert better["metrics"]["auroc"]["low"] > 0
    assert all(m["difference"] == m["low"] == m["high"] == 0 for m in itself["metrics"].values())
    assert itself["clustered_mcnemar"]["b"] == itself["clustered_mcnemar"]["c"] == 0
    assert itself["clustered_mcnemar"]["p_value"] == 1.0
    # the row McNemar test only in comparisons.json, labelled with what it assumes
    assert better["row_mcnemar"]["assumes"].startswith("independent fragments")
    summary = (tmp_path / "summary.md").read_text()
    assert "Clustered McNemar test (records as the unit)" in summary
    assert "exact p" not in summary  # the row test is not the summary's test
    assert "## Paired comparisons (rows, each job against job 0)" in summary
    assert "| job 1 minus job 0 | job 0 | job 1 | difference (90% interval, by record) |" in summary


def test_different_sequences_and_failed_jobs_are_said(tmp_path):
    job(tmp_path, 0, "abc", auroc=0.9)
    job(tmp_path, 1, "def", auroc=0.9)
    job(tmp_path, 2, error="checkpoint not found: /x | y")
    (tmp_path / "3").mkdir()  # started, never finished
    assert write_eval_summary(tmp_path) == ["2", "3"]
    summary = (tmp_path / "summary.md").read_text()
    assert "**The jobs scored different sequences**" in summary
    assert "**Not compared: job 1 scored other sequences than job 0**" in summary
    assert "**Not finished: jobs 2, 3**" in summary
    assert "| 2 | `model_2.pth` | failed | UserError: checkpoint not found: /x \\| y |" in summary
    assert "| 3 | `` | unfinished |" in summary
