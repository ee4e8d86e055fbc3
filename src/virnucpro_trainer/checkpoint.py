"""The best-model checkpoint (a contract with the prediction step), the training state file and
JSON results, each written atomically."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import torch

from virnucpro_trainer.atomic import atomic_path

CHECKPOINT_VERSION = "2.0.0"


def write_json(path: Path, obj: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def checkpoint_metadata(
    dna_dim: int,
    protein_dim: int,
    hidden_dim: int,
    num_class: int,
    protein_model: str,
    protein_model_id: str,
) -> dict:
    return {
        "checkpoint_version": CHECKPOINT_VERSION,
        "model_type": protein_model,
        "huggingface_model_id": protein_model_id,
        "dna_dim": dna_dim,
        "protein_dim": protein_dim,
        "merged_dim": dna_dim + protein_dim,
        "input_dim": dna_dim + protein_dim,
        "hidden_dim": hidden_dim,
        "num_class": num_class,
        "training_date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "pytorch_version": str(torch.__version__),
    }


def save_checkpoint(
    path: Path,
    *,
    epoch: int,
    model_state: dict,
    optimizer_state: dict,
    best_loss: float,
    metadata: dict,
    **extra,
) -> None:
    """Write the checkpoint dict; tensors are moved to the CPU so any machine can load it."""
    obj = {
        "epoch": epoch,
        "model_state_dict": {k: v.detach().cpu() for k, v in model_state.items()},
        "optimizer_state_dict": optimizer_state,
        "best_loss": best_loss,
        "metadata": metadata,
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_state(path: Path, state: dict) -> None:
    """Write a resumable training state (see training_state.py), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)
