"""The rows evaluate.py scores: labelled data through the training code (files, feature store,
table), or any folder of merged files for prediction; a run's test side from its split.json; and
the checks scoring needs (the data's width against the checkpoint's, unique ids)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from virnucpro_trainer.checkpoint import ScoringModel, read_checkpoint, resolve_checkpoint
from virnucpro_trainer.data.dataset import data_sources, read_into_ram
from virnucpro_trainer.data.files import UNLABELLED, SourceFile
from virnucpro_trainer.data.split_check import check_split_data, read_run_split
from virnucpro_trainer.data.split_doc import SIDES
from virnucpro_trainer.data.store import find_store, open_store
from virnucpro_trainer.data.synthetic import MARKER
from virnucpro_trainer.data.table import FeatureTable
from virnucpro_trainer.ensemble import Ensemble
from virnucpro_trainer.entry import hydra_quote, override_value
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.evaluate.members import directory_members
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
    return data_sources(cfg.data, width, for_training=False)


def unlabelled_sources(root: Path, file_glob: str) -> list[SourceFile]:
    """Every file matching `file_glob` under `root`, at any depth, as files to predict on."""
    if not root.is_dir():
        raise UserError(f"data directory not found: {root} (set data.root)")
    paths = sorted(p for p in root.rglob(file_glob) if p.is_file())
    if not paths:
        raise UserError(f"no files matching {file_glob} under {root}, at any depth")
    return [SourceFile(p, p.relative_to(root).as_posix(), UNLABELLED) for p in paths]


def choose_subset(
    subset: str | None, scoring: ScoringModel | Ensemble, data_root: Path, labelled: bool
) -> str:
    """`subset`, or when null: test for a run directory (or an ensemble whose members share a
    split) trained on this data root, else all.

    A run directory without its split.json is refused rather than scored whole: its training
    rows would be scored as if they were new (subset=all does it deliberately); so is an ensemble
    of labelled data whose members share no split, which has no common test side."""
    ensemble = isinstance(scoring, Ensemble)
    if subset == "test" and ensemble and scoring.split is None:
        raise UserError(
            f"subset=test needs ensemble members that share a split, but {scoring.no_split}"
        )
    if subset == "test" and not ensemble and scoring.run_dir is None:
        raise UserError(
            "subset=test needs ckpt=<run directory> (its split.json names the test side)"
        )
    if subset is not None:
        return subset
    if not labelled or (not ensemble and scoring.run_dir is None):
        return "all"
    if ensemble and scoring.split is None:
        raise UserError(
            f"ckpt={scoring.path} is an ensemble whose members share no split "
            f"({scoring.no_split}), so the default subset (their common test side) cannot be "
            "chosen, and scoring every row would score rows some member was trained on. Give "
            "subset=all to score every row deliberately (right for data none of them was "
            "trained on)"
        )
    if not ensemble and not (scoring.run_dir / "split.json").is_file():
        raise UserError(
            f"ckpt={scoring.run_dir} is a run directory without its split.json, so its test side "
            "is unknown and the default subset (its test side) cannot be chosen; scoring every "
            "row would score the rows it was trained on as well. Put the run's split.json back, "
            "or score every row deliberately with subset=all"
        )
    trained_on = split_of(scoring)[0].get("data_root")
    return "test" if trained_on and Path(trained_on).resolve() == data_root.resolve() else "all"


def split_of(scoring: ScoringModel | Ensemble) -> tuple[dict, Path]:
    """The split whose test side subset=test scores, and where it was read: a run's
    split.json, or the one an ensemble's members share (their runs', or their ensemble file's)."""
    if isinstance(scoring, Ensemble):
        return scoring.split, (scoring.run_dir / "split.json" if scoring.run_dir else scoring.path)
    path = scoring.run_dir / "split.json"
    return read_run_split(path, "subset=test"), path


def test_rows(
    table: FeatureTable, scoring: ScoringModel | Ensemble, data_root: Path
) -> torch.Tensor:
    """Exactly the rows of the test side of the checkpoint's split (split_of), once the data
    under `data_root` is checked to be the data it was split on (data/split_check.py)."""
    doc, path = split_of(scoring)
    owner = f"the run {scoring.run_dir}"
    if isinstance(scoring, Ensemble):
        owner = f"the ensemble's members (their split: {path})"
    remedy = (
        f"subset=test scores the test side of {owner} only on the data it was split on: point "
        "data.root at that data, or score every row of this data with subset=all"
    )
    check_split_data(doc, data_root, table.file_summary(), table.ids_digests, path, remedy)
    try:
        if doc.get("unit") == "group":
            sides = {side: doc[f"{side}_records"] for side in SIDES}
            return table.rows_of_records(sides, doc["record_pattern"])["test"]
        return table.rows_of(doc["test_files"])
    except KeyError as err:
        raise UserError(f"{path}: incomplete, no {err}") from None


def check_width(scoring: ScoringModel, data_width: int, where: Path) -> None:
    """A UserError naming both widths when the data does not fit the checkpoint."""
    if data_width != scoring.input_dim:
        raise UserError(
            f"the data in {where} is {data_width} numbers wide but the checkpoint {scoring.path} "
            f"takes {scoring.input_dim} (it was trained on {scoring.model_id} embeddings): "
            "score data embedded with the same protein model (2048 = DNABERT-S + FastESM2-650, "
            "3328 = DNABERT-S + ESM2-3B)"
        )


SCRATCH_STORE = ".feature_store"  # in the evaluation directory, removed when scoring is done


def scoring_table(cfg: DictConfig, sources: list[SourceFile], width: int, out_dir: Path):
    """The rows to score, writing nothing outside `out_dir`: the feature store training built
    for exactly these files if there is one (mapped, read only); else, when the files are larger
    than data.memory_budget_gb, a store built in `out_dir` for this evaluation alone (removed
    when it ends: remove_scratch); else the files read into RAM."""
    data = cfg.data
    if data.cache_dir is not None:
        table = find_store(sources, Path(data.cache_dir), width, data.storage_dtype)
        if table is not None:
            return table
    budget = data.memory_budget_gb
    if budget is not None and sum(s.path.stat().st_size for s in sources) > budget * 2**30:
        log.info("the files exceed data.memory_budget_gb: mapping them from a store in %s", out_dir)
        scratch = out_dir / SCRATCH_STORE
        return open_store(sources, Path(data.root), scratch, width, data.storage_dtype, 1)
    return read_into_ram(sources, width, data.storage_dtype, cfg.num_workers)


def remove_scratch(out_dir: Path) -> None:
    shutil.rmtree(out_dir / SCRATCH_STORE, ignore_errors=True)


# The data settings a run directory brings to `ckpt=<run>`: where its data is and what it is
# (not memory_budget_gb or block_rows, which belong to the machine a run is on).
RUN_DATA_KEYS = (
    "root",
    "file_glob",
    "viral_dir_substring",
    "dna_dim",
    "protein_dim",
    "protein_model",
    "protein_model_id",
    "cache_dir",
    "storage_dtype",
    "synthetic",
)


def run_data_overrides(argv: list[str]) -> list[str]:
    """`argv` with, for `ckpt=<run directory>` and no data setting on the command line, the
    run's own data settings (from the resolved config its best model stores) put before the
    user's overrides: `python evaluate.py ckpt=<run>` scores the data the run was trained on.
    A sweep or search directory, or a list of run directories (an ensemble), brings its first
    member's. Unchanged for a .pth file, a list with one, a comparison (a,b) or any
    `data=`/`data.` override."""
    args = argv[1:]
    ckpts = [a for a in args if a.startswith("ckpt=")]
    if len(ckpts) != 1 or any(a.lstrip("+~").startswith(("data=", "data.")) for a in args):
        return argv
    try:
        value = OverridesParser.create().parse_override(ckpts[0]).value()
    except Exception:  # noqa: BLE001 - e.g. a non-ASCII path unquoted: taken as typed
        value = override_value(ckpts[0])
    given = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    if not given or not all(Path(c).is_dir() for c in given):
        return argv  # a .pth file, a sweep (a,b) or a missing path: evaluate_run says which
    try:
        found = directory_members(Path(given[0]), top_k=1)  # the best trial of a search
        path = (
            found.members[0][0]
            if found and found.members
            else resolve_checkpoint(Path(given[0]))[0]
        )
        config = read_checkpoint(path).get("config")
    except UserError:
        return argv  # evaluate_run reports it
    data = config.get("data") if isinstance(config, dict) else None
    if not isinstance(data, dict):
        return argv  # a checkpoint written without its config
    brought = [
        f"data.{key}={_override_text(value)}"
        for key, value in _flatten({k: data[k] for k in RUN_DATA_KEYS if k in data})
    ]
    return [*argv[:1], *brought, *args]


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    out = []
    for key, value in d.items():
        if isinstance(value, dict):
            out += _flatten(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def _override_text(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return hydra_quote(value) if isinstance(value, str) else repr(value)
