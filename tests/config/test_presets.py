"""The presets (experiment=, hparams_search=, hydra/launcher=, debug=), composed in this process;
debug=fast also runs."""

from __future__ import annotations

import csv

import pytest
from omegaconf import OmegaConf

from virnucpro_trainer.config.checks import validate

from helpers import TINY, compose_train, train_in_process


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


def test_slurm_gpu_launcher_settings():
    cfg = compose_train("hydra/launcher=slurm_gpu", hydra_config=True)
    launcher = cfg.hydra.launcher
    assert "SlurmLauncher" in launcher._target_
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.timeout_min) == (1, 1, 720)
    assert launcher.partition is None and launcher.account is None
    assert list(launcher.setup) == ["export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK"]
    assert launcher.submitit_folder == f"{cfg.hydra.sweep.dir}/.submitit/%j"  # in the sweep


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
