"""Several checkpoints scored as one (issue 26; docs/evaluate.md#ensembles): the mean of the
members' calibrated viral probabilities (deep ensembles, Lakshminarayanan et al. 2017).

`ckpt=` names an ensemble by a sweep directory (its job directories that hold a best-model file,
in job order), a list (`ckpt=[outputs/a,outputs/b/model_fastesm650.pth]`) or an ensemble file
(`ensemble.pth`, written by `save_ensemble=true`). Members must take the same input width and
have the same classes; each keeps its own hidden width and its own temperature. The ensemble file
holds each member's weights, metadata, temperature, out-of-distribution detector, source path and
sha256 (no optimizer state); the prediction step's single-model checkpoint is not changed by any
of this. Each member scores each row out of distribution with its own detector; the ensemble's
p-value is the Bonferroni combination of the members' (evaluate/ood.py).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.special import expit, logit

from virnucpro_trainer import __version__
from virnucpro_trainer.atomic import atomic_path
from virnucpro_trainer.checkpoint import (
    ScoringModel,
    on_cpu,
    read_checkpoint,
    resolve_checkpoint,
    scoring_model,
)
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.stats.calibration import apply_temperature
from virnucpro_trainer.torch_files import sha256

log = logging.getLogger(__name__)

ENSEMBLE_FILE = "ensemble.pth"
COMBINE = "mean of the members' calibrated viral probabilities"
CLIP = 1e-7  # the ensemble's logit is that of its mean probability, clipped this far from 0 and 1


@dataclass
class Ensemble:
    """Members scored as one; the attributes evaluate.py reads of a ScoringModel."""

    members: list[ScoringModel]
    path: Path
    sources: list[str] = field(default_factory=list)  # each member's file
    digests: list[str] = field(default_factory=list)  # each member's sha256
    run_dir: Path | None = None  # the members' shared run split (first member's run), if any
    stored_threshold: float | None = None  # members' thresholds fit their own probabilities
    temperature: float | None = None  # each member applies its own
    validation: dict | None = None  # the members' validation scores combined, if all have them

    @property
    def input_dim(self) -> int:
        return self.members[0].input_dim

    @property
    def model_id(self) -> str:
        return self.members[0].model_id

    @property
    def metadata(self) -> dict:
        return {**self.members[0].metadata, "ensemble_size": len(self.members)}

    def described(self) -> list[dict]:
        """metrics.json's `members`."""
        return [
            {"path": src, "sha256": digest, "temperature": m.temperature,
             "hidden_dim": m.metadata["hidden_dim"]}
            for m, src, digest in zip(self.members, self.sources, self.digests, strict=True)
        ]  # fmt: skip


def sweep_members(path: Path) -> list[tuple[Path, Path]]:
    """(best-model file, run directory) of each job directory under a sweep directory that holds
    one, in job order; [] when `path` is not such a directory."""
    if not path.is_dir() or (path / ".hydra").is_dir():
        return []
    found = []
    jobs = sorted((p for p in path.iterdir() if p.is_dir()), key=lambda p: (len(p.name), p.name))
    for job in jobs:
        try:
            found.append(resolve_checkpoint(job))
        except UserError:
            continue  # not a finished run (.submitit, a failed job, ...)
    return found


def load_scoring(ckpt) -> ScoringModel | Ensemble:
    """What `ckpt=` names: one model, or an ensemble (a list, a sweep directory, a file)."""
    if isinstance(ckpt, (list, tuple)):
        if not ckpt:
            raise UserError("ckpt=[] names no checkpoint")
        members = [resolve_checkpoint(Path(c)) for c in ckpt]
        return ensemble_of(members, Path(os.path.commonpath([str(f) for f, _ in members])))
    path = Path(ckpt)
    swept = sweep_members(path)
    if swept:
        return ensemble_of(swept, path)
    file, run_dir = resolve_checkpoint(path)
    obj = read_checkpoint(file)
    if "members" in obj:
        return from_file(file, obj)
    return scoring_model(file, run_dir, obj)


def ensemble_of(members: list[tuple[Path, Path | None]], where: Path) -> Ensemble:
    """An Ensemble of checkpoint files (with their run directories), checked to fit together."""
    models = [scoring_model(f, r, read_checkpoint(f)) for f, r in members]
    sources = [str(f) for f, _ in members]
    ensemble = Ensemble(models, where, sources, [sha256(f) for f, _ in members])
    check_members(ensemble)
    ensemble.run_dir = shared_run(members)
    ensemble.validation = combined_validation(models)
    log.info("ensemble of %d checkpoints: %s", len(models), ", ".join(sources))
    return ensemble


def check_members(ensemble: Ensemble) -> None:
    """A UserError naming the first member whose input width or classes differ from the first's."""
    first = ensemble.members[0].metadata
    for member, source in zip(ensemble.members, ensemble.sources, strict=True):
        for key in ("input_dim", "num_class"):
            if member.metadata[key] != first[key]:
                raise UserError(
                    f"ensemble member {source} has {key} {member.metadata[key]}, but "
                    f"{ensemble.sources[0]} has {first[key]}: members must take the same "
                    "input (the same embedding models) and have the same classes"
                )


def shared_run(members: list[tuple[Path, Path | None]]) -> Path | None:
    """The first member's run directory when every member is a run with the same split.json
    (a seed sweep shares its split), so `subset=test` scores their common test side."""
    runs = [r for _, r in members]
    if any(r is None or not (r / "split.json").is_file() for r in runs):
        return None
    splits = {(r / "split.json").read_bytes() for r in runs}
    return runs[0] if len(splits) == 1 else None


def member_probs(member: ScoringModel, probs: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """A member's viral probabilities, calibrated by its own temperature if it has one."""
    if member.temperature is None:
        return np.asarray(probs, dtype=np.float64)
    return apply_temperature(logits, member.temperature)


def combine(probs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(mean probability, its logit): the ensemble's viral probability and ranking."""
    mean = np.mean(np.stack(probs), axis=0)
    return mean, logit(np.clip(mean, CLIP, 1 - CLIP))


def ensemble_loss(mean: np.ndarray, labels: np.ndarray) -> float:
    """The ensemble's mean cross-entropy: -log of its probability of each row's class."""
    p = np.clip(np.where(np.asarray(labels) == 1, mean, 1.0 - mean), CLIP, 1.0)
    return float(-np.mean(np.log(p)))


def ensemble_block(scoring) -> dict:
    """metrics.json's `ensemble` and `members` for an ensemble; {} for one model."""
    if not isinstance(scoring, Ensemble):
        return {}
    return {
        "ensemble": {"size": len(scoring.members), "combine": COMBINE},
        "members": scoring.described(),
    }


def combined_validation(members: list[ScoringModel]) -> dict | None:
    """The members' validation_scores as one ensemble's (the mean of their calibrated
    probabilities, as a logit), when all have them for the same validation rows; else None."""
    found = [m.validation for m in members]
    if any(v is None for v in found) or len({v["ids"] for v in found}) != 1:
        return None
    probs = [
        member_probs(m, expit(np.asarray(v["logits"], np.float64)), v["logits"])
        for m, v in zip(members, found, strict=True)
    ]
    _, z = combine(probs)
    return {
        **found[0],
        "train_viral_prior": float(np.mean([v["train_viral_prior"] for v in found])),
        "logits": torch.as_tensor(z, dtype=torch.float32),
    }


def save_ensemble(path: Path, ensemble: Ensemble) -> None:
    """The ensemble file: every member's weights, metadata, temperature, source and sha256."""
    members = [
        {"model_state_dict": m.model.state_dict(), "metadata": m.metadata,
         "temperature": m.temperature, "ood": m.ood, "source": src, "sha256": digest}
        for m, src, digest in zip(ensemble.members, ensemble.sources, ensemble.digests, strict=True)
    ]  # fmt: skip
    obj = {
        "metadata": ensemble.metadata,
        "members": members,
        "combine": COMBINE,
        "validation_scores": ensemble.validation,
        "trainer_version": __version__,
    }
    with atomic_path(path) as tmp:
        torch.save(on_cpu(obj), tmp)  # scoring may have moved the members to a GPU


def from_file(path: Path, obj: dict) -> Ensemble:
    """The Ensemble an ensemble file holds."""
    members = obj["members"]
    if not isinstance(members, list) or not members:
        raise UserError(f"{path}: an ensemble file with no members")
    models = [scoring_model(Path(f"{path} (member {i})"), None, m) for i, m in enumerate(members)]
    sources = [str(m.get("source")) for m in members]
    ensemble = Ensemble(models, path, sources, [str(m.get("sha256")) for m in members])
    check_members(ensemble)
    # stored combined, with each member's temperature already applied
    ensemble.validation = obj.get("validation_scores") or None
    return ensemble
