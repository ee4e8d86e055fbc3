"""`python train.py resume=<run dir>`: the command line that continues a run, and its checks.

It re-applies that run's own overrides, runs in that directory, and continues after the last
finished epoch (see train/state.py). Overrides that would change the results are refused
before anything is touched. Problems raise UserError; train.py decides how the process exits.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from virnucpro_trainer.config.overrides import is_harmless
from virnucpro_trainer.entry import hydra_quote, override_value
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.run_dir import LAST, refuse_if_locked


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_differences(saved: dict, requested: dict) -> list[str]:
    """Keys whose values would change results (any but config/overrides.py's harmless ones), as
    'key: saved -> requested' lines."""
    old, new = _flatten(saved), _flatten(requested)
    return [
        f"{key}: {old.get(key, '<missing>')!r} -> {new.get(key, '<missing>')!r}"
        for key in sorted(set(old) | set(new))
        if not is_harmless(key) and old.get(key) != new.get(key)
    ]


def resume_arguments(argv: list[str]) -> list[str]:
    """The command line for `resume=<run dir>`: that run's overrides, its directory, then argv's.

    Raises UserError when the directory is not a resumable run.
    """
    args = argv[1:]
    given = [a for a in args if a.startswith("resume=")]
    if not given:
        return argv
    run_dir = Path(override_value(given[-1])).expanduser().resolve()
    overrides = run_dir / ".hydra" / "overrides.yaml"
    problem = None
    if "--multirun" in args or "-m" in args:
        problem = "resume= continues one run; it cannot be combined with --multirun"
    elif any(a.startswith("init_from=") for a in args):
        problem = (
            "init_from= starts a new run from another run's weights and resume= continues a run "
            "from its own last epoch: give one of them"
        )
    elif not run_dir.is_dir():
        problem = f"resume={run_dir}: no such directory"
    elif not overrides.is_file() or not (run_dir / LAST).is_file():
        problem = (
            f"resume={run_dir}: not a resumable run (expected .hydra/overrides.yaml and "
            f"{LAST}, written after the first finished epoch)"
        )
    elif (run_dir / "test_metrics.json").is_file():
        problem = (
            f"resume={run_dir}: this run has finished (test_metrics.json, its best model and "
            "report are there); nothing is left to continue. Start a new run instead"
        )
    if problem:
        raise UserError(problem)
    refuse_if_locked(run_dir)
    # A search trial is continued as one run with its own values, not as a new search (nor
    # reporting to its trial again).
    saved = [
        o
        for o in yaml.safe_load(overrides.read_text()) or []
        if not o.startswith(("resume=", "hydra.", "hparams_search=", "trial."))
    ]
    rest = [a for a in args if not a.startswith("resume=")]
    quoted = hydra_quote(str(run_dir))
    return [argv[0], *saved, f"hydra.run.dir={quoted}", f"resume={quoted}", *rest]


def check_resume(argv: list[str], conf_dir: Path) -> None:
    """Before Hydra touches the run directory: refuse overrides that would change results."""
    resume = [a for a in argv[1:] if a.startswith("resume=")]
    if not resume:
        return
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from virnucpro_trainer.checkpoint import load_state  # torch: only when resuming

    run_dir = Path(override_value(resume[-1]))
    overrides = [a for a in argv[1:] if not a.startswith(("hydra.", "-"))]
    try:
        with initialize_config_dir(str(conf_dir.resolve()), version_base="1.3"):
            requested = OmegaConf.to_container(compose("train", overrides=overrides), resolve=True)
        saved = load_state(run_dir / LAST)["config"]
    except Exception as err:  # a bad override or an unreadable checkpoint
        raise UserError(f"cannot resume {run_dir}: {err}") from None
    differences = config_differences(saved, requested)
    if differences:
        raise UserError(
            f"refusing to resume {run_dir}: these settings differ from the run's own and "
            "would change its results:\n  " + "\n  ".join(differences)
        )
