"""What a sweep or search directory as ckpt= counts on, in this process (issue 35): the jobs
Hydra launched, read back from multirun.yaml, and a search that has no single ranking."""

from __future__ import annotations

import pytest
import yaml

from virnucpro_trainer.errors import UserError
from virnucpro_trainer.evaluate.members import directory_members, launched


def test_the_jobs_a_sweep_launched_are_counted_from_its_overrides():
    task = ["data=synthetic", "seed=1,2,3", "model.dropout=0.1,0.2"]
    hydra = {"sweep": {"subdir": "${hydra.job.num}"}, "overrides": {"task": task}}
    assert launched(hydra) == 6
    hydra["sweeper"] = {"params": {"seed": "1,2"}}  # the command line's seed=1,2,3 wins
    assert launched(hydra) == 6
    hydra["sweep"]["subdir"] = "${hydra.job.override_dirname}"  # not numbered: not counted
    assert launched(hydra) is None


def test_a_missing_job_of_a_sweep_is_named(tmp_path):
    hydra = {"sweep": {"subdir": "${hydra.job.num}"}, "overrides": {"task": ["seed=1,2"]}}
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump({"hydra": hydra}))
    found = directory_members(tmp_path, top_k=5)
    assert found.members == []
    missing = "its job directory is missing (multirun.yaml launched it)"
    assert [s["reason"] for s in found.skipped] == [missing, missing]


def test_a_search_with_several_objectives_is_refused(tmp_path):
    sweeper = {"_target_": "hydra_plugins.virnucpro_sweeper.optuna_sweeper.OptunaSweeper",
               "direction": ["maximize", "minimize"]}  # fmt: skip
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"sweeper": sweeper}}))
    with pytest.raises(UserError, match="several objectives .* no single best trials"):
        directory_members(tmp_path, top_k=5)
