"""What `ckpt=` names (issue 35): one model, or an ensemble of a list of runs and .pth files, an
ensemble file, a sweep directory or a search directory, with what a directory leaves out said
aloud.

A sweep directory gives every job its multirun.yaml launched, in job order; a job without a
best-model file (failed, unfinished, its folder deleted) is skipped and named, with the reason,
in a warning, in metrics.json (`ensemble.skipped`) and in the model card. A search directory
(its multirun.yaml names the Optuna sweeper) gives its best `ensemble.top_k` complete trials by
the study's objective: each trial's `optimized_metric` (a validation metric at its best epoch,
never a test one) from its test_metrics.json, minimised or maximised as the search was.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from virnucpro_trainer.checkpoint import (
    ScoringModel,
    read_checkpoint,
    resolve_checkpoint,
    scoring_model,
)
from virnucpro_trainer.config.schema import metric_direction
from virnucpro_trainer.ensemble import Ensemble, ensemble_of, from_file
from virnucpro_trainer.errors import UserError

log = logging.getLogger(__name__)

JOB_NUM = "${hydra.job.num}"  # the sweep's subdir when its job directories are numbered


@dataclass
class Found:
    """A directory's members (best-model file, run directory), the jobs it left out
    ({path, reason}) and, for a search, how its trials were chosen."""

    members: list[tuple[Path, Path]]
    skipped: list[dict]
    chosen: dict | None = None


def load_scoring(ckpt, min_members: int = 2, top_k: int = 5) -> ScoringModel | Ensemble:
    """What `ckpt=` names: one model, or an ensemble (a list, a sweep or search directory, an
    ensemble file) of at least `min_members`."""
    if isinstance(ckpt, (list, tuple)):
        if not ckpt:
            raise UserError("ckpt=[] names no checkpoint")
        members = [resolve_checkpoint(Path(c)) for c in ckpt]
        where = Path(os.path.commonpath([str(f) for f, _ in members]))
        return ensemble_of(members, where, min_members)
    path = Path(ckpt)
    found = directory_members(path, top_k)
    if found is not None:
        say(path, found)
        ensemble = ensemble_of(found.members, path, min_members, found.skipped)
        ensemble.chosen = found.chosen
        return ensemble
    file, run_dir = resolve_checkpoint(path)
    obj = read_checkpoint(file)
    if "members" in obj:
        return from_file(file, obj, min_members)
    return scoring_model(file, run_dir, obj)


def say(path: Path, found: Found) -> None:
    """The warning naming every job left out (a search's trials ranked out: the log's choice)."""
    left_out = [s for s in found.skipped if not s["reason"].startswith("not among")]
    if left_out:
        log.warning(
            "%s: %d job(s) left out of the ensemble: %s", path, len(left_out),
            "; ".join(f"{s['path']}: {s['reason']}" for s in left_out),
        )  # fmt: skip
    if found.chosen is not None:
        c = found.chosen
        log.info(
            "search directory %s: the best %d of %d complete trials by %s (%sd): %s", path,
            len(c["trials"]), c["complete"], c["by"], c["direction"],
            ", ".join(f"trial {t['trial']} ({t['value']:.6g})" for t in c["trials"]),
        )  # fmt: skip


def multirun_config(path: Path) -> dict | None:
    """The sweep's multirun.yaml (Hydra's record of what it launched), or None."""
    file = path / "multirun.yaml"
    if not file.is_file():
        return None
    try:
        found = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"{file}: cannot be read as YAML: {err}") from None
    return found if isinstance(found, dict) else None


def launched(hydra: dict) -> int | None:
    """How many numbered jobs the sweep launched (the product of its sweeps' lengths), or None
    where that cannot be told (job directories not numbered, a sweep Hydra must expand)."""
    if (hydra.get("sweep") or {}).get("subdir") != JOB_NUM:
        return None
    params = (hydra.get("sweeper") or {}).get("params") or {}
    args = [f"{k}={v}" for k, v in params.items()] + list(
        (hydra.get("overrides") or {}).get("task") or []
    )
    try:
        overrides = {o.get_key_element(): o for o in OverridesParser.create().parse_overrides(args)}
        sizes = [
            len(list(o.sweep_string_iterator()))
            for o in overrides.values()
            if o.is_sweep_override()
        ]
    except Exception:  # noqa: BLE001 - e.g. glob(), which needs the config: not counted
        return None
    return math.prod(sizes)


def job_dirs(path: Path, count: int | None) -> list[Path]:
    """The sweep's job directories in job order, those it launched but that are gone included."""
    names = {p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")}
    names |= {str(i) for i in range(count or 0)}
    return [path / n for n in sorted(names, key=lambda n: (len(n), n))]


def why_left_out(job: Path) -> str | None:
    """Why a job is not a member (failed, pruned, unfinished, gone), or None for a member."""
    if not job.is_dir():
        return "its job directory is missing (multirun.yaml launched it)"
    error = job / "error.txt"
    if error.is_file():
        lines = error.read_text(errors="replace").strip().splitlines()
        return f"the job failed: {lines[-1] if lines else 'error.txt'}"
    if (job / "pruned.json").is_file():
        return "pruned by the search"
    try:
        resolve_checkpoint(job)
    except UserError:
        if (job / "test_metrics.json").is_file():
            return "no best-model file, though the run finished (test_metrics.json): deleted?"
        return "no best-model file: the job did not finish"
    return None


def directory_members(path: Path, top_k: int) -> Found | None:
    """A sweep or search directory's members and the jobs it leaves out; None when `path` is
    neither (a run directory, a file, or a folder of no runs and no multirun.yaml)."""
    if not path.is_dir() or (path / ".hydra").is_dir():
        return None
    config = multirun_config(path)
    hydra = (config or {}).get("hydra") or {}
    if "optuna" in str((hydra.get("sweeper") or {}).get("_target_", "")):
        return search_members(path, config, top_k)
    members, skipped = [], []
    for job in job_dirs(path, launched(hydra)):
        reason = why_left_out(job)
        if reason is None:
            members.append(resolve_checkpoint(job))
        else:
            skipped.append({"path": str(job), "reason": reason})
    if config is None and not members:
        return None  # not a sweep: resolve_checkpoint says what it is
    return Found(members, skipped)


def objective(job: Path) -> float:
    """A finished trial's objective (its optimized_metric's value) from its test_metrics.json;
    NaN when it has none."""
    try:
        return float(
            json.loads((job / "test_metrics.json").read_text())["optimized_metric"]["value"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return math.nan


def search_members(path: Path, config: dict, top_k: int) -> Found:
    """The best `top_k` complete trials of a search directory by the study's objective."""
    metric = str(config.get("optimized_metric") or "val_loss")
    direction = (config["hydra"].get("sweeper") or {}).get("direction")
    if isinstance(direction, list):
        raise UserError(
            f"ckpt={path} is a search with several objectives {direction}: it has no single "
            "best trials; name the members, ckpt=[<trial dir>,<trial dir>,...]"
        )
    if direction not in ("minimize", "maximize"):  # as the search's config interpolates it
        direction = metric_direction(metric)
    complete, skipped = [], []
    for job in job_dirs(path, None):
        reason, value = why_left_out(job), objective(job)
        if reason is None and not math.isfinite(value):
            reason = "no finite objective in its test_metrics.json"
        if reason is None:
            complete.append((value if direction == "minimize" else -value, job, value))
        else:
            skipped.append({"path": str(job), "reason": reason})
    complete.sort(key=lambda c: (c[0], len(c[1].name), c[1].name))
    for _, job, value in complete[top_k:]:
        reason = f"not among the best {top_k} by {metric} ({value:.6g}; ensemble.top_k)"
        skipped.append({"path": str(job), "reason": reason})
    trials = [
        {"trial": job.name, "value": value, "path": str(job)} for _, job, value in complete[:top_k]
    ]
    chosen = {"by": metric, "direction": direction, "top_k": top_k, "complete": len(complete),
              "trials": trials}  # fmt: skip
    return Found([resolve_checkpoint(Path(t["path"])) for t in trials], skipped, chosen)
