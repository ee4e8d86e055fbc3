"""`python evaluate.py ckpt=<run directory>` brings the run's own data settings, unless the
command line names any data setting itself."""

from __future__ import annotations

import pytest

from virnucpro_trainer.evaluate.inputs import run_data_overrides

from helpers import TINY, compose_config, train_in_process

pytestmark = pytest.mark.slow  # whole pipelines in-process: not in the fast loop


def test_a_run_directory_brings_its_data_settings(tmp_path, tiny_data, no_figures):
    run_dir = train_in_process(tmp_path, *TINY, "epochs=1", "data.protein_dim=1280")
    argv = run_data_overrides(["evaluate.py", f"ckpt={run_dir}", "subset=test"])
    brought = argv[1:-2]
    assert argv[-2:] == [f"ckpt={run_dir}", "subset=test"]  # the user's, after the run's
    assert f"data.root='{tiny_data.resolve()}'" in brought
    assert "data.synthetic.enabled=true" in brought and "data.protein_dim=1280" in brought
    assert not any("memory_budget_gb" in a or "block_rows" in a for a in brought)
    cfg = compose_config("evaluate", *argv[1:])  # Hydra takes them as they are
    assert cfg.data.root == str(tiny_data.resolve()) and cfg.data.synthetic.files_per_class == 4


def test_data_on_the_command_line_or_no_run_directory_brings_nothing(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for argv in (
        ["evaluate.py", f"ckpt={run_dir}", "data=synthetic"],
        ["evaluate.py", f"ckpt={run_dir}", "data.root=/elsewhere"],
        ["evaluate.py", f"ckpt={tmp_path}/model.pth"],
        ["evaluate.py", f"ckpt={run_dir},{run_dir}"],
        ["evaluate.py", f"ckpt={run_dir}"],  # no best-model file: evaluate_run says so
    ):
        assert run_data_overrides(argv) == argv
