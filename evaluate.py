"""Score a checkpoint on merged data: `python evaluate.py ckpt=<run dir or .pth> [overrides]`
(see docs/evaluate.md and conf/evaluate.yaml)."""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from virnucpro_trainer.config.evaluate import register_eval_configs, validate_eval
from virnucpro_trainer.entry import check_overrides, options_first, run_task
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.run_dir import EVAL_RESULT

register_eval_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    out_dir = Path(HydraConfig.get().runtime.output_dir)

    def evaluate() -> dict:
        # a bad setting is refused here, before the scoring loads (torch, scikit-learn, scipy;
        # seconds), and --help never loads it
        validate_eval(cfg)
        from virnucpro_trainer.evaluate.pipeline import evaluate_run

        return evaluate_run(cfg, out_dir)

    run_task(
        evaluate,
        out_dir,
        result_name=EVAL_RESULT,
        what="evaluation",
        verbose=cfg.verbose,
    )


def with_run_data(argv: list[str]) -> list[str]:
    """evaluate.inputs.run_data_overrides, which reads a checkpoint (torch), where a `ckpt=` is
    given; else `argv` as it is."""
    if not any(a.startswith("ckpt=") for a in argv[1:]):
        return argv
    from virnucpro_trainer.evaluate.inputs import run_data_overrides

    return run_data_overrides(argv)


if __name__ == "__main__":
    try:
        sys.argv = options_first(with_run_data(sys.argv))
        check_overrides(sys.argv, Path(__file__).parent / "conf", "evaluate")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    main()
