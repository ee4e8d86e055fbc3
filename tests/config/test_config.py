"""Config composition, command-line overrides and validation, through Hydra's compose API."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from virnucpro_trainer.config.checks import unknown_keys, validate
from virnucpro_trainer.errors import UserError

from helpers import compose_train


def make(*overrides: str):
    return compose_train(*overrides)


def test_defaults_match_the_published_setup():
    cfg = make()
    assert cfg.data.root == "data/data_merge"
    assert cfg.data.file_glob == "*_merged.pt"
    assert cfg.data.dna_dim + cfg.data.protein_dim == 2048
    assert (cfg.split.test_fraction, cfg.split.val_fraction, cfg.split.seed) == (0.1, 0.1, 42)
    assert cfg.split.unit == "file"
    assert (cfg.model.hidden_dim, cfg.model.dropout, cfg.model.num_class) == (512, 0.5, 2)
    opt = cfg.optimizer
    assert (opt.name, opt.lr, opt.momentum) == ("sgd", 2e-4, 0.9)
    assert (opt.scheduler.step_size, opt.scheduler.gamma) == (10, 0.85)
    assert (cfg.patience, cfg.min_delta) == (7, 0.0)
    assert (cfg.epochs, cfg.batch_size, cfg.device) == (200, 32, "auto")
    assert cfg.checkpoint_name == "model_fastesm650.pth"
    validate(cfg)


def test_overrides_from_the_command_line():
    cfg = make("optimizer.lr=1e-4", "patience=10", "optimizer=adamw", "data.protein_dim=2560")
    assert cfg.patience == 10
    assert cfg.optimizer.name == "adamw"
    assert cfg.optimizer.lr == 1e-4
    assert cfg.data.dna_dim + cfg.data.protein_dim == 3328


def test_synthetic_data_group():
    cfg = make("data=synthetic")
    assert cfg.data.synthetic.enabled
    assert cfg.data.root == "data/synthetic/data_merge"
    assert cfg.data.dna_dim == 768  # inherited from data/merged.yaml
    assert cfg.split.dir == "data/synthetic/data_merge/../test_set/data_merge"


@pytest.mark.parametrize("override", ["optimizer.lrr=1", "patiense=3", "data.roots=x"])
def test_misspelt_key_is_rejected(override):
    key = override.split("=")[0]
    with pytest.raises(ConfigCompositionException, match=f"Could not override '{key}'"):
        make(override)


@pytest.mark.parametrize("override", ["optimizer.lr=fast", "batch_size=1.5", "epochs=many"])
def test_wrong_type_is_rejected(override):
    with pytest.raises(ConfigCompositionException, match=f"Error merging override {override}"):
        make(override)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("optimizer.lr=0", "optimizer.lr"),
        ("optimizer.lr=-0.5", "optimizer.lr"),
        ("split.test_fraction=0", "split.test_fraction"),
        ("split.test_fraction=1.5", "split.test_fraction"),
        ("split.val_fraction=1", "split.val_fraction"),
        ("patience=0", "patience"),
        ("batch_size=0", "batch_size"),
        ("epochs=0", "epochs"),
        ("device=tpu", "device"),
        ("optimizer.name=rmsprop", "optimizer.name"),
        ("model.dropout=1.0", "model.dropout"),
        ("optimizer.scheduler.gamma=0", "optimizer.scheduler.gamma"),
    ],
)
def test_impossible_values_are_rejected_naming_the_key(override, key):
    cfg = make(override)
    with pytest.raises(UserError) as err:
        validate(cfg)
    value = override.split("=", 1)[1]
    assert f"{key} must be" in str(err.value)
    assert value in str(err.value)


def test_every_problem_is_reported_at_once():
    cfg = make("optimizer.lr=-1", "patience=0", "batch_size=0")
    with pytest.raises(UserError) as err:
        validate(cfg)
    for key in ("optimizer.lr", "patience", "batch_size"):
        assert f"{key} must be" in str(err.value)


def test_fractions_must_leave_training_files():
    cfg = make("split.test_fraction=0.5", "split.val_fraction=0.5")
    with pytest.raises(UserError, match="split.test_fraction \\+ split.val_fraction"):
        validate(cfg)


def test_config_is_plain_data():
    cfg = make("data=synthetic")
    plain = OmegaConf.to_container(cfg, resolve=True)
    assert plain["split"]["dir"] == "data/synthetic/data_merge/../test_set/data_merge"


def test_each_data_set_has_its_own_split_folder():
    assert make("data.root=x/data_v1").split.dir == "x/data_v1/../test_set/data_v1"
    assert make("data.root=x/data_v2/").split.dir == "x/data_v2//../test_set/data_v2"


@pytest.mark.parametrize(
    "preset",
    [
        [],
        ["experiment=esm2_3b"],
        ["hparams_search=optuna"],
        ["hparams_search=optuna_pareto"],
        ["debug=fast"],
        ["logger=tensorboard"],
        ["split=group"],
    ],
)
def test_every_preset_uses_only_known_keys(preset):
    assert unknown_keys(make(*preset)) == []


def test_keys_added_with_plus_must_be_settings():
    cfg = make("+optimiser.lr=1", "+data.rooot=x", "+optimizer.scheduler.gama=1")
    assert unknown_keys(cfg) == [
        "data.rooot is not a setting (did you mean data.root?)",
        "optimizer.scheduler.gama is not a setting (did you mean optimizer.scheduler.gamma?)",
        "optimiser is not a setting (did you mean optimizer?)",
    ]
    with pytest.raises(UserError, match="optimiser is not a setting"):
        validate(cfg)


def test_record_pattern_must_be_a_regex_with_a_group():
    for bad in ("'(unclosed'", "no_group_chunk"):
        cfg = make(f"split.record_pattern={bad}")
        with pytest.raises(UserError, match="split.record_pattern must be"):
            validate(cfg)


def test_memory_budget_needs_the_feature_store():
    cfg = make("data.memory_budget_gb=2", "data.cache_dir=null")
    with pytest.raises(UserError, match="data.memory_budget_gb needs the feature store"):
        validate(cfg)


def test_group_split_config():
    for cfg in (make("split=group"), make("split.unit=group")):
        assert cfg.split.unit == "group"
        assert cfg.split.record_pattern == r"^(.+)_chunk_\d+"  # greedy: data/records.py
        validate(cfg)
    with pytest.raises(UserError, match="split.unit must be one of"):
        validate(make("split.unit=genome"))
