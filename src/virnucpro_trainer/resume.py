"""Resuming and interrupting runs: the full training state, signals, and the resume command line.

After every epoch the trainer writes `checkpoints/last.pt` (atomically): model, optimizer,
scheduler, early stopping (best weights, best loss, counter), every random number generator, the
epoch and the metrics so far. `python train.py resume=<run dir>` re-applies that run's own
overrides, runs in that directory, and continues after the last finished epoch, so the result is
the same, bit for bit on the CPU, as a run that was never interrupted.
"""

from __future__ import annotations

import random
import re
import signal
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

from virnucpro_trainer.early_stopping import EarlyStopping

LAST = Path("checkpoints") / "last.pt"

# Settings that change how fast a run goes or where it reads from, never what it computes; the
# split and feature-store checks catch data that changed behind a new path.
HARMLESS = {
    "resume",
    "verbose",
    "num_workers",
    "cpu_threads",
    "eval_batch_size",
    "features_on_gpu",
    "gpu_memory_margin_gb",
    "data.root",
    "data.cache_dir",
    "data.memory_budget_gb",
    "split.dir",
    "logger.name",
    "logger.dir",
    "optimized_metric",
}


class TrainingInterrupted(Exception):
    """Raised at a batch boundary after SIGINT or SIGTERM."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """While active, SIGINT and SIGTERM only set a flag that the training loop checks per batch."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.signum is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signum = signum

    def check(self) -> None:
        if self.signum is not None:
            raise TrainingInterrupted(self.signum)


def _rng_state(shuffle: torch.Generator) -> dict:
    """Every generator a run draws from, as tensors and plain types (weights_only-loadable)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.copy()), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "shuffle": shuffle.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, shuffle: torch.Generator) -> None:
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy(), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    shuffle.set_state(state["shuffle"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _stopper_state(stopper: EarlyStopping) -> dict:
    return {
        "best_loss": stopper.best_loss,
        "best_epoch": stopper.best_epoch,
        "bad_epochs": stopper.bad_epochs,
        "best_state": stopper.best_state,
    }


def _set_stopper_state(stopper: EarlyStopping, state: dict) -> None:
    stopper.best_loss, stopper.best_epoch = state["best_loss"], state["best_epoch"]
    stopper.bad_epochs, stopper.best_state = state["bad_epochs"], state["best_state"]


def training_state(
    epoch: int,
    model,
    optimizer,
    scheduler,
    stopper: EarlyStopping,
    shuffle: torch.Generator,
    best_metrics: dict,
    history: list[dict],
    config: dict | None,
) -> dict:
    """Everything needed to continue after `epoch` exactly as if never interrupted."""
    return {
        "epoch": epoch,
        "model_state_dict": model.state_dict(),
        "optimizer_state_dict": optimizer.state_dict(),
        "scheduler_state_dict": scheduler.state_dict(),
        "early_stopping": _stopper_state(stopper),
        "rng": _rng_state(shuffle),
        "best_val_metrics": best_metrics,
        "history": history,
        "config": config,
    }


def restore_training_state(
    state: dict, model, optimizer, scheduler, stopper: EarlyStopping, shuffle: torch.Generator
) -> tuple[int, dict, list[dict]]:
    """Load `state` into the objects; returns (first epoch to run, best metrics, history)."""
    model.load_state_dict(state["model_state_dict"])
    optimizer.load_state_dict(state["optimizer_state_dict"])
    scheduler.load_state_dict(state["scheduler_state_dict"])
    _set_stopper_state(stopper, state["early_stopping"])
    _set_rng_state(state["rng"], shuffle)
    return state["epoch"] + 1, state["best_val_metrics"], state["history"]


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_differences(saved: dict, requested: dict) -> list[str]:
    """Keys whose values would change results, as 'key: saved -> requested' lines."""
    old, new = _flatten(saved), _flatten(requested)
    return [
        f"{key}: {old.get(key, '<missing>')!r} -> {new.get(key, '<missing>')!r}"
        for key in sorted(set(old) | set(new))
        if key not in HARMLESS and old.get(key) != new.get(key)
    ]


def hydra_quote(value: str) -> str:
    """`value` as a single-quoted Hydra override value: any character, non-ASCII included.

    Inside quotes Hydra un-escapes backslashes only before a quote or at the end.
    """
    escaped = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)
    escaped = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, escaped)
    return f"'{escaped}'"


def override_value(arg: str) -> str:
    """The value of a `key=value` argument: unquoted the way Hydra would when it is quoted,
    else as typed (so `resume=/home/josé/run` works without Hydra's quotes)."""
    value = arg.split("=", 1)[1]
    if value[:1] not in ("'", '"'):
        return value
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return str(OverridesParser.create().parse_override(f"resume={value}").value())
    except Exception:  # not valid Hydra quoting: take it as typed
        return value


def resume_arguments(argv: list[str]) -> list[str]:
    """The command line for `resume=<run dir>`: that run's overrides, its directory, then argv's.

    Exits with a message when the directory is not a resumable run.
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
    elif not run_dir.is_dir():
        problem = f"resume={run_dir}: no such directory"
    elif not overrides.is_file() or not (run_dir / LAST).is_file():
        problem = (
            f"resume={run_dir}: not a resumable run (expected .hydra/overrides.yaml and "
            f"{LAST}, written after the first finished epoch)"
        )
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(1)
    # A search trial is continued as one run with its own values, not as a new search.
    saved = [
        o
        for o in yaml.safe_load(overrides.read_text()) or []
        if not o.startswith(("resume=", "hydra.", "hparams_search="))
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

    run_dir = Path(override_value(resume[-1]))
    overrides = [a for a in argv[1:] if not a.startswith(("hydra.", "-"))]
    try:
        with initialize_config_dir(str(conf_dir.resolve()), version_base="1.3"):
            requested = OmegaConf.to_container(compose("train", overrides=overrides), resolve=True)
        saved = torch.load(run_dir / LAST, map_location="cpu", weights_only=True)["config"]
    except Exception as err:  # a bad override or an unreadable checkpoint
        print(f"error: cannot resume {run_dir}: {err}", file=sys.stderr)
        sys.exit(1)
    differences = config_differences(saved, requested)
    if differences:
        print(
            f"error: refusing to resume {run_dir}: these settings differ from the run's own and "
            "would change its results:\n  " + "\n  ".join(differences),
            file=sys.stderr,
        )
        sys.exit(1)
