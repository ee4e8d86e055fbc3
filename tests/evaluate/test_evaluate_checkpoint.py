"""Loading checkpoints for scoring (scoring_checkpoint.py) and checking evaluate.py's config, in
this process: minimal v2 checkpoints of both widths, refusals with their reasons."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from virnucpro_trainer.checkpoint import checkpoint_metadata, load_scoring_model
from virnucpro_trainer.config.evaluate import validate_eval
from virnucpro_trainer.data.merged import read_merged
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.evaluate.inputs import check_width, unlabelled_sources
from virnucpro_trainer.model import VirNucProMLP

from helpers import compose_config


def minimal_checkpoint(path: Path, input_dim: int, hidden_dim: int = 16) -> VirNucProMLP:
    """The old training script's form: only the five contract keys."""
    model = VirNucProMLP(input_dim, hidden_dim)
    protein = input_dim - 768
    meta = checkpoint_metadata(768, protein, hidden_dim, 2, "m", f"org/protein-{protein}")
    torch.save(
        {
            "epoch": 3,
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": {},
            "best_loss": 0.5,
            "metadata": meta,
        },
        path,
    )
    return model


@pytest.mark.parametrize("width", [2048, 3328])
def test_a_minimal_checkpoint_loads_as_its_metadata_says(tmp_path, width):
    saved = minimal_checkpoint(tmp_path / "old.pth", width)
    scoring = load_scoring_model(tmp_path / "old.pth")
    assert scoring.input_dim == width
    assert scoring.model.hidden_layer.out_features == 16  # from the metadata, not a config
    assert scoring.stored_threshold is None and scoring.run_dir is None
    assert not scoring.model.training
    for name, tensor in saved.state_dict().items():
        assert torch.equal(scoring.model.state_dict()[name], tensor)


def test_a_run_directory_names_its_checkpoint_in_its_config(tmp_path):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra/config.yaml").write_text("checkpoint_name: best.pth\nseed: 1\n")
    minimal_checkpoint(tmp_path / "best.pth", 2048)
    scoring = load_scoring_model(tmp_path)
    assert scoring.path == tmp_path / "best.pth" and scoring.run_dir == tmp_path
    with pytest.raises(UserError, match="without its best-model file model_fastesm650.pth"):
        load_scoring_model(tmp_path / ".hydra")


def test_a_whole_module_pickle_is_refused_with_the_reason(tmp_path):
    torch.save(VirNucProMLP(2048), tmp_path / "300_model.pth")
    with pytest.raises(UserError) as err:
        load_scoring_model(tmp_path / "300_model.pth")
    message = str(err.value)
    assert "refused to load" in message and "weights_only=True" in message
    assert "runs code" in message and "v2 checkpoint contract" in message


def test_missing_truncated_and_foreign_files_are_refused(tmp_path):
    with pytest.raises(UserError, match="checkpoint not found"):
        load_scoring_model(tmp_path / "nope.pth")
    minimal_checkpoint(tmp_path / "ok.pth", 2048)
    data = (tmp_path / "ok.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="truncated or corrupt"):
        load_scoring_model(tmp_path / "cut.pth")
    torch.save(VirNucProMLP(2048).state_dict(), tmp_path / "bare.pth")
    with pytest.raises(UserError, match="not a checkpoint in the v2 contract"):
        load_scoring_model(tmp_path / "bare.pth")


def test_weights_that_do_not_fit_the_metadata_are_refused(tmp_path):
    minimal_checkpoint(tmp_path / "ok.pth", 2048)
    ckpt = torch.load(tmp_path / "ok.pth", weights_only=True)
    ckpt["metadata"]["hidden_dim"] = 32
    torch.save(ckpt, tmp_path / "bad.pth")
    with pytest.raises(UserError, match="hidden_dim 32"):
        load_scoring_model(tmp_path / "bad.pth")


def test_a_width_mismatch_names_both_widths_and_the_model(tmp_path):
    minimal_checkpoint(tmp_path / "esm3b.pth", 3328)
    scoring = load_scoring_model(tmp_path / "esm3b.pth")
    with pytest.raises(UserError, match=r"2048 numbers wide .* takes 3328 .*org/protein-2560"):
        check_width(scoring, 2048, tmp_path / "x_merged.pt")


def test_the_config_is_checked_before_any_work():
    cfg = compose_config(
        "evaluate", "aggregate=median", "threshold=2", "subset=test", "labelled=false"
    )
    assert compose_config("evaluate").aggregate == "vote"
    with pytest.raises(UserError) as err:
        validate_eval(cfg)
    for text in (
        "ckpt must be",
        "aggregate must be one of",
        "threshold must be in [0, 1]",
        "labelled=true",
    ):
        assert text in str(err.value)


def test_unlabelled_files_are_found_at_any_depth_and_their_labels_ignored(tmp_path):
    rows = {"ids": ["a_chunk_0F1"], "data": torch.zeros(1, 4)}
    (tmp_path / "deep/er").mkdir(parents=True)
    torch.save({**rows, "labels": [1]}, tmp_path / "deep/er/x_merged.pt")
    torch.save(rows, tmp_path / "y_merged.pt")
    sources = unlabelled_sources(tmp_path, "*_merged.pt")
    assert [s.name for s in sources] == ["deep/er/x_merged.pt", "y_merged.pt"]
    assert [read_merged(s, 4).rows for s in sources] == [1, 1]
    with pytest.raises(UserError, match="no files matching"):
        unlabelled_sources(tmp_path / "deep/er/..", "*.nothing")


def test_the_stored_threshold_is_the_explicit_key_then_the_old_place():
    from virnucpro_trainer.checkpoint import stored_threshold

    old = {"test_metrics": {"chosen_threshold": {"threshold": 0.3}}}
    assert stored_threshold(old) == 0.3
    assert stored_threshold({**old, "decision_threshold": {"threshold": 0.4}}) == 0.4
    assert stored_threshold({}) is None
