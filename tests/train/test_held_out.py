"""One scoring pipeline: training's test side (test_metrics.json) is what
`evaluate.py ckpt=<run> subset=test` reports for the same rows, to the last digit, intervals
included (the same seed), calibrated or not, at every level and with the sample's composition."""

from __future__ import annotations

import json

import pytest

from virnucpro_trainer.stats.metrics import SCALAR_METRICS

from helpers import TINY, evaluate_in_process, train_in_process

pytestmark = pytest.mark.slow  # whole pipelines in-process: not in the fast loop

SAME = ("ci.n_boot=50", "ci.seed=3")


@pytest.mark.parametrize("calibration", ["none", "temperature"])
def test_training_reports_what_evaluate_py_reports_on_the_test_side(
    tmp_path, tiny_data, no_figures, calibration
):
    run_dir = train_in_process(
        tmp_path, *TINY, "epochs=1", f"calibration={calibration}", "test_side.composition=true",
        *SAME,
    )  # fmt: skip
    test = json.loads((run_dir / "test_metrics.json").read_text())
    evaluate_in_process(
        tmp_path, tmp_path / "eval", f"ckpt={run_dir}", *TINY[:4], "subset=test", *SAME
    )
    found = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    rows = found["rows"]

    assert test["sequences"] == rows["units"] > 0
    assert test["loss"] == rows["loss"]
    for key in (*SCALAR_METRICS, "confusion_matrix", "intervals", "not_estimable"):
        assert test[key] == rows["at_0.5"][key], key
    assert test["interval_genomes"] == rows["at_0.5"]["interval_genomes"]
    assert set(test["interval_genomes"]) == set(SCALAR_METRICS)
    report = (tmp_path / "eval" / "report.md").read_text()
    assert report.count("How many genomes' worth carry each metric") == 3  # a line per level
    chosen = test["chosen_threshold"]
    assert {k: chosen[k] for k in rows["at_stored_threshold"]} == rows["at_stored_threshold"]
    assert len(test["intervals"]) == len(SCALAR_METRICS)
    assert {k: test["ci"][k] for k in ("n_boot", "level", "seed", "method")} == {
        k: found["ci"][k] for k in ("n_boot", "level", "seed", "method")
    }
    for level in ("chunks", "records"):
        assert test["levels"][level] == found[level], level
    assert test["levels"]["counts"] == found["counts"]
    assert test["estimated_viral_fraction"] == found["estimated_viral_fraction"]
    assert test["calls"] == found["calls"]
    assert (calibration == "temperature") == ("calibration" in test)
    assert found["temperature"] == test.get("calibration", {}).get("temperature")


def test_the_test_side_levels_are_a_setting(tmp_path, tiny_data, no_figures):
    run_dir = train_in_process(tmp_path, *TINY, "epochs=1", "test_side.levels=[rows]")
    test = json.loads((run_dir / "test_metrics.json").read_text())
    assert "levels" not in test and "estimated_viral_fraction" not in test
    assert "intervals" in test["chosen_threshold"]
