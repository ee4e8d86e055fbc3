"""OLD: the old trainer's data path, re-implemented for `benchmarks/data_path.py` to compare with.

What the old scripts did, kept on purpose: every run `torch.load`s every merged file into a list of
per-file float32 tensors held in RAM; the Dataset's `__getitem__(i)` walks that list in a Python
loop to find the file holding row i and returns one (row, label) pair; a DataLoader collates 32 of
them per batch, for training (shuffled) and for evaluation alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


def load_files(paths: list[Path]) -> list[tuple[torch.Tensor, int]]:
    """Every file's rows (float32, in RAM) and its label, in the order given."""
    files = []
    for path in paths:
        content = torch.load(path, weights_only=True)
        files.append((content["data"].to(torch.float32), int(content["labels"][0])))
    return files


class OldMergedDataset(Dataset):
    """Rows of several per-file tensors, found one sample at a time by walking the file list."""

    def __init__(self, files: list[tuple[torch.Tensor, int]]):
        self.files = files
        self.total = sum(len(data) for data, _ in files)

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = 0
        for data, label in self.files:
            if index < start + len(data):
                return data[index - start], torch.tensor(label)
            start += len(data)
        raise IndexError(index)


def make_loader(dataset: OldMergedDataset, shuffle: bool, workers: int) -> DataLoader:
    return DataLoader(dataset, batch_size=32, shuffle=shuffle, num_workers=workers)


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    max_steps: int | None = None,
) -> float:
    """One shuffled pass (or its first `max_steps` batches); returns the mean training loss."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    total, seen = 0.0, 0
    for step, (x, y) in enumerate(loader):
        if max_steps is not None and step == max_steps:
            break
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        seen += len(y)
    return total / seen


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader) -> tuple[np.ndarray, np.ndarray, float]:
    """Viral probabilities, true labels and mean loss over the loader's batches."""
    model.eval()
    probs, labels, total = [], [], 0.0
    for x, y in loader:
        logits = model(x)
        total += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        probs.append(torch.softmax(logits, dim=1)[:, 1])
        labels.append(y)
    return torch.cat(probs).numpy(), torch.cat(labels).numpy(), total / len(loader.dataset)


def design(spec: dict, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """data_path.py's design: `load` every file of spec["split_json"] under spec["root"] and make
    the loaders (spec["workers"] DataLoader workers), `train` one epoch (or its first
    `max_steps` batches), `evaluate` a side (its row count)."""
    root, workers = Path(spec["root"]), spec["workers"]
    split = json.loads(Path(spec["split_json"]).read_text())
    loaders = {}

    def load():
        names = sorted(split["train_files"] + split["val_files"] + split["test_files"])
        files = dict(zip(names, load_files([root / n for n in names]), strict=True))
        for side in ("train", "val", "test"):
            dataset = OldMergedDataset([files[n] for n in split[f"{side}_files"]])
            loaders[side] = make_loader(dataset, shuffle=side == "train", workers=workers)

    def train(max_steps=None):
        train_epoch(model, loaders["train"], optimizer, max_steps)

    def evaluate_side(side):
        evaluate(model, loaders[side])
        return len(loaders[side].dataset)

    return {"load": load, "train": train, "evaluate": evaluate_side}
