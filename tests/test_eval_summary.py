"""The summary of `evaluate.py --multirun`: one row per job, whether the jobs scored the same
sequences, failed and unfinished jobs named (the real multirun: test_evaluate_e2e.py)."""

from __future__ import annotations

import csv
import json

from virnucpro_trainer.eval_summary import write_eval_summary


def job(sweep, n: int, digest: str | None = None, auroc: float = 0.9, error: str | None = None):
    folder = sweep / str(n)
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra/overrides.yaml").write_text(f"- ckpt=model_{n}.pth\n")
    if error is not None:
        (folder / "error.txt").write_text(f"Traceback ...\nUserError: {error}\n")
    if digest is not None:
        block = {"predicted": {"accuracy": 0.8, "f1": 0.7, "mcc": 0.5, "auroc": auroc}}
        metrics = {
            "checkpoint": f"/abs/model_{n}.pth",
            "subset": "all",
            "counts": {"rows": 12, "chunks": 2, "records": 1},
            "sequences_sha256": digest,
            "rows": {**block, "loss": 0.4},
            "chunks": block,
            "records": {"units": 1, "predicted": {"accuracy": 1.0, "auroc": None}},
        }
        (folder / "metrics.json").write_text(json.dumps(metrics))


def test_one_row_per_checkpoint_and_the_same_sequences(tmp_path):
    job(tmp_path, 0, "abc", auroc=0.91)
    job(tmp_path, 1, "abc", auroc=0.87)
    assert write_eval_summary(tmp_path) == []
    with (tmp_path / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["checkpoint"] for r in rows] == ["/abs/model_0.pth", "/abs/model_1.pth"]
    assert [r["rows_auroc"] for r in rows] == ["0.91", "0.87"] and rows[0]["rows_loss"] == "0.4"
    summary = (tmp_path / "summary.md").read_text()
    assert "All 2 finished jobs scored the same sequences (12 rows)" in summary
    assert "| 1 | `/abs/model_1.pth` | 12 | 0.8000 | 0.7000 | 0.5000 | 0.8700 |" in summary
    assert "| 0 | `/abs/model_0.pth` | 1 | 1.0000 | n/a |" in summary  # records: no AUROC


def test_different_sequences_and_failed_jobs_are_said(tmp_path):
    job(tmp_path, 0, "abc")
    job(tmp_path, 1, "def")
    job(tmp_path, 2, error="checkpoint not found: /x | y")
    (tmp_path / "3").mkdir()  # started, never finished
    assert write_eval_summary(tmp_path) == ["2", "3"]
    summary = (tmp_path / "summary.md").read_text()
    assert "**The jobs scored different sequences**" in summary
    assert "**Not finished: jobs 2, 3**" in summary
    assert "| 2 | `model_2.pth` | failed | UserError: checkpoint not found: /x \\| y |" in summary
    assert "| 3 | `` | unfinished |" in summary
