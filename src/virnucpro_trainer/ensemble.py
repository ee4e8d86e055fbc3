"""Several checkpoints scored as one (issue 26; docs/evaluate.md#ensembles): the mean of the
members' calibrated viral probabilities (deep ensembles, Lakshminarayanan et al. 2017).

`ckpt=` names an ensemble by a sweep or search directory, a list
(`ckpt=[outputs/a,outputs/b/model_fastesm650.pth]`) or an ensemble file (`ensemble.pth`, written
by `save_ensemble=true`); which members a directory gives, and which it leaves out, is
evaluate/members.py's. Members must take the same input width and have the same classes, and
none may be named twice; each keeps its own hidden width and its own temperature. The ensemble
file holds each member's weights, metadata, temperature, out-of-distribution detector, source
path and sha256 (no optimizer state), and the split the members share; the prediction step's
single-model checkpoint is not changed by any of this. Each member scores each row out of
distribution with its own detector; the ensemble's p-value is the Bonferroni combination of the
members' (evaluate/ood.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.special import expit, logit

from virnucpro_trainer import __version__
from virnucpro_trainer.atomic import atomic_path
from virnucpro_trainer.checkpoint import ScoringModel, on_cpu, read_checkpoint, scoring_model
from virnucpro_trainer.data.split_check import read_run_split
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
    split: dict | None = None  # the split.json the members share, if they do
    no_split: str = ""  # why they share none
    skipped: list[dict] = field(default_factory=list)  # jobs of a directory left out, and why
    chosen: dict | None = None  # a search directory: which trials, by what

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
        """metrics.json's `members`: each with its own width and training date."""
        return [
            {"path": src, "sha256": digest, "temperature": m.temperature,
             "input_dim": m.input_dim, "hidden_dim": m.metadata["hidden_dim"],
             "training_date": m.metadata.get("training_date")}
            for m, src, digest in zip(self.members, self.sources, self.digests, strict=True)
        ]  # fmt: skip


def ensemble_of(
    members: list[tuple[Path, Path | None]],
    where: Path,
    min_members: int = 1,
    skipped: list[dict] | None = None,
) -> Ensemble:
    """An Ensemble of checkpoint files (with their run directories), checked to fit together;
    `skipped`: the jobs of a directory left out, each {path, reason}."""
    models = [scoring_model(f, r, read_checkpoint(f)) for f, r in members]
    sources = [str(f) for f, _ in members]
    ensemble = Ensemble(models, where, sources, [sha256(f) for f, _ in members])
    ensemble.skipped = skipped or []
    check_members(ensemble, min_members)
    ensemble.split, ensemble.no_split = common_split([r for _, r in members], sources)
    ensemble.run_dir = members[0][1] if ensemble.split is not None else None
    ensemble.validation = combined_validation(models)
    log.info("ensemble of %d checkpoints: %s", len(models), ", ".join(sources))
    return ensemble


def check_members(ensemble: Ensemble, min_members: int = 1) -> None:
    """A UserError for too few members (`min_members`, ensemble.min_members), a member named
    twice (the same sha256: it would count twice in the mean), or the first member whose input
    width or classes differ from the first's."""
    n = len(ensemble.members)
    if n < min_members:
        skipped = "; ".join(f"{s['path']}: {s['reason']}" for s in ensemble.skipped)
        raise UserError(
            f"ckpt={ensemble.path} gives an ensemble of {n} member(s), fewer than "
            f"ensemble.min_members={min_members}"
            + (f" (skipped: {skipped})" if skipped else "")
            + ": train the missing members"
            + (f", or score what there is with ensemble.min_members={n}" if n else "")
        )
    seen: dict[str, str] = {}
    for source, digest in zip(ensemble.sources, ensemble.digests, strict=True):
        if digest in seen:
            raise UserError(
                f"ensemble members {seen[digest]} and {source} are the same model (sha256 "
                f"{digest[:16]}...): it would count twice in the mean; name each member once"
            )
        seen[digest] = source
    first = ensemble.members[0].metadata
    for member, source in zip(ensemble.members, ensemble.sources, strict=True):
        for key in ("input_dim", "num_class"):
            if member.metadata[key] != first[key]:
                raise UserError(
                    f"ensemble member {source} has {key} {member.metadata[key]}, but "
                    f"{ensemble.sources[0]} has {first[key]}: members must take the same "
                    "input (the same embedding models) and have the same classes"
                )


def common_split(runs: list[Path | None], sources: list[str]) -> tuple[dict | None, str]:
    """(the split.json every member's run shares, ""), or (None, why there is none): a seed
    sweep shares its split, so its members' common test side is known."""
    for run, source in zip(runs, sources, strict=True):
        if run is None:
            return None, f"member {source} is a .pth file, not a run directory with its split.json"
        if not (run / "split.json").is_file():
            return None, f"member {run} has no split.json"
    first = (runs[0] / "split.json").read_bytes()
    for run in runs[1:]:
        if (run / "split.json").read_bytes() != first:
            return None, f"members {runs[0]} and {run} were split differently (their split.json)"
    return read_run_split(runs[0] / "split.json", "an ensemble's default subset"), ""


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
    block = {"size": len(scoring.members), "combine": COMBINE, "skipped": scoring.skipped}
    if scoring.chosen is not None:
        block["chosen"] = scoring.chosen
    return {"ensemble": block, "members": scoring.described()}


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
        "split": ensemble.split,  # the members' common split, for the default subset
        "skipped": ensemble.skipped,  # what the directory it came from left out, and why
        "chosen": ensemble.chosen,
        "trainer_version": __version__,
    }
    with atomic_path(path) as tmp:
        torch.save(on_cpu(obj), tmp)  # scoring may have moved the members to a GPU


def from_file(path: Path, obj: dict, min_members: int = 1) -> Ensemble:
    """The Ensemble an ensemble file holds."""
    members = obj["members"]
    if not isinstance(members, list) or not members:
        raise UserError(f"{path}: an ensemble file with no members")
    models = [scoring_model(Path(f"{path} (member {i})"), None, m) for i, m in enumerate(members)]
    sources = [str(m.get("source")) for m in members]
    digests = [str(m.get("sha256") or f"unknown (member {i})") for i, m in enumerate(members)]
    ensemble = Ensemble(models, path, sources, digests)
    ensemble.skipped, ensemble.chosen = obj.get("skipped") or [], obj.get("chosen")
    check_members(ensemble, min_members)
    # stored combined, with each member's temperature already applied
    ensemble.validation = obj.get("validation_scores") or None
    ensemble.split = obj.get("split") or None
    if ensemble.split is None:
        ensemble.no_split = f"the ensemble file {path} records no split its members share"
    return ensemble
