"""One training epoch and batched prediction over rows of a BatchSource."""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from virnucpro_trainer.data.batches import BatchSource
from virnucpro_trainer.resume import StopSignals


def train_epoch(
    model: nn.Module,
    source: BatchSource,
    rows: torch.Tensor,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    *,
    bf16: bool = False,
    desc: str = "",
    stop: StopSignals | None = None,
    limit: int | None = None,
) -> float:
    """Train for one shuffled pass over `rows`; returns the mean training loss.

    `stop` is checked before every batch and raises TrainingInterrupted after SIGINT or SIGTERM.
    `limit` stops the pass after that many batches (a quick check, `limit_batches`).
    """
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    total = torch.zeros((), device=source.device)
    seen = 0
    n_batches = math.ceil(len(rows) / batch_size)
    if limit is not None:
        n_batches = min(n_batches, limit)
    batches = itertools.islice(source.train_batches(rows, batch_size, generator), n_batches)
    for x, y in tqdm(batches, desc=desc, total=n_batches, leave=False, disable=None):
        if stop is not None:
            stop.check()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(source.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(y)
        seen += len(y)
    return float(total) / seen


@torch.no_grad()
def predict(
    model: nn.Module,
    source: BatchSource,
    rows: torch.Tensor,
    batch_size: int,
    *,
    bf16: bool = False,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Viral probabilities, true labels and mean cross-entropy loss for `rows`, in order."""
    model.eval()
    probs, labels = [], []
    total = torch.zeros((), device=source.device)
    for x, y in source.eval_batches(rows, batch_size):
        with torch.autocast(source.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x).float()
        total += nn.functional.cross_entropy(logits, y, reduction="sum")
        probs.append(torch.softmax(logits, dim=1)[:, 1].cpu())
        labels.append(y.cpu())
    if not probs:
        return np.empty(0), np.empty(0, np.int64), math.nan
    return torch.cat(probs).numpy(), torch.cat(labels).numpy(), float(total) / len(rows)
