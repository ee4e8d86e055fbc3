"""Every JSON file the project writes is valid JSON for any parser: an undefined metric is null,
never a bare NaN or Infinity token (which Python's json module writes and reads by default, but
JavaScript, jq and most other languages refuse)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from virnucpro_trainer.atomic import write_json
from virnucpro_trainer.config.schema import TrainConfig
from virnucpro_trainer.data.batches import BatchSource
from virnucpro_trainer.data.table import FeatureTable
from virnucpro_trainer.train.held_out import HeldOutSettings, score_held_out

from helpers import TINY, evaluate_in_process, train_in_process

pytestmark = pytest.mark.slow  # whole pipelines in-process: not in the fast loop


def strict_load(path: Path):
    def refuse(token):
        raise ValueError(f"{path}: {token} is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_write_json_turns_undefined_numbers_into_null(tmp_path):
    path = tmp_path / "out.json"
    write_json(path, {"a": math.nan, "b": [math.inf, -math.inf], "c": np.float32(0.5), "d": (1,)})
    assert strict_load(path) == {"a": None, "b": [None, None], "c": 0.5, "d": [1]}


class FirstTwoColumns(nn.Module):
    def forward(self, x):
        return x[:, :2]


def test_test_metrics_of_a_one_class_test_side_are_valid_json(tmp_path):
    # validation has both classes; the test side only viral rows: AUROC and specificity undefined
    prob = np.array([0.2, 0.3, 0.7, 0.8, 0.6, 0.9, 0.95, 0.4])
    y = np.array([0, 0, 1, 1, 1, 1, 1, 1])
    features = torch.tensor(
        np.stack([np.zeros_like(prob), np.log(prob / (1 - prob))], axis=1), dtype=torch.float32
    )
    labels = torch.tensor(y)
    names = ["v/val.pt", "v/test.pt"]
    ids = [[f"g{i}_chunk_0F1" for i in range(4)], [f"t{i}_chunk_0F1" for i in range(4)]]
    table = FeatureTable(features, labels, names, np.array([0, 4, 8]), ids)
    rows = {"train": torch.arange(4), "val": torch.arange(4), "test": torch.arange(4, 8)}
    source = BatchSource(features, labels, torch.device("cpu"))
    settings = HeldOutSettings.from_config(OmegaConf.structured(TrainConfig))
    settings.ood.method = "none"  # a stand-in model, with no hidden layer to fit a detector on
    scores = score_held_out(
        FirstTwoColumns(), source, rows, table, tmp_path / "p.tsv", settings, tmp_path / "m.pth"
    )
    test = scores.metrics
    assert math.isnan(test["auroc"])
    write_json(tmp_path / "test_metrics.json", test)
    loaded = strict_load(tmp_path / "test_metrics.json")
    assert loaded["auroc"] is None and loaded["recall"] == pytest.approx(test["recall"])


def test_every_json_of_a_run_and_an_evaluation_is_valid(tmp_path, tiny_data, no_figures):
    run_dir = train_in_process(tmp_path, *TINY)
    evaluate_in_process(
        tmp_path, tmp_path / "eval", f"ckpt={run_dir}", *TINY[:4], "device=cpu", "ci.n_boot=50"
    )
    written = sorted(tmp_path.rglob("*.json"))
    names = {p.name for p in written}
    assert {"test_metrics.json", "split.json", "metrics.json"} <= names
    for path in written:
        strict_load(path)
