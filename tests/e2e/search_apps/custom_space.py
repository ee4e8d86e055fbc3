"""A Hydra app whose search space is partly made in Python (custom_search_space: configure)."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path="custom_conf", config_name="config")
def sphere4(cfg: DictConfig) -> float:
    return cfg.w**2 + cfg.x**2 + cfg.y**2 + cfg.z**2


def configure(cfg: DictConfig, trial) -> None:
    """z near x, and w, a key the config does not have (hence `+w`)."""
    x = trial.params["x"]
    trial.suggest_float("z", x - cfg.max_z_difference_from_x, x + cfg.max_z_difference_from_x)
    trial.suggest_float("+w", 0.0, 1.0)


if __name__ == "__main__":
    sphere4()
