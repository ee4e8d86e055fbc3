"""Train the VirNucPro MLP: `python train.py [overrides]` (see README.md and conf/)."""

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from virnucpro_trainer.config import register_configs
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.pipeline import run

register_configs()
log = logging.getLogger("train")


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    try:
        return run(cfg, Path(HydraConfig.get().runtime.output_dir))
    except UserError as err:
        log.error("error: %s", err)
        sys.exit(1)


if __name__ == "__main__":
    main()
