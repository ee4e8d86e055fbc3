"""Scoring: the files `evaluate.py` names, checked against the checkpoint, read (from a store
where there is one) and scored by its model, or by each member of an ensemble and combined."""

from __future__ import annotations

import contextlib
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
from virnucpro_trainer.evaluate.ood import RowOOD, row_ood, scorers_for
from virnucpro_trainer.model import predict_scores

log = logging.getLogger(__name__)


def score(
    cfg: DictConfig, out_dir: Path, scoring: ScoringModel, subset: str, device: torch.device
) -> Scored:
    """The files `cfg` names, checked against the checkpoint, scored by its model."""
    root, width = Path(cfg.data.root), scoring.input_dim
    members = scoring.members if isinstance(scoring, Ensemble) else [scoring]
    scorers_for(members, cfg.ood.method)  # an unusable ood.method stops here, before any data
    if cfg.labelled:
        sources = labelled_sources(cfg, width)
    else:
        sources = unlabelled_sources(root, cfg.data.file_glob)
    stored = stored_width(sources[0].path)
    if stored is not None:
        check_width(scoring, stored, sources[0].path)
    table = scoring_table(cfg, sources, width, out_dir)
    rows = test_rows(table, scoring, root) if subset == "test" else torch.arange(len(table.labels))
    log.info("scoring %d rows of %d files under %s (subset=%s)", len(rows), len(table.names),
             root, subset)  # fmt: skip
    source = make_batch_source(
        cfg.data, table, device, cfg.features_on_gpu, cfg.gpu_memory_margin_gb
    )
    return scored_rows(members, source, table, rows, cfg.eval_batch_size, bf16=cfg.bf16,
                       labelled=cfg.labelled, ood_method=cfg.ood.method)  # fmt: skip


def scored_rows(
    members: list[ScoringModel],
    source,
    table,
    rows: torch.Tensor,
    batch_size: int,
    *,
    bf16: bool = False,
    labelled: bool = True,
    ood_method: str = "auto",
) -> Scored:
    """`rows` of `table` (on `source`) scored by one model, its temperature applied, or by an
    ensemble's members, combined: evaluate.py's scoring and training's test side alike. Each
    row's out-of-distribution score and p-value come from the same pass (evaluate/ood.py)."""
    found, raws = [], []
    scorers, why = scorers_for(members, ood_method)
    for i, member in enumerate(members):
        scorer = None if scorers is None else scorers[i]
        with scorer or contextlib.nullcontext():
            out = predict_scores(
                member.model.to(source.device), source, rows, batch_size, bf16=bf16,
                progress="scoring", extra=scorer,
            )  # fmt: skip
        raws.append(out.extra)
        if member.temperature is not None:  # the run's calibration, fitted on validation
            log.info("applying the checkpoint's temperature T = %.4f", member.temperature)
        found.append(member_probs(member, out.probs, out.logits))
    probs, logits, loss, before = found[0], out.logits, out.loss, None
    if len(members) > 1:
        probs, logits = combine(found)
        loss = ensemble_loss(probs, out.labels) if labelled else float("nan")
    elif members[0].temperature is not None:
        before = out.probs
    prob_viral = probs.astype(np.float32)
    return Scored(
        ids=table.row_ids(rows),
        files=table.row_files(rows),
        labels=out.labels if labelled else None,
        prob_viral=prob_viral,
        prob_host=np.float32(1.0) - prob_viral,  # two classes: the softmax sums to one
        loss=loss,
        logits=logits,
        uncalibrated=before,
        ood=row_ood(scorers, raws, why),
    )


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
    uncalibrated: np.ndarray | None = None  # one model with a temperature: the softmax before it
    ood: RowOOD | None = None  # each row's out-of-distribution score and p-value, or why none
