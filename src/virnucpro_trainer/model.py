"""The VirNucPro MLP, with the layer names the prediction step loads strictly, and the optimizer
and schedule that train it."""

from __future__ import annotations

import torch
from torch import nn


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
