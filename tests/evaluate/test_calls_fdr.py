"""The conformal calls keep their FDR at the record level where false calls come by whole genome
and the model's tail is calibrated only roughly (issue 33): a small version of
benchmarks/fdr_calls.py, through evaluate.py's own code (levels, compositions)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from omegaconf import OmegaConf

from virnucpro_trainer.config.evaluate import EvalConfig
from virnucpro_trainer.evaluate.assess import make_levels
from virnucpro_trainer.evaluate.composition import compositions

import calls_simulator as sim


@pytest.mark.stat
def test_record_calls_keep_their_fdr_on_heavy_tailed_genomes(caplog):
    caplog.set_level(logging.ERROR)  # a temperature at its edge now and then: said, not wrong
    cfg = OmegaConf.structured(EvalConfig)  # evaluate.py's defaults: conformal, FDR 0.1
    cfg.fraction.n_boot = 20
    fdp, recall = [], []
    for i in range(40):
        rng = np.random.default_rng([33, i])
        scoring = sim.checkpoint(rng, genomes=400)
        rows = sim.sample(rng, 0.2, 1000)
        levels, _ = make_levels(sim.scored(rows, scoring.temperature), sim.PATTERN, cfg.aggregate)
        truth, _ = make_levels(sim.scored(rows, scoring.temperature, True), sim.PATTERN, "vote")
        records = compositions(cfg, scoring, levels)["records"]
        y, called = truth["records"].labels, records.called
        assert records.method == "conformal" and records.conformal.null_share < 1
        fdp.append(np.sum(called & (y == 0)) / max(called.sum(), 1))
        recall.append(np.sum(called & (y == 1)) / y.sum())
    # the FDR holds on average over samples (with its Monte Carlo error), not in every sample
    assert np.mean(fdp) <= 0.1 + 2 * np.std(fdp) / np.sqrt(len(fdp))
    assert np.mean(recall) > 0.5
