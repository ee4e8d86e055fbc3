"""An evaluation writes only into its own directory, writes metrics.json last (it marks a finished
evaluation), and scores labelled data of one class."""

from __future__ import annotations

import shutil

import pytest

from virnucpro_trainer.evaluate import pipeline

from helpers import TINY, compose_train, evaluate_in_process, train_in_process

pytestmark = pytest.mark.slow  # whole pipelines in-process: not in the fast loop

LEVELS = ("rows", "chunks", "records")

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


def read_table(path):
    header, *lines = path.read_text().splitlines()
    return [dict(zip(header.split("\t"), line.split("\t"), strict=True)) for line in lines]


def test_the_sample_composition_is_reported_at_every_level(trained, no_figures):
    tmp_path, run_dir, _ = trained
    out = tmp_path / "eval_composition"
    metrics = evaluate_in_process(
        tmp_path, out, f"ckpt={run_dir}", *DATA, "ci.enabled=false",
        "fraction.min_sequences=20", "fraction.n_boot=50", "calls.method=lfdr",
    )  # fmt: skip
    assert metrics["calls"]["method"] == "lfdr"
    for level in ("rows", "chunks"):
        estimate = metrics["estimated_viral_fraction"][level]
        assert estimate["method"] == "em" and estimate["n_sequences"] == metrics[level]["units"]
        low, high = estimate["interval"]
        assert 0 <= low <= estimate["value"] <= high <= 1
        calls = metrics["calls"][level]
        by = calls["by_preset"]
        assert by["relaxed"] >= by["default"] >= by["conservative"]
        assert calls["called"] == by["default"] and calls["fraction_source"] == "estimated (em)"
    # the records (16 test genomes): fewer than min_sequences=20, so withheld with the reason
    records = metrics["estimated_viral_fraction"]["records"]
    assert records["value"] is None and "at least 20" in records["reason"]
    assert metrics["calls"]["records"]["called"] is None
    # the row table: q-values never fall as the score falls; the call is q <= 0.1
    rows = sorted(read_table(out / "predictions_rows.tsv"), key=lambda r: -float(r["prob_viral"]))
    q = [float(r["q_value"]) for r in rows]
    assert q == sorted(q) and all(0 <= v <= 1 for v in q)
    assert all(r["call"] == str(int(float(r["q_value"]) <= 0.1)) for r in rows)
    assert sum(r["call"] == "1" for r in rows) == metrics["calls"]["rows"]["called"]
    assert read_table(out / "predictions_records.tsv")[0]["q_value"] == "NA"
    # the prediction step's own files keep their exact format
    assert (out / "prediction_results.txt").read_text().split("\n")[0] == (
        "Sequence_ID\tPrediction\tscore1\tscore2"
    )
    assert (
        (out / "prediction_results_highestscore.csv")
        .read_text()
        .startswith("Modified_ID\tIs_Virus\n")
    )
    assert "## The sample: viral fraction and calls" in (out / "report.md").read_text()


def test_a_known_fraction_and_a_checkpoint_without_validation_scores(trained, no_figures):
    import torch

    from virnucpro_trainer.evaluate.composition import NO_REFERENCE

    tmp_path, run_dir, root = trained
    given = evaluate_in_process(
        tmp_path, tmp_path / "eval_known", f"ckpt={run_dir}", *DATA, "ci.enabled=false",
        "viral_fraction=0.3", "calls.fdr=0.02",
    )  # fmt: skip
    assert given["calls"]["preset"] == "custom" and given["calls"]["target_fdr"] == 0.02
    assert given["calls"]["rows"]["viral_fraction"] == 0.3
    assert given["calls"]["rows"]["fraction_source"] == "given (viral_fraction)"
    # the 480 test rows are fewer than 1,000: the estimate itself is withheld, with the reason
    assert "the estimate needs at least 1000" in given["estimated_viral_fraction"]["rows"]["reason"]
    old = tmp_path / "old.pth"
    obj = torch.load(next(run_dir.glob("*.pth")), weights_only=True)
    del obj["validation_scores"]
    torch.save(obj, old)
    metrics = evaluate_in_process(
        tmp_path, tmp_path / "eval_old", f"ckpt={old}", f"data.root={root}", "ci.enabled=false",
        "viral_fraction=0.3",
    )  # fmt: skip
    assert metrics["rows"]["units"] > 0  # still scored
    assert metrics["estimated_viral_fraction"]["rows"]["reason"] == NO_REFERENCE
    assert metrics["calls"]["rows"] == {
        "viral_fraction": None, "fraction_source": NO_REFERENCE, "called": None,
        "conformal": None, "reason": NO_REFERENCE,
    }  # fmt: skip


def test_conformal_calls_at_every_level_with_the_record_call_beside(trained, no_figures):
    tmp_path, run_dir, _ = trained
    out = tmp_path / "eval_conformal"
    metrics = evaluate_in_process(
        tmp_path, out, f"ckpt={run_dir}", *DATA, "ci.enabled=false",
        "fraction.min_sequences=20", "fraction.n_boot=50",
    )  # fmt: skip
    calls = metrics["calls"]
    assert calls["method"] == "conformal" and calls["target_fdr"] == 0.1
    tables = {level: read_table(out / f"predictions_{level}.tsv") for level in LEVELS}
    for level in LEVELS:
        block, table = calls[level], tables[level]
        hosts = block["conformal"]["validation_hosts"]
        assert hosts == sum(b["hosts"] for b in block["conformal"]["size_bins"]) > 0
        p = [float(r["p_value"]) for r in table]
        assert all(0.99999 / (hosts + 1) <= v <= 1 for v in p)  # (6 digits in the table)
        assert all(r["call"] == str(int(float(r["q_value"]) <= 0.1)) for r in table)
        assert sum(r["call"] == "1" for r in table) == block["called"]
        assert block["by_preset"]["relaxed"] >= block["by_preset"]["conservative"]
        # BH's q-values never fall as the p-value rises
        q = [float(r["q_value"]) for r in sorted(table, key=lambda r: float(r["p_value"]))]
        assert q == sorted(q)
    # rows and chunks: the fraction is estimated (Storey's null share 1 - it); the 16 records
    # have none (plain BH), and their few validation hosts cannot reach FDR 0.1: said so
    assert calls["rows"]["conformal"]["null_share"] == pytest.approx(
        1 - calls["rows"]["viral_fraction"]
    )
    records = calls["records"]
    assert records["viral_fraction"] is None and records["conformal"]["null_share"] == 1.0
    assert records["called"] == 0 and "too few validation host units" in records["reason"]
    # each chunk and row carries its record's call beside its own
    record_call = {r["record"]: r["call"] for r in tables["records"]}
    for level, unit in (("chunks", "chunk"), ("rows", "id")):
        columns = list(tables[level][0])
        assert columns.index("record_call") == columns.index("call") + 1
        assert all(r["record_call"] == record_call[r[unit].split("_chunk_")[0]]
                   for r in tables[level])  # fmt: skip
    assert "record_call" not in tables["records"][0]
    report = (out / "report.md").read_text()
    assert "conformal p-values against the validation's host units" in report
    assert "too few validation host units" in report
    assert "(default, conformal)" in (out / "model_card.md").read_text()
