"""The train/validation/test split, stratified by class, made once and shared by all runs.

The unit of the split is the file (`split.unit=file`) or the source record (`group`: every
fragment of a genome on one side, wherever its files are). A split lives in
`<split.dir>/<unit>-test<t>-val<v>-seed<s>/` as `split.json`, plus, for a file split, `viral/` and
`non_viral/` folders of symlinks to its test files. Later runs load it and check it against the
files found; different settings get different folders, so they never overwrite each other.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from virnucpro_trainer.atomic import atomic_path
from virnucpro_trainer.data.leakage import leakage_report, log_leakage
from virnucpro_trainer.data.merged import CLASS_NAMES
from virnucpro_trainer.errors import UserError

log = logging.getLogger(__name__)

SIDES = ("train", "val", "test")
# Where the data is and which sequence ids its files hold describe the data, not the split: a
# split's hash stays the same for the same assignment of the same files.
UNHASHED = ("data_root", "file_ids")
UNIT_WORDS = {"file": "file", "group": "source record"}


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
    labels: dict[str, int], test_fraction: float, val_fraction: float, seed: int, unit="file"
) -> dict[str, list[str]]:
    """Per class: a shuffled test share of its units (files or records), then a validation share
    of what is left, the rest train.

    Each class gets at least one unit on every side, so every side holds both classes.
    """
    rng = np.random.default_rng(seed)
    sides: dict[str, list[str]] = {side: [] for side in SIDES}
    word = UNIT_WORDS[unit]
    for label, class_name in CLASS_NAMES.items():
        names = sorted(n for n, lab in labels.items() if lab == label)
        n_test = max(1, round(len(names) * test_fraction))
        n_val = max(1, round((len(names) - n_test) * val_fraction))
        if len(names) - n_test - n_val < 1:
            more = (
                "Add files or split the data into more files."
                if unit == "file"
                else "Check split.record_pattern against the ids, or add data."
            )
            raise UserError(
                f"only {len(names)} {class_name} {word}(s): a split by {word} needs at least 3 "
                f"per class (train, validation and test each get one; with split.test_fraction="
                f"{test_fraction} and split.val_fraction={val_fraction} it needs "
                f"{n_test + n_val + 1}). {more}"
            )
        shuffled = [names[i] for i in rng.permutation(len(names))]
        sides["test"] += shuffled[:n_test]
        sides["val"] += shuffled[n_test : n_test + n_val]
        sides["train"] += shuffled[n_test + n_val :]
    return {side: sorted(names) for side, names in sides.items()}


def record_labels(records: dict[str, list[str]], labels: dict[str, int]) -> dict[str, int]:
    """Each source record's class: that of its fragments, or of most of them (with a warning)
    where a record has fragments of both classes. `records`: file -> record of each row."""
    counts: dict[str, list[int]] = {}
    for name, per_row in records.items():
        for record, n in Counter(per_row).items():
            counts.setdefault(record, [0, 0])[labels[name]] += n
    mixed = sorted(r for r, (host, viral) in counts.items() if host and viral)
    if mixed:
        log.warning(
            "%d source records have both viral and host fragments (e.g. %s); each stays on one "
            "side, stratified as the class of most of its fragments",
            len(mixed),
            ", ".join(mixed[:5]),
        )
    return {r: int(viral > host) for r, (host, viral) in counts.items()}


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


def _document(
    files: dict[str, tuple[int, int]],
    rows_by_side: dict[str, dict[str, int]],
    data_root: Path,
    settings: dict,
    side_records: dict[str, list[str]] | None,
    record_label: dict[str, int] | None,
) -> dict:
    """split.json. `rows_by_side`: side -> {file: rows it has on that side}."""
    label = {name: lab for name, (lab, _) in files.items()}
    distribution = {}
    for side, rows in rows_by_side.items():
        names = sorted(rows)
        viral = sum(label[n] for n in names)
        n_rows = sum(rows.values())
        viral_rows = sum(n for name, n in rows.items() if label[name] == 1)
        distribution[side] = {
            "viral_files": viral,
            "non_viral_files": len(names) - viral,
            "sequences": n_rows,
            "viral_ratio": round(viral_rows / n_rows, 6),
        }
        if side_records is not None:
            viral_records = sum(record_label[r] for r in side_records[side])
            distribution[side]["viral_records"] = viral_records
            distribution[side]["non_viral_records"] = len(side_records[side]) - viral_records
    distribution["test_sequences"] = distribution["test"]["sequences"]
    doc = {
        "format_version": 1,
        **settings,
        "data_root": str(data_root),
        **{f"{side}_files": sorted(rows) for side, rows in rows_by_side.items()},
        **{
            f"{side}_labels": [label[n] for n in sorted(rows)]
            for side, rows in rows_by_side.items()
        },
        "file_rows": {name: n for name, (_, n) in sorted(files.items())},
        "file_labels": {name: lab for name, (lab, _) in sorted(files.items())},
        "distribution": distribution,
    }
    if side_records is not None:
        doc.update({f"{side}_records": names for side, names in side_records.items()})
    digest = json.dumps({k: doc[k] for k in doc if k not in UNHASHED}, sort_keys=True)
    doc["hash"] = hashlib.sha256(digest.encode()).hexdigest()[:16]
    doc["timestamp"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return doc


def _differences(
    doc: dict, files: dict[str, tuple[int, int]], ids: Callable[[], dict[str, str]] | None
) -> list[str]:
    labels = doc.get("file_labels")
    if labels is None:  # written before file_labels existed: a file split, labels per side
        labels = {}
        for side in SIDES:
            labels.update(zip(doc[f"{side}_files"], doc[f"{side}_labels"], strict=True))
    recorded = {name: (label, doc["file_rows"][name]) for name, label in labels.items()}
    found = {name: tuple(v) for name, v in files.items()}
    missing = sorted(set(recorded) - set(found))
    new = sorted(set(found) - set(recorded))
    changed = sorted(n for n in set(found) & set(recorded) if found[n] != recorded[n])

    def show(names: list[str]) -> str:
        return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")

    diffs = []
    if missing:
        diffs.append(f"{len(missing)} file(s) in the split are gone: {show(missing)}")
    if new:
        diffs.append(f"{len(new)} file(s) found that the split does not know: {show(new)}")
    for name in changed[:5]:
        (la, ra), (lb, rb) = recorded[name], found[name]
        diffs.append(
            f"{name}: split recorded label {la} and {ra} rows, found label {lb} and {rb} rows"
        )
    if not diffs and ids is not None and doc.get("file_ids") is not None:
        found_ids = ids()
        other = sorted(n for n in recorded if doc["file_ids"].get(n) != found_ids.get(n))
        if other:
            diffs.append(
                f"{len(other)} file(s) hold other sequence ids than when the split was made "
                f"(same names and row counts, other sequences): {show(other)}"
            )
    return diffs


def _write_folder(folder: Path, doc: dict, data_root: Path) -> None:
    """Write split.json (and, for a file split, the test-file symlinks), atomically."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(folder, folder=True) as tmp:
            (tmp / "split.json").write_text(json.dumps(doc, indent=2) + "\n")
            if doc["unit"] == "file":  # a group split's test side is part of files, not whole
                for name, label in zip(doc["test_files"], doc["test_labels"], strict=True):
                    link_dir = tmp / CLASS_NAMES[label]
                    link_dir.mkdir(exist_ok=True)
                    (link_dir / name.replace("/", "__")).symlink_to(data_root / name)
    except OSError:
        if not (folder / "split.json").is_file():
            raise
        # another run made the same split first; theirs is identical


def _read_document(path: Path, settings: dict) -> dict:
    """Read split.json, checking that it is complete and was made with `settings`."""
    try:
        doc = json.loads(path.read_text())
        for side in SIDES:
            names = doc[f"{side}_files"]
            if len(doc[f"{side}_labels"]) != len(names):
                raise ValueError(f"{side}_files and {side}_labels differ in length")
            for name in names:
                doc["file_rows"][name]  # noqa: B018 (presence check)
            doc["distribution"][side]["sequences"]  # noqa: B018
            if doc.get("unit") == "group" and not isinstance(doc[f"{side}_records"], list):
                raise ValueError(f"{side}_records is not a list")
        doc["hash"]  # noqa: B018
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(
            f"split file {path} is unreadable or incomplete ({type(err).__name__}: {err}); "
            f"delete {path.parent} to make the split again"
        ) from None
    recorded = {key: doc.get(key) for key in settings}
    if recorded != settings:
        raise UserError(
            f"split file {path} was made with {recorded}, not the requested {settings}; "
            f"delete {path.parent} or choose another split.dir"
        )
    return doc


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
    side_records = record_label = by_side = None
    if settings["unit"] == "file":
        sides = assign_units(labels, test, val, seed)
        rows = {side: {n: files[n][1] for n in names} for side, names in sides.items()}
        if per_row is not None:
            by_side = side_rows("file", sides, per_row)
    else:
        record_label = record_labels(per_row, labels)
        side_records = assign_units(record_label, test, val, seed, unit="group")
        by_side = side_rows("group", side_records, per_row)
        rows = {side: {n: len(r) for n, r in of.items()} for side, of in by_side.items()}
    doc = _document(files, rows, data_root, settings, side_records, record_label)
    doc["leakage"] = leakage_report(by_side) if by_side is not None else None
    if ids is not None:
        doc["file_ids"] = ids()
    return doc


def load_or_make_split(
    files: dict[str, tuple[int, int]],
    data_root: Path,
    split_dir: Path,
    unit: str,
    test_fraction: float,
    val_fraction: float,
    seed: int,
    records: Callable[[], dict[str, list[str]]] | None = None,
    record_pattern: str | None = None,
    ids: Callable[[], dict[str, str]] | None = None,
) -> Split:
    """Load the split for these settings if it matches `files`, else make and save it.

    `files` maps each file name (relative to `data_root`) to its (label, rows). `records()` gives
    file -> source record of each row: a group split is made from it, and every new split's
    leakage report. A group split depends on `record_pattern`, so it is part of its settings.
    `ids()` gives a hash of each file's sequence ids: recorded in a new split, and checked, so a
    split is never used for other data that has the same file names and row counts.
    """
    if unit == "group" and records is None:
        raise ValueError("a group split needs the records of the rows")
    folder = split_folder(split_dir, unit, test_fraction, val_fraction, seed)
    path = folder / "split.json"
    settings = {
        "unit": unit,
        "seed": seed,
        "split_ratio": test_fraction,
        "val_fraction": val_fraction,
    }
    if unit == "group":
        settings["record_pattern"] = record_pattern
    if not path.exists():
        doc = make_split(files, settings, data_root, records, ids)
        try:
            _write_folder(folder, doc, data_root)
        except OSError as err:
            raise UserError(
                f"cannot write the split to {folder}: {err}; set split.dir to a writable folder"
            ) from None
        log.info("made a new split: %s", path)
    doc = _read_document(path, settings)
    _check_data_root(doc, data_root, files, ids, path)
    diffs = _differences(doc, files, ids)
    if diffs:
        raise UserError(
            f"the data under {data_root} no longer matches the split in {path}:\n  "
            + "\n  ".join(diffs)
            + f"\nTo split the changed data afresh, move or delete {folder} (runs judged on the "
            "old split are then not comparable), or use another split.dir or split.seed."
        )
    log.info("split %s (%s): %s", doc["hash"], path, _summary(doc))
    log_leakage(doc.get("leakage"))
    side_records = {side: doc[f"{side}_records"] for side in SIDES} if unit == "group" else None
    return Split({side: doc[f"{side}_files"] for side in SIDES}, side_records, doc, path)


def _check_data_root(
    doc: dict,
    data_root: Path,
    files: dict[str, tuple[int, int]],
    ids: Callable[[], dict[str, str]] | None,
    path: Path,
) -> None:
    """A split belongs to the data it was made from. Under another data root it is used only for
    the same sequences (the data moved, or re-embedded): same files, rows and sequence ids."""
    made_for = doc["data_root"]
    if made_for == str(data_root):
        return
    same = ids is not None and doc.get("file_ids") is not None and not _differences(doc, files, ids)
    if not same:
        raise UserError(
            f"the split in {path} belongs to the data at {made_for}, not to {data_root}. Each "
            "data set gets its own split by default (split.dir: <data.root>/../test_set/<name "
            "of data.root>); set split.dir to another folder, or move or delete "
            f"{path.parent} to split this data afresh"
        )
    log.warning(
        "the split in %s was made for the data at %s; the data at %s has the same files, rows "
        "and sequence ids, so it is used for it as well",
        path,
        made_for,
        data_root,
    )


def _summary(doc: dict) -> str:
    parts = []
    for side in SIDES:
        d = doc["distribution"][side]
        units = f"{d['viral_files']}+{d['non_viral_files']} files"
        if "viral_records" in d:
            units = f"{d['viral_records']}+{d['non_viral_records']} records in {units}"
        parts.append(
            f"{side} {units} (viral+host), {d['sequences']} rows, "
            f"viral ratio {d['viral_ratio']:.3f}"
        )
    return "; ".join(parts)
