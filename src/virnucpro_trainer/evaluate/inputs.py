"""The rows evaluate.py scores: labelled data through the training code (files, feature store,
table), or any folder of merged files for prediction; a run's test side from its split.json; and
the checks scoring needs (the data's width against the checkpoint's, unique ids)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from omegaconf import DictConfig

from virnucpro_trainer.checkpoint import ScoringModel
from virnucpro_trainer.data.dataset import data_sources
from virnucpro_trainer.data.files import UNLABELLED, SourceFile
from virnucpro_trainer.data.split_doc import SIDES
from virnucpro_trainer.data.synthetic import MARKER
from virnucpro_trainer.data.table import FeatureTable
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.torch_files import load_weights_only

log = logging.getLogger(__name__)


def stored_width(path: Path) -> int | None:
    """The row width of one merged file, or None if it cannot tell (read_merged says why later)."""
    try:
        obj = load_weights_only(path, "")
        return int(obj["data"].shape[1]) if obj["data"].ndim == 2 else None
    except Exception:
        return None


def labelled_sources(cfg: DictConfig, width: int) -> list[SourceFile]:
    """The files training would find under data.root (the demo data made first if asked for)."""
    root = Path(cfg.data.root)
    if cfg.data.synthetic.enabled:
        made = root / MARKER
        made_width = json.loads(made.read_text()).get("width") if made.is_file() else width
        if made_width != width:  # before ensure_synthetic, whose message is about settings
            raise UserError(
                f"the demo data in {root} is {made_width} numbers wide but the checkpoint takes "
                f"{width}: choose another data.root for demo data of that width"
            )
    return data_sources(cfg.data, width)


def unlabelled_sources(root: Path, file_glob: str) -> list[SourceFile]:
    """Every file matching `file_glob` under `root`, at any depth, as files to predict on."""
    if not root.is_dir():
        raise UserError(f"data directory not found: {root} (set data.root)")
    paths = sorted(p for p in root.rglob(file_glob) if p.is_file())
    if not paths:
        raise UserError(f"no files matching {file_glob} under {root}, at any depth")
    return [SourceFile(p, p.relative_to(root).as_posix(), UNLABELLED) for p in paths]


def read_split(run_dir: Path) -> dict:
    path = run_dir / "split.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"subset=test needs the run's split: cannot read {path}: {err}") from None


def choose_subset(subset: str | None, run_dir: Path | None, data_root: Path, labelled: bool) -> str:
    """`subset`, or when null: test for a run directory trained on this data root, else all."""
    if subset == "test" and run_dir is None:
        raise UserError(
            "subset=test needs ckpt=<run directory> (its split.json names the test side)"
        )
    if subset is not None:
        return subset
    if not labelled or run_dir is None or not (run_dir / "split.json").is_file():
        return "all"
    trained_on = read_split(run_dir).get("data_root")
    return "test" if trained_on and Path(trained_on).resolve() == data_root.resolve() else "all"


def test_rows(table: FeatureTable, run_dir: Path) -> torch.Tensor:
    """Exactly the rows of the run's test side, from its split.json."""
    doc = read_split(run_dir)
    try:
        if doc.get("unit") == "group":
            sides = {side: doc[f"{side}_records"] for side in SIDES}
            return table.rows_of_records(sides, doc["record_pattern"])["test"]
        names, expected = doc["test_files"], doc["file_rows"]
    except KeyError as err:
        raise UserError(f"{run_dir / 'split.json'}: incomplete, no {err}") from None
    found = table.file_summary()
    wrong = [n for n in names if n not in found or found[n][1] != expected.get(n)]
    if wrong:
        raise UserError(
            f"the run {run_dir} was tested on files that this data does not hold as they were "
            f"(missing or with other row counts): {', '.join(wrong[:5])}; point data.root at the "
            "run's data, or use subset=all"
        )
    return table.rows_of(names)


def check_unique_ids(ids: list[str], files: list[str]) -> None:
    """A UserError naming both files when one id names two rows."""
    first: dict[str, int] = {}
    for i, name in enumerate(ids):
        j = first.setdefault(name, i)
        if j != i:
            where = (
                "twice in " + files[i] if files[i] == files[j] else f"in {files[j]} and {files[i]}"
            )
            raise UserError(
                f"sequence id {name!r} names two rows, {where}: ids must be unique, or rows "
                "could not be told apart in the predictions (was a file copied or merged twice?)"
            )


def check_width(scoring: ScoringModel, data_width: int, where: Path) -> None:
    """A UserError naming both widths when the data does not fit the checkpoint."""
    if data_width != scoring.input_dim:
        raise UserError(
            f"the data in {where} is {data_width} numbers wide but the checkpoint {scoring.path} "
            f"takes {scoring.input_dim} (it was trained on {scoring.model_id} embeddings): "
            "score data embedded with the same protein model (2048 = DNABERT-S + FastESM2-650, "
            "3328 = DNABERT-S + ESM2-3B)"
        )
