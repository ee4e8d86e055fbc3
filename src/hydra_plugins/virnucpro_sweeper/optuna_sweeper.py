"""`hydra/sweeper=optuna`: a hyperparameter search on Optuna 4 or newer, one worker per process,
many workers sharing one study (docs/sweeps.md), for any Hydra app: its configs are registered
with Hydra's ConfigStore when Hydra loads this module (search/hydra_config.py).

Hydra finds this class by scanning the `hydra_plugins` namespace at every start, so it imports
nothing heavy: the search itself is virnucpro_trainer.search (search/worker.py).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from hydra.core.plugins import Plugins
from hydra.core.utils import configure_log
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf

from virnucpro_trainer.search.hydra_config import register_sweeper_configs

register_sweeper_configs()


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

    def extender(self, path: str | None):
        """`custom_search_space`: the function at `path`, called (config, trial) per trial."""
        if not path:
            return None
        from hydra.utils import get_method

        from virnucpro_trainer.errors import UserError

        try:
            extend = get_method(path)
        except Exception as err:
            raise UserError(
                f"hydra.sweeper.custom_search_space: cannot find {path}: {err}"
            ) from None
        return lambda trial: extend(self.config, trial)

    def sweep(self, arguments: list[str]) -> None:
        from virnucpro_trainer.errors import UserError
        from virnucpro_trainer.search.settings import settings_from
        from virnucpro_trainer.search.worker import open_search, run_search

        sweep_dir = Path(self.config.hydra.sweep.dir)
        existed = sweep_dir.exists() and any(sweep_dir.iterdir())
        try:
            settings = settings_from(self.settings)
            extend = self.extender(settings.custom_search_space)
            # only an app that declares a `trial` node (train.py) is told which trial a job is
            search = open_search(settings, arguments, sweep_dir, "trial" in self.config)
        except UserError as err:  # refused before any trial: leave no sweep directory behind
            if not existed and sweep_dir.exists():  # empty before (a callback may make it)
                shutil.rmtree(sweep_dir)
            self.stop(err)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if not (sweep_dir / "multirun.yaml").exists():
            OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        try:
            run_search(search, sweep_dir, self.launch, extend)
        except UserError as err:
            self.stop(err)
        except KeyboardInterrupt:  # while waiting for other workers' trials: nothing is lost
            print("stopped by SIGINT; start the worker again to go on", file=sys.stderr)
            sys.exit(130)

    @staticmethod
    def stop(err: Exception) -> None:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
