"""A search's results in its sweep directory, from the study: `summary.csv` and `summary.md` (the
best trial and its parameters, parameter importances, every trial with its state, value, epochs
and test metrics), `optimization_results.yaml` (the best parameters and value), and the pictures
`optimization_history.png` and `param_importances.png`.

Every worker rewrites them after each trial it ran (the pictures when it stops), each file
replaced whole (atomic.py), so a reader never sees a half-written one.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import optuna
import yaml
from optuna.trial import TrialState

from virnucpro_trainer.atomic import atomic_path
from virnucpro_trainer.reports.tables import fmt
from virnucpro_trainer.search.study import retry_history
from virnucpro_trainer.sweeps.training import METRICS, _fill_training, job_start

log = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def run_dir_of(trial: optuna.trial.FrozenTrial, sweep_dir: Path) -> Path:
    """Where the trial's run wrote (recorded by the run; else its default place)."""
    return Path(trial.user_attrs.get("run_dir", sweep_dir / str(trial.number)))


def trial_row(trial: optuna.trial.FrozenTrial, sweep_dir: Path) -> dict:
    """One trial: state, value, parameters, epochs it trained, the trial it retries, its run
    directory and, where the run finished, its test metrics; the last line of a failure."""
    run = run_dir_of(trial, sweep_dir)
    retried = retry_history(trial)
    row = {
        "trial": trial.number,
        "state": trial.state.name.lower(),
        "value": trial.value,  # a pruned trial's: at the epoch it stopped
        **{f"params.{k}": v for k, v in trial.params.items()},
        "epochs": len(trial.intermediate_values),
        "retry_of": retried[-1] if retried else "",
        "run_dir": run.relative_to(sweep_dir) if run.is_relative_to(sweep_dir) else run,
    }
    if run.is_dir():
        row["error"] = job_start(run).get("error", "")
        if (run / "test_metrics.json").is_file():
            _fill_training(row, json.loads((run / "test_metrics.json").read_text()))
    return row


def importances(study: optuna.Study) -> tuple[dict[str, float], str]:
    """(each parameter's importance, fANOVA, seeded), or ({}, why there is none)."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if len(complete) < 2:
        return {}, f"not estimable: {len(complete)} complete trial(s), at least 2 needed"
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    try:
        return optuna.importance.get_param_importances(study, evaluator=evaluator), ""
    except (ValueError, RuntimeError) as err:  # e.g. no parameter common to the trials
        return {}, f"not estimable: {err}"


def cell(value: object) -> str:
    """A table cell: floats to four significant figures, nothing for a missing value."""
    if value is None or value == "":
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def markdown(study: optuna.Study, rows: list[dict], weights: dict, why: str) -> list[str]:
    """summary.md: the best trial, the importances, then one line per trial."""
    states = [r["state"] for r in rows]
    counts = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))
    lines = [f"# Search {study.study_name!r}: {len(rows)} trials ({counts})", ""]
    best = best_trial(study)
    if best is not None:
        params = ", ".join(f"`{k}={v}`" for k, v in best.params.items())
        goal = study.direction.name.lower()
        lines += [f"Best: trial {best.number}, value {best.value:.6f} ({goal}d); {params}", ""]
    lines += ["## Parameter importances (fANOVA)", ""]
    if weights:
        lines += ["| parameter | importance |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in weights.items()]
    else:
        lines.append(why)
    names = sorted({k for r in rows for k in r if k.startswith("params.")})
    header = ["trial", "state", "value", "epochs", "retry of"]
    header += [n.removeprefix("params.") for n in names] + ["test f1", "test auroc", "test mcc"]
    lines += ["", "## Trials", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for r in rows:
        cells = [cell(r.get(k)) for k in ("trial", "state")]
        cells += [fmt(r["value"]), cell(r["epochs"]), cell(r["retry_of"])]
        cells += [cell(r.get(n)) for n in names] + [fmt(r.get(m)) for m in ("f1", "auroc", "mcc")]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "A pruned trial's value is its best value when the pruner stopped it."]
    return lines


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:  # no complete trial yet
        return None


def write_search_summary(study: optuna.Study, sweep_dir: Path, pictures: bool) -> None:
    """summary.csv, summary.md and optimization_results.yaml; the pictures with `pictures`."""
    sweep_dir = sweep_dir.absolute()
    rows = [trial_row(t, sweep_dir) for t in study.get_trials(deepcopy=False)]
    extra = ("error", "best_epoch", "optimized_metric", "optimized_value", *METRICS)
    columns = list(dict.fromkeys([*(k for r in rows for k in r), *extra]))
    with atomic_path(sweep_dir / "summary.csv") as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    weights, why = importances(study)
    with atomic_path(sweep_dir / "summary.md") as tmp:
        tmp.write_text("\n".join(markdown(study, rows, weights, why)) + "\n")
    best = best_trial(study)
    if best is not None:
        results = {"name": "optuna", "best_trial": best.number, "best_value": best.value}
        results["best_params"] = best.params
        with atomic_path(sweep_dir / "optimization_results.yaml") as tmp:
            tmp.write_text(yaml.safe_dump(results, sort_keys=False))
    if pictures:
        draw(study, weights, sweep_dir)
    log.info("search summary: %s", sweep_dir / "summary.md")


def draw(study: optuna.Study, weights: dict, sweep_dir: Path) -> None:
    """optimization_history.png: each finished trial's value (a pruned one's when it stopped)
    and the best so far; param_importances.png: the importances, if estimable."""
    from matplotlib.figure import Figure

    trials = [t for t in study.get_trials(deepcopy=False) if t.state in FINISHED]
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for state, marker in ((TrialState.COMPLETE, "o"), (TrialState.PRUNED, "x")):
        chosen = [t for t in trials if t.state == state and t.value is not None]
        values = [t.value for t in chosen]
        ax.scatter([t.number for t in chosen], values, marker=marker, label=state.name.lower())
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    better = min if study.direction == optuna.study.StudyDirection.MINIMIZE else max
    best = [better(t.value for t in complete[: i + 1]) for i in range(len(complete))]
    if complete:
        ax.step([t.number for t in complete], best, where="post", color="k", label="best so far")
    ax.set(xlabel="trial", ylabel="value", title=f"study {study.study_name}")
    ax.legend()
    save(fig, sweep_dir / "optimization_history.png")
    if weights:
        fig = Figure(figsize=(6, 1 + 0.4 * len(weights)))
        ax = fig.subplots()
        ax.barh(list(weights)[::-1], list(weights.values())[::-1])
        ax.set(xlabel="importance (fANOVA)", title="parameter importances")
        save(fig, sweep_dir / "param_importances.png")


def save(fig, path: Path) -> None:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
