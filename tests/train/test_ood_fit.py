"""The out-of-distribution detector's sample of training rows (train/ood_fit.py)."""

from __future__ import annotations

import torch

from virnucpro_trainer.data.batches import BatchSource
from virnucpro_trainer.model import VirNucProMLP
from virnucpro_trainer.train.ood_fit import fit_rows, sample_rows


def test_the_sample_fits_an_eighth_of_the_memory_budget():
    model = VirNucProMLP(input_dim=64, hidden_dim=16)
    labels = torch.zeros(10, dtype=torch.long)
    source = BatchSource(torch.zeros(10, 64), labels, torch.device("cpu"))
    per_row = 4 * (64 + 16)
    assert fit_rows(200_000, model, source, None) == 200_000  # no budget: ood.max_rows
    assert fit_rows(200_000, model, source, 8 * per_row * 5000) == 5000
    assert fit_rows(3000, model, source, 8 * per_row * 5000) == 3000  # max_rows is smaller
    assert fit_rows(200_000, model, source, 8 * per_row * 10) == 1000  # never under 1,000 rows


def test_the_sample_is_seeded_sorted_and_no_larger_than_asked():
    rows = torch.arange(100, 200)
    a, b = sample_rows(rows, 30, seed=1), sample_rows(rows, 30, seed=1)
    assert torch.equal(a, b) and len(a) == 30 and len(set(a.tolist())) == 30
    assert torch.equal(a, torch.sort(a).values) and set(a.tolist()) <= set(rows.tolist())
    assert not torch.equal(a, sample_rows(rows, 30, seed=2))
    assert torch.equal(sample_rows(rows, 500, seed=1), rows)  # fewer rows than asked: all
