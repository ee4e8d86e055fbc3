"""A search trial's own side, in the run the sweeper launched (in the sweeper's process or any
other: the config's `trial` node says which study and trial it is).

`run_trial` records the run's directory in the trial and continues from a checkpoint where an
earlier attempt left one (a job requeued by SLURM, or a retry of a trial whose worker was lost);
`epoch_reporter` makes the run's per-epoch callback (train.py hands it to the training loop's
`on_epoch`), which reports the objective after every epoch and raises Pruned when the pruner says
so; the run then keeps its directory, marked by `pruned.json`. `report` is the same for any
Hydra app whose config declares a `trial` node (docs/sweeps.md, "Pruning in any app"). Optuna
cannot prune a trial of several objectives: in such a study neither reports, and no trial is
pruned. `check_objectives` checks a train.py search's objectives (`optimized_metrics`, for
several) against the sweeper's directions; `name_objectives` records their names in the study,
which summary.md and pareto_front.png show.
"""

from __future__ import annotations

import functools
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from virnucpro_trainer.atomic import write_json
from virnucpro_trainer.config.schema import metric_direction
from virnucpro_trainer.errors import Pruned, UserError
from virnucpro_trainer.run_dir import LAST

if TYPE_CHECKING:
    import optuna

    from virnucpro_trainer.train.loop import EpochEnd

log = logging.getLogger(__name__)

PRUNED = "pruned.json"  # in a pruned trial's directory: the epoch, the value, the last metrics
Value = float | tuple[float, ...]  # what a run returns: one objective's value, or several


def is_trial(trial: DictConfig | None) -> bool:
    return trial is not None and trial.get("number") is not None


def open_trial(trial: DictConfig) -> optuna.Trial:
    """The running Optuna trial the config names, with the pruner it names."""
    import optuna
    from hydra.utils import instantiate

    from virnucpro_trainer.search.private_api import running_trial
    from virnucpro_trainer.search.study import open_storage

    pruner = instantiate(trial.pruner) if trial.pruner else optuna.pruners.NopPruner()
    study = optuna.load_study(
        study_name=trial.study_name,
        storage=open_storage(trial.storage),
        pruner=pruner,
        sampler=optuna.samplers.RandomSampler(),  # never asked: the sweeper samples
    )
    return running_trial(study, trial.number)


def earlier_attempt(trial: optuna.Trial, run_dir: Path) -> Path | None:
    """Where this trial continues from: its own directory when its job was started again, else
    the latest earlier attempt (of a trial retried after its worker was lost) that saved a
    training state; None when there is nothing to continue."""
    from virnucpro_trainer.search.study import retry_history

    if (run_dir / LAST).is_file():
        return run_dir
    attempts = {t.number: t for t in trial.study.get_trials(deepcopy=False)}
    for number in reversed(retry_history(attempts[trial.number])):
        old = attempts[number].user_attrs.get("run_dir")
        if old and (Path(old) / LAST).is_file() and (Path(old) / "split.json").is_file():
            return Path(old)
    return None


def run_trial(cfg: DictConfig, run_dir: Path, run: Callable[[DictConfig, Path], Value]) -> Value:
    """`run(cfg, run_dir)` as search trial `cfg.trial.number`: continued from an earlier attempt's
    training state if there is one (resume=), and marked by pruned.json if the pruner stops it."""
    trial = open_trial(cfg.trial)
    trial.set_user_attr("run_dir", str(run_dir.absolute()))
    source = earlier_attempt(trial, run_dir)
    if source is not None and not (run_dir / "test_metrics.json").exists():
        if source != run_dir:
            (run_dir / LAST).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / LAST, run_dir / LAST)
            shutil.copyfile(source / "split.json", run_dir / "split.json")
        log.info("trial %d continues from the training state in %s", cfg.trial.number, source)
        cfg.resume = str(run_dir)
    try:
        return run(cfg, run_dir)
    except Pruned as pruned:
        write_json(run_dir / PRUNED, pruned.args[0])
        log.info(
            "pruned after epoch %d: %s %.6f (at the best epoch so far)",
            *(pruned.args[0][k] for k in ("epoch", "metric", "value")),
        )
        raise


def epoch_reporter(trial: DictConfig | None, metric: str) -> Callable[[EpochEnd], None] | None:
    """For a search trial, the training loop's `on_epoch`: after every epoch the objective
    (`metric` at the best epoch so far) to the trial, then Pruned raised if the pruner stops it
    (never after the last epoch). None for any other run, and for a trial of several
    objectives (Optuna cannot prune one: it runs whole)."""
    if not is_trial(trial):
        return None
    optuna_trial = open_trial(trial)
    if len(optuna_trial.study.directions) > 1:
        return None
    name = metric.removeprefix("val_")

    def report(end: EpochEnd) -> None:
        value = float(end.best_metrics[name])
        optuna_trial.report(value, end.epoch)
        if not end.last and optuna_trial.should_prune():
            details = {"trial": trial.number, "epoch": end.epoch, "metric": metric, "value": value}
            raise Pruned({**details, "last_epoch": end.record})

    return report


@functools.lru_cache(maxsize=4)
def _trial_of(storage: str, study_name: str, number: int, pruner: str) -> optuna.Trial:
    import json

    from omegaconf import OmegaConf

    config = {"storage": storage, "study_name": study_name, "number": number}
    return open_trial(OmegaConf.create({**config, "pruner": json.loads(pruner)}))


def report(trial: DictConfig | None, value: float, step: int) -> None:
    """For a job of any Hydra app searched by this sweeper: report `value` at `step` (an epoch,
    an iteration) to the job's trial, then raise Pruned if the pruner stops it (the sweeper
    marks the trial pruned). `trial` is the app's `trial` node (keys number, storage,
    study_name, pruner, all null; the sweeper fills them in); outside a search, and in a search
    of several objectives (which Optuna cannot prune), it does nothing."""
    import json

    from omegaconf import OmegaConf

    if not is_trial(trial):
        return
    pruner = json.dumps(OmegaConf.to_container(trial.pruner) if trial.pruner else None)
    optuna_trial = _trial_of(trial.storage, trial.study_name, trial.number, pruner)
    if len(optuna_trial.study.directions) > 1:
        return
    optuna_trial.report(float(value), step)
    if optuna_trial.should_prune():
        raise Pruned({"trial": trial.number, "step": step, "value": float(value)})


def check_objectives(metrics: list[str] | None, direction: str | list[str]) -> None:
    """A train.py search's `optimized_metrics` against the sweeper's `direction` (one, or a
    list): as many, each the way its metric goes (none for one direction: `optimized_metric`
    is the objective); a UserError saying what to set otherwise (the trial fails with it)."""
    directions = [direction] if isinstance(direction, str) else list(direction)
    if metrics is None:
        if len(directions) > 1:
            raise UserError(
                f"hydra.sweeper.direction has {len(directions)} objectives {directions}: set "
                f"optimized_metrics to as many (e.g. [val_auroc,parameters]; "
                "hparams_search=optuna_pareto)"
            )
        return
    names = list(metrics)
    wanted = [metric_direction(m) for m in names]
    if wanted != directions:
        raise UserError(
            f"optimized_metrics {names} are to {'/'.join(wanted)}, but hydra.sweeper.direction "
            f"is {directions}: set hydra.sweeper.direction=[{','.join(wanted)}]"
        )


def name_objectives(trial: DictConfig | None, metrics: list[str] | None) -> None:
    """Record the names of a search trial's objectives in its study (Optuna's metric_names,
    once per study), which summary.md and pareto_front.png label the values with."""
    if not is_trial(trial) or metrics is None:
        return
    from virnucpro_trainer.search.study import known_warnings

    study = open_trial(trial).study
    names = list(metrics)
    with known_warnings():  # metric names are experimental
        if study.metric_names != names and len(study.directions) == len(names):
            study.set_metric_names(names)
