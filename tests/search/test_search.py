"""The search sweeper's parts in this process, on real Optuna studies in journal files: the search
space, the sweeper's settings and storage, counting toward n_trials, the heartbeat that fails a
lost trial and queues its retry, per-trial seeding, joining a study, the trial's own side
(reporting, pruning, continuing an earlier attempt) and the summary (the real workers:
e2e/test_search_workers.py, e2e/test_sweeps.py)."""

from __future__ import annotations

import csv
import datetime
import json
from pathlib import Path

import optuna
import optuna.distributions as od
import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from optuna.trial import TrialState

from virnucpro_trainer.errors import Pruned, UserError
from virnucpro_trainer.run_dir import LAST
from virnucpro_trainer.search.settings import check_pruner, make_sampler, settings_from
from virnucpro_trainer.search.space import as_override, pruner_override, search_space
from virnucpro_trainer.search.study import (
    join_study,
    open_storage,
    retry_callback,
    retry_history,
    storage_spec,
)
from virnucpro_trainer.search.summary import write_search_summary
from virnucpro_trainer.search.trial import PRUNED, epoch_reporter, run_trial
from virnucpro_trainer.search.worker import counted, trials_left
from virnucpro_trainer.train.loop import EpochEnd

from helpers import compose_train

# these tests ask heartbeat studies for trials themselves, as the worker does in known_warnings()
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")

PRESET = compose_train("hparams_search=optuna", hydra_config=True).hydra.sweeper
SPACE = {"lr": od.FloatDistribution(1e-5, 1e-2, log=True), "batch": od.IntDistribution(32, 64)}


def study_in(tmp_path: Path, name: str = "s", grace: int = 60, **search) -> optuna.Study:
    spec = str(tmp_path / "optuna.journal")
    storage = open_storage(spec, (1, grace, retry_callback(1)))
    return join_study(storage, name, ["minimize"], make_sampler(dict(PRESET.sampler)), search)


def test_the_preset_space_and_the_command_line_win():
    params = OmegaConf.to_container(PRESET.params)
    space, fixed = search_space(
        params, ["data=synthetic", "batch_size=range(32, 128, 32)", "patience=5"]
    )
    assert space["optimizer.lr"] == od.FloatDistribution(1e-5, 1e-2, log=True)
    assert space["model.hidden_dim"] == od.CategoricalDistribution([256, 512, 1024])
    assert space["model.dropout"] == od.FloatDistribution(0.1, 0.6)
    assert space["batch_size"] == od.IntDistribution(32, 128, step=32)  # both ends included
    assert "patience" not in space and fixed == ["data=synthetic", "patience=5"]


@pytest.mark.parametrize(
    "bad", ["optimizer.lr=interval(1e-3)", "x=tag(log, interval(0, 1))", "x=range(5, 1)"]
)
def test_a_bad_search_value_is_named(bad):
    with pytest.raises(UserError, match=r"cannot search .*from the command line"):
        search_space({}, [bad])


def test_values_go_to_a_trial_as_hydra_reads_them_back():
    parser = OverridesParser.create()
    for value in (1.5e-05, 64, "a b,c'd", True, None):
        assert parser.parse_override(as_override("k", value)).value() == value
    pruner = {"_target_": "optuna.pruners.MedianPruner", "n_warmup_steps": 2, "max": "auto"}
    assert parser.parse_override(pruner_override(pruner)).value() == pruner


def test_storage_is_a_journal_in_the_sweep_or_a_database_url(tmp_path):
    assert storage_spec(None, tmp_path) == str(tmp_path / "optuna.journal")
    assert storage_spec("sqlite:///a.db", tmp_path) == f"sqlite:///{Path('a.db').absolute()}"
    assert storage_spec("postgresql://u@h/db", tmp_path) == "postgresql://u@h/db"
    assert storage_spec("j/x.journal", tmp_path) == str(Path("j/x.journal").absolute())
    (tmp_path / "o.db").write_bytes(b"SQLite format 3\x00")
    for bad, why in [
        ("redis://h", "must be a journal file path, or a database URL"),
        (str(tmp_path), "is a directory"),
        (str(tmp_path / "o.db"), "is an SQLite database: write sqlite:///"),
    ]:
        with pytest.raises(UserError, match=why):
            storage_spec(bad, tmp_path)


def test_bad_sweeper_settings_are_all_named():
    settings = OmegaConf.to_container(PRESET, resolve=True)
    settings_from({k: v for k, v in settings.items() if not k.startswith("_")})  # the preset's
    settings.update(n_trials=0, grace_period=30, heartbeat_interval=60, max_failure_rate=1.5)
    settings.update(direction=["minimize", "up"], max_failures=3)
    with pytest.raises(UserError) as err:
        settings_from({k: v for k, v in settings.items() if not k.startswith("_")})
    assert "hydra.sweeper.max_failures is not a setting" in str(err.value)
    assert "hydra.sweeper.n_trials must be >= 1, got 0" in str(err.value)
    assert "hydra.sweeper.max_failure_rate must be a number from 0 to 1, got 1.5" in str(err.value)
    assert "hydra.sweeper.direction must be minimize or maximize, or a list" in str(err.value)
    with pytest.raises(UserError, match="hydra.sweeper.pruner: cannot make optuna.pruners.Nope"):
        check_pruner({"_target_": "optuna.pruners.Nope"})


def add_lost_trial(study: optuna.Study, user_attrs: dict) -> optuna.trial.FrozenTrial:
    """A running trial whose heartbeat stopped 10 s ago."""
    lost = optuna.create_trial(state=TrialState.RUNNING, params={"x": 0.5},
                               distributions={"x": od.FloatDistribution(0, 1)},
                               user_attrs=user_attrs)  # fmt: skip
    lost.datetime_start -= datetime.timedelta(seconds=10)
    study.add_trial(lost)
    return study.get_trials()[-1]


def test_lost_trials_do_not_count_their_retries_do(tmp_path):
    study = study_in(tmp_path, grace=5)
    for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
        value = 1.0 if state == TrialState.COMPLETE else None
        study.add_trial(optuna.create_trial(state=state, value=value))
    lost = add_lost_trial(study, {})
    assert counted(study.get_trials()) == 4  # the failed-by-its-error one counts
    assert trials_left(study, 4) == 1  # the lost trial is found stale: its retry is asked next
    trials = study.get_trials()
    assert trials[lost.number].state == TrialState.FAIL
    assert trials[-1].state == TrialState.WAITING and retry_history(trials[-1]) == [3]
    assert counted(trials) == 3
    retry = study.ask()
    assert trials_left(study, 4) == 0  # nothing to ask while the retry runs
    study.tell(retry, 0.5)
    assert trials_left(study, 4) is None  # the search is over


def test_each_trial_is_seeded_by_its_number_so_workers_never_repeat(tmp_path):
    a = study_in(tmp_path / "a")
    b = study_in(tmp_path / "b")  # the same seed: another study, like a fresh run
    first = [a.ask(SPACE).params for _ in range(3)]
    assert [b.ask(SPACE).params for _ in range(3)] == first  # a search repeats exactly
    assert len({json.dumps(p) for p in first}) == 3  # and trials differ from each other


def test_a_worker_joins_only_the_search_it_means(tmp_path):
    study_in(tmp_path, data="synthetic", batch_size="searched: choice")
    with pytest.raises(UserError, match=r"another search.*\n  data: study 'synthetic'"):
        study_in(tmp_path, data="merged", batch_size="searched: choice")
    storage = open_storage(str(tmp_path / "optuna.journal"))
    with pytest.raises(UserError, match="is to minimize its value.*this worker would maximize"):
        join_study(storage, "s", ["maximize"], None, {})


def trial_config(tmp_path: Path, number: int, pruner: dict | None):
    storage = str(tmp_path / "optuna.journal")
    return OmegaConf.create(
        {"storage": storage, "study_name": "s", "number": number, "pruner": pruner}
    )


def test_a_trial_reports_each_epoch_and_stops_when_pruned(tmp_path):
    study = study_in(tmp_path)
    trial = study.ask()
    never = epoch_reporter(trial_config(tmp_path, trial.number, None), "val_mcc")
    never(EpochEnd(1, {}, {"mcc": 0.2}, last=False))
    threshold = {"_target_": "optuna.pruners.ThresholdPruner", "lower": 0.5}
    report = epoch_reporter(trial_config(tmp_path, trial.number, threshold), "val_mcc")
    report(EpochEnd(2, {}, {"mcc": 0.1}, last=True))  # never pruned after its last epoch
    with pytest.raises(Pruned) as pruned:
        report(EpochEnd(3, {"epoch": 3}, {"mcc": 0.3}, last=False))
    assert pruned.value.args[0]["epoch"] == 3 and pruned.value.args[0]["last_epoch"] == {"epoch": 3}
    assert study.trials[trial.number].intermediate_values == {1: 0.2, 2: 0.1, 3: 0.3}
    assert epoch_reporter(OmegaConf.create({"number": None}), "val_loss") is None


def test_a_retry_continues_the_lost_attempt_and_a_pruned_run_is_marked(tmp_path):
    study = study_in(tmp_path, grace=5)
    old = tmp_path / "lost"
    (old / "checkpoints").mkdir(parents=True)
    (old / LAST).write_bytes(b"state")
    (old / "split.json").write_text("{}")
    lost = add_lost_trial(study, {"run_dir": str(old)})
    trials_left(study, 1)  # fails it and queues the retry
    retry = study.ask({"x": od.FloatDistribution(0, 1)})
    assert retry.params == lost.params
    assert retry_history(study.trials[retry.number]) == [lost.number]
    run_dir = tmp_path / "retry"
    run_dir.mkdir()
    cfg = OmegaConf.create({"resume": None, "trial": trial_config(tmp_path, retry.number, None)})
    seen = []

    def run(cfg, run_dir):
        seen.append((cfg.resume, (run_dir / LAST).read_bytes()))
        raise Pruned({"trial": 1, "epoch": 4, "metric": "val_loss", "value": 0.3})

    with pytest.raises(Pruned):
        run_trial(cfg, run_dir, run)
    assert seen == [(str(run_dir), b"state")]
    assert json.loads((run_dir / PRUNED).read_text())["epoch"] == 4
    assert study.trials[retry.number].user_attrs["run_dir"] == str(run_dir)
    assert (old / LAST).read_bytes() == b"state"  # the lost attempt's files stay as they were


def test_the_summary_names_the_best_trial_and_every_state(tmp_path):
    study = study_in(tmp_path)
    for value in (0.4, 0.2, 0.3):
        trial = study.ask(SPACE)
        study.tell(trial, value)
    pruned = study.ask(SPACE)
    pruned.report(0.9, 1)
    study.tell(pruned, state=TrialState.PRUNED)
    failed = study.ask(SPACE)
    (tmp_path / str(failed.number)).mkdir()
    (tmp_path / str(failed.number) / "error.txt").write_text("Traceback\nUserError: diverged\n")
    study.tell(failed, state=TrialState.FAIL)
    write_search_summary(study, tmp_path, pictures=True)
    with (tmp_path / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["trial"], r["state"]) for r in rows] == [
        ("0", "complete"), ("1", "complete"), ("2", "complete"), ("3", "pruned"), ("4", "fail")
    ]  # fmt: skip
    assert rows[3]["value"] == "0.9" and rows[4]["error"] == "UserError: diverged"
    md = (tmp_path / "summary.md").read_text()
    assert "5 trials (3 complete, 1 pruned, 1 fail)" in md and "Best: trial 1, value 0.2" in md
    assert "- trial 4: UserError: diverged" in md  # why it failed
    # importances wait for enough complete trials, and say so
    assert "not estimated yet: 3 complete trial(s), at least 10 needed" in md
    assert not (tmp_path / "param_importances.png").exists()
    for value in range(7):
        study.tell(study.ask(SPACE), value / 10)
    write_search_summary(study, tmp_path, pictures=True)
    md = (tmp_path / "summary.md").read_text()
    assert "| lr |" in md and "| batch |" in md  # the importances table
    for picture in ("optimization_history.png", "param_importances.png"):
        assert (tmp_path / picture).read_bytes()[:4] == b"\x89PNG"


def test_a_resumed_retry_shows_the_epoch_it_ended_at(tmp_path):
    study = study_in(tmp_path)
    retry = study.ask(SPACE)
    for epoch in (4, 5, 6):  # it resumed after epoch 3 of the lost attempt
        retry.report(0.5, epoch)
    study.tell(retry, 0.5)
    write_search_summary(study, tmp_path, pictures=False)
    with (tmp_path / "summary.csv").open() as f:
        assert next(csv.DictReader(f))["epochs"] == "6"


def test_a_multi_objective_summary_lists_the_pareto_front(tmp_path):
    storage = open_storage(str(tmp_path / "optuna.journal"), (1, 60, retry_callback(1)))
    sampler = make_sampler({"_target_": "optuna.samplers.RandomSampler", "seed": 1})
    study = join_study(storage, "m", ["minimize", "maximize"], sampler, {})
    for values in ((1.0, 1.0), (2.0, 3.0), (2.0, 0.5)):  # the last is dominated by the first
        study.tell(study.ask(SPACE), values)
    write_search_summary(study, tmp_path, pictures=True)
    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert results["name"] == "optuna" and results["best_trials"] == [0, 1]
    assert [s["values"] for s in results["solutions"]] == [[1.0, 1.0], [2.0, 3.0]]
    md = (tmp_path / "summary.md").read_text()
    assert "## Pareto front (minimize, maximize): 2 trial(s)" in md
    assert "- trial 1: values 2.0000, 3.0000;" in md
    assert "not estimated for a multi-objective search" in md
    assert (tmp_path / "pareto_front.png").read_bytes()[:4] == b"\x89PNG"


def test_a_requeued_trial_continues_in_its_own_directory(tmp_path):
    study = study_in(tmp_path)
    trial = study.ask()
    run_dir = tmp_path / str(trial.number)
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / LAST).write_bytes(b"its own")
    cfg = OmegaConf.create({"resume": None, "trial": trial_config(tmp_path, trial.number, None)})
    assert run_trial(cfg, run_dir, lambda cfg, run_dir: 0.5) == 0.5
    assert cfg.resume == str(run_dir) and (run_dir / LAST).read_bytes() == b"its own"
