"""FLOOR: the model alone, stepping over contiguous slices of a pre-permuted random tensor already
in memory, with as many rows as the training side: no data path at all. The floor under the old
and the new data path in `benchmarks/data_path.py`.
"""

from __future__ import annotations

import torch
from torch import nn

from virnucpro_trainer.config.schema import TrainConfig

from _common import BATCH, SEED, WIDTH

EVAL_BATCH = TrainConfig().eval_batch_size  # 4096, as NEW's predict


def design(spec: dict, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """data_path.py's design: nothing to `load`, `train` one epoch over spec["rows"]["train"]
    random rows, `evaluate` a side over as many of them as it has rows (its row count)."""
    gen = torch.Generator().manual_seed(SEED)
    n = spec["rows"]["train"]
    x = torch.randn(n, WIDTH, generator=gen)
    y = torch.randint(0, 2, (n,), generator=gen)
    order = torch.randperm(n, generator=gen)
    x, y = x[order], y[order]
    loss_fn = nn.CrossEntropyLoss()

    def train():
        model.train()
        total = torch.zeros(())
        for start in range(0, n - 1, BATCH):  # a last batch of one row is dropped, as NEW does
            xb, yb = x[start : start + BATCH], y[start : start + BATCH]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(yb)

    @torch.no_grad()
    def evaluate(side):
        model.eval()
        rows = min(spec["rows"][side], n)
        total, probs = torch.zeros(()), []
        for start in range(0, rows, EVAL_BATCH):
            stop = min(start + EVAL_BATCH, rows)
            logits = model(x[start:stop])
            total += nn.functional.cross_entropy(logits, y[start:stop], reduction="sum")
            probs.append(torch.softmax(logits, dim=1)[:, 1])
        torch.cat(probs)
        return rows

    return {"load": lambda: None, "train": train, "evaluate": evaluate}
