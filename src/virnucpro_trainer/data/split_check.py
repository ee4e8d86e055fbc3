"""Is the data found the data a split was made from? One check for every place a split is
reused: training (the shared split in split.dir), resume= and evaluate.py subset=test (the run's
own copy, split.json in its directory). The same files, classes and row counts, and where the
split records them (`file_ids`), the same sequence ids: a file replaced by another of the same
name and row count is refused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from virnucpro_trainer.data.split_doc import SIDES
from virnucpro_trainer.errors import UserError

log = logging.getLogger(__name__)


def check_split_data(
    doc: dict,
    data_root: Path,
    files: dict[str, tuple[int, int]],
    ids: Callable[[], dict[str, str]] | None,
    path: Path,
    remedy: str | None = None,
) -> None:
    """Refuse data that is not the data the split in `path` (its document `doc`) was made from.

    `files` maps each file found under `data_root` to its (label, rows); `ids()` gives a hash of
    each file's sequence ids. `remedy` ends a refusal; None: training's (split afresh)."""
    try:
        check_data_root(doc, data_root, files, ids, path, remedy)
        diffs = differences(doc, files, ids)
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise UserError(
            f"{path} is incomplete or damaged ({type(err).__name__}: {err}): the data cannot be "
            "checked against it"
        ) from None
    if diffs:
        remedy = remedy or (
            f"To split the changed data afresh, move or delete {path.parent} (runs judged on the "
            "old split are then not comparable), or use another split.dir or split.seed."
        )
        raise UserError(
            f"the data under {data_root} no longer matches the split in {path}:\n  "
            + "\n  ".join(diffs)
            + f"\n{remedy}"
        )


def read_run_split(path: Path, needed_by: str) -> dict:
    """A run's own copy of its split (split.json in the run directory), as written."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"{needed_by} needs the run's split: cannot read {path}: {err}") from None
    if not isinstance(doc, dict):
        raise UserError(f"{path}: expected a split (a JSON object), found {type(doc).__name__}")
    return doc


def check_run_split(
    run_dir: Path,
    settings: dict,
    files: dict[str, tuple[int, int]],
    data_root: Path,
    ids: Callable[[], dict[str, str]] | None,
) -> dict:
    """The split.json of the run in `run_dir` (for resume=), made with `settings` and checked
    against the data found: a run continues only on the data it was split on."""
    path = run_dir / "split.json"
    doc = read_run_split(path, "resume=")
    recorded = {key: doc.get(key) for key in settings}
    if recorded != settings:
        raise UserError(f"{path} was made with {recorded}, not the run's settings {settings}")
    remedy = (
        "resume= continues a run only on the data it was split on: point data.root at that "
        f"data (split at {doc.get('data_root')})"
    )
    check_split_data(doc, data_root, files, ids, path, remedy)
    return doc


def differences(
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


def check_data_root(
    doc: dict,
    data_root: Path,
    files: dict[str, tuple[int, int]],
    ids: Callable[[], dict[str, str]] | None,
    path: Path,
    remedy: str | None = None,
) -> None:
    """A split belongs to the data it was made from. Under another data root it is used only for
    the same sequences (the data moved, or re-embedded): same files, rows and sequence ids.
    `remedy` ends the message; None: training's (another split.dir, or split afresh)."""
    made_for = doc["data_root"]
    if made_for == str(data_root):
        return
    same = ids is not None and doc.get("file_ids") is not None and not differences(doc, files, ids)
    if not same:
        remedy = remedy or (
            "Each data set gets its own split by default (split.dir: <data.root>/../test_set/"
            "<name of data.root>); set split.dir to another folder, or move or delete "
            f"{path.parent} to split this data afresh"
        )
        raise UserError(
            f"the split in {path} belongs to the data at {made_for}, not to {data_root}. {remedy}"
        )
    log.warning(
        "the split in %s was made for the data at %s; the data at %s has the same files, rows "
        "and sequence ids, so it is used for it as well",
        path,
        made_for,
        data_root,
    )
