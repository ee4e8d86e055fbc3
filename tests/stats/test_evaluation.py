"""Evaluation: every metric against scikit-learn, the threshold chosen on validation only, and a
group split end to end."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from sklearn import metrics as skm
from torch import nn

from virnucpro_trainer.config.schema import TrainConfig
from virnucpro_trainer.data.batches import BatchSource
from virnucpro_trainer.data.table import FeatureTable
from virnucpro_trainer.stats.metrics import choose_threshold, classification_metrics
from virnucpro_trainer.train.held_out import HeldOutSettings, score_held_out

from helpers import genomes_across_files, train_in_process

Y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 0])
P = np.array([0.1, 0.4, 0.35, 0.8, 0.7, 0.9, 0.2, 0.6, 0.55, 0.45])


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.65])
def test_every_metric_matches_scikit_learn(threshold):
    m = classification_metrics(Y, P, threshold)
    pred = (threshold <= P).astype(int)
    (tn, fp), (fn, tp) = skm.confusion_matrix(Y, pred).tolist()
    assert m["confusion_matrix"] == [[tn, fp], [fn, tp]]
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(Y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(Y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(Y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(Y, pred))
    assert m["specificity"] == pytest.approx(tn / (tn + fp))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(Y, pred))
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(Y, pred))
    assert m["auroc"] == pytest.approx(skm.roc_auc_score(Y, P))
    assert m["auprc"] == pytest.approx(skm.average_precision_score(Y, P))
    assert m["brier"] == pytest.approx(np.mean((P - Y) ** 2))


def at_every_threshold(y: np.ndarray, p: np.ndarray, metric: str) -> np.ndarray:
    """`metric` when predicting viral at p >= t, for each distinct t in p, counted directly (all
    at once: classification_metrics per threshold takes ~10 s here). 0 where undefined, as
    scikit-learn gives."""
    pred = p[None, :] >= np.unique(p)[:, None]
    tp, fp = (pred & (y == 1)).sum(1), (pred & (y == 0)).sum(1)
    fn, tn = (~pred & (y == 1)).sum(1), (~pred & (y == 0)).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = {
            "f1": 2 * tp / (2 * tp + fp + fn),
            "mcc": (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)),
            "balanced_accuracy": (tp / (tp + fn) + tn / (tn + fp)) / 2,
        }[metric]
    return np.nan_to_num(value)


@pytest.mark.parametrize("metric", ["f1", "mcc", "balanced_accuracy"])
def test_chosen_threshold_is_the_best_one(metric):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.35 * y + 0.65 * rng.random(300), 0, 1)
    chosen = choose_threshold(y, p, metric)
    best = at_every_threshold(y, p, metric).max()
    assert classification_metrics(y, p, chosen)[metric] == pytest.approx(best)


class FirstTwoColumns(nn.Module):
    """A 'model' whose logits are the first two features, so probabilities are set by the data."""

    def forward(self, x):
        return x[:, :2]


def logits_for(prob: np.ndarray) -> np.ndarray:
    """Features whose softmax over the first two columns gives `prob` for class 1."""
    return np.stack([np.zeros_like(prob), np.log(prob / (1 - prob))], axis=1)


def test_threshold_comes_from_validation_and_never_from_test(tmp_path):
    # validation is best split at 0.3; test alone would prefer 0.8
    val_p, val_y = np.array([0.2, 0.25, 0.35, 0.4, 0.9, 0.95]), np.array([0, 0, 1, 1, 1, 1])
    test_p, test_y = np.array([0.4, 0.6, 0.7, 0.85, 0.9, 0.3]), np.array([0, 0, 0, 1, 1, 0])
    features = torch.tensor(logits_for(np.concatenate([val_p, test_p])), dtype=torch.float32)
    labels = torch.tensor(np.concatenate([val_y, test_y]))
    table = FeatureTable(
        features,
        labels,
        ["v/val.pt", "h/test.pt"],
        np.array([0, 6, 12]),
        [[f"val{i}" for i in range(6)], [f"test{i}" for i in range(6)]],
    )
    rows = {"train": torch.arange(6), "val": torch.arange(6), "test": torch.arange(6, 12)}
    source = BatchSource(features, labels, torch.device("cpu"))

    predictions = tmp_path / "test_predictions.tsv"
    settings = HeldOutSettings.from_config(OmegaConf.structured(TrainConfig))
    settings.ood.method = "none"  # a stand-in model, with no hidden layer to fit a detector on
    test = score_held_out(
        FirstTwoColumns(), source, rows, table, predictions, settings, tmp_path / "m.pth"
    ).metrics

    cut = test["chosen_threshold"]["threshold"]
    assert cut == pytest.approx(choose_threshold(val_y, val_p))
    assert cut != pytest.approx(choose_threshold(test_y, test_p))
    assert test["chosen_threshold"]["chosen_on"] == "validation"
    assert test["chosen_threshold"]["f1"] == pytest.approx(
        skm.f1_score(test_y, (test_p >= cut).astype(int))
    )
    assert test["f1"] == pytest.approx(skm.f1_score(test_y, (test_p >= 0.5).astype(int)))
    with (tmp_path / "test_predictions.tsv").open() as f:
        rows_out = list(csv.DictReader(f, delimiter="\t"))
    assert [r["id"] for r in rows_out] == [f"test{i}" for i in range(6)]
    assert {r["file"] for r in rows_out} == {"h/test.pt"}
    assert [float(r["prob_viral"]) for r in rows_out] == pytest.approx(test_p, abs=1e-6)


@pytest.mark.slow  # the whole training pipeline, in-process
@pytest.mark.usefixtures("no_figures")  # report.md is written all the same
def test_group_split_end_to_end_puts_no_genome_on_two_sides(tmp_path, caplog):
    caplog.set_level("INFO")
    genomes_across_files(tmp_path / "data_merge", 2048, genomes=10, chunks=6)
    common = ("data.root=data_merge", "device=cpu", "epochs=2", "split.test_fraction=0.2")
    run_dir = train_in_process(tmp_path, *common, "split=group")
    split = json.loads((run_dir / "split.json").read_text())
    assert split["unit"] == "group"
    assert split["leakage"]["train_test"]["shared_records"] == 0
    assert split["leakage"]["train_val"]["shared_records"] == 0
    assert "train/test leakage: 0 source records" in caplog.text
    with (run_dir / "test_predictions.tsv").open() as f:
        tested = {row["id"].split("_chunk_")[0] for row in csv.DictReader(f, delimiter="\t")}
    assert tested == set(split["test_records"])
    assert not tested & set(split["train_records"]) and not tested & set(split["val_records"])
    assert "source records" in (run_dir / "report.md").read_text()
