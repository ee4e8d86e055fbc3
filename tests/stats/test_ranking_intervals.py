"""An interval belongs to the value beside it: AUROC and AUPRC are reported from the logits, so
their resamples rank by the logits too. On over-confident logits, whose float32 probabilities
tie at exactly 1.0, intervals ranked by the probabilities excluded their own values (issue 33);
and calibration, which never reorders rows, cannot move them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from virnucpro_trainer.config.schema import CIConfig
from virnucpro_trainer.stats.calibration import apply_temperature
from virnucpro_trainer.stats.interval_block import interval_blocks
from virnucpro_trainer.stats.metrics import SCALAR_METRICS, classification_metrics


def saturated(genomes: int = 2000, seed: int = 0):
    """Labels, float32 softmax probabilities, logits and genomes of an over-confident model:
    about a third of the probabilities exactly 1.0 (genome sizes log-uniform, 2 to 60)."""
    rng = np.random.default_rng(seed)
    sizes = np.exp(rng.uniform(np.log(2), np.log(60), genomes)).astype(int)
    genome = np.repeat(np.arange(genomes), sizes)
    viral = rng.random(genomes) < 0.5
    y = viral[genome].astype(np.int64)
    z = 20.0 * ((2 * y - 1) + rng.normal(0, 1, genomes)[genome] + rng.normal(0, 1, len(y)))
    logits = torch.tensor(np.stack([np.zeros_like(z), z], 1), dtype=torch.float32)
    probs = torch.softmax(logits, 1)[:, 1].numpy().astype(np.float64)
    return y, probs, z, genome


def test_the_case_is_saturated():
    _, probs, z, _ = saturated()
    assert np.mean(probs == 1.0) > 0.3 and len(np.unique(z)) == len(z)


@pytest.mark.parametrize("method", ["studentized", "bca", "percentile"])
def test_every_interval_contains_its_value(method):
    y, probs, z, genome = saturated()
    ci = CIConfig(n_boot=100, method=method)
    cuts = [probs >= 0.5]
    ((block,), _) = interval_blocks(y, probs, genome, cuts, ci, ranking=z)
    value = classification_metrics(y, probs, ranking=z)
    for metric in SCALAR_METRICS:
        low, high = block["intervals"][metric]
        if metric in block["not_estimable"]:
            continue
        assert low <= value[metric] <= high, (metric, low, value[metric], high)
    assert "auroc" not in block["not_estimable"] and "auprc" not in block["not_estimable"]


def test_ranking_by_the_probabilities_would_exclude_the_value():
    # what the intervals did before: the check above is one that can fail
    y, probs, z, genome = saturated()
    ((block,), _) = interval_blocks(y, probs, genome, [probs >= 0.5], CIConfig(n_boot=100))
    value = classification_metrics(y, probs, ranking=z)
    outside = [
        m for m in ("auroc", "auprc")
        if not block["intervals"][m][0] <= value[m] <= block["intervals"][m][1]
    ]  # fmt: skip
    assert outside


def test_calibration_leaves_the_ranking_intervals_as_they_are():
    y, probs, z, genome = saturated()
    ci = CIConfig(n_boot=100)
    calibrated = apply_temperature(z, 3.0)
    ((before,), _) = interval_blocks(y, probs, genome, [probs >= 0.5], ci, ranking=z)
    ((after,), _) = interval_blocks(y, calibrated, genome, [calibrated >= 0.5], ci, ranking=z)
    for metric in ("auroc", "auprc"):
        assert before["intervals"][metric] == after["intervals"][metric]
    assert before["intervals"]["brier"] != after["intervals"]["brier"]
