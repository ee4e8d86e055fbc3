"""The search sweeper's configs, registered with Hydra's ConfigStore when Hydra loads the
plugin (src/hydra_plugins/virnucpro_sweeper), so that `hydra/sweeper=optuna` and its samplers
and pruners work in any Hydra app, with its own config directory or none. An app may still add
its own options as YAML files under `<its config dir>/hydra/sweeper/sampler/` (or `pruner/`).

Plain data only: Hydra imports this at every start. Each sampler and pruner is its `_target_`
and arguments; an argument left null takes Optuna's default. The names and settings follow
hydra-optuna-sweeper's where it has them (docs/sweeps.md, "coming from hydra-optuna-sweeper").
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

SWEEPER = {
    "_target_": "hydra_plugins.virnucpro_sweeper.optuna_sweeper.OptunaSweeper",
    "_recursive_": False,  # the sampler and pruner are made by the sweeper, per trial
    "defaults": ["_self_", {"sampler": "tpe"}, {"pruner": "median"}],
    "sampler": None,
    "pruner": None,
    "direction": "minimize",  # or maximize, or a list of them: a multi-objective search
    "study_name": "optuna",  # workers with the same storage and study_name share the study
    # null: the journal file optuna.journal in the sweep directory; or a journal file path
    # (shared disks, NFS), or a database URL: sqlite:///optuna.db, postgresql://..., mysql://...
    "storage": None,
    "n_trials": 20,  # the study's total, over every worker (not per worker)
    "n_jobs": 1,  # trials this worker hands the launcher at once (and waits for all)
    "max_failure_rate": 0.0,  # stop when more than this fraction of finished trials failed
    "params": None,  # key: search syntax (interval, int(interval), range, choice, tag(log, ...))
    "custom_search_space": None,  # a function path, called (config, trial) to add parameters
    "search_space": None,  # deprecated dict-style space: use params (a warning shows how)
    "heartbeat_interval": 60,  # seconds between a running trial's heartbeats
    "grace_period": 300,  # a running trial with no heartbeat for this long is failed and retried
    "max_retry": 3,  # retries of a trial whose worker was lost (null: no limit)
}

SEED = 42  # trial n's sampler gets seed + n: a one-worker search repeats, workers never collide
SAMPLERS = {
    "tpe": {
        "_target_": "optuna.samplers.TPESampler",
        "seed": SEED,
        "n_startup_trials": 5,  # random trials before TPE starts modelling
        "n_ei_candidates": 24,
        "multivariate": False,
        "constant_liar": True,  # running trials count as bad: workers do not crowd one region
    },
    "random": {"_target_": "optuna.samplers.RandomSampler", "seed": SEED},
    # every combination of the choice() and range() values (a range without its high end)
    "grid": {"_target_": "optuna.samplers.GridSampler", "seed": SEED},
    "cmaes": {  # needs the cmaes package (pip install cmaes)
        "_target_": "optuna.samplers.CmaEsSampler",
        "seed": SEED,
        "x0": None,
        "sigma0": None,
        "n_startup_trials": 1,
        "warn_independent_sampling": True,
        "consider_pruned_trials": False,
        "use_separable_cma": False,
    },
    "nsgaii": {
        "_target_": "optuna.samplers.NSGAIISampler",
        "seed": SEED,
        "population_size": 50,
        "mutation_prob": None,
        "crossover_prob": 0.9,
        "swapping_prob": 0.5,
    },
    "qmc": {
        "_target_": "optuna.samplers.QMCSampler",
        "seed": SEED,
        "qmc_type": "sobol",
        "scramble": False,
        "warn_independent_sampling": True,
    },
    "gp": {
        "_target_": "optuna.samplers.GPSampler",
        "seed": SEED,
        "n_startup_trials": 10,
        "deterministic_objective": False,
    },
    # removed from Optuna 4.0: choosing it stops the search saying what to use instead
    "motpe": {"_target_": "virnucpro_trainer.search.settings.raise_motpe_removed"},
}

PRUNERS = {
    # stop a trial whose best value so far is worse than the median of earlier trials at the
    # same step; 3 startup trials: benchmarks/search_scaling.py
    "median": {
        "_target_": "optuna.pruners.MedianPruner",
        "n_startup_trials": 3,  # trials never pruned (the median needs some)
        "n_warmup_steps": 2,  # steps (epochs) a trial always runs before it can be pruned
        "interval_steps": 1,
    },
    # asynchronous successive halving: at steps min_resource * reduction_factor^k only the best
    # 1/reduction_factor of the trials at that rung go on
    "successive_halving": {
        "_target_": "optuna.pruners.SuccessiveHalvingPruner",
        "min_resource": 2,
        "reduction_factor": 3,
    },
    # several successive-halving brackets; max_resource auto: the most steps reported so far
    "hyperband": {
        "_target_": "optuna.pruners.HyperbandPruner",
        "min_resource": 2,
        "max_resource": "auto",
        "reduction_factor": 3,
    },
    "none": {"_target_": "optuna.pruners.NopPruner"},  # every trial runs to its end
}


def register_sweeper_configs() -> None:
    """`hydra/sweeper=optuna`, `hydra/sweeper/sampler=<name>`, `hydra/sweeper/pruner=<name>`."""
    store = ConfigStore.instance()
    store.store(group="hydra/sweeper", name="optuna", node=SWEEPER, provider="virnucpro_sweeper")
    for group, nodes in (("sampler", SAMPLERS), ("pruner", PRUNERS)):
        for name, node in nodes.items():
            store.store(
                group=f"hydra/sweeper/{group}", name=name, node=node, provider="virnucpro_sweeper"
            )
