"""Fine-tuning (issue 26; docs/checkpoint.md#fine-tuning): `init_from=<run dir or .pth>` starts a
new run from those weights, with its own split, optimizer and schedule; `freeze=hidden` keeps the
first layer (the Linear from the embedding to the hidden width) as it came. Distinct from
`resume=`, which continues the same run from its own last epoch.

The checkpoint is checked against the model this run builds (input width, hidden width, classes)
before any data is read; where the weights came from (path, sha256, model id, epoch) is recorded
in test_metrics.json, the checkpoint's metadata and the report.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig

from virnucpro_trainer.checkpoint import read_checkpoint, resolve_checkpoint, scoring_model
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.torch_files import sha256

log = logging.getLogger(__name__)

FREEZE = ("none", "hidden")


def initial_weights(cfg: DictConfig, model: torch.nn.Module, width: int) -> dict | None:
    """Load `cfg.init_from`'s weights into `model` (a resumed run gets them from its own state
    instead) and freeze as `cfg.freeze` says; the lineage block, or None without init_from."""
    if not cfg.init_from:
        return None
    path, _ = resolve_checkpoint(Path(cfg.init_from), "init_from")
    obj = read_checkpoint(path, "init_from")
    if "members" in obj:
        raise UserError(f"init_from={path} is an ensemble file; start from one of its members")
    # the checkpoint's metadata checked and its weights loaded strictly, with evaluate.py's messages
    source = scoring_model(path, None, obj)
    meta = source.metadata
    wanted = {"input_dim": width, "hidden_dim": cfg.model.hidden_dim,
              "num_class": cfg.model.num_class}  # fmt: skip
    for key, value in wanted.items():
        if meta[key] != value:
            fix = "model.hidden_dim" if key == "hidden_dim" else "the data"
            raise UserError(
                f"init_from={path} has {key} {meta[key]} (trained on "
                f"{meta.get('huggingface_model_id', 'unknown')} embeddings), but this run's "
                f"model has {value}: its weights cannot start it (change {fix} to match)"
            )
    if not cfg.resume:
        model.load_state_dict(source.model.state_dict(), strict=True)
    if cfg.freeze == "hidden":
        for p in model.hidden_layer.parameters():
            p.requires_grad_(False)
    lineage = {
        "path": str(path),
        "sha256": sha256(path),
        "model_id": meta.get("huggingface_model_id"),
        "epoch": obj.get("epoch"),
        "freeze": cfg.freeze,
    }
    log.info("initial weights from %s (epoch %s, sha256 %s), freeze=%s", path,
             lineage["epoch"], lineage["sha256"][:12], cfg.freeze)  # fmt: skip
    return lineage


def describe(lineage: dict) -> str:
    """The report's line on where the weights came from."""
    layer = "frozen" if lineage["freeze"] == "hidden" else "trained"
    return (
        f"from {lineage['path']} (epoch {lineage['epoch']}, {lineage['model_id']}, sha256 "
        f"{lineage['sha256'][:16]}...), first layer {layer}"
    )
