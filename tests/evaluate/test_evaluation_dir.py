"""An evaluation writes only into its own directory, writes metrics.json last (it marks a finished
evaluation), and scores labelled data of one class."""

from __future__ import annotations

import shutil

import pytest

from virnucpro_trainer.evaluate import pipeline

from helpers import TINY, compose_train, evaluate_in_process, train_in_process

DATA = TINY[:4]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_data_once):
    """One one-epoch run on the tiny demo data for this module: (its folder, its run directory,
    the data root)."""
    cwd = tmp_path_factory.mktemp("evaluation_dir")
    root = cwd / compose_train(*TINY).data.root
    shutil.copytree(tiny_data_once, root)
    return cwd, train_in_process(cwd, *TINY, "epochs=1"), root


def files_under(root):
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_nothing_is_written_outside_the_evaluation_directory(trained, no_figures):
    tmp_path, run_dir, tiny_data = trained
    unlabelled = tmp_path / "to_predict"
    shutil.copytree(tiny_data, unlabelled)
    before = files_under(tmp_path)
    out = tmp_path / "eval_labelled"
    evaluate_in_process(tmp_path, out, f"ckpt={run_dir}", *DATA, "ci.n_boot=50")
    out2 = tmp_path / "eval_unlabelled"
    evaluate_in_process(
        tmp_path, out2, f"ckpt={run_dir}", "labelled=false", f"data.root={unlabelled}"
    )
    after = files_under(tmp_path)
    outside = {p for p in after if out not in p.parents and out2 not in p.parents}
    assert outside == set(before), sorted(map(str, outside ^ set(before)))
    assert all(after[p] == before[p] for p in before)  # nothing rewritten either
    assert not (out2 / ".feature_store").exists()  # no scratch store left behind


def test_metrics_json_is_written_after_every_prediction_file(trained, monkeypatch):
    tmp_path, run_dir, _ = trained

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # as Ctrl-C while the last prediction file is written

    monkeypatch.setattr(pipeline, "write_highest_score", interrupted)
    out = tmp_path / "eval_interrupted"
    with pytest.raises(KeyboardInterrupt):
        evaluate_in_process(tmp_path, out, f"ckpt={run_dir}", *DATA, "ci.enabled=false")
    assert (out / "predictions_rows.tsv").is_file() and not (out / "metrics.json").exists()


def test_labelled_data_of_one_class_is_scored(trained, no_figures):
    tmp_path, run_dir, tiny_data = trained
    viral_only = tmp_path / "viral_only"
    for folder in tiny_data.iterdir():
        if folder.is_dir() and "viral" in folder.name:
            shutil.copytree(folder, viral_only / folder.name)
    assert any(viral_only.iterdir())
    metrics = evaluate_in_process(
        tmp_path,
        tmp_path / "eval_viral",
        f"ckpt={run_dir}",
        f"data.root={viral_only}",
        "ci.n_boot=50",
    )
    rows = metrics["rows"]
    assert metrics["subset"] == "all" and rows["viral_units"] == rows["units"] > 0
    assert 0 <= rows["at_0.5"]["recall"] <= 1  # the number a viral-only set is scored for
    assert rows["predicted"]["auroc"] != rows["predicted"]["auroc"]  # NaN: undefined
