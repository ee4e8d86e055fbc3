"""One training epoch and batched prediction, both gathering batches by row index."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm import tqdm


def epoch_batches(rows: torch.Tensor, batch_size: int, generator: torch.Generator) -> list:
    """A seeded permutation of `rows` cut into batches.

    A last batch of a single row is dropped: BatchNorm cannot train on one sample.
    """
    batches = list(rows[torch.randperm(len(rows), generator=generator)].split(batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()
    return batches


def train_epoch(
    model: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    rows: torch.Tensor,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    generator: torch.Generator,
    desc: str = "",
) -> float:
    """Train for one pass over `rows`; returns the mean training loss."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    total = torch.zeros((), device=device)
    seen = 0
    for idx in tqdm(
        epoch_batches(rows, batch_size, generator), desc=desc, leave=False, disable=None
    ):
        x = features[idx].to(device, non_blocking=True)
        y = labels[idx].to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(idx)
        seen += len(idx)
    return float(total) / seen


@torch.no_grad()
def predict(
    model: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    rows: torch.Tensor,
    batch_size: int,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Viral probabilities, true labels and mean cross-entropy loss for `rows`, in order."""
    model.eval()
    probs, total = [], 0.0
    for idx in rows.split(batch_size):
        x = features[idx].to(device, non_blocking=True)
        y = labels[idx].to(device, non_blocking=True)
        logits = model(x).float()
        total += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
        probs.append(torch.softmax(logits, dim=1)[:, 1].cpu())
    return torch.cat(probs).numpy(), labels[rows].numpy(), total / max(len(rows), 1)
