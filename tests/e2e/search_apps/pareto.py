"""A two-objective Hydra app (Binh and Korn's function) for the search sweeper's tests."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path="pareto_conf", config_name="config")
def binh_and_korn(cfg: DictConfig) -> tuple[float, float]:
    return 4 * cfg.x**2 + 4 * cfg.y**2, (cfg.x - 5) ** 2 + (cfg.y - 5) ** 2


if __name__ == "__main__":
    binh_and_korn()
