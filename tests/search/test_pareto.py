"""A multi-objective search's own parts in this process (hparams_search=optuna_pareto): the
objectives a run returns, checked against the sweeper's directions; no pruning in a study of
several objectives; the objectives' names in summary.md and pareto_front.png (the real search:
e2e/test_sweeps.py)."""

from __future__ import annotations

import types

import optuna
import optuna.distributions as od
import pytest
import yaml
from omegaconf import OmegaConf

from virnucpro_trainer.errors import Pruned, UserError
from virnucpro_trainer.model import VirNucProMLP
from virnucpro_trainer.search.settings import make_sampler
from virnucpro_trainer.search.study import join_study, open_storage, retry_callback
from virnucpro_trainer.search.summary import write_search_summary
from virnucpro_trainer.search.trial import (
    check_objectives,
    epoch_reporter,
    name_objectives,
    report,
)
from virnucpro_trainer.train.loop import EpochEnd
from virnucpro_trainer.train.pipeline import objective_values

# these tests ask heartbeat studies for trials themselves, as the worker does in known_warnings()
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")

SPACE = {"width": od.CategoricalDistribution([8, 16, 32])}
NAMES = ["val_auroc", "parameters"]


def pareto_study(tmp_path, directions=("maximize", "minimize")) -> optuna.Study:
    storage = open_storage(str(tmp_path / "optuna.journal"), (1, 60, retry_callback(1)))
    sampler = make_sampler({"_target_": "optuna.samplers.RandomSampler", "seed": 1})
    return join_study(storage, "p", list(directions), sampler, {})


def trial_node(tmp_path, number: int, pruner: dict | None = None):
    storage = str(tmp_path / "optuna.journal")
    return OmegaConf.create(
        {"storage": storage, "study_name": "p", "number": number, "pruner": pruner}
    )


def test_the_objectives_must_match_the_directions():
    check_objectives(None, "minimize")  # one objective: optimized_metric, as before
    check_objectives(None, ["maximize"])
    check_objectives(NAMES, ["maximize", "minimize"])
    check_objectives(["val_loss", "parameters"], ["minimize", "minimize"])
    with pytest.raises(UserError, match="set optimized_metrics to as many"):
        check_objectives(None, ["maximize", "minimize"])
    with pytest.raises(UserError, match=r"hydra.sweeper.direction=\[maximize,minimize\]"):
        check_objectives(NAMES, ["minimize", "maximize"])
    with pytest.raises(UserError, match="are to maximize/minimize"):
        check_objectives(NAMES, "maximize")


def test_the_values_are_validation_metrics_and_the_trainable_parameter_count():
    model = VirNucProMLP(20, 8)  # (20 + 1) * 8 + 2 * 8 (batch norm) + (8 + 1) * 2 = 202
    result = types.SimpleNamespace(best_val_metrics={"auroc": 0.9, "loss": 0.3})
    values = objective_values(["val_auroc", "parameters", "val_loss"], model, result)
    assert values == {"val_auroc": 0.9, "parameters": 202.0, "val_loss": 0.3}
    model.hidden_layer.requires_grad_(False)  # freeze=hidden: only what is trained counts
    assert objective_values(["parameters"], model, result) == {"parameters": 34.0}
    assert objective_values([], model, result) == {}


def test_a_trial_of_several_objectives_is_never_pruned(tmp_path):
    study = pareto_study(tmp_path)
    trial = study.ask(SPACE)
    always = {"_target_": "optuna.pruners.ThresholdPruner", "lower": 2.0}  # prunes any value
    assert epoch_reporter(trial_node(tmp_path, trial.number, always), "val_auroc") is None
    report(trial_node(tmp_path, trial.number, always), 0.5, 1)  # nothing reported, no Pruned
    assert study.trials[trial.number].intermediate_values == {}
    # one objective: the same pruner stops the trial
    single = pareto_study(tmp_path / "single", ("maximize",))
    one = single.ask(SPACE)
    reporter = epoch_reporter(trial_node(tmp_path / "single", one.number, always), "val_auroc")
    with pytest.raises(Pruned):
        reporter(EpochEnd(1, {}, {"auroc": 0.5}, last=False))


def test_the_front_is_named_by_the_objectives_the_trials_recorded(tmp_path):
    study = pareto_study(tmp_path)
    for values in ((0.90, 16426.0), (0.95, 65698.0), (0.80, 32842.0)):  # the last: dominated
        trial = study.ask(SPACE)
        name_objectives(trial_node(tmp_path, trial.number), NAMES)
        study.tell(trial, values)
    name_objectives(trial_node(tmp_path, 0), None)  # one objective: nothing recorded
    assert study.metric_names == NAMES
    write_search_summary(study, tmp_path, pictures=True)
    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert results["best_trials"] == [0, 1]
    assert [s["values"] for s in results["solutions"]] == [[0.90, 16426.0], [0.95, 65698.0]]
    md = (tmp_path / "summary.md").read_text()
    assert "## Pareto front (val_auroc maximize, parameters minimize): 2 trial(s)" in md
    assert "- trial 0: values 0.9000, 16426; `width=" in md  # a count without decimals
    assert "| 2 | complete | 0.8000, 32842 |" in md
    assert (tmp_path / "pareto_front.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "optimization_history.png").exists()


def test_three_objectives_are_drawn_too(tmp_path):
    study = pareto_study(tmp_path, ("maximize", "minimize", "minimize"))
    for values in ((0.9, 100.0, 1.0), (0.8, 50.0, 2.0)):
        study.tell(study.ask(SPACE), values)
    write_search_summary(study, tmp_path, pictures=True)
    assert (
        "## Pareto front (maximize, minimize, minimize): 2 trial(s)"
        in (tmp_path / "summary.md").read_text()
    )
    assert (tmp_path / "pareto_front.png").read_bytes()[:4] == b"\x89PNG"
