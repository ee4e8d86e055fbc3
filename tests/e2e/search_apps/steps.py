"""A Hydra app that reports a value after each step, so that the search's pruner can stop it:
the `trial` node in its config and `report` are all it needs (docs/sweeps.md)."""

import hydra
from omegaconf import DictConfig

from virnucpro_trainer.search.trial import report


@hydra.main(version_base=None, config_path="steps_conf", config_name="config")
def descend(cfg: DictConfig) -> float:
    value = 0.0
    for step in range(cfg.steps):
        value = (cfg.x - 2) ** 2 + 1 / (step + 1)
        report(cfg.trial, value, step)  # raises Pruned when the pruner stops this trial
    return value


if __name__ == "__main__":
    descend()
