"""Scoring and resampling show a progress bar on a terminal and stay silent otherwise (logs,
files, pipes, CI)."""

from __future__ import annotations

import io
import sys

import numpy as np
import torch

from virnucpro_trainer.data.batches import BatchSource
from virnucpro_trainer.model import VirNucProMLP, predict_scores
from virnucpro_trainer.stats.intervals import genome_intervals


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def work():
    features, labels = torch.randn(64, 8), torch.randint(0, 2, (64,))
    predict_scores(VirNucProMLP(8, 4), BatchSource(features, labels, torch.device("cpu")),
                   torch.arange(64), 16, progress="scoring")  # fmt: skip
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 60)
    genome_intervals(y, rng.random(120), np.arange(120) // 4, n_boot=50)


def test_bars_on_a_terminal_only(monkeypatch):
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    work()
    assert piped.getvalue() == ""
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    work()
    shown = terminal.getvalue()
    assert "scoring" in shown and "resampling genomes" in shown
