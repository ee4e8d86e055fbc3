"""The best-model checkpoint, the contract with the prediction step (docs/checkpoint.md), written
and read in one place: written atomically by training; found (a run directory or a .pth file),
loaded with `weights_only=True` and turned into the model its metadata describes (never the
current config's) for scoring. Any checkpoint in the v2 contract loads, the old training script's
minimal form included (only `epoch`, `model_state_dict`, `optimizer_state_dict`, `best_loss`,
`metadata`). Also the training state file (checkpoints/last.pt)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
import yaml

from virnucpro_trainer.atomic import atomic_path
from virnucpro_trainer.config.schema import TrainConfig
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.model import VirNucProMLP
from virnucpro_trainer.run_dir import EVAL_RESULT
from virnucpro_trainer.torch_files import load_weights_only

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = "2.0.0"


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
    """Write the checkpoint dict; every tensor in it (the optimizer's state too) is moved to the
    CPU, so a machine without a GPU loads it with a plain `torch.load(path)`."""
    obj = {
        "epoch": epoch,
        "model_state_dict": model_state,
        "optimizer_state_dict": optimizer_state,
        "best_loss": best_loss,
        "metadata": metadata,
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(on_cpu(obj), tmp)


def on_cpu(obj):
    """`obj` with every tensor in its dicts, lists and tuples detached and on the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: on_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(on_cpu(v) for v in obj)
    return obj


def save_state(path: Path, state: dict) -> None:
    """Write a resumable training state (see train/state.py), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: Path) -> dict:
    """A training state written by save_state (resume=), loaded with weights_only=True."""
    return load_weights_only(path, "it is not a training state written by this project.")


REQUIRED_KEYS = ("model_state_dict", "metadata")
# What a checkpoint holding other objects is, and what would load.
REFUSED = (
    "it is a pickled Python object (a whole model saved with torch.save(model), as the original "
    "VirNucPro did), not a state dict. It is loaded only with weights_only=True, because "
    "unpickling arbitrary objects runs code. What would load: a dict in the v2 checkpoint "
    "contract (model_state_dict plus metadata with checkpoint_version, input_dim, hidden_dim, "
    "num_class; docs/checkpoint.md)."
)
REQUIRED_METADATA = ("checkpoint_version", "input_dim", "hidden_dim", "num_class")


@dataclass
class ScoringModel:
    """A model ready to score, with what its checkpoint says about itself."""

    model: VirNucProMLP
    path: Path
    metadata: dict
    run_dir: Path | None  # the training run it came from, when ckpt named a run directory
    stored_threshold: float | None  # chosen on validation by the training run, if it says
    temperature: float | None = None  # fitted on validation (calibration=temperature), if any
    validation: dict | None = None  # validation_scores (train/held_out.py), if it has them
    ood: dict | None = None  # the out-of-distribution detector (train/ood_fit.py), if it has one

    @property
    def input_dim(self) -> int:
        return int(self.metadata["input_dim"])

    @property
    def model_id(self) -> str:
        return str(self.metadata.get("huggingface_model_id", "unknown model id"))


def resolve_checkpoint(ckpt: Path, setting: str = "ckpt") -> tuple[Path, Path | None]:
    """(checkpoint file, run directory or None) for `ckpt=`, a run directory or a file;
    `setting` is what the user typed (ckpt, init_from), named in any message."""
    if ckpt.is_dir():
        name = TrainConfig.checkpoint_name  # a run directory without its config
        config = ckpt / ".hydra" / "config.yaml"
        if config.is_file():
            try:
                name = (yaml.safe_load(config.read_text()) or {}).get("checkpoint_name") or name
            except (yaml.YAMLError, AttributeError) as err:
                raise UserError(f"{config}: cannot be read as YAML: {err}") from None
        path = ckpt / name
        if not path.is_file():
            what = "is it a finished training run?"
            if (ckpt / EVAL_RESULT).is_file():
                what = "it is an evaluation's directory (metrics.json), not a training run."
            raise UserError(
                f"{setting}={ckpt} is a directory without its best-model file {name}: {what} "
                "Give a run directory or a .pth file"
            )
        return path, ckpt
    if not ckpt.exists():
        raise UserError(
            f"{setting}={ckpt}: checkpoint not found ({setting}= takes a run directory or a "
            ".pth file)"
        )
    return ckpt, None


def read_checkpoint(path: Path, setting: str = "ckpt") -> dict:
    """The checkpoint dict, loaded with weights_only=True; a UserError for anything else
    (`setting`, what the user typed, names the remedy)."""
    obj = load_weights_only(path, REFUSED)
    if isinstance(obj, dict) and {"scheduler_state_dict", "rng", "history"} <= set(obj):
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        raise UserError(
            f"{path}: this is a run's training state (for resume=), not its best model: give "
            f"the run directory, {setting}={run_dir}, which takes the best-model file in it"
        )
    if isinstance(obj, dict) and {"members", "metadata"} <= set(obj):
        return obj  # an ensemble file (ensemble.py)
    if not isinstance(obj, dict) or any(k not in obj for k in REQUIRED_KEYS):
        found = sorted(map(str, obj))[:10] if isinstance(obj, dict) else type(obj).__name__
        raise UserError(
            f"{path}: not a checkpoint in the v2 contract: expected a dict with "
            f"{', '.join(REQUIRED_KEYS)}, found {found}"
        )
    return obj


def check_metadata(path: Path, metadata: object) -> dict:
    if not isinstance(metadata, dict) or any(k not in metadata for k in REQUIRED_METADATA):
        raise UserError(
            f"{path}: its metadata must hold {', '.join(REQUIRED_METADATA)}, found "
            f"{sorted(metadata) if isinstance(metadata, dict) else type(metadata).__name__}"
        )
    version = str(metadata["checkpoint_version"])
    if not version.split(".")[0].isdigit() or int(version.split(".")[0]) < 2:
        raise UserError(f"{path}: checkpoint_version {version!r}; version 2 or later is required")
    for key in ("input_dim", "hidden_dim", "num_class"):
        if not isinstance(metadata[key], int) or metadata[key] < 1:
            raise UserError(
                f"{path}: metadata {key} must be a positive integer, found {metadata[key]!r}"
            )
    return metadata


def stored_threshold(obj: dict) -> float | None:
    """The validation-chosen threshold a training run stored: `decision_threshold`, or in
    checkpoints written before that key, `test_metrics.chosen_threshold`."""
    chosen = obj.get("decision_threshold")
    if not isinstance(chosen, dict):
        chosen = (obj.get("test_metrics") or {}).get("chosen_threshold") or {}
    value = chosen.get("threshold") if isinstance(chosen, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def load_scoring_model(ckpt: Path) -> ScoringModel:
    """The model described by `ckpt`'s metadata, with its weights loaded strictly, in eval mode."""
    path, run_dir = resolve_checkpoint(ckpt)
    return scoring_model(path, run_dir, read_checkpoint(path))


def scoring_model(path: Path, run_dir: Path | None, obj: dict) -> ScoringModel:
    """The ScoringModel of checkpoint dict `obj`, read from `path` (named in any message)."""
    meta = check_metadata(path, obj["metadata"])
    model = VirNucProMLP(meta["input_dim"], meta["hidden_dim"], meta["num_class"])
    try:
        model.load_state_dict(obj["model_state_dict"], strict=True)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise UserError(
            f"{path}: its model_state_dict does not fit the VirNucPro MLP its metadata describes "
            f"(input_dim {meta['input_dim']}, hidden_dim {meta['hidden_dim']}, num_class "
            f"{meta['num_class']}): {str(err).strip()[:600]}"
        ) from None
    model.eval()
    log.info(
        "checkpoint %s: %s (%s), input %d, hidden %d, epoch %s",
        path,
        meta.get("model_type", "?"),
        meta.get("huggingface_model_id", "?"),
        meta["input_dim"],
        meta["hidden_dim"],
        obj.get("epoch", "?"),
    )
    temperature = obj.get("temperature")
    if not isinstance(temperature, (int, float)) or not temperature > 0:
        temperature = None
    validation = obj.get("validation_scores")
    return ScoringModel(
        model, path, meta, run_dir, stored_threshold(obj), temperature, validation or None,
        obj.get("ood") or None,
    )  # fmt: skip
