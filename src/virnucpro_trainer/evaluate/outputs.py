"""What evaluate.py writes: metrics per level (metrics.json), one predictions table per level, and
the prediction step's own two files for drop-in use (formats in /DESIGN.md and docs/evaluate.md).
Every file goes through atomic_path."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from virnucpro_trainer.atomic import write_lines
from virnucpro_trainer.levels import LEVELS, THRESHOLD_FREE, Level
from virnucpro_trainer.stats.metrics import classification_metrics, metrics_at

log = logging.getLogger(__name__)


def level_metrics(level: Level, thresholds: dict[str, float]) -> dict:
    """The level's own prediction (`predicted`) and its score cut at each threshold, with counts.

    `predicted` takes its threshold-free metrics (AUROC, AUPRC, Brier) from the score."""
    y = level.labels
    out: dict = {
        "units": len(level.ids),
        "viral_units": int(y.sum()),
        "mixed_label_units": level.mixed,
    }
    if not len(y):
        return out
    own = classification_metrics(y, level.viral.astype(np.float64), 0.5)
    free = classification_metrics(y, level.score, ranking=level.ranking)
    out["predicted"] = {**own, **{k: free[k] for k in THRESHOLD_FREE}}
    for name, threshold in thresholds.items():
        out[name] = metrics_at(y, level.score, threshold, level.ranking)
    return out


def _label(level: Level, i: int) -> list[str]:
    return [] if level.labels is None else [str(int(level.labels[i]))]


def write_level_table(
    path: Path, level: Level, unit: str, size_name: str, extra: dict | None = None
) -> None:
    """One line per unit: id, size, label (labelled data only), score, own prediction (1/0),
    then the `extra` columns (name -> one value per unit; extra_cells)."""
    extra = extra or {}

    def lines() -> Iterator[str]:
        header = [unit, size_name] + ([] if level.labels is None else ["label"])
        yield "\t".join([*header, "score", "viral", *extra])
        tails = extra_cells(extra, len(level.ids))
        for i, name in enumerate(level.ids):
            cells = [name, str(int(level.size[i]))] + _label(level, i)
            own = f"{level.score[i]:.6f}\t{int(level.viral[i])}"
            yield "\t".join(cells) + f"\t{own}{tails[i]}"

    write_lines(path, lines())


def extra_cells(extra: dict[str, np.ndarray], n: int) -> list[str]:
    """Each row's `extra` columns as one tab-prefixed string: 1/0 for booleans, NA for NaN, else
    6 significant digits (a q-value of 1e-9 stays readable); an object column's values as they
    print (`abstain`), NaN as NA. Formatted a column at a time."""
    columns = []
    for values in extra.values():
        if values.dtype == bool:
            columns.append(np.where(values, "\t1", "\t0").tolist())
        elif values.dtype == object:
            columns.append(["\tNA" if v != v else f"\t{v}" for v in values.tolist()])
        else:
            columns.append(["\tNA" if v != v else f"\t{v:.6g}" for v in values.tolist()])
    return ["".join(cells) for cells in zip(*columns, strict=True)] if columns else [""] * n


def write_row_table(
    path: Path,
    ids: list[str],
    files: list[str],
    labels: np.ndarray | None,
    prob_viral: np.ndarray,
    calls: dict[str, float],
    extra: dict[str, np.ndarray] | None = None,
) -> None:
    """One line per row (evaluate.py's predictions_rows.tsv, training's test_predictions.tsv):
    id, file, label (labelled data only), viral probability, then for each of `calls` (column
    name -> threshold) 1 if the probability is at least the threshold, else 0, then the `extra`
    columns (extra_cells)."""
    extra = extra or {}

    def lines() -> Iterator[str]:
        label_column = "" if labels is None else "\tlabel"
        yield "\t".join([f"id\tfile{label_column}\tprob_viral", *calls, *extra])
        tails = extra_cells(extra, len(ids))
        for i, (name, file) in enumerate(zip(ids, files, strict=True)):
            p = float(prob_viral[i])
            label = "" if labels is None else f"\t{int(labels[i])}"
            called = "".join(f"\t{int(p >= t)}" for t in calls.values())
            yield f"{name}\t{file}{label}\t{p:.6f}{called}{tails[i]}"

    write_lines(path, lines())


def write_prediction_results(
    path: Path, ids: list[str], prob_host: np.ndarray, prob_viral: np.ndarray
) -> None:
    """prediction_results.txt as the prediction step writes it: one line per row, `virus` when
    the viral probability is at least the non-viral one, probabilities as Python prints them."""

    def lines() -> Iterator[str]:
        yield "Sequence_ID\tPrediction\tscore1\tscore2"
        for name, host, viral in zip(ids, prob_host, prob_viral, strict=True):
            s1, s2 = float(host), float(viral)  # Python floats print as the prediction step's
            yield f"{name}\t{'virus' if s2 >= s1 else 'others'}\t{s1}\t{s2}"

    write_lines(path, lines())


def write_highest_score(path: Path, chunks: Level) -> None:
    """prediction_results_highestscore.csv (tab-separated despite the name): one line per chunk,
    sorted by id, `True` when its highest viral probability is at least its highest non-viral."""

    def lines() -> Iterator[str]:
        yield "Modified_ID\tIs_Virus"
        for name, viral in zip(chunks.ids, chunks.viral, strict=True):
            yield f"{name}\t{bool(viral)}"

    write_lines(path, lines())


def sequences_digest(ids: list[str]) -> str:
    """Which sequences were scored, whatever their order: evaluations with the same digest
    compare models on the same sequences (the multirun summary checks it)."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


def labelled_metrics(
    levels: dict[str, Level], stored: float | None, threshold: float | None
) -> dict:
    """Each level's metrics at 0.5, at the checkpoint's stored threshold and at `threshold=`."""
    thresholds = {"at_0.5": 0.5}
    if stored is not None:
        thresholds["at_stored_threshold"] = stored
    if threshold is not None:
        thresholds["at_threshold"] = float(threshold)
    return {name: level_metrics(level, thresholds) for name, level in levels.items()}


def log_summary(metrics: dict) -> None:
    for level in LEVELS:
        m = metrics[level].get("predicted")
        if m is None:
            continue
        log.info(
            "%-7s (%d): acc %.4f  prec %.4f  rec %.4f  f1 %.4f  mcc %.4f  auroc %.4f",
            level,
            metrics[level]["units"],
            m["accuracy"],
            m["precision"],
            m["recall"],
            m["f1"],
            m["mcc"],
            m["auroc"],
        )
