"""The search read as hydra-optuna-sweeper reads it, on real Optuna studies: int(interval()) an
integer parameter, range() with both ends, deletes (`~key`) passed on, the deprecated dict-style
search_space; how a job's return value or error ends its trial (never a worker crash, never a
trial left running); max_failure_rate; the removed motpe sampler; the grid sampler."""

from __future__ import annotations

import importlib.util
import logging
import math

import optuna
import optuna.distributions as od
import pytest
from hydra.core.utils import JobReturn, JobStatus
from optuna.trial import TrialState

from virnucpro_trainer.errors import Pruned, UserError
from virnucpro_trainer.search.outcome import FAILED_BECAUSE, outcome, tell
from virnucpro_trainer.search.settings import grid_of, make_sampler, search_record
from virnucpro_trainer.search.space import params_from_search_space, search_space
from virnucpro_trainer.search.study import join_study, open_storage, retry_callback
from virnucpro_trainer.search.worker import check_failure_rate

pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")


def study_of(tmp_path, directions=("minimize",), sampler=None) -> optuna.Study:
    storage = open_storage(str(tmp_path / "optuna.journal"), (1, 60, retry_callback(1)))
    sampler = sampler or make_sampler({"_target_": "optuna.samplers.RandomSampler", "seed": 3})
    return join_study(storage, "s", list(directions), sampler, {})


def test_int_interval_is_an_integer_parameter_with_integer_values(tmp_path):
    space, _ = search_space(
        {"model.hidden_dim": "int(interval(256, 1024))"}, ["n=tag(log, int(interval(1, 64)))"]
    )
    assert space == {
        "model.hidden_dim": od.IntDistribution(256, 1024),
        "n": od.IntDistribution(1, 64, log=True),
    }
    study = study_of(tmp_path)
    for _ in range(5):
        params = study.ask(space).params
        assert all(type(v) is int for v in params.values()), params


def test_a_range_includes_both_ends():
    space, _ = search_space({}, ["a=range(1, 3)", "b=range(0.5, 5.5, step=1)", "c=range(0, 10, 5)"])
    assert space["a"] == od.IntDistribution(1, 3)
    assert space["b"] == od.FloatDistribution(0.5, 5.5, step=1)
    assert space["c"] == od.IntDistribution(0, 10, step=5)
    # the grid sampler's grid stops before the high end, as in hydra-optuna-sweeper
    assert grid_of(space["a"]) == [1, 2] and grid_of(space["b"]) == [0.5, 1.5, 2.5, 3.5, 4.5]


def test_deletes_go_to_every_trial_and_into_the_search_record():
    space, fixed = search_space({"x": "choice(1, 2)"}, ["~z", "~y=10", "seed=3"])
    assert list(space) == ["x"] and fixed == ["~z", "~y=10", "seed=3"]
    record = search_record(space, fixed)
    assert record["~z"] == "deleted" and record["~y"] == "10" and record["seed"] == "3"


def test_the_dict_style_search_space_still_works_with_a_warning_naming_params(caplog):
    old = {
        "x": {"type": "float", "low": -5.5, "high": 5.5, "step": 0.5},
        "y": {"type": "categorical", "choices": [-5, 0, 5]},
        "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
        "n": {"type": "int", "low": 1, "high": 4},
    }
    with caplog.at_level(logging.WARNING):
        params = params_from_search_space(old)
    assert "hydra.sweeper.search_space is deprecated" in caplog.text
    assert "write hydra.sweeper.params instead" in caplog.text
    assert "x: range(-5.5, 5.5, step=0.5)" in caplog.text
    space, _ = search_space(params, [])
    assert space["x"] == od.FloatDistribution(-5.5, 5.5, step=0.5)
    assert space["y"] == od.CategoricalDistribution([-5, 0, 5])
    assert space["lr"] == od.FloatDistribution(1e-5, 1e-1, log=True)
    assert space["n"] == od.IntDistribution(1, 4)
    with pytest.raises(UserError, match="search_space.x: type must be float, int or categ"):
        params_from_search_space({"x": {"low": 0}})


def job(status: JobStatus, value) -> JobReturn:
    ret = JobReturn(status=status)
    ret.return_value = value
    return ret


@pytest.mark.parametrize(
    "ret, why",
    [
        (job(JobStatus.COMPLETED, None), "the job returned None: must be a number"),
        (job(JobStatus.COMPLETED, "abc"), "the job returned 'abc': must be a number"),
        (job(JobStatus.COMPLETED, (1.0, 2.0)), "the job returned (1.0, 2.0): must be a number"),
        (job(JobStatus.COMPLETED, math.nan), "the job returned nan: not a finite number"),
        (job(JobStatus.FAILED, RuntimeError("cfg.error is True")), "RuntimeError: cfg.error"),
    ],
)
def test_a_job_without_a_number_is_a_failed_trial_with_its_reason(tmp_path, ret, why):
    study = study_of(tmp_path)
    trial = study.ask()
    assert why in tell(study, trial, ret)
    (frozen,) = study.get_trials()
    assert frozen.state == TrialState.FAIL and why in frozen.user_attrs[FAILED_BECAUSE]


def test_what_a_job_may_return():
    assert outcome(job(JobStatus.COMPLETED, "1.5"), 1) == (TrialState.COMPLETE, [1.5], "")
    assert outcome(job(JobStatus.COMPLETED, (1, 2)), 2) == (TrialState.COMPLETE, [1.0, 2.0], "")
    assert (
        "returned 3 values for 2 objectives" in outcome(job(JobStatus.COMPLETED, [1, 2, 3]), 2)[2]
    )
    assert "must be a list or tuple of 2 numbers" in outcome(job(JobStatus.COMPLETED, 1.0), 2)[2]
    pruned = job(JobStatus.FAILED, Pruned({"epoch": 3}))
    assert outcome(pruned, 1) == (TrialState.PRUNED, None, "")


def test_max_failure_rate_stops_the_search_saying_why(tmp_path):
    study = study_of(tmp_path)
    study.tell(study.ask(), 1.0)
    tell(study, study.ask(), job(JobStatus.FAILED, RuntimeError("cfg.error is True")))
    check_failure_rate(study, 0.5, ["x"], tmp_path)  # 1 of 2: not more than half
    with pytest.raises(UserError) as err:
        check_failure_rate(study, 0.4, ["RuntimeError: cfg.error is True"], tmp_path)
    assert "search stopped: 1 of 2 finished trials failed, more than " in str(err.value)
    assert "hydra.sweeper.max_failure_rate=0.4; the last: RuntimeError: cfg.error is True" in str(
        err.value
    )
    assert (tmp_path / "summary.md").is_file()


def test_the_grid_sampler_visits_each_point_once(tmp_path):
    space, _ = search_space({}, ["x=choice(-1, 1)", "y=range(-1.0, 1.0, step=1)"])
    study = study_of(tmp_path, sampler=make_sampler({"_target_": "optuna.samplers.GridSampler",
                                                     "seed": 0}, space))  # fmt: skip
    seen = set()
    for _ in range(4):
        trial = study.ask(space)
        seen.add((trial.params["x"], trial.params["y"]))
        study.tell(trial, 0.0)  # the last one's study.stop() is no error
    assert seen == {(-1, -1.0), (-1, 0.0), (1, -1.0), (1, 0.0)}


def test_a_sampler_whose_package_is_missing_is_refused_at_the_start():
    config = {"_target_": "optuna.samplers.CmaEsSampler", "seed": 1}
    if importlib.util.find_spec("cmaes") is not None:
        assert make_sampler(config) is not None
        return
    with pytest.raises(UserError, match="CmaEsSampler needs cmaes: pip install cmaes"):
        make_sampler(config)


@pytest.mark.parametrize("name", ["tpe", "random", "nsgaii", "qmc", "gp"])
def test_every_registered_sampler_asks_for_a_trial(tmp_path, name):
    from virnucpro_trainer.search.hydra_config import SAMPLERS

    space, _ = search_space({}, ["x=interval(-1.0, 1.0)", "n=int(interval(1, 4))"])
    study = study_of(tmp_path, sampler=make_sampler(SAMPLERS[name], space))
    for value in range(3):
        trial = study.ask(space)
        assert type(trial.params["n"]) is int
        study.tell(trial, float(value))
