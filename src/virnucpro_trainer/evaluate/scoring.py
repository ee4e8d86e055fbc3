"""Scoring: the files `evaluate.py` names, checked against the checkpoint, read (from a store
where there is one) and scored by its model, or by each member of an ensemble and combined."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from virnucpro_trainer.checkpoint import ScoringModel
from virnucpro_trainer.data.dataset import make_batch_source
from virnucpro_trainer.ensemble import Ensemble, combine, ensemble_loss, member_probs
from virnucpro_trainer.evaluate.inputs import (
    check_width,
    labelled_sources,
    scoring_table,
    stored_width,
    test_rows,
    unlabelled_sources,
)
from virnucpro_trainer.model import predict_scores

log = logging.getLogger(__name__)


def score(
    cfg: DictConfig, out_dir: Path, scoring: ScoringModel, subset: str, device: torch.device
) -> Scored:
    """The files `cfg` names, checked against the checkpoint, scored by its model."""
    root, width = Path(cfg.data.root), scoring.input_dim
    if cfg.labelled:
        sources = labelled_sources(cfg, width)
    else:
        sources = unlabelled_sources(root, cfg.data.file_glob)
    stored = stored_width(sources[0].path)
    if stored is not None:
        check_width(scoring, stored, sources[0].path)
    table = scoring_table(cfg, sources, width, out_dir)
    rows = (
        test_rows(table, scoring.run_dir, root)
        if subset == "test"
        else torch.arange(len(table.labels))
    )
    log.info("scoring %d rows of %d files under %s (subset=%s)", len(rows), len(table.names),
             root, subset)  # fmt: skip
    source = make_batch_source(
        cfg.data, table, device, cfg.features_on_gpu, cfg.gpu_memory_margin_gb
    )
    members = scoring.members if isinstance(scoring, Ensemble) else [scoring]
    probs, logits, labels, loss = scored_by(members, source, rows, cfg, device)
    prob_viral = probs.astype(np.float32)
    return Scored(
        ids=table.row_ids(rows),
        files=table.row_files(rows),
        labels=labels if cfg.labelled else None,
        prob_viral=prob_viral,
        prob_host=np.float32(1.0) - prob_viral,  # two classes: the softmax sums to one
        loss=loss,
        logits=logits,
    )


def scored_by(members: list[ScoringModel], source, rows, cfg: DictConfig, device):
    """(viral probability, ranking logit, labels, mean loss) of the rows: one model's, its
    temperature applied; or an ensemble's, the mean of its members' (ensemble.py)."""
    found = []
    for member in members:
        out = predict_scores(
            member.model.to(device), source, rows, cfg.eval_batch_size, bf16=cfg.bf16,
            progress="scoring",
        )  # fmt: skip
        if member.temperature is not None:  # the run's calibration, fitted on validation
            log.info("applying the checkpoint's temperature T = %.4f", member.temperature)
        found.append(member_probs(member, out.probs, out.logits))
    if len(members) == 1:
        return found[0], out.logits, out.labels, out.loss
    mean, logits = combine(found)
    loss = ensemble_loss(mean, out.labels) if cfg.labelled else float("nan")
    return mean, logits, out.labels, loss


@dataclass
class Scored:
    """The scored rows, in table order: ids, files, labels (None for unlabelled data), the
    probabilities as written to the prediction files, and the mean loss."""

    ids: list[str]
    files: list[str]
    labels: np.ndarray | None
    prob_viral: np.ndarray  # float32, as training scores it
    prob_host: np.ndarray
    loss: float
    logits: np.ndarray | None = None  # viral minus host: what the rows' AUROC and AUPRC rank by
