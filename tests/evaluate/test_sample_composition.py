"""evaluate/composition.py: the validation reference per level, the calls, the preset's name."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from virnucpro_trainer.evaluate.composition import (
    NO_REFERENCE,
    level_composition,
    preset_name,
    references,
)
from virnucpro_trainer.levels import Level

FRAMES = ("F1", "F2", "F3", "R1", "R2", "R3")


def validation_scores(genomes: int = 12, chunks: int = 4, seed: int = 0) -> dict:
    """A checkpoint's validation_scores: half the genomes viral, logits shifted by class."""
    rng = np.random.default_rng(seed)
    ids, labels, logits = [], [], []
    for g in range(genomes):
        label = g % 2
        for c in range(chunks):
            for frame in FRAMES:
                ids.append(f"G{g}.1_chunk_{c}{frame}")
                labels.append(label)
                logits.append(rng.normal(2.0 if label else -2.0, 1.5))
    return {
        "train_viral_prior": 0.5,
        "ids": "\n".join(ids),
        "labels": torch.tensor(labels, dtype=torch.uint8),
        "logits": torch.tensor(logits, dtype=torch.float32),
        "record_pattern": r"^(.+)_chunk_\d+",
    }


def test_references_build_each_level_by_the_sample_rules():
    refs = references(validation_scores(), temperature=2.0, aggregate="vote")
    assert {k: r.labels.size for k, r in refs.items()} == {"rows": 288, "chunks": 48, "records": 12}
    assert refs["rows"].prior_is_training and refs["rows"].prior == 0.5
    assert refs["rows"].platt is None and refs["chunks"].platt is not None
    assert len(np.unique(refs["chunks"].genomes)) == 12  # chunks resample by their genome
    assert all(r.probs.min() >= 0 and r.probs.max() <= 1 for r in refs.values())
    assert references(None, None, "vote") == {}
    # without a temperature the rows are Platt-scaled too, at the validation's viral share
    rows = references(validation_scores(), temperature=None, aggregate="vote")["rows"]
    assert rows.platt is not None and not rows.prior_is_training


def test_references_refuse_scores_of_different_lengths():
    broken = validation_scores()
    broken["labels"] = broken["labels"][:-1]
    with pytest.raises(ValueError, match="288 ids, 287 labels, 288 logits"):
        references(broken, None, "mean")


def settings(viral_fraction=None, fdr=0.1, min_sequences=1000, method="lfdr", min_bin_hosts=200):
    fraction = SimpleNamespace(n_boot=50, level=0.95, seed=0, min_sequences=min_sequences)
    calls = SimpleNamespace(preset="default", fdr=fdr, method=method, min_bin_hosts=min_bin_hosts)
    return SimpleNamespace(fraction=fraction, calls=calls, viral_fraction=viral_fraction)


def test_a_small_level_is_withheld_but_a_known_fraction_still_gives_calls():
    refs = references(validation_scores(), None, "vote")
    score = np.linspace(0.01, 0.99, 10)
    level = Level([f"s{i}" for i in range(10)], score, score >= 0.5, np.ones(10), None)
    genomes = np.arange(10)
    withheld = level_composition(level, genomes, refs["rows"], settings())
    assert withheld.fraction is None and withheld.called is None
    assert withheld.source == "10 sequences; the estimate needs at least 1000"
    known = level_composition(level, genomes, refs["rows"], settings(viral_fraction=0.2))
    assert known.fraction == 0.2 and known.source == "given (viral_fraction)"
    q = known.numbers.q_value
    assert np.all(np.diff(q[np.argsort(-score)]) >= 0)
    assert (known.called == (q <= 0.1)).all() and known.called[-1]
    none = level_composition(level, genomes, None, settings(viral_fraction=0.2))
    assert none.called is None and none.source == NO_REFERENCE


def test_a_preset_with_another_target_is_custom():
    assert preset_name(SimpleNamespace(preset="relaxed", fdr=0.2)) == "relaxed"
    assert preset_name(SimpleNamespace(preset="default", fdr=0.02)) == "custom"


def test_damaged_validation_scores_are_named_with_the_checkpoint():
    from virnucpro_trainer.errors import UserError
    from virnucpro_trainer.evaluate.composition import compositions

    broken = validation_scores()
    del broken["record_pattern"]
    scoring = SimpleNamespace(validation=broken, temperature=None, path="model.pth")
    with pytest.raises(UserError, match="model.pth: its validation_scores cannot be used"):
        compositions(SimpleNamespace(aggregate="vote"), scoring, {})
