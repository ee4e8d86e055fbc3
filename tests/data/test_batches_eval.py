"""Evaluation batches: read in place when the rows are one aligned range, copied otherwise, into one
reused buffer for predict; always exactly `features[rows]` as float32 and `labels[rows]`, and
predict's scores bit-identical to scoring copies of the rows."""

from __future__ import annotations

import math
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from virnucpro_trainer.data.batches import BatchSource
from virnucpro_trainer.model import VirNucProMLP, predict

CPU = torch.device("cpu")

ROWS = {
    "contiguous": torch.arange(0, 24),
    "spans_batches": torch.arange(5, 30),  # ranges starting mid-batch, a short last batch
    "non_contiguous": torch.tensor([0, 2, 3, 4, 9, 10, 11, 12, 13, 14, 15, 16, 20, 31]),
    # batches whose first and last rows are a range's ends, but whose rows are not that range
    "unsorted": torch.tensor([0, 2, 1, 3, 4, 5, 6, 7, 15, 14, 13, 12, 11, 10, 9, 8]),
    "duplicates": torch.tensor([0, 1, 1, 3, 4, 5, 6, 7, 9, 9, 9]),
    "one_row_batches": torch.tensor([12, 30]),
}


def data(dtype=torch.float32, n=32, width=16):
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(n, width, generator=gen).to(dtype)
    labels = torch.randint(0, 2, (n,), generator=gen)
    labels[::5] = -1  # unlabelled rows
    return features, labels


def batches(source, rows, batch_size, reuse_buffer):
    # with reuse_buffer a batch is valid only until the next: keep copies
    return [
        (x.clone(), y.clone())
        for x, y in source.eval_batches(rows, batch_size, reuse_buffer=reuse_buffer)
    ]


@pytest.mark.parametrize("reuse_buffer", [False, True], ids=["fresh", "reused"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("case", ROWS)
def test_eval_batches_are_the_rows_as_float32(case, dtype, reuse_buffer):
    features, labels = data(dtype)
    rows = ROWS[case]
    batch_size = 1 if case == "one_row_batches" else 8
    out = batches(BatchSource(features, labels, CPU), rows, batch_size, reuse_buffer)
    assert [len(y) for _, y in out] == [len(b) for b in rows.split(batch_size)]
    x = torch.cat([b for b, _ in out])
    assert x.dtype == torch.float32
    assert torch.equal(x, features[rows].float())
    assert torch.equal(torch.cat([y for _, y in out]), labels[rows])


def test_eval_batches_of_no_rows():
    features, labels = data()
    out = list(BatchSource(features, labels, CPU).eval_batches(torch.arange(0), 8))
    assert sum(len(y) for _, y in out) == 0


def test_a_float32_range_is_read_in_place():
    features, labels = data()
    x, y = next(BatchSource(features, labels, CPU).eval_batches(torch.arange(8, 16), 8))
    assert x.data_ptr() == features[8].data_ptr()
    assert torch.equal(y, labels[8:16])


def test_a_misaligned_range_is_copied():
    """Rows of 7 floats: a range starting at row 1 is not 64-byte aligned, so it is copied."""
    features, labels = data(width=7)
    x, _ = next(BatchSource(features, labels, CPU).eval_batches(torch.arange(1, 6), 5))
    assert x.data_ptr() % 64 == 0
    assert torch.equal(x, features[1:6])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_copied_batches_reuse_one_buffer(dtype):
    features, labels = data(dtype)
    rows = torch.arange(0, 32, 2)  # no ranges: every batch is copied
    source = BatchSource(features, labels, CPU)
    pointers = {x.data_ptr() for x, _ in source.eval_batches(rows, 4, reuse_buffer=True)}
    assert len(pointers) == 1


def reference_predict(model, source, rows, batch_size):
    """predict as it scored before batches were read in place: one copy (gather) per batch."""
    model.eval()
    probs, labels, total = [], [], torch.zeros(())
    with torch.no_grad():
        for idx in rows.split(batch_size):
            x, y = source.gather(idx)
            logits = model(x).float()
            total += nn.functional.cross_entropy(logits, y, reduction="sum", ignore_index=-1)
            probs.append(torch.softmax(logits, dim=1)[:, 1])
            labels.append(y)
    return torch.cat(probs).numpy(), torch.cat(labels).numpy(), float(total) / len(rows)


@pytest.mark.parametrize("width", [16, 7])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("case", ["contiguous", "spans_batches", "non_contiguous", "duplicates"])
def test_predict_scores_are_bit_identical(case, dtype, width):
    features, labels = data(dtype, width=width)
    torch.manual_seed(0)
    model = VirNucProMLP(width, hidden_dim=8)
    source = BatchSource(features, labels, CPU)
    rows = ROWS[case]
    probs, y, loss = predict(model, source, rows, 5)
    ref_probs, ref_y, ref_loss = reference_predict(model, source, rows, 5)
    assert np.array_equal(probs, ref_probs)
    assert np.array_equal(y, ref_y) and y.dtype == np.int64
    assert loss == ref_loss and math.isfinite(loss)


def test_predict_of_no_rows():
    features, labels = data()
    model = VirNucProMLP(16, hidden_dim=8)
    probs, y, loss = predict(model, BatchSource(features, labels, CPU), torch.arange(0), 4)
    assert len(probs) == 0 and len(y) == 0 and math.isnan(loss)


def test_eval_speed_benchmark_runs_at_tiny_size(monkeypatch, capsys):
    script = Path(__file__).parents[2] / "benchmarks/eval_speed.py"
    argv = ["--rows", "64", "--width", "16", "--batch-size", "16", "--repeats", "1"]
    monkeypatch.setattr(sys, "argv", [str(script), *argv, "--storage-dtype", "float16"])
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "| subset=all | 64 |" in out and "| subset=test | 6 |" in out
