"""The VirNucPro MLP, with the layer names the prediction step loads strictly; `predict`, which
scores rows with it (training and evaluate.py alike); the optimizer and schedule that train it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from virnucpro_trainer.data.batches import BatchSource


class VirNucProMLP(nn.Module):
    """Classifies a merged embedding as host (class 0) or viral (class 1).

    Attribute names are part of the checkpoint contract: the prediction step loads the state dict
    strictly into a module with exactly these layers.
    """

    def __init__(
        self, input_dim: int, hidden_dim: int = 512, num_class: int = 2, dropout: float = 0.5
    ):
        super().__init__()
        self.hidden_layer = nn.Linear(input_dim, hidden_dim)
        self.bn1 = nn.BatchNorm1d(hidden_dim)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.output_layer = nn.Linear(hidden_dim, num_class)
        for layer in (self.hidden_layer, self.output_layer):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        return self.output_layer(self.dropout(self.relu(self.bn1(self.hidden_layer(x)))))


def build_optimizer(model: nn.Module, cfg) -> tuple[torch.optim.Optimizer, object]:
    """SGD (with momentum) or AdamW, each with a StepLR schedule stepped once per epoch."""
    if cfg.name == "sgd":
        opt = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, cfg.scheduler.step_size, cfg.scheduler.gamma)
    return opt, sched


def predict(
    model: nn.Module,
    source: BatchSource,
    rows: torch.Tensor,
    batch_size: int,
    *,
    bf16: bool = False,
    progress: str | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Viral probabilities (float32), true labels and mean cross-entropy loss for `rows`, in
    order. Rows labelled -1 (unlabelled data, scored for predictions) add nothing to the loss.
    With `progress` (its label), a progress bar on a terminal (none when output goes to a file)."""
    scored = predict_scores(
        model, source, rows, batch_size, bf16=bf16, progress=progress, logits=False
    )
    return scored.probs, scored.labels, scored.loss


@dataclass
class Predictions:
    """What scoring rows gives: the viral probabilities (float32, the softmax's), the
    viral-minus-host logit differences (float64 of the float32 logits: unrounded and never
    saturated, for ranking metrics and temperature scaling), the labels and the mean loss; with
    `extra`, what it gave for each row (float64 [rows, columns]: out-of-distribution scores)."""

    probs: np.ndarray
    logits: np.ndarray | None
    labels: np.ndarray
    loss: float
    extra: np.ndarray | None = None


@torch.no_grad()
def predict_scores(
    model: nn.Module,
    source: BatchSource,
    rows: torch.Tensor,
    batch_size: int,
    *,
    bf16: bool = False,
    progress: str | None = None,
    logits: bool = True,
    extra: Callable[[torch.Tensor, torch.Tensor], np.ndarray] | None = None,
) -> Predictions:
    """`predict`, with the logit differences too (unless not `logits`). `extra(x, logits)`,
    called on each batch right after the model (so a forward hook's capture is that batch's),
    gives each row's extra columns (evaluate/ood.py: out-of-distribution scores)."""
    model.eval()
    if len(rows) == 0:
        return Predictions(np.empty(0), np.empty(0), np.empty(0, np.int64), math.nan)
    # Filled in place: keeping nothing per batch lets the model's large intermediates reuse the
    # same memory every batch (small tensors kept per batch left them on fresh pages).
    probs = torch.empty(len(rows), dtype=torch.float32)
    diffs = torch.empty(len(rows), dtype=torch.float64) if logits else None
    labels = torch.empty(len(rows), dtype=source.labels.dtype)
    extras = None
    total = torch.zeros((), device=source.device)
    done = 0
    # each batch is used before the next is asked for, so one buffer can hold them all
    batches = source.eval_batches(rows, batch_size, reuse_buffer=True)
    n_batches = -(-len(rows) // batch_size)
    bar = tqdm(batches, progress, n_batches, leave=False, disable=None if progress else True)
    for x, y in bar:
        with torch.autocast(source.device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(x).float()
        total += nn.functional.cross_entropy(out, y, reduction="sum", ignore_index=-1)
        probs[done : done + len(y)] = torch.softmax(out, dim=1)[:, 1]
        if diffs is not None:
            diffs[done : done + len(y)] = out[:, 1].double() - out[:, 0].double()
        labels[done : done + len(y)] = y
        if extra is not None:
            found = extra(x, out)
            if extras is None:
                extras = np.empty((len(rows), found.shape[1]))
            extras[done : done + len(y)] = found
        done += len(y)
    kept = None if diffs is None else diffs.numpy()
    return Predictions(probs.numpy(), kept, labels.numpy(), float(total) / len(rows), extras)
