"""The train/validation/test split, stratified by class, made once and shared by all runs.

The unit of the split is the file (`split.unit=file`) or the source record (`group`: every
fragment of a genome on one side, wherever its files are). A file split takes its fractions of each
class's files; a group split aims at its fractions of each class's rows (records differ in size by
orders of magnitude, so a share of their count says little about the rows). A split lives in
`<split.dir>/<unit>-test<t>-val<v>-seed<s>/` as `split.json`, plus, for a file split, `viral/` and
`non_viral/` folders of symlinks to its test files. Later runs load it and check it against the
files found; different settings get different folders, so they never overwrite each other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from virnucpro_trainer.data.files import CLASS_NAMES
from virnucpro_trainer.data.group_split import (
    assign_records,
    log_row_fractions,
    record_labels,
    record_rows,
)
from virnucpro_trainer.data.leakage import leakage_report, log_leakage
from virnucpro_trainer.data.split_check import check_run_split, check_split_data
from virnucpro_trainer.data.split_doc import (
    GROUP_METHOD,
    SIDES,
    describe,
    read_document,
    summary,
    write_folder,
)
from virnucpro_trainer.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class Split:
    files: dict[str, list[str]]  # side -> files with rows on that side, relative to the data root
    records: dict[str, list[str]] | None  # side -> source records (group splits only)
    document: dict  # everything written to split.json
    path: Path

    @property
    def hash(self) -> str:
        return self.document["hash"]


def split_folder(
    split_dir: Path, unit: str, test_fraction: float, val_fraction: float, seed: int
) -> Path:
    # repr() keeps every digit, so different fractions never share a folder.
    return split_dir / f"{unit}-test{float(test_fraction)!r}-val{float(val_fraction)!r}-seed{seed}"


def assign_units(
    labels: dict[str, int], test_fraction: float, val_fraction: float, seed: int
) -> dict[str, list[str]]:
    """The file split. Per class: a shuffled test share of its files, then a validation share of
    what is left, the rest train.

    Each class gets at least one file on every side, so every side holds both classes.
    """
    rng = np.random.default_rng(seed)
    sides: dict[str, list[str]] = {side: [] for side in SIDES}
    for label, class_name in CLASS_NAMES.items():
        names = sorted(n for n, lab in labels.items() if lab == label)
        n_test = max(1, round(len(names) * test_fraction))
        n_val = max(1, round((len(names) - n_test) * val_fraction))
        if len(names) - n_test - n_val < 1:
            raise UserError(
                f"only {len(names)} {class_name} file(s): a split by file needs at least 3 "
                f"per class (train, validation and test each get one; with split.test_fraction="
                f"{test_fraction} and split.val_fraction={val_fraction} it needs "
                f"{n_test + n_val + 1}). Add files or split the data into more files."
            )
        shuffled = [names[i] for i in rng.permutation(len(names))]
        sides["test"] += shuffled[:n_test]
        sides["val"] += shuffled[n_test : n_test + n_val]
        sides["train"] += shuffled[n_test + n_val :]
    return {side: sorted(names) for side, names in sides.items()}


def side_rows(
    unit: str, sides: dict[str, list[str]], records: dict[str, list[str]] | None
) -> dict[str, dict[str, list[str]]]:
    """side -> {file: the record of each of its rows on that side}, in file row order.

    For a file split a side holds whole files; for a group split, the rows of its records.
    """
    if unit == "file":
        return {side: {f: records[f] for f in names} for side, names in sides.items()}
    side_of = {r: side for side, names in sides.items() for r in names}
    out: dict[str, dict[str, list[str]]] = {side: {} for side in SIDES}
    for name, per_row in records.items():
        for record in per_row:
            out[side_of[record]].setdefault(name, []).append(record)
    return out


def make_split(
    files: dict[str, tuple[int, int]],
    settings: dict,
    data_root: Path,
    records: Callable[[], dict[str, list[str]]] | None,
    ids: Callable[[], dict[str, str]] | None = None,
) -> dict:
    """Assign files or records to sides and describe the result (the split.json document)."""
    labels = {name: label for name, (label, _) in files.items()}
    test, val, seed = settings["split_ratio"], settings["val_fraction"], settings["seed"]
    per_row = records() if records else None
    side_records = record_label = by_side = group = None
    if settings["unit"] == "file":
        sides = assign_units(labels, test, val, seed)
        rows = {side: {n: files[n][1] for n in names} for side, names in sides.items()}
        if per_row is not None:
            by_side = side_rows("file", sides, per_row)
    else:
        counts = record_rows(per_row, labels)
        record_label = record_labels(per_row, labels, counts)
        sizes = {r: host + viral for r, (host, viral) in counts.items()}
        side_records, fractions = assign_records(record_label, sizes, test, val, seed)
        group = {"group_method": GROUP_METHOD, "row_fractions": fractions}
        by_side = side_rows("group", side_records, per_row)
        rows = {side: {n: len(r) for n, r in of.items()} for side, of in by_side.items()}
    doc = describe(files, rows, data_root, settings, side_records, record_label, group)
    doc["leakage"] = leakage_report(by_side) if by_side is not None else None
    if ids is not None:
        doc["file_ids"] = ids()
    return doc


@dataclass(frozen=True)
class SplitSettings:
    """What a split is made with (the split config's keys but its folder)."""

    unit: str
    test_fraction: float
    val_fraction: float
    seed: int
    record_pattern: str | None = None  # a group split's unit; used by every split's leakage report

    @classmethod
    def from_config(cls, split: DictConfig) -> SplitSettings:
        return cls(split.unit, split.test_fraction, split.val_fraction, split.seed,
                   split.record_pattern)  # fmt: skip

    def document(self) -> dict:
        """The settings as split.json records them (the record pattern for a group split)."""
        settings = {
            "unit": self.unit,
            "seed": self.seed,
            "split_ratio": self.test_fraction,
            "val_fraction": self.val_fraction,
        }
        if self.unit == "group":
            settings["record_pattern"] = self.record_pattern
        return settings


def load_or_make_split(
    files: dict[str, tuple[int, int]],
    data_root: Path,
    split_dir: Path,
    settings: SplitSettings,
    records: Callable[[], dict[str, list[str]]] | None = None,
    ids: Callable[[], dict[str, str]] | None = None,
) -> Split:
    """Load the split for these settings if it matches `files`, else make and save it.

    `files` maps each file name (relative to `data_root`) to its (label, rows). `records()` gives
    file -> source record of each row: a group split is made from it, and every new split's
    leakage report. A group split depends on `record_pattern`, so it is part of its settings.
    `ids()` gives a hash of each file's sequence ids: recorded in a new split, and checked, so a
    split is never used for other data that has the same file names and row counts.
    """
    s = settings
    if s.unit == "group" and records is None:
        raise ValueError("a group split needs the records of the rows")
    folder = split_folder(split_dir, s.unit, s.test_fraction, s.val_fraction, s.seed)
    path = folder / "split.json"
    settings = s.document()
    if not path.exists():
        doc = make_split(files, settings, data_root, records, ids)
        try:
            write_folder(folder, doc, data_root)
        except OSError as err:
            raise UserError(
                f"cannot write the split to {folder}: {err}; set split.dir to a writable folder"
            ) from None
        log.info("made a new split: %s", path)
    doc = read_document(path, settings)
    check_split_data(doc, data_root, files, ids, path)
    log.info("split %s (%s): %s", doc["hash"], path, summary(doc))
    if s.unit == "group":
        log_row_fractions(doc, folder)
    log_leakage(doc.get("leakage"))
    return split_of(doc, path)


def split_of(doc: dict, path: Path) -> Split:
    side_records = (
        {side: doc[f"{side}_records"] for side in SIDES} if doc.get("unit") == "group" else None
    )
    return Split({side: doc[f"{side}_files"] for side in SIDES}, side_records, doc, path)


def run_split(
    run_dir: Path,
    settings: SplitSettings,
    files: dict[str, tuple[int, int]],
    data_root: Path,
    ids: Callable[[], dict[str, str]] | None,
) -> Split:
    """The split a run used, from its own split.json, checked against the data found: resume=
    continues on exactly the data the run was split on, never on a new split of other data."""
    doc = check_run_split(run_dir, settings.document(), files, data_root, ids)
    path = run_dir / "split.json"
    try:
        split = split_of(doc, path)
        log.info("split %s (the run's own, %s): %s", split.hash, path, summary(doc))
    except (KeyError, TypeError) as err:
        raise UserError(f"{path}: incomplete, no {err}") from None
    return split
