"""The evaluation's report.md and pictures (eval_report.py), from small hand-made levels."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from virnucpro_trainer.atomic import write_json
from virnucpro_trainer.config.evaluate import CallsConfig, FractionConfig
from virnucpro_trainer.evaluate.composition import (
    NO_REFERENCE,
    composition_metrics,
    level_composition,
)
from virnucpro_trainer.evaluate.outputs import labelled_metrics
from virnucpro_trainer.levels import Level
from virnucpro_trainer.reports.evaluation import fmt, write_eval_report

pytestmark = pytest.mark.slow  # whole pipelines in-process: not in the fast loop

PNG = b"\x89PNG\r\n\x1a\n"
# metrics of a level with one class: scikit-learn warns about the confusion matrix's shape
ONE_CLASS = pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")


def level(ids, score, labels, viral=None, size=1, mixed=0) -> Level:
    score = np.asarray(score, dtype=np.float64)
    return Level(
        list(ids),
        score,
        score >= 0.5 if viral is None else np.asarray(viral, dtype=bool),
        np.full(len(ids), size, np.int64),
        None if labels is None else np.asarray(labels, dtype=np.int64),
        mixed,
    )


def rows_level() -> Level:
    ids = [f"r{i}_chunk_1F{i % 3 + 1}" for i in range(8)]
    return level(ids, [0.9, 0.8, 0.3, 0.6, 0.2, 0.4, 0.7, 0.1], [1, 1, 1, 1, 0, 0, 0, 0])


def metrics_for(
    levels: dict[str, Level], stored=0.45, threshold=0.3, loss=0.25, labelled=True
) -> dict:
    """metrics.json as evaluate.py writes it for `levels`, from a checkpoint without validation
    scores (no estimate of the sample's fraction: the report says why)."""
    settings = SimpleNamespace(
        fraction=FractionConfig(n_boot=50),
        calls=CallsConfig(),  # evaluate.py's defaults
        viral_fraction=None,
    )
    found = {
        name: level_composition(lv, np.arange(len(lv.ids)), None, settings)
        for name, lv in levels.items()
    }
    fractions, calls = composition_metrics(found, levels, settings)
    metrics = {
        "estimated_viral_fraction": fractions,
        "calls": calls,
        "checkpoint": "/runs/demo/model_fastesm650.pth",
        "huggingface_model_id": "Synthyra/FastESM2_650",
        "data_root": "/data/other_host",
        "subset": "all",
        "labelled": True,
        "aggregate": "vote",
        "record_pattern": r"^(.+?)_chunk_\d+",
        "counts": {
            "rows": 8,
            "chunks": 4,
            "records": 2,
            "rows_without_frame_suffix": 0,
            "chunks_as_own_record": 1,
        },
    }
    if labelled:
        metrics.update(labelled_metrics(levels, stored, threshold))
        metrics["rows"]["loss"] = loss
    return metrics


def both_classes() -> dict[str, Level]:
    return {
        "rows": rows_level(),
        "chunks": level(
            ["a_chunk_1", "a_chunk_2", "b_chunk_1", "b_chunk_2"],
            [0.95, 0.6, 0.55, 0.2],
            [1, 1, 0, 0],
            viral=[True, True, False, False],
            size=2,
            mixed=1,
        ),
        "records": level(["a", "b"], [1.0, 0.0], [1, 0], size=2),
    }


def test_every_level_gets_pictures_and_its_table(tmp_path):
    levels = both_classes()
    metrics = metrics_for(levels)
    write_eval_report(tmp_path, metrics, levels)

    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# Evaluation report: model_fastesm650.pth\n")
    for text in ("`/runs/demo/model_fastesm650.pth`", "`/data/other_host`", "subset: all"):
        assert text in report
    assert "aggregate: vote" in report and "| chunks as own record | 1 |" in report
    for name in ("rows", "chunks", "records"):
        for picture in (f"roc_pr_{name}", f"calibration_{name}", f"confusion_{name}"):
            assert (tmp_path / f"{picture}.png").read_bytes()[:8] == PNG
            assert f"]({picture}.png)" in report
        block = metrics[name]
        cells = [block[k]["accuracy"] for k in ("predicted", "at_0.5")]
        cells += [block[k]["accuracy"] for k in ("at_stored_threshold", "at_threshold")]
        assert f"| accuracy | {' | '.join(f'{v:.4f}' for v in cells)} |" in report
        assert f"| auroc | {block['predicted']['auroc']:.4f} | | | |" in report
        assert f"{block['units']} units, {block['viral_units']} viral" in report
    assert "| metric | predicted | at 0.5 | at stored threshold 0.4500 | at threshold=0.3000 |" in (
        report
    )
    assert "| loss | 0.2500 | | | |" in report
    assert report.count("| loss |") == 1  # rows only
    assert "n/a" not in report.split("## The sample")[0]  # (no fraction: no validation scores)


@pytest.mark.usefixtures("no_figures")  # looks at report.md only
def test_chunk_table_has_the_right_numbers(tmp_path):
    levels = both_classes()
    write_eval_report(tmp_path, metrics_for(levels, stored=None, threshold=None), levels)
    report = (tmp_path / "report.md").read_text()
    # chunks: own prediction right on all 4; cut at 0.5 it calls b_chunk_1 (0.55, host) viral
    table = "| metric | predicted | at 0.5 |\n|---|---|---|\n| accuracy | 1.0000 | 0.7500 |"
    assert table in report
    assert "| confusion [[TN, FP], [FN, TP]] | [[2, 0], [0, 2]] | [[1, 1], [0, 2]] |" in report
    assert "stored threshold" not in report and "threshold=" not in report


@ONE_CLASS
def test_one_class_and_empty_levels_get_a_note_instead_of_pictures(tmp_path):
    levels = {
        "rows": rows_level(),
        "chunks": level(["a_chunk_1", "a_chunk_2"], [0.9, 0.3], [1, 1]),
        "records": level([], [], []),
    }
    write_eval_report(tmp_path, metrics_for(levels), levels)
    report = (tmp_path / "report.md").read_text()
    assert "Only one class (viral) at this level" in report
    assert not (tmp_path / "roc_pr_chunks.png").exists()
    assert not (tmp_path / "calibration_chunks.png").exists()
    assert (tmp_path / "confusion_chunks.png").read_bytes()[:8] == PNG  # still defined
    assert "| auroc | n/a | | | |" in report  # chunks: one class
    assert "| balanced_accuracy | n/a |" in report
    assert "No units at this level: no metrics and no pictures." in report
    assert not list(tmp_path.glob("*_records.png"))
    assert "0 units, 0 viral" in report
    assert (tmp_path / "roc_pr_rows.png").read_bytes()[:8] == PNG


@ONE_CLASS
@pytest.mark.usefixtures("no_figures")
def test_nan_shows_as_n_a_after_json(tmp_path):
    levels = {"rows": rows_level(), "chunks": level(["c_chunk_1"], [0.2], [0])}
    write_json(tmp_path / "metrics.json", metrics_for(levels, loss=math.nan))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["rows"]["loss"] is None and metrics["chunks"]["predicted"]["auroc"] is None
    write_eval_report(tmp_path, metrics, levels)
    report = (tmp_path / "report.md").read_text()
    assert "| loss | n/a | | | |" in report
    assert "Only one class (non-viral) at this level" in report
    assert "| auroc | n/a | | | |" in report
    assert fmt(None) == fmt(math.nan) == fmt(math.inf) == "n/a" and fmt(0.5) == "0.5000"


def test_unlabelled_data_gets_the_sample_section_only(tmp_path):
    levels = {"rows": level(["x_chunk_1F1"], [0.7], None)}
    metrics = metrics_for(levels, labelled=False)
    write_eval_report(tmp_path, metrics, levels)
    report = (tmp_path / "report.md").read_text()
    assert "## Rows" not in report and "| metric |" not in report  # no metrics without labels
    assert "## The sample: viral fraction and calls" in report
    assert f"| rows | none: {NO_REFERENCE} |" in report
    assert (tmp_path / "score_histograms.png").read_bytes().startswith(PNG)
