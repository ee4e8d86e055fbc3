"""Ensembles as a user makes them (issue 26): a seed sweep of train.py, scored by evaluate.py as
one model from its sweep directory, saved as an ensemble file and scored again from it; members
that do not fit together are refused by name, and nothing is written."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from virnucpro_trainer.model import VirNucProMLP

from helpers import ROOT, TINY, evaluate_in_process, run_train

pytestmark = pytest.mark.e2e

CPU = ["device=cpu", "cpu_threads=1"]


def evaluate(cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), *CPU, *overrides],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """Two one-epoch runs of a seed sweep on the tiny demo data: the folder they ran in (the
    sweep directory is `sweep/`)."""
    cwd = tmp_path_factory.mktemp("ensemble")
    run_train(cwd, "--multirun", *TINY, *CPU, "epochs=1", "seed=1,2", "hydra.sweep.dir=sweep")
    return cwd


def rows(path: Path) -> dict[str, float]:
    with open(path) as f:
        return {r["id"]: float(r["prob_viral"]) for r in csv.DictReader(f, delimiter="\t")}


def member_probs(cwd: Path, ids: list[str]) -> np.ndarray:
    """The mean over the sweep's two runs of softmax(model(x))[:, 1], computed here from their
    checkpoints and the data files (no temperature: the runs were not calibrated)."""
    data = {}
    for path in sorted((cwd / "data/synthetic/data_merge").rglob("*_merged.pt")):
        content = torch.load(path, weights_only=True)
        data.update(zip(content["ids"], content["data"], strict=True))
    x = torch.stack([data[i] for i in ids])
    probs = []
    for job in ("0", "1"):
        ckpt = torch.load(cwd / "sweep" / job / "model_fastesm650.pth", weights_only=True)
        model = VirNucProMLP(2048).eval()
        model.load_state_dict(ckpt["model_state_dict"])
        with torch.no_grad():
            probs.append(torch.softmax(model(x).double(), dim=1)[:, 1].numpy())
    return np.mean(probs, axis=0)


def test_a_sweep_directory_scores_as_the_mean_of_its_members(sweep):
    done = evaluate(sweep, "ckpt=sweep", "save_ensemble=true", "hydra.run.dir=ens")
    assert done.returncode == 0, done.stdout + done.stderr
    metrics = json.loads((sweep / "ens/metrics.json").read_text())
    assert metrics["ensemble"]["size"] == 2 and len(metrics["members"]) == 2
    assert [Path(m["path"]).parent.name for m in metrics["members"]] == ["0", "1"]
    assert metrics["subset"] == "test"  # the members share their split: its test side
    card = (sweep / "ens/model_card.md").read_text()
    assert "An ensemble of 2" in card and metrics["members"][1]["sha256"][:16] in card
    found = rows(sweep / "ens/predictions_rows.tsv")
    expected = member_probs(sweep, list(found))
    assert np.abs(np.array(list(found.values())) - expected).max() <= 1e-6
    # the ensemble file scores the same rows to the same probabilities
    root = "data.root=data/synthetic/data_merge"
    again = evaluate(
        sweep, "ckpt=ens/ensemble.pth", root, "labelled=false", "hydra.run.dir=ens_file"
    )
    assert again.returncode == 0, again.stdout + again.stderr
    from_file = rows(sweep / "ens_file/predictions_rows.tsv")
    assert all(from_file[i] == p for i, p in found.items())  # (it scored every row: no split)
    # ... and to the same out-of-distribution p-values: the file carries each member's detector
    ood, ood_file = (
        ood_p(sweep / "ens/predictions_rows.tsv"),
        ood_p(sweep / "ens_file/predictions_rows.tsv"),
    )
    assert all(ood_file[i] == p for i, p in ood.items())


def ood_p(path: Path) -> dict[str, float]:
    with open(path) as f:
        return {r["id"]: float(r["ood_p"]) for r in csv.DictReader(f, delimiter="\t")}


def test_the_ensembles_ood_p_value_is_the_bonferroni_of_its_members(sweep):
    fast = (*TINY[:4], *CPU, "ci.enabled=false", "fraction.n_boot=20")
    found = {}
    for name, ckpt in (("both", "sweep"), ("first", "sweep/0"), ("second", "sweep/1")):
        out = sweep / f"ood_{name}"
        metrics = evaluate_in_process(sweep, out, f"ckpt={ckpt}", *fast)
        assert metrics["ood"]["rows"]["method"] == "combined"
        found[name] = ood_p(out / "predictions_rows.tsv")
    ids = list(found["both"])
    first, second = (np.array([found[k][i] for i in ids]) for k in ("first", "second"))
    expected = np.minimum(1, 2 * np.minimum(first, second))
    assert np.array([found["both"][i] for i in ids]) == pytest.approx(expected, rel=1e-5)
    # each member brought its own detector: they differ
    detectors = [
        torch.load(sweep / f"sweep/{job}/model_fastesm650.pth", weights_only=True)["ood"]
        for job in ("0", "1")
    ]
    a, b = (d["validation"]["input"] for d in detectors)
    assert not torch.equal(a, b)


def test_members_that_do_not_fit_together_are_named_and_nothing_is_written(sweep):
    wide = VirNucProMLP(3328)
    ckpt = torch.load(sweep / "sweep/0/model_fastesm650.pth", weights_only=True)
    metadata = {**ckpt["metadata"], "input_dim": 3328, "protein_dim": 2560}
    torch.save({"model_state_dict": wide.state_dict(), "metadata": metadata}, sweep / "wide.pth")
    done = evaluate(sweep, "ckpt=[sweep/0,wide.pth]", "hydra.run.dir=mixed")
    printed = done.stdout + done.stderr
    assert done.returncode == 1 and "wide.pth has input_dim 3328, but" in printed
    assert not (sweep / "mixed").exists()
    one = evaluate(sweep, "ckpt=sweep/0", "save_ensemble=true", "hydra.run.dir=one")
    assert one.returncode == 1 and "save_ensemble=true needs an ensemble" in one.stdout + one.stderr
    assert not (sweep / "one").exists()
