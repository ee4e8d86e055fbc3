"""hydra-optuna-sweeper's own test suite (plugins/hydra_optuna_sweeper/tests/
test_optuna_sweeper_plugin.py, its Optuna 4 port: 29 cases), re-expressed for this project's
sweeper with the plugin selection changed and every assertion kept: here the 19 that run in
this process; the 10 that run the plugin's example apps (re-written in tests/e2e/search_apps/)
are in tests/e2e/test_search_official_examples.py.

Where the original calls the plugin's private functions (`_impl.create_optuna_distribution_
from_override`, `_impl.create_params_from_overrides`) the same inputs go through this sweeper's
own parser (search/space.py) and the same assertions are made on what it returns; docs/sweeps.md
lists them."""

from __future__ import annotations

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.errors import InstantiationException
from hydra.plugins.sweeper import Sweeper
from hydra.utils import instantiate
from omegaconf import OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from hydra_plugins.virnucpro_sweeper.optuna_sweeper import OptunaSweeper
from virnucpro_trainer.search.hydra_config import SAMPLERS
from virnucpro_trainer.search.space import distribution, search_space


def test_discovery() -> None:
    assert OptunaSweeper.__name__ in [x.__name__ for x in Plugins.instance().discover(Sweeper)]


def check_distribution(expected: BaseDistribution, actual: BaseDistribution) -> None:
    if not isinstance(expected, CategoricalDistribution):
        assert expected == actual
        return
    assert isinstance(actual, CategoricalDistribution)
    assert set(expected.choices) == set(actual.choices)  # shuffle() reorders the choices


@pytest.mark.parametrize(
    "line, expected",
    [
        ("key=choice(1,2)", CategoricalDistribution([1, 2])),
        ("key=choice(true, false)", CategoricalDistribution([True, False])),
        ("key=choice('hello', 'world')", CategoricalDistribution(["hello", "world"])),
        ("key=shuffle(range(1,3))", CategoricalDistribution((1, 2))),
        ("key=range(1,3)", IntDistribution(1, 3)),
        ("key=interval(1, 5)", FloatDistribution(1, 5)),
        ("key=int(interval(1, 5))", IntDistribution(1, 5)),
        ("key=tag(log, interval(1, 5))", FloatDistribution(1, 5, log=True)),
        ("key=tag(log, int(interval(1, 5)))", IntDistribution(1, 5, log=True)),
        ("key=range(0.5, 5.5, step=1)", FloatDistribution(0.5, 5.5, step=1)),
    ],
)
def test_create_optuna_distribution_from_override(line: str, expected) -> None:
    parsed = OverridesParser.create().parse_overrides([line])[0]
    check_distribution(expected, distribution(parsed))


@pytest.mark.parametrize(
    "lines, expected",
    [
        (["key=choice(1,2)"], ({"key": CategoricalDistribution([1, 2])}, {}, [])),
        (["key=5"], ({}, {"key": "5"}, [])),
        (
            ["key1=choice(1,2)", "key2=5"],
            ({"key1": CategoricalDistribution([1, 2])}, {"key2": "5"}, []),
        ),
        (
            ["key1=choice(1,2)", "key2=5", "key3=range(1,3)"],
            (
                {"key1": CategoricalDistribution([1, 2]), "key3": IntDistribution(1, 3)},
                {"key2": "5"},
                [],
            ),
        ),
        (["~z"], ({}, {}, ["~z"])),
        (["~z=10"], ({}, {}, ["~z=10"])),
    ],
)
def test_create_params_from_overrides(lines: list[str], expected) -> None:
    # the original's (space, fixed values, deletes) is this sweeper's (space, fixed overrides)
    space, fixed_values, deletes = expected
    assert search_space({}, lines) == (
        space,
        [f"{k}={v}" for k, v in fixed_values.items()] + deletes,
    )


def test_launch_jobs(hydra_sweep_runner) -> None:
    sweep = hydra_sweep_runner(
        calling_file=None,
        calling_module="hydra.test_utils.a_module",
        config_path="configs",
        config_name="compose.yaml",
        task_function=None,
        overrides=[
            "hydra/sweeper=optuna",
            "hydra/launcher=basic",
            "hydra.sweeper.n_trials=8",
            "hydra.sweeper.n_jobs=3",
        ],
    )
    with sweep:
        assert sweep.returns is None


def test_motpe_sampler_removed() -> None:
    with pytest.raises(
        InstantiationException, match="The 'motpe' sampler was removed in Optuna 4.0"
    ):
        instantiate(OmegaConf.create(SAMPLERS["motpe"]))
