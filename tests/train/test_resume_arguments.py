"""resume=<run directory> becomes that run's own overrides, its directory, and resume= again."""

from __future__ import annotations

import fcntl

import pytest

from virnucpro_trainer.entry import hydra_quote
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.run_dir import LAST, LOCK
from virnucpro_trainer.train.resume import config_differences, resume_arguments


def test_resuming_a_search_trial_continues_that_one_run(tmp_path):
    # as one run with its own values: neither a search nor reporting to the trial again
    trial = tmp_path / "search/virnucpro/0"
    (trial / ".hydra").mkdir(parents=True)
    (trial / ".hydra/overrides.yaml").write_text(
        "- optimizer.lr=0.001\n- hparams_search=optuna\n- data=synthetic\n- trial.number=0\n"
        "- trial.storage='/s/optuna.journal'\n"
    )
    (trial / LAST).parent.mkdir()
    (trial / LAST).write_bytes(b"")
    argv = resume_arguments(["train.py", f"resume={trial}"])
    assert argv == [
        "train.py",
        "optimizer.lr=0.001",
        "data=synthetic",
        f"hydra.run.dir={hydra_quote(str(trial))}",
        f"resume={hydra_quote(str(trial))}",
    ]


def test_resume_accepts_the_directory_with_or_without_hydras_quotes(tmp_path):
    run = tmp_path / "josé's run=1"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra/overrides.yaml").write_text("- data=synthetic\n")
    (run / LAST).parent.mkdir()
    (run / LAST).write_bytes(b"")
    quoted = hydra_quote(str(run))
    expected = ["train.py", "data=synthetic", f"hydra.run.dir={quoted}", f"resume={quoted}"]
    assert resume_arguments(["train.py", f"resume={run}"]) == expected
    assert resume_arguments(["train.py", f"resume={quoted}"]) == expected
    assert resume_arguments(["train.py", f'resume="{run}"']) == expected


def test_a_run_another_process_holds_is_refused_before_its_files_are_read(tmp_path):
    """The holder's Hydra may be rewriting .hydra/overrides.yaml at that moment: reading it first
    once gave the defaults and a misleading 'settings differ' refusal."""
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra/overrides.yaml").write_text("")  # as while Hydra rewrites it
    (run / LAST).parent.mkdir(exist_ok=True)
    (run / LAST).write_bytes(b"")
    with (run / LOCK).open("w") as held:  # another open file: flock conflicts as across processes
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242\n")
        held.flush()
        with pytest.raises(UserError, match=r"in use by another train.py process \(pid 4242\)"):
            resume_arguments(["train.py", f"resume={run}"])
    assert resume_arguments(["train.py", f"resume={run}"])[-1] == f"resume={hydra_quote(str(run))}"


def test_tracker_settings_never_block_a_resume_but_results_settings_do():
    """A run saved before the trackers existed had logger.name; today's config has one switch per
    tracker. Neither changes results, so resuming it (and adding logger=mlflow) is allowed."""
    saved = {"logger": {"name": "tensorboard", "dir": "tensorboard"}, "optimizer": {"lr": 2e-4}}
    requested = {
        "logger": {"tensorboard": True, "mlflow": True, "wandb": False, "dir": "tb"},
        "optimizer": {"lr": 1e-3},
    }
    assert config_differences(saved, requested) == ["optimizer.lr: 0.0002 -> 0.001"]


def test_a_finished_run_is_not_resumed(tmp_path):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra/overrides.yaml").write_text("- data=synthetic\n")
    (run / LAST).parent.mkdir()
    (run / LAST).write_bytes(b"")
    (run / "test_metrics.json").write_text("{}")
    with pytest.raises(UserError, match="this run has finished .*nothing is left to continue"):
        resume_arguments(["train.py", f"resume={run}"])
