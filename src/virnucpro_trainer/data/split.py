"""The train/validation/test split by file, stratified by class, made once and shared by all runs.

A split lives in `<split.dir>/<unit>-test<t>-val<v>-seed<s>/` as `split.json` plus `viral/` and
`non_viral/` folders of symlinks to its test files. Later runs load it and check it against the
files found; different settings get different folders, so they never overwrite each other.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from virnucpro_trainer.data.leakage import leakage_report, log_leakage
from virnucpro_trainer.data.merged import CLASS_NAMES
from virnucpro_trainer.errors import UserError

log = logging.getLogger(__name__)

SIDES = ("train", "val", "test")


@dataclass
class Split:
    files: dict[str, list[str]]  # side -> file names relative to the data root
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


def assign_files(
    labels: dict[str, int], test_fraction: float, val_fraction: float, seed: int
) -> dict[str, list[str]]:
    """Per class: a shuffled test share, then a validation share of what is left, the rest train.

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
                f"only {len(names)} {class_name} file(s): a file-level split needs at least 3 per "
                f"class (train, validation and test each get one; with split.test_fraction="
                f"{test_fraction} and split.val_fraction={val_fraction} it needs "
                f"{n_test + n_val + 1}). Add files or split the data into more files."
            )
        shuffled = [names[i] for i in rng.permutation(len(names))]
        sides["test"] += shuffled[:n_test]
        sides["val"] += shuffled[n_test : n_test + n_val]
        sides["train"] += shuffled[n_test + n_val :]
    return {side: sorted(names) for side, names in sides.items()}


def _document(
    files: dict[str, tuple[int, int]],
    sides: dict[str, list[str]],
    data_root: Path,
    unit: str,
    test_fraction: float,
    val_fraction: float,
    seed: int,
) -> dict:
    label = {name: lab for name, (lab, _) in files.items()}
    rows = {name: n for name, (_, n) in files.items()}
    distribution = {}
    for side, names in sides.items():
        viral = sum(label[n] for n in names)
        n_rows = sum(rows[n] for n in names)
        viral_rows = sum(rows[n] for n in names if label[n] == 1)
        distribution[side] = {
            "viral_files": viral,
            "non_viral_files": len(names) - viral,
            "sequences": n_rows,
            "viral_ratio": round(viral_rows / n_rows, 6),
        }
    distribution["test_sequences"] = distribution["test"]["sequences"]
    doc = {
        "format_version": 1,
        "unit": unit,
        "seed": seed,
        "split_ratio": test_fraction,
        "val_fraction": val_fraction,
        "data_root": str(data_root),
        **{f"{side}_files": names for side, names in sides.items()},
        **{f"{side}_labels": [label[n] for n in names] for side, names in sides.items()},
        "file_rows": dict(sorted(rows.items())),
        "distribution": distribution,
    }
    digest = json.dumps({k: doc[k] for k in doc if k != "data_root"}, sort_keys=True)
    doc["hash"] = hashlib.sha256(digest.encode()).hexdigest()[:16]
    doc["timestamp"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return doc


def _differences(doc: dict, files: dict[str, tuple[int, int]]) -> list[str]:
    recorded = {}
    for side in SIDES:
        for name, label in zip(doc[f"{side}_files"], doc[f"{side}_labels"], strict=True):
            recorded[name] = (label, doc["file_rows"][name])
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
    return diffs


def _write_folder(folder: Path, doc: dict, data_root: Path) -> None:
    """Write split.json and the test-file symlinks into a temporary folder, then rename it."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    (tmp / "split.json").write_text(json.dumps(doc, indent=2) + "\n")
    for name, label in zip(doc["test_files"], doc["test_labels"], strict=True):
        link_dir = tmp / CLASS_NAMES[label]
        link_dir.mkdir(exist_ok=True)
        (link_dir / name.replace("/", "__")).symlink_to(data_root / name)
    try:
        tmp.rename(folder)
    except OSError:  # another run made the same split first; theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)


def _read_document(path: Path, settings: dict) -> dict:
    """Read split.json, checking that it is complete and was made with `settings`."""
    try:
        doc = json.loads(path.read_text())
        sides = {side: doc[f"{side}_files"] for side in SIDES}
        for side, names in sides.items():
            if len(doc[f"{side}_labels"]) != len(names):
                raise ValueError(f"{side}_files and {side}_labels differ in length")
            for name in names:
                doc["file_rows"][name]  # noqa: B018 (presence check)
            doc["distribution"][side]["sequences"]  # noqa: B018
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


def load_or_make_split(
    files: dict[str, tuple[int, int]],
    data_root: Path,
    split_dir: Path,
    unit: str,
    test_fraction: float,
    val_fraction: float,
    seed: int,
    records: Callable[[], dict[str, list[str]]] | None = None,
) -> Split:
    """Load the split for these settings if it matches `files`, else make and save it.

    `files` maps each file name (relative to `data_root`) to its (label, rows). When a split is
    made, `records()` (file -> source record of each row) gives its leakage report.
    """
    folder = split_folder(split_dir, unit, test_fraction, val_fraction, seed)
    path = folder / "split.json"
    if not path.exists():
        labels = {name: label for name, (label, _) in files.items()}
        sides = assign_files(labels, test_fraction, val_fraction, seed)
        doc = _document(files, sides, data_root, unit, test_fraction, val_fraction, seed)
        doc["leakage"] = leakage_report(sides, records()) if records else None
        try:
            _write_folder(folder, doc, data_root)
        except OSError as err:
            raise UserError(
                f"cannot write the split to {folder}: {err}; set split.dir to a writable folder"
            ) from None
        log.info("made a new split: %s", path)
    settings = {
        "unit": unit,
        "seed": seed,
        "split_ratio": test_fraction,
        "val_fraction": val_fraction,
    }
    doc = _read_document(path, settings)
    diffs = _differences(doc, files)
    if diffs:
        raise UserError(
            f"the data under {data_root} no longer matches the split in {path}:\n  "
            + "\n  ".join(diffs)
            + f"\nTo split the changed data afresh, move or delete {folder} (runs judged on the "
            "old split are then not comparable), or use another split.dir or split.seed."
        )
    log.info("split %s (%s): %s", doc["hash"], path, _summary(doc))
    log_leakage(doc.get("leakage"))
    return Split({side: doc[f"{side}_files"] for side in SIDES}, doc, path)


def _summary(doc: dict) -> str:
    parts = []
    for side in SIDES:
        d = doc["distribution"][side]
        parts.append(
            f"{side} {d['viral_files']}+{d['non_viral_files']} files "
            f"(viral+host), {d['sequences']} rows, viral ratio {d['viral_ratio']:.3f}"
        )
    return "; ".join(parts)
