"""Model weights: copies and comparisons of state dicts, and the prediction step's own MLP."""

from __future__ import annotations

import torch
from torch import nn


def clone_state(module: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class PredictionStepMLP(nn.Module):
    """What the prediction step builds and loads strictly, written independently of model.py."""

    def __init__(self):
        super().__init__()
        self.hidden_layer = nn.Linear(2048, 512)
        self.bn1 = nn.BatchNorm1d(512)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.5)
        self.output_layer = nn.Linear(512, 2)

    def forward(self, x):
        return self.output_layer(self.dropout(self.relu(self.bn1(self.hidden_layer(x)))))


def tensors(obj):
    """Every tensor in a nested dict, list or tuple (a checkpoint, a training state)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from tensors(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            yield from tensors(value)
