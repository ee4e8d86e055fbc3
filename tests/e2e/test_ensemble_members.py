"""Ensembles say what they are (issue 35): a sweep directory's failed or missing jobs are named
and too few members refused; a member named twice is refused; an ensemble file scores its
members' common test side; a list of run directories brings their data; a search directory
gives its best trials by the study's objective; the card describes each member by its own
width; a multirun job's card says what the model is."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from virnucpro_trainer.errors import UserError

from helpers import ROOT, TINY, evaluate_in_process, run_train

pytestmark = pytest.mark.e2e

DATA = TINY[:4]  # the tiny demo data, as the runs were trained on it
FAST = ("device=cpu", "cpu_threads=1", "ci.enabled=false", "fraction.n_boot=20")


def evaluate(cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), *FAST, *overrides],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A three-job sweep of one-epoch runs on the tiny demo data whose job 1 fails
    (model.hidden_dim=0 is refused) and whose others differ in width: the folder it ran in."""
    cwd = tmp_path_factory.mktemp("members")
    done = run_train(cwd, "--multirun", *TINY, "epochs=1", "model.hidden_dim=16,0,32",
                     "hydra.sweep.dir=sweep", expect_ok=False)  # fmt: skip
    assert (cwd / "sweep/1/error.txt").is_file(), done.stdout + done.stderr
    assert (cwd / "sweep/2/model_fastesm650.pth").is_file(), done.stdout + done.stderr
    return cwd


def test_a_failed_job_is_named_and_the_card_describes_each_member(sweep):
    done = evaluate(sweep, "ckpt=sweep", "hydra.run.dir=ens")
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed
    assert (
        "1 job(s) left out of the ensemble" in printed
        and f"{sweep / 'sweep/1'}: the job" in printed
    )
    metrics = json.loads((sweep / "ens/metrics.json").read_text())
    assert metrics["ensemble"]["size"] == 2
    (skipped,) = metrics["ensemble"]["skipped"]
    assert skipped["path"] == str(sweep / "sweep/1") and "model.hidden_dim" in skipped["reason"]
    card = (sweep / "ens/model_card.md").read_text()
    assert "Left out of the ensemble (1)" in card and skipped["reason"] in card
    # a mixed-width ensemble: each member by its own width and date (item 6)
    for member, width in zip(metrics["members"], (16, 32), strict=True):
        assert member["hidden_dim"] == width
        assert (
            f"`{member['path']}`: Linear(2048, {width}), trained {member['training_date']}" in card
        )
    # a multirun job's card says what the model is, not "Model card: 0" (item 10)
    first = (sweep / "sweep/0/model_card.md").read_text().splitlines()[0]
    assert first == "# Model card: VirNucPro MLP on fastesm650 embeddings (2048 -> 16 -> 2)"


def test_fewer_members_than_min_members_is_refused_in_one_line(sweep):
    done = evaluate(sweep, "ckpt=sweep", "ensemble.min_members=3", "hydra.run.dir=three")
    printed = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in printed
    assert "gives an ensemble of 2 member(s), fewer than ensemble.min_members=3" in printed
    assert not (sweep / "three").exists()


def test_a_deleted_job_or_model_file_is_named_too(sweep, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(sweep / "sweep", copy)
    shutil.rmtree(copy / "2")  # multirun.yaml still says three jobs
    with pytest.raises(UserError) as err:
        evaluate_in_process(sweep, tmp_path / "a", "ckpt=" + str(copy), *DATA, *FAST)
    message = str(err.value)
    assert "an ensemble of 1 member(s), fewer than ensemble.min_members=2" in message
    assert f"{copy / '2'}: its job directory is missing" in message
    assert f"{copy / '1'}: the job failed" in message
    (copy / "0/model_fastesm650.pth").unlink()
    with pytest.raises(UserError, match=r"/0: no best-model file, though the run finished"):
        evaluate_in_process(sweep, tmp_path / "b", "ckpt=" + str(copy), *DATA, *FAST)


def test_a_member_named_twice_is_refused_naming_both(sweep, tmp_path):
    run = sweep / "sweep/0"
    with pytest.raises(UserError) as err:
        evaluate_in_process(sweep, tmp_path / "twice", f"ckpt=[{run},{run}/model_fastesm650.pth]",
                            *DATA, *FAST)  # fmt: skip
    assert f"ensemble members {run}/model_fastesm650.pth and {run}/model_fastesm650.pth are the " \
        "same model" in str(err.value)  # fmt: skip


def test_an_ensemble_file_scores_its_members_common_test_side(sweep, tmp_path):
    swept = evaluate_in_process(sweep, tmp_path / "swept", "ckpt=sweep", "save_ensemble=true",
                                *DATA, *FAST)  # fmt: skip
    stored = tmp_path / "swept/ensemble.pth"
    again = evaluate_in_process(sweep, tmp_path / "file", f"ckpt={stored}", *DATA, *FAST)
    assert swept["subset"] == again["subset"] == "test"
    assert again["sequences_sha256"] == swept["sequences_sha256"]  # the same rows, not all
    assert again["ensemble"]["skipped"] == swept["ensemble"]["skipped"]
    # members with no split in common: the subset must be given, and the message says why
    for job in ("0", "2"):
        shutil.copy(sweep / f"sweep/{job}/model_fastesm650.pth", tmp_path / f"{job}.pth")
    files = f"ckpt=[{tmp_path / '0.pth'},{tmp_path / '2.pth'}]"
    with pytest.raises(UserError, match="share no split .* Give subset=all"):
        evaluate_in_process(sweep, tmp_path / "loose", files, *DATA, *FAST)


def test_a_list_of_run_directories_brings_their_data(sweep):
    # docs/evaluate.md's example, with no data setting: the runs' own data, their test side
    done = evaluate(sweep, "ckpt=[sweep/0,sweep/2]", "hydra.run.dir=listed")
    assert done.returncode == 0, done.stdout + done.stderr
    metrics = json.loads((sweep / "listed/metrics.json").read_text())
    assert metrics["data_root"] == str(sweep / "data/synthetic/data_merge")
    assert metrics["subset"] == "test" and metrics["ensemble"]["size"] == 2


def test_a_search_directory_gives_its_best_trials_by_the_objective(tmp_path):
    search = ["hparams_search=optuna", "hydra.sweeper.n_trials=3", "hydra/sweeper/pruner=none"]
    search += ["model.hidden_dim=choice(16,32)", "batch_size=choice(64)", "patience=choice(5)"]
    run_train(tmp_path, *search, *TINY, "epochs=1")
    folder = tmp_path / "outputs/search/virnucpro"
    with open(folder / "summary.csv") as f:
        trials = sorted(csv.DictReader(f), key=lambda r: float(r["value"]))  # val_loss: minimised
    metrics = evaluate_in_process(
        tmp_path, tmp_path / "ev", f"ckpt={folder}", "ensemble.top_k=2", *DATA, *FAST
    )
    best = [str(folder / t["trial"]) for t in trials[:2]]
    assert [str(Path(m["path"]).parent) for m in metrics["members"]] == best
    chosen = metrics["ensemble"]["chosen"]
    assert chosen["by"] == "val_loss" and chosen["direction"] == "minimize"
    assert [t["value"] for t in chosen["trials"]] == [float(t["value"]) for t in trials[:2]]
    (left,) = metrics["ensemble"]["skipped"]
    assert left["path"] == str(folder / trials[2]["trial"])
    assert left["reason"].startswith("not among the best 2 by val_loss")
    assert metrics["subset"] == "test"  # the trials share their split
