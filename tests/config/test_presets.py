"""The presets (experiment=, hparams_search=, hydra/launcher=, debug=, evaluate.py's calls=),
composed in this process; debug=fast also runs."""

from __future__ import annotations

import csv

import pytest
from omegaconf import OmegaConf

from virnucpro_trainer.config.checks import validate
from virnucpro_trainer.config.evaluate import validate_eval
from virnucpro_trainer.config.schema import metric_direction
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.stats.composition import PRESETS
from virnucpro_trainer.stats.conformal import MIN_BIN_HOSTS

from helpers import ROOT, TINY, compose_config, compose_train, group_options, train_in_process


def test_fastesm650_preset_is_the_defaults():
    assert compose_train("experiment=fastesm650") == compose_train()


def test_esm2_3b_preset():
    cfg = compose_train("experiment=esm2_3b")
    assert (cfg.data.dna_dim, cfg.data.protein_dim) == (768, 2560)
    assert cfg.data.protein_model == "esm2_3b" and cfg.patience == 5
    assert cfg.checkpoint_name == "model_esm2_3b.pth"
    assert cfg.optimizer.lr == 2e-4 and cfg.batch_size == 32
    validate(cfg)


def test_gpu_large_batch_preset_scales_the_learning_rate():
    cfg = compose_train("experiment=gpu_large_batch")
    assert (cfg.device, cfg.batch_size, cfg.features_on_gpu) == ("cuda", 1024, True)
    assert cfg.optimizer.lr == pytest.approx(2e-4 * 1024 / 32)
    validate(cfg)


def test_presets_show_in_cfg_job():
    # what `python train.py experiment=esm2_3b debug=fast --cfg job` prints
    job = OmegaConf.to_container(compose_train("experiment=esm2_3b", "debug=fast"))
    assert job["data"]["protein_dim"] == 2560 and job["patience"] == 5
    assert (job["epochs"], job["limit_batches"], job["device"]) == (1, 5, "cpu")


def test_optuna_preset_searches_the_five_settings_in_the_metric_direction():
    cfg = compose_train("hparams_search=optuna", hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert "OptunaSweeper" in sweeper._target_
    assert set(sweeper.params) == {
        "optimizer.lr",
        "batch_size",
        "model.hidden_dim",
        "model.dropout",
        "patience",
    }
    assert sweeper.params["optimizer.lr"].startswith("tag(log")
    assert (cfg.optimized_metric, sweeper.direction) == ("val_loss", "minimize")
    # one directory per study, which every worker shares; a trial's run named by its number
    assert cfg.hydra.sweep.dir == "outputs/search/virnucpro"
    assert OmegaConf.to_yaml(cfg.hydra.sweep).count("${trial.number}") == 1
    assert sweeper.pruner._target_ == "optuna.pruners.MedianPruner"
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler" and sweeper.storage is None
    cfg = compose_train("hparams_search=optuna", "optimized_metric=val_mcc", hydra_config=True)
    assert cfg.hydra.sweeper.direction == "maximize"
    with pytest.raises(Exception, match="optimized_metric must be a validation metric"):
        validate(compose_train("optimized_metric=test_f1"))


def test_optuna_pareto_preset_maximises_auroc_and_minimises_parameters():
    cfg = compose_train("hparams_search=optuna_pareto", hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert list(cfg.optimized_metrics) == ["val_auroc", "parameters"]
    assert list(sweeper.direction) == ["maximize", "minimize"]
    assert [metric_direction(m) for m in cfg.optimized_metrics] == list(sweeper.direction)
    assert sweeper.pruner._target_ == "optuna.pruners.NopPruner"  # Optuna cannot prune them
    assert cfg.hydra.sweep.dir == "outputs/search/virnucpro_pareto"  # not the optuna search's
    optuna = compose_train("hparams_search=optuna", hydra_config=True).hydra.sweeper
    assert set(sweeper.params) == set(optuna.params)
    validate(compose_train("hparams_search=optuna_pareto"))
    assert compose_train().optimized_metrics is None  # one objective unless asked
    for wrong in ("[val_auroc]", "[val_auroc,val_auroc]", "[test_f1,parameters]"):
        with pytest.raises(UserError, match="optimized_metrics must be a list of two or more"):
            validate(compose_train(f"optimized_metrics={wrong}"))


def test_slurm_gpu_launcher_settings():
    cfg = compose_train("hydra/launcher=slurm_gpu", hydra_config=True)
    launcher = cfg.hydra.launcher
    assert "SlurmLauncher" in launcher._target_
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.timeout_min) == (1, 1, 720)
    assert launcher.partition is None and launcher.account is None
    assert list(launcher.setup) == ["export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK"]
    assert launcher.submitit_folder == f"{cfg.hydra.sweep.dir}/.submitit/%j"  # in the sweep


@pytest.mark.slow  # a whole run in-process
@pytest.mark.usefixtures("tiny_data", "no_figures")
def test_debug_fast_checks_a_data_set_in_one_short_epoch(tmp_path, caplog):
    hydra = compose_train("debug=fast", hydra_config=True).hydra
    assert OmegaConf.to_container(hydra.run)["dir"].startswith("outputs/debug/")
    assert OmegaConf.to_container(hydra.sweep)["dir"].startswith("outputs/debug/multirun/")
    caplog.set_level("INFO")
    run_dir = train_in_process(
        tmp_path, *(a for a in TINY if not a.startswith("epochs=")), "debug=fast"
    )
    with (run_dir / "metrics.csv").open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1"]
    assert "limit_batches=5: a quick check" in caplog.text
    assert (run_dir / "test_metrics.json").is_file() and (run_dir / "report.md").is_file()


def test_the_calls_group_is_the_presets_of_stats():
    # one copy: stats.composition.PRESETS, registered as evaluate.py's calls group; a YAML
    # under conf/calls/ would be a second one
    assert not (ROOT / "conf/calls").exists()
    assert sorted(group_options("calls")) == sorted(PRESETS)
    method = {"method": "conformal", "min_bin_hosts": MIN_BIN_HOSTS}  # the default method
    for name, fdr in PRESETS.items():
        cfg = compose_config("evaluate", f"calls={name}", "ckpt=model.pth")
        assert OmegaConf.to_container(cfg.calls) == {"preset": name, "fdr": fdr, **method}
        validate_eval(cfg)
    cfg = compose_config("evaluate", "ckpt=model.pth")  # no calls=: the default preset
    default = {"preset": "default", "fdr": PRESETS["default"], **method}
    assert OmegaConf.to_container(cfg.calls) == default
    cfg = compose_config("evaluate", "calls=conservative", "calls.method=lfdr", "ckpt=m")
    assert (cfg.calls.fdr, cfg.calls.method) == (PRESETS["conservative"], "lfdr")
    validate_eval(cfg)


def test_a_calls_method_or_bin_size_that_is_not_one_is_named():
    cfg = compose_config("evaluate", "calls.method=bh", "calls.min_bin_hosts=0", "ckpt=model.pth")
    with pytest.raises(UserError) as err:
        validate_eval(cfg)
    assert "calls.method must be one of ('conformal', 'lfdr'), got 'bh'" in str(err.value)
    assert "calls.min_bin_hosts must be at least 1" in str(err.value)
    assert "got 0" in str(err.value)
