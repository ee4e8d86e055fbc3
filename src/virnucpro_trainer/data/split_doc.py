"""split.json, the document that describes a split: made from the assignment, written atomically
(with, for a file split, symlinks to the test files) and read back (split_check.py checks it
against the data found).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timezone
from pathlib import Path

from virnucpro_trainer.atomic import atomic_path, json_text
from virnucpro_trainer.data.files import CLASS_NAMES
from virnucpro_trainer.errors import UserError

log = logging.getLogger(__name__)

SIDES = ("train", "val", "test")
# Where the data is and which sequence ids its files hold describe the data, not the split: a
# split's hash stays the same for the same assignment of the same files.
UNHASHED = ("data_root", "file_ids")
# A new group split's split.json says how it was made: "rows", towards each class's requested share
# of rows per side (and reports them in row_fractions). A group split without it was made before,
# from shares of each class's record count; it is loaded as it is.
GROUP_METHOD = "rows"
# What row_fractions holds for each class and side.
ROW_FRACTION_KEYS = (
    "requested",
    "achieved",
    "rows",
    "records",
    "largest_record_rows",
    "smallest_record_rows",
)


def describe(
    files: dict[str, tuple[int, int]],
    rows_by_side: dict[str, dict[str, int]],
    data_root: Path,
    settings: dict,
    side_records: dict[str, list[str]] | None,
    record_label: dict[str, int] | None,
    group: dict | None = None,
) -> dict:
    """split.json. `rows_by_side`: side -> {file: rows it has on that side}; `group`: what a group
    split adds (group_method, row_fractions)."""
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
    if group is not None:
        doc.update(group)
    digest = json.dumps({k: doc[k] for k in doc if k not in UNHASHED}, sort_keys=True)
    doc["hash"] = hashlib.sha256(digest.encode()).hexdigest()[:16]
    doc["timestamp"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return doc


def write_folder(folder: Path, doc: dict, data_root: Path) -> None:
    """Write split.json (and, for a file split, the test-file symlinks), atomically."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(folder, folder=True) as tmp:
            (tmp / "split.json").write_text(json_text(doc))
            if doc["unit"] == "file":  # a group split's test side is part of files, not whole
                for name, label in zip(doc["test_files"], doc["test_labels"], strict=True):
                    link_dir = tmp / CLASS_NAMES[label]
                    link_dir.mkdir(exist_ok=True)
                    (link_dir / name.replace("/", "__")).symlink_to(data_root / name)
    except OSError:
        if not (folder / "split.json").is_file():
            raise
        # another run made the same split first; theirs is identical


def read_document(path: Path, settings: dict) -> dict:
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
            if doc.get("group_method") is not None:
                for of_class in doc["row_fractions"].values():
                    for key in ROW_FRACTION_KEYS:
                        float(of_class[side][key])
        doc["hash"]  # noqa: B018
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise UserError(
            f"split file {path} is unreadable or incomplete ({type(err).__name__}: {err}); "
            f"delete {path.parent} to make the split again"
        ) from None
    recorded = {key: doc.get(key) for key in settings}
    if recorded != settings:
        hint = ""
        if [k for k in settings if recorded[k] != settings[k]] == ["record_pattern"]:
            # e.g. a group split made before the default became the greedy ^(.+)_chunk_\d+
            hint = f" (to use it as it is: split.record_pattern='{recorded['record_pattern']}')"
        raise UserError(
            f"split file {path} was made with {recorded}, not the requested {settings}; "
            f"delete {path.parent} or choose another split.dir{hint}"
        )
    return doc


def summary(doc: dict) -> str:
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
