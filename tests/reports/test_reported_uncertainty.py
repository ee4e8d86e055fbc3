"""What a training run reports about uncertainty, cutoffs and calibration, run in this process on
the demo data: intervals by source record, calibration=temperature end to end, ci.enabled=false."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from scipy.special import logit

from virnucpro_trainer.stats.calibration import apply_temperature

from helpers import TINY, compose_train, evaluate_in_process, train_in_process

pytestmark = pytest.mark.slow  # whole pipelines in-process: not in the fast loop


def outputs(run_dir):
    test = json.loads((run_dir / "test_metrics.json").read_text())
    ckpt = torch.load(run_dir / "model_fastesm650.pth", weights_only=True)
    probs = np.loadtxt(run_dir / "test_predictions.tsv", skiprows=1, usecols=3, dtype=float)
    return test, ckpt, probs, (run_dir / "report.md").read_text()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_data_once):
    cwd = tmp_path_factory.mktemp("calibration")
    shutil.copytree(tiny_data_once, cwd / compose_train(*TINY).data.root)  # not generated again
    plain = train_in_process(cwd, *TINY, "ci.n_boot=200")
    calibrated = train_in_process(cwd, *TINY, "ci.n_boot=200", "calibration=temperature")
    return cwd, plain, calibrated


@pytest.fixture(scope="module")
def plain_and_calibrated(runs):
    return outputs(runs[1]), outputs(runs[2])


def test_temperature_scaling_end_to_end(plain_and_calibrated):
    (test0, _, probs0, _), (test, ckpt, probs, report) = plain_and_calibrated
    c = test["calibration"]
    assert c["method"] == "temperature" and c["fitted_on"] == "validation"
    assert ckpt["temperature"] == c["temperature"] > 0
    # the same model (same seed), its logits rescaled: numbers changed, ranking metrics exactly
    # the same (they rank by the logits, which calibration never touches)
    inner = (probs0 > 1e-3) & (probs0 < 1 - 1e-3)  # the file's 6 decimals allow a logit here
    rescaled = apply_temperature(logit(probs0[inner]), c["temperature"])
    assert np.allclose(probs[inner], rescaled, atol=1e-5)
    assert test["auroc"] == test0["auroc"] and test["auprc"] == test0["auprc"]
    assert test["chosen_threshold"]["auroc"] == test0["auroc"]
    assert c["ece_before"] == pytest.approx(test0["ece"]) and c["brier_before"] == pytest.approx(
        test0["brier"], abs=1e-6
    )
    assert "## Calibration\n" in report and f"T = {c['temperature']:.4f}" in report
    assert "calibration" not in test0 and "## Calibration\n" not in plain_and_calibrated[0][3]


def test_intervals_hold_their_estimate_and_cutoffs_come_from_validation(plain_and_calibrated):
    (test, ckpt, _, report), _ = plain_and_calibrated
    for metric, (low, high) in test["intervals"].items():
        if metric in test["not_estimable"]:  # null in JSON, with the reason
            assert low is None and high is None and test["not_estimable"][metric], metric
        else:
            assert low <= test[metric] <= high, metric
    assert test["ci"]["n_boot"] == 200 and test["ci"]["unit"] == "source record"
    assert test["cutoffs"]["chosen_on"] == "validation" and test["cutoffs"]["target_fdr"] == 0.05
    assert ckpt["cutoffs"] == test["cutoffs"]
    rows = test["cutoffs"]["table"]
    thresholds = [r["threshold"] for r in rows if r["threshold"] is not None]
    assert thresholds == sorted(thresholds, reverse=True)  # rarer viruses need a higher cutoff
    assert "In brackets: 95% intervals from a studentized cluster bootstrap" in report
    genomes = ", ".join(f"{m} {v:.1f}" for m, v in test["interval_genomes"].items())
    assert "How many genomes' worth carry each metric" in report and genomes in report
    assert test["ci"]["method_setting"] == "studentized"


@pytest.mark.usefixtures("tiny_data", "no_figures")
def test_intervals_can_be_turned_off(tmp_path):
    run_dir = train_in_process(tmp_path, *TINY, "epochs=1", "ci.enabled=false")
    test, _, _, report = outputs(run_dir)
    assert "intervals" not in test and "ci" not in test and "In brackets" not in report


def test_evaluate_applies_the_stored_temperature_and_gives_intervals_per_level(runs):
    cwd, _, calibrated = runs
    test, *_ = outputs(calibrated)
    data = [a for a in TINY if a.startswith("data")]
    m = evaluate_in_process(cwd, cwd / "eval", f"ckpt={calibrated}", "ci.n_boot=200", *data)
    assert m["subset"] == "test" and m["temperature"] == test["calibration"]["temperature"]
    assert m["rows"]["at_0.5"]["auroc"] == pytest.approx(test["auroc"], abs=1e-9)
    assert m["rows"]["at_stored_threshold"]["f1"] == pytest.approx(test["chosen_threshold"]["f1"])
    assert m["rows"]["predicted"]["intervals"]["auroc"] == pytest.approx(
        test["intervals"]["auroc"], abs=1e-6
    )  # the same rows, records and resampling seed
    for level in ("chunks", "records"):
        low, high = m[level]["predicted"]["intervals"]["accuracy"]
        assert low <= m[level]["predicted"]["accuracy"] <= high
    assert "(" in (cwd / "eval/report.md").read_text().split("| accuracy |")[1].split("\n")[0]
