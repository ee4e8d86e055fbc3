"""Score a checkpoint on merged data: `python evaluate.py ckpt=<run dir or .pth> [overrides]`
(see docs/evaluate.md and conf/evaluate.yaml)."""

import logging
import signal
import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from virnucpro_trainer.config.evaluate import register_eval_configs
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.evaluate.pipeline import evaluate_run
from virnucpro_trainer.run_dir import EVAL_RESULT, discard_if_empty

register_eval_configs()
log = logging.getLogger("evaluate")


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        evaluate_run(cfg, out_dir)
    except KeyboardInterrupt:
        log.error("stopped by SIGINT")
        say_if_discarded(out_dir)
        sys.exit(128 + signal.SIGINT)
    except Exception as err:
        if isinstance(err, UserError) and not cfg.verbose:
            log.error("error: %s", err)
        else:
            log.exception("error: %s", err)
        if hydra_cfg.mode == RunMode.MULTIRUN:
            # One failing checkpoint must not stop the comparison: its error stays in its job.
            (out_dir / "error.txt").write_text("".join(traceback.format_exception(err)))
            return
        say_if_discarded(out_dir)
        if isinstance(err, UserError):
            sys.exit(1)
        raise


def say_if_discarded(out_dir: Path) -> None:
    """An evaluation that failed before writing metrics.json leaves no directory behind."""
    if discard_if_empty(out_dir, EVAL_RESULT):
        print(f"(removed {out_dir}: this evaluation wrote no results)", file=sys.stderr)


if __name__ == "__main__":
    main()
