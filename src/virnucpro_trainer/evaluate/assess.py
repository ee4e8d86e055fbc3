"""What a set of scored rows says, computed once for both entry points: the levels (rows, chunks,
records), each level's metrics at 0.5, at the checkpoint's stored threshold and at `threshold=`,
their intervals by genome, the sample's viral fraction with each unit's FDR and call, and each
unit's out-of-distribution p-value and flag (evaluate/ood_levels.py; with `ood_abstain`, flagged
units abstain: evaluate/abstain.py).

evaluate.py assesses the rows it scored (evaluate/pipeline.py); training assesses its best model's
test side with the same function (train/held_out.py), so test_metrics.json and
`evaluate.py ckpt=<run> subset=test` come from one implementation."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from omegaconf import DictConfig

from virnucpro_trainer.checkpoint import ScoringModel
from virnucpro_trainer.config.evaluate import CallsConfig, EvalOODConfig, FractionConfig
from virnucpro_trainer.config.schema import CIConfig
from virnucpro_trainer.evaluate.abstain import abstained, prediction_columns
from virnucpro_trainer.evaluate.calls import with_record_calls
from virnucpro_trainer.evaluate.composition import (
    LevelComposition,
    composition_metrics,
    compositions,
)
from virnucpro_trainer.evaluate.ood import RowOOD
from virnucpro_trainer.evaluate.ood_levels import LevelOOD, level_ood, ood_metrics
from virnucpro_trainer.evaluate.outputs import labelled_metrics
from virnucpro_trainer.evaluate.scoring import Scored
from virnucpro_trainer.levels import LEVELS, Level, chunk_level, level_genomes, record_level
from virnucpro_trainer.stats.effective import EFFECTIVE_KEYS
from virnucpro_trainer.stats.interval_block import interval_blocks

log = logging.getLogger(__name__)


@dataclass
class AssessSettings:
    """How scored rows are summarised: evaluate.py's keys of the same names (their defaults and
    meaning: config/evaluate.py); training fills them from its own config."""

    record_pattern: str
    aggregate: str
    ci: CIConfig | None  # None or not enabled: no intervals
    threshold: float | None = None  # also metrics at this cut-off (threshold=)
    levels: tuple[str, ...] = LEVELS  # which levels get metrics (rows always)
    composition: bool = True  # the sample's viral fraction, FDRs and calls per level
    viral_fraction: float | None = None
    fraction: FractionConfig = field(default_factory=FractionConfig)
    calls: CallsConfig = field(default_factory=CallsConfig)
    ood_alpha: float = EvalOODConfig.alpha  # a unit is out of distribution at p <= this
    ood_abstain: bool = False  # flagged units abstain (composition only)

    @classmethod
    def from_eval_config(cls, cfg: DictConfig) -> AssessSettings:
        return cls(
            record_pattern=cfg.record_pattern,
            aggregate=cfg.aggregate,
            ci=CIConfig(**cfg.ci),
            threshold=cfg.threshold,
            viral_fraction=cfg.viral_fraction,
            fraction=FractionConfig(**cfg.fraction),
            calls=CallsConfig(**cfg.calls),
            ood_alpha=cfg.ood.alpha,
            ood_abstain=cfg.ood.abstain,
        )


@dataclass
class Assessment:
    """The levels, the counts of what went where, the labelled metrics per level (with `ci`
    when intervals were made; {} for unlabelled data), and each level's composition ({} when
    not asked for) with its metrics.json blocks."""

    levels: dict[str, Level]
    counts: dict
    metrics: dict
    found: dict[str, LevelComposition]
    fractions: dict | None = None  # metrics.json's estimated_viral_fraction
    calls: dict | None = None  # metrics.json's calls
    ood: dict[str, LevelOOD] = field(default_factory=dict)  # {} without a detector
    ood_metrics: dict = field(default_factory=dict)  # metrics.json's ood, per level
    columns: dict = field(default_factory=dict)  # each level's extra prediction-table columns


def assess(scored: Scored, scoring: ScoringModel, s: AssessSettings) -> Assessment:
    """The levels `s` asks for, their metrics and intervals (labelled rows), their
    composition (if asked)."""
    levels, counts = make_levels(scored, s.record_pattern, s.aggregate, s.levels)
    metrics: dict = {}
    if scored.labels is not None:
        metrics = labelled_metrics(levels, scoring.stored_threshold, s.threshold)
        metrics["rows"]["loss"] = scored.loss
        if s.ci is not None and s.ci.enabled:
            add_level_intervals(metrics, levels, s.record_pattern, s.ci)
    found = compositions(s, scoring, levels) if s.composition else {}
    fractions, calls = composition_metrics(found, levels, s) if s.composition else (None, None)
    row = scored.ood or RowOOD("unavailable", reason="the rows were scored without it")
    ood = level_ood(row, scored.ids, levels, s.record_pattern, s.ood_alpha)
    about_ood = ood_metrics(row, ood, levels, s.ood_alpha)
    abstain = s.ood_abstain and s.composition and bool(ood)
    if abstain:
        found, fractions, calls = abstained(s, scoring, levels, ood, fractions, calls)
    columns = with_record_calls(prediction_columns(found, levels, ood, abstain), levels,
                                s.record_pattern)  # fmt: skip
    return Assessment(levels, counts, metrics, found, fractions, calls, ood, about_ood, columns)


def make_levels(
    scored: Scored, pattern: str, aggregate: str, wanted=LEVELS
) -> tuple[dict[str, Level], dict]:
    """Rows, and the chunks and records `wanted`, and the counts metrics.json reports (what
    went where)."""
    s = scored
    rows = Level(s.ids, s.prob_viral, s.prob_viral >= s.prob_host, np.ones(len(s.ids), np.int64),
                 s.labels, ranking=s.logits)  # fmt: skip
    chunks, unparsed_rows = chunk_level(s.ids, s.prob_viral, s.labels, s.prob_host)
    records, own_records = record_level(chunks, pattern, aggregate)
    counts = {
        "rows": len(s.ids),
        "chunks": len(chunks.ids),
        "records": len(records.ids),
        "rows_without_frame_suffix": unparsed_rows,
        "chunks_as_own_record": own_records,
    }
    if unparsed_rows or own_records:
        log.warning(
            "%d rows have no reading-frame suffix ([FR][1-3]) and are in no chunk; %d chunks do "
            "not match record_pattern %r and are each a record of their own",
            unparsed_rows,
            own_records,
            pattern,
        )
    every = {"rows": rows, "chunks": chunks, "records": records}
    return {name: every[name] for name in LEVELS if name == "rows" or name in wanted}, counts


def add_level_intervals(
    metrics: dict, levels: dict[str, Level], pattern: str, ci: CIConfig
) -> None:
    """`intervals` and `not_estimable` beside each level's own prediction and each of its
    threshold blocks (at_0.5, at_stored_threshold, at_threshold), all from the same resamples
    of records: rows and chunks by the record their id names (`pattern`), records one by one.
    AUROC and AUPRC rank by what their values rank by (the rows' logits), so every interval
    belongs to the value beside it, and calibration cannot move it. Each level also gets how
    many genomes its units are worth (`effective_genomes`, `genomes`: stats/effective.py)."""
    described = None
    for name, level in levels.items():
        blocks = metrics[name]
        if "predicted" not in blocks:
            continue
        cuts = {"predicted": np.asarray(level.viral)}
        for key, block in blocks.items():
            if key.startswith("at_"):
                cuts[key] = np.asarray(level.score) >= block["threshold"]
        genomes = level_genomes(name, level, pattern)
        found, described = interval_blocks(
            level.labels, level.score, genomes, list(cuts.values()), ci, level.ranking
        )
        blocks.update({key: described.pop(key) for key in EFFECTIVE_KEYS})
        for key, block in zip(cuts, found, strict=True):
            blocks[key].update(block)
    if described is not None:
        metrics["ci"] = {**described, "unit": "record"}
