"""resume=<run directory> becomes that run's own overrides, its directory, and resume= again."""

from __future__ import annotations

from virnucpro_trainer.resume import hydra_quote, resume_arguments
from virnucpro_trainer.training_state import LAST


def test_resuming_a_search_trial_continues_that_one_run(tmp_path):
    trial = tmp_path / "multirun/0"
    (trial / ".hydra").mkdir(parents=True)
    (trial / ".hydra/overrides.yaml").write_text(
        "- optimizer.lr=0.001\n- hparams_search=optuna\n- data=synthetic\n"
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
