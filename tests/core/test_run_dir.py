"""A directory holding one kind of results (a training run's, an evaluation's) is refused to the
other kind as well as to its own: neither train.py nor evaluate.py writes over the other."""

from __future__ import annotations

import pytest

from virnucpro_trainer.errors import UserError
from virnucpro_trainer.run_dir import EVAL_RESULT, claim


def test_training_refuses_an_evaluations_directory(tmp_path):
    (tmp_path / EVAL_RESULT).write_text("{}")
    with pytest.raises(UserError, match=r"holds an evaluation's results \(metrics.json\)") as err:
        claim(tmp_path, False, "model_fastesm650.pth")
    assert "resume=" not in str(err.value)  # an evaluation cannot be continued
    assert not (tmp_path / ".lock").exists()


def test_evaluation_refuses_a_training_runs_directory(tmp_path):
    (tmp_path / "test_metrics.json").write_text("{}")
    (tmp_path / "model_fastesm650.pth").write_bytes(b"")
    with pytest.raises(UserError, match="holds a training run's results") as err:
        claim(tmp_path, False, EVAL_RESULT, evaluation=True)
    assert "resume=" not in str(err.value)


def test_training_refused_by_a_run_is_told_how_to_resume_it(tmp_path):
    (tmp_path / "test_metrics.json").write_text("{}")
    with pytest.raises(UserError, match="holds a training run's results.*resume="):
        claim(tmp_path, False, "model_fastesm650.pth")
