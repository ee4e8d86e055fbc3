"""`hydra/sweeper=optuna` (conf/hydra/sweeper/optuna.yaml): a hyperparameter search on Optuna
4 or newer, one worker per process, many workers sharing one study (docs/sweeps.md).

Hydra finds this class by scanning the `hydra_plugins` namespace at every start, so it imports
nothing heavy: the search itself is virnucpro_trainer.search (search/worker.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.core.plugins import Plugins
from hydra.core.utils import configure_log
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf


class OptunaSweeper(Sweeper):
    """Asks the study for a trial, launches it as one job through Hydra's launcher (its own
    directory and .hydra/, `<sweep dir>/<trial number>`), tells the result; see search/worker.py."""

    def __init__(self, **settings) -> None:
        self.settings = {
            k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
            for k, v in settings.items()
        }

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def launch(self, overrides: list[list[str]], first: int):
        """The launcher's jobs; then the sweeper's own logging again (a job's went to its log)."""
        try:
            return self.launcher.launch(overrides, initial_job_idx=first)
        finally:
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)

    def sweep(self, arguments: list[str]) -> None:
        from virnucpro_trainer.errors import UserError
        from virnucpro_trainer.search.settings import settings_from
        from virnucpro_trainer.search.worker import run_worker

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if not (sweep_dir / "multirun.yaml").exists():
            OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        try:
            run_worker(settings_from(self.settings), arguments, sweep_dir, self.launch)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:  # while waiting for other workers' trials: nothing is lost
            print("stopped by SIGINT; start the worker again to go on", file=sys.stderr)
            sys.exit(130)
