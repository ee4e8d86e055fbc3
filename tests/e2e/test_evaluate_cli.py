"""evaluate.py as a real process, on one tiny training run: re-scoring the run's test side
reproduces its test_metrics.json; an old-script checkpoint scores unlabelled files, nested and
flat, into the prediction step's two files; a whole-module pickle is refused; files without
`labels` train and evaluate; a multirun over checkpoints compares them."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from virnucpro_trainer.model import VirNucProMLP
from virnucpro_trainer.runtime import processor

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DATA = [
    "data=synthetic",
    "data.synthetic.files_per_class=4",
    "data.synthetic.rows_per_file=240",
    "data.synthetic.chunks_per_genome=5",
]
CPU = ["device=cpu", "cpu_threads=1"]


def run(script: str, cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, str(ROOT / script), *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def evaluate(cwd: Path, out: str, *overrides: str) -> Path:
    done = run("evaluate.py", cwd, f"hydra.run.dir={out}", *CPU, *overrides)
    assert done.returncode == 0, done.stdout + done.stderr
    return cwd / out


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A two-epoch run on the demo data; returns the folder it ran in (the run is `run/`)."""
    cwd = tmp_path_factory.mktemp("evaluate")
    done = run("train.py", cwd, *DATA, *CPU, "epochs=2", "hydra.run.dir=run")
    assert done.returncode == 0, done.stdout + done.stderr
    return cwd


def test_rescoring_a_runs_test_side_reproduces_its_test_metrics(trained):
    # no data settings: the run directory brings its own; subset: test, as the default says
    out = evaluate(trained, "eval_test", "ckpt=run")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data_root"] == str((trained / "data/synthetic/data_merge").resolve())
    test = json.loads((trained / "run/test_metrics.json").read_text())
    assert metrics["subset"] == "test"
    rows = metrics["rows"]
    assert rows["units"] == test["sequences"] == metrics["counts"]["rows"]
    assert rows["loss"] == pytest.approx(test["loss"], abs=1e-9)
    for name in ("accuracy", "precision", "recall", "f1", "mcc", "auroc", "auprc", "brier"):
        assert rows["at_0.5"][name] == pytest.approx(test[name], abs=1e-9), name
        chosen = test["chosen_threshold"]
        assert rows["at_stored_threshold"][name] == pytest.approx(chosen[name], abs=1e-9), name
    assert rows["at_0.5"]["confusion_matrix"] == test["confusion_matrix"]
    assert metrics["counts"]["chunks"] * 6 == rows["units"]  # the demo data has all six frames
    assert metrics["chunks"]["predicted"]["confusion_matrix"] is not None
    assert metrics["records"]["units"] == metrics["counts"]["records"] > 0
    log = (out / "eval.log").read_text()
    assert log.count("rows    (") == 1
    # where the numbers came from, in both logs
    machine = f"device cpu: {processor()} (1 CPU threads), torch {torch.__version__}"
    assert machine in log and machine in (trained / "run/train.log").read_text()

    before = (out / "metrics.json").read_bytes()
    again = run("evaluate.py", trained, "ckpt=run", "hydra.run.dir=eval_test", *DATA, *CPU)
    assert again.returncode == 1 and "already holds an evaluation's results" in again.stderr
    assert (out / "metrics.json").read_bytes() == before


def unlabelled_copy(trained: Path) -> list[str]:
    """Two demo files without `labels`, one flat and one nested; returns their ids in order."""
    files = sorted((trained / "data/synthetic/data_merge").glob("*/output_0_merged.pt"))
    places = ["unlabelled/a_merged.pt", "unlabelled/deeper/still/b_merged.pt"]
    ids = []
    for source, place in zip(files, places, strict=True):
        content = torch.load(source, weights_only=True)
        del content["labels"]
        (trained / place).parent.mkdir(parents=True, exist_ok=True)
        torch.save({"ids": content["ids"], "data": content["data"]}, trained / place)
        ids += content["ids"]
    return ids


def test_an_old_checkpoint_predicts_unlabelled_files_in_the_drop_in_format(trained):
    best = torch.load(trained / "run/model_fastesm650.pth", weights_only=True)
    minimal = {k: best[k] for k in ("epoch", "model_state_dict", "optimizer_state_dict")}
    torch.save(
        {**minimal, "best_loss": best["best_loss"], "metadata": best["metadata"]},
        trained / "old.pth",
    )
    ids = unlabelled_copy(trained)
    out = evaluate(trained, "eval_unl", "ckpt=old.pth", "labelled=false", "data.root=unlabelled")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["counts"]["rows"] == len(ids) and "rows" not in metrics  # predictions only

    text = (out / "prediction_results.txt").read_bytes().decode()
    lines = text.split("\n")
    assert lines[0] == "Sequence_ID\tPrediction\tscore1\tscore2" and lines[-1] == ""
    model = VirNucProMLP(2048).eval()
    model.load_state_dict(best["model_state_dict"])
    places = ("unlabelled/a_merged.pt", "unlabelled/deeper/still/b_merged.pt")
    data = torch.cat([torch.load(trained / p, weights_only=True)["data"] for p in places])
    with torch.no_grad():
        expected = torch.softmax(model(data), dim=1)[:, 1]
    best_scores: dict[str, list[float]] = {}
    for line, name, p in zip(lines[1:-1], ids, expected.tolist(), strict=True):
        seq, prediction, s1, s2 = line.split("\t")
        assert seq == name and prediction == ("virus" if float(s2) >= float(s1) else "others")
        assert float(s2) == pytest.approx(p, abs=1e-6) and float(s1) + float(s2) == pytest.approx(1)
        top = best_scores.setdefault(name[:-2], [0.0, 0.0])
        top[:] = [max(top[0], float(s1)), max(top[1], float(s2))]

    chunks = (out / "prediction_results_highestscore.csv").read_bytes().decode().split("\n")
    assert chunks[0] == "Modified_ID\tIs_Virus" and chunks[-1] == ""
    assert chunks[1:-1] == [f"{c}\t{s2 >= s1}" for c, (s1, s2) in sorted(best_scores.items())]
    header = (
        "id\tfile\tprob_viral\tviral\tprob_viral_adjusted\tlocal_fdr\tp_value\tq_value\tcall"
        "\trecord_call"
    )
    assert (out / "predictions_rows.tsv").read_text().startswith(header)
    # an old checkpoint has no validation scores: no estimate, with the reason, and NA columns
    assert "no validation scores" in metrics["estimated_viral_fraction"]["rows"]["reason"]
    assert (out / "predictions_rows.tsv").read_text().split("\n")[1].endswith("\tNA" * 6)


def test_a_whole_module_pickle_is_refused(trained):
    torch.save(VirNucProMLP(2048), trained / "300_model.pth")
    done = run(
        "evaluate.py", trained, "ckpt=300_model.pth", "hydra.run.dir=eval_pickle", *DATA, *CPU
    )
    assert done.returncode == 1
    assert (
        "refused to load" in done.stdout and "unpickling arbitrary objects runs code" in done.stdout
    )
    assert "Traceback" not in done.stdout + done.stderr
    assert "this evaluation wrote no results" in done.stderr
    assert not (trained / "eval_pickle").exists()  # a failed evaluation leaves no directory


def test_merged_files_without_labels_train_and_evaluate(trained):
    """The upstream prediction pipeline writes only `ids` and `data`: the class comes from the
    directory, in training and in labelled evaluation."""
    for source in (trained / "data/synthetic/data_merge").glob("*/*_merged.pt"):
        content = torch.load(source, weights_only=True)
        target = trained / "bare/data_merge" / source.parent.name / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"ids": content["ids"], "data": content["data"]}, target)
    done = run(
        "train.py", trained, "data.root=bare/data_merge", *CPU, "epochs=1", "hydra.run.dir=bare_run"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = evaluate(trained, "eval_bare", "ckpt=bare_run", "data.root=bare/data_merge")
    metrics = json.loads((out / "metrics.json").read_text())
    test = json.loads((trained / "bare_run/test_metrics.json").read_text())
    assert metrics["subset"] == "test" and metrics["rows"]["units"] == test["sequences"]
    assert metrics["rows"]["at_0.5"]["f1"] == pytest.approx(test["f1"], abs=1e-9)


def test_two_checkpoints_compared_on_the_same_sequences(trained):
    """--multirun over checkpoints: one summary row per checkpoint, each job's own numbers; a
    checkpoint that cannot be read fails its job, named, and the sweep exits 1."""
    done = run(
        "evaluate.py",
        trained,
        "--multirun",
        "ckpt=run,run/model_fastesm650.pth,missing.pth",
        "subset=all",
        "hydra.sweep.dir=compare",
        *DATA,
        *CPU,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    with (trained / "compare/summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]
    assert "checkpoint not found" in rows[2]["error"] and "missing.pth" in rows[2]["error"]
    for job in rows[:2]:
        metrics = json.loads((trained / "compare" / job["job"] / "metrics.json").read_text())
        assert float(job["rows_auroc"]) == pytest.approx(metrics["rows"]["predicted"]["auroc"])
        assert float(job["records_mcc"]) == pytest.approx(metrics["records"]["predicted"]["mcc"])
        assert int(job["rows"]) == metrics["counts"]["rows"] == 8 * 240
    assert rows[0]["sequences_sha256"] == rows[1]["sequences_sha256"]
    summary = (trained / "compare/summary.md").read_text()
    assert "All 2 finished jobs scored the same sequences (1920 rows)" in summary
    assert "## records" in summary and "**Not finished: jobs 2**" in summary


def test_help_shows_the_evaluation_settings(tmp_path):
    done = run("evaluate.py", tmp_path, "--help")
    out = done.stdout
    assert done.returncode == 0 and "Score a trained VirNucPro checkpoint" in out
    assert "aggregate: vote" in out and "labelled: true" in out and "--multirun ckpt=" in out
    assert "powered by Hydra" not in out and not (tmp_path / "outputs").exists()
    # the config groups it takes, as train.py --help lists its own
    groups = out.split("== Configuration groups (group=option) ==")[1].split("==")[0]
    assert "data: merged, synthetic" in groups
