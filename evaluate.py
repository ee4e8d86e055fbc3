"""Score a checkpoint on merged data: `python evaluate.py ckpt=<run dir or .pth> [overrides]`
(see docs/evaluate.md and conf/evaluate.yaml)."""

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from virnucpro_trainer.errors import UserError
from virnucpro_trainer.eval_config import register_eval_configs
from virnucpro_trainer.eval_pipeline import evaluate_run

register_eval_configs()
log = logging.getLogger("evaluate")


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        evaluate_run(cfg, out_dir)
    except Exception as err:
        if isinstance(err, UserError) and not cfg.verbose:
            log.error("error: %s", err)
        else:
            log.exception("error: %s", err)
        if isinstance(err, UserError):
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
