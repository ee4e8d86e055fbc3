"""What every tracker records, decided once: the run's name and group, its parameters (the resolved
config, flattened to dotted names), the final metrics taken from test_metrics.json, and the files
sent as artifacts."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from virnucpro_trainer import __version__
from virnucpro_trainer.config.schema import as_dict

# Facts about the fit in test_metrics.json, logged under their own names (not as test_<key>).
RUN_FACTS = ("best_epoch", "best_val_loss", "epochs_run", "stopped_early")
NOT_METRICS = ("seed",)  # already a parameter
PICTURES = "*.png"
FILES = ("report.md", "test_metrics.json", "metrics.csv", "split.json")
HYDRA_FILES = (".hydra/config.yaml", ".hydra/overrides.yaml")


@dataclass
class RunIdentity:
    """How a run is named and grouped in a tracker. A multirun job's `group` is its sweep
    directory (relative to the launch directory when inside it), shared by every job of the
    sweep; a single run has none."""

    name: str
    run_dir: Path
    group: str | None = None
    sweep_dir: Path | None = None
    job_num: int | None = None
    tags: dict[str, str] = field(default_factory=dict)


def _shown(path: Path, launch_dir: Path) -> str:
    """`path` relative to the launch directory when inside it, else absolute."""
    path = path.resolve()
    return str(path.relative_to(launch_dir)) if path.is_relative_to(launch_dir) else str(path)


def run_identity(run_dir: Path, launch_dir: Path) -> RunIdentity:
    """The run's name, group and tags; Hydra's multirun facts when Hydra runs this job."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    launch_dir = launch_dir.resolve()
    identity = RunIdentity(name=_shown(run_dir, launch_dir), run_dir=run_dir.resolve())
    identity.tags = {"run_dir": str(identity.run_dir), "trainer_version": __version__}
    if not HydraConfig.initialized():
        return identity
    hydra_cfg = HydraConfig.get()
    identity.tags["overrides"] = " ".join(hydra_cfg.overrides.task)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        identity.sweep_dir = Path(hydra_cfg.sweep.dir).resolve()
        identity.group = _shown(identity.sweep_dir, launch_dir)
        identity.job_num = int(hydra_cfg.job.num)
        identity.tags.update(sweep_dir=str(identity.sweep_dir), job_num=str(identity.job_num))
    return identity


def flat_params(cfg: DictConfig) -> dict:
    """Every resolved config key as `dotted.name: value` (lists stay values)."""

    def walk(node: dict, prefix: str):
        for key, value in node.items():
            if isinstance(value, dict):
                yield from walk(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value

    return dict(walk(as_dict(cfg), ""))


def _number(value) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
        return float(value)
    return None


def _metrics_of(results: dict, prefix: str) -> dict[str, float]:
    """The numbers of one block of results as `<prefix><key>`, its intervals as `_low`/`_high`."""
    out = {}
    for key, value in results.items():
        if (number := _number(value)) is not None and not isinstance(value, bool):
            out[f"{prefix}{key}"] = number
    for key, bounds in (results.get("intervals") or {}).items():
        for end, value in zip(("low", "high"), bounds or (), strict=False):
            if (number := _number(value)) is not None:
                out[f"{prefix}{key}_{end}"] = number
    return out


def final_metrics(test: dict) -> dict[str, float]:
    """test_metrics.json as metric names and numbers: `test_<metric>` at 0.5 with
    `test_<metric>_low`/`_high`, `test_chosen_<metric>` at the threshold chosen on validation,
    the fit's facts (`best_epoch`, ...) and `optimized_value`. Tables stay in the JSON artifact."""
    top = {k: v for k, v in test.items() if k not in RUN_FACTS + NOT_METRICS}
    out = _metrics_of(top, "test_")
    out.update(_metrics_of(test.get("chosen_threshold") or {}, "test_chosen_"))
    out.update({k: float(test[k]) for k in RUN_FACTS if _number(test.get(k)) is not None})
    optimized = test.get("optimized_metric") or {}
    if _number(optimized.get("value")) is not None:
        out["optimized_value"] = float(optimized["value"])
    temperature = (test.get("calibration") or {}).get("temperature")
    if _number(temperature) is not None:
        out["calibration_temperature"] = float(temperature)
    return out


def read_results(run_dir: Path) -> dict:
    return json.loads((run_dir / "test_metrics.json").read_text())


def artifact_files(run_dir: Path, checkpoint_name: str, log_model: bool) -> list[Path]:
    """The files sent to a tracker, relative to the run directory: the report and its pictures,
    the results, the config Hydra saved; the best model with logger.log_model=true."""
    names = [*FILES, *HYDRA_FILES, *(checkpoint_name,) * log_model]
    found = [Path(n) for n in names if (run_dir / n).is_file()]
    return found + sorted(p.relative_to(run_dir) for p in run_dir.glob(PICTURES))
