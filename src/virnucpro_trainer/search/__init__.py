"""The hyperparameter search (`hydra/sweeper=optuna`, `hparams_search=optuna`): the project's own
Optuna sweeper, for train.py and any other Hydra app.

worker.py runs one worker (ask the shared study, launch one job, tell it); outcome.py reads how a
job ended; settings.py and space.py read `hydra.sweeper`; hydra_config.py registers the sweeper's
configs with Hydra; study.py opens the shared study; trial.py is a trial's own side, in the run
the worker launched; summary.py writes the search's summary; private_api.py holds every use of
Optuna's and Hydra's private API. Training knows nothing of this package: train.py hands
`train.pipeline.run` the trial's per-epoch reporter.
"""
