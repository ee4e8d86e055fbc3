"""A search's results in its sweep directory, from the study: `summary.csv` and `summary.md` (the
best trial and its parameters, or a multi-objective study's Pareto front; parameter importances;
every trial with its state, value, epochs and test metrics; why each failed trial failed),
`optimization_results.yaml` (the best parameters and value, or the front), and the pictures
`optimization_history.png` and `param_importances.png` (for two or three objectives
`pareto_front.png`, Optuna's plot_pareto_front). A multi-objective study's values are named by
its metric names where its trials recorded them (train.py's `optimized_metrics`).

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
from virnucpro_trainer.search.outcome import FAILED_BECAUSE
from virnucpro_trainer.search.study import known_warnings, retry_history
from virnucpro_trainer.sweeps.training import METRICS, _fill_training, job_start

log = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# fANOVA on fewer complete trials ranks parameters by noise: importances wait for this many
MIN_FOR_IMPORTANCES = 10


def run_dir_of(trial: optuna.trial.FrozenTrial, sweep_dir: Path) -> Path:
    """Where the trial's run wrote (recorded by the run; else its default place)."""
    return Path(trial.user_attrs.get("run_dir", sweep_dir / str(trial.number)))


def trial_row(trial: optuna.trial.FrozenTrial, sweep_dir: Path) -> dict:
    """One trial: state, value, parameters, epochs it trained, the trial it retries, its run
    directory and, where the run finished, its test metrics; the last line of a failure."""
    run = run_dir_of(trial, sweep_dir)
    retried = retry_history(trial)
    values = trial.values or []
    row = {
        "trial": trial.number,
        "state": trial.state.name.lower(),
        # a pruned trial's: at the epoch it stopped; a multi-objective trial's: each value
        "value": values[0] if len(values) == 1 else (values or None),
        **{f"params.{k}": v for k, v in trial.params.items()},
        # the epoch it ended at (a retry that resumed reports only the epochs it ran itself)
        "epochs": max(trial.intermediate_values, default=""),  # none in a multi-objective one
        "retry_of": retried[-1] if retried else "",
        "run_dir": run.relative_to(sweep_dir) if run.is_relative_to(sweep_dir) else run,
    }
    row["error"] = trial.user_attrs.get(FAILED_BECAUSE, "")  # what the worker saw
    if run.is_dir():
        row["error"] = row["error"] or job_start(run).get("error", "")
        if (run / "test_metrics.json").is_file():
            test = json.loads((run / "test_metrics.json").read_text())
            _fill_training(row, test)
            if row["epochs"] == "":  # not reported per epoch (several objectives): the run's own
                row["epochs"] = test.get("epochs_run", "")
    return row


def importances(study: optuna.Study) -> tuple[dict[str, float], str]:
    """(each parameter's importance, fANOVA, seeded), or ({}, why there is none)."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if len(study.directions) > 1:
        return {}, "not estimated for a multi-objective search"
    if len(complete) < MIN_FOR_IMPORTANCES:
        return {}, (
            f"not estimated yet: {len(complete)} complete trial(s), at least "
            f"{MIN_FOR_IMPORTANCES} needed (on fewer, fANOVA ranks the parameters by noise)"
        )
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


def value_text(value) -> str:
    """A trial's value, or a multi-objective trial's values, as a table cell (a count, a whole
    number of 1000 or more, without decimals)."""
    if isinstance(value, list):
        return ", ".join(value_text(v) for v in value)
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1000:
        return f"{value:.0f}"
    return fmt(value)


def objective_names(study: optuna.Study) -> list[str] | None:
    """The names of the study's objectives (Optuna's metric names, which train.py's trials
    record: `optimized_metrics`), or None where its trials named none."""
    with known_warnings():  # metric names are experimental
        names = study.metric_names
    return list(names) if names and len(names) == len(study.directions) else None


def headline(study: optuna.Study) -> list[str]:
    """The best trial with its parameters; a multi-objective study's Pareto front."""
    if len(study.directions) > 1:
        goals = [d.name.lower() for d in study.directions]
        names = objective_names(study)
        if names is not None:  # `val_auroc maximize, parameters minimize`
            goals = [f"{n} {g}" for n, g in zip(names, goals, strict=True)]
        goals = ", ".join(goals)
        front = study.best_trials
        lines = [f"## Pareto front ({goals}): {len(front)} trial(s)", ""]
        for t in sorted(front, key=lambda t: t.number):
            params = ", ".join(f"`{k}={v}`" for k, v in t.params.items())
            lines.append(f"- trial {t.number}: values {value_text(t.values)}; {params}")
        return [*lines, ""]
    best = best_trial(study)
    if best is None:
        return []
    params = ", ".join(f"`{k}={v}`" for k, v in best.params.items())
    goal = study.direction.name.lower()
    return [f"Best: trial {best.number}, value {best.value:.6f} ({goal}d); {params}", ""]


def markdown(study: optuna.Study, rows: list[dict], weights: dict, why: str) -> list[str]:
    """summary.md: the best trial (or the Pareto front), the importances, one line per trial,
    then why each failed trial failed."""
    states = [r["state"] for r in rows]
    counts = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))
    lines = [f"# Search {study.study_name!r}: {len(rows)} trials ({counts})", ""]
    lines += headline(study)
    lines += ["## Parameter importances (fANOVA)", ""]
    if weights:
        lines += ["| parameter | importance |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in weights.items()]
    else:
        lines.append(why)
    names = sorted({k for r in rows for k in r if k.startswith("params.")})
    tests = ("f1", "auroc", "mcc") if any("f1" in r for r in rows) else ()  # train.py's runs
    header = ["trial", "state", "value", "epochs", "retry of"]
    header += [n.removeprefix("params.") for n in names] + [f"test {m}" for m in tests]
    lines += ["", "## Trials", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for r in rows:
        cells = [cell(r.get(k)) for k in ("trial", "state")]
        cells += [value_text(r["value"]), cell(r["epochs"]), cell(r["retry_of"])]
        cells += [cell(r.get(n)) for n in names] + [fmt(r.get(m)) for m in tests]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "A pruned trial's value is its best value when the pruner stopped it; its epochs,",
    ]
    lines += ["and any trial's, the epoch it ended at."]
    failed = [r for r in rows if r["state"] == "fail" and r.get("error")]
    if failed:
        lines += ["", "## Failed trials", ""]
        lines += [f"- trial {r['trial']}: {r['error']}" for r in failed]
    return lines


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    if len(study.directions) > 1:
        return None
    try:
        return study.best_trial
    except ValueError:  # no complete trial yet
        return None


def results(study: optuna.Study) -> dict | None:
    """optimization_results.yaml: the best trial's parameters and value, as
    hydra-optuna-sweeper writes them; for several objectives the Pareto front, as `best_trials`
    (their numbers) and `solutions` (each one's parameters and values)."""
    if len(study.directions) > 1:
        front = sorted(study.best_trials, key=lambda t: t.number)
        solutions = [{"params": t.params, "values": t.values} for t in front]
        return {"name": "optuna", "best_trials": [t.number for t in front], "solutions": solutions}
    best = best_trial(study)
    if best is None:
        return None
    return {
        "name": "optuna",
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": best.params,
    }


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
    found = results(study)
    if found is not None:
        with atomic_path(sweep_dir / "optimization_results.yaml") as tmp:
            tmp.write_text(yaml.safe_dump(found, sort_keys=False))
    if pictures:
        draw(study, weights, sweep_dir)
    log.info("search summary: %s", sweep_dir / "summary.md")


def draw(study: optuna.Study, weights: dict, sweep_dir: Path) -> None:
    """optimization_history.png: each finished trial's value (a pruned one's when it stopped)
    and the best so far; param_importances.png: the importances, if estimated;
    pareto_front.png for two objectives."""
    from matplotlib.figure import Figure

    if len(study.directions) > 1:
        draw_front(study, sweep_dir)
        return
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


def draw_front(study: optuna.Study, sweep_dir: Path) -> None:
    """pareto_front.png, for two or three objectives: Optuna's plot_pareto_front, every complete
    trial's values with the front's marked, each axis an objective's name and direction."""
    if len(study.directions) not in (2, 3):
        return
    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        return
    import matplotlib

    matplotlib.use("Agg")  # files only, as reports/figures.py
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_pareto_front

    names = objective_names(study) or [f"objective {i}" for i in range(len(study.directions))]
    goals = [d.name.lower() for d in study.directions]
    labels = [f"{n} ({g})" for n, g in zip(names, goals, strict=True)]
    with known_warnings():  # plot_pareto_front is experimental
        ax = plot_pareto_front(study, target_names=labels)
    ax.set_title(f"Pareto front: study {study.study_name}")
    try:
        save(ax.figure, sweep_dir / "pareto_front.png")
    finally:
        plt.close(ax.figure)


def save(fig, path: Path) -> None:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
