"""Batches gathered by index: training batches shuffled, seeded and covering every row once;
evaluation batches in row order."""

from __future__ import annotations

import torch

from virnucpro_trainer.data.batches import BatchSource, Placement

CPU = torch.device("cpu")


# batches: each row's single feature is its own index, so a batch shows which rows it holds


def batch_rows(rows, batch_size, seed, **options):
    n = int(rows.max()) + 1
    source = BatchSource(
        torch.arange(n, dtype=torch.float32)[:, None],
        torch.zeros(n).long(),
        CPU,
        Placement(**options),
    )
    gen = torch.Generator().manual_seed(seed)
    return [x[:, 0].long() for x, _ in source.train_batches(rows, batch_size, gen)]


def test_train_batches_cover_every_row_once():
    rows = torch.arange(100, 110)
    batches = batch_rows(rows, 4, seed=0)
    assert [len(b) for b in batches] == [4, 4, 2]
    joined = torch.cat(batches)
    assert sorted(joined.tolist()) == rows.tolist()
    assert joined.tolist() != rows.tolist()  # shuffled


def test_train_batches_seeded():
    rows = torch.arange(50)

    def order(seed):
        return torch.cat(batch_rows(rows, 8, seed)).tolist()

    assert order(3) == order(3)
    assert order(3) != order(4)


def test_train_batches_drop_a_trailing_single_row():
    batches = batch_rows(torch.arange(9), 4, seed=0)
    assert [len(b) for b in batches] == [4, 4]
    assert len(set(torch.cat(batches).tolist())) == 8


def test_eval_batches_keep_row_order_and_labels():
    features = torch.arange(10, dtype=torch.float16)[:, None]
    labels = torch.arange(10) % 2
    source = BatchSource(features, labels, CPU)
    rows = torch.tensor([1, 2, 5, 7, 8])
    out = list(source.eval_batches(rows, 2))
    assert [len(y) for _, y in out] == [2, 2, 1]
    x = torch.cat([b for b, _ in out])
    assert x.dtype == torch.float32  # float16 storage, float32 math
    assert x[:, 0].long().tolist() == rows.tolist()
    assert torch.cat([y for _, y in out]).tolist() == (rows % 2).tolist()
