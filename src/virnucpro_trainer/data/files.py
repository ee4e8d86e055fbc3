"""Finding merged embedding files under the data root: `<root>/<class dir>/<file_glob>`, each with
its class from its directory's name. Paths that look like data but are not read are named in a
warning, never skipped without a word."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from virnucpro_trainer.errors import UserError

log = logging.getLogger(__name__)

CLASS_NAMES = {0: "non_viral", 1: "viral"}
UNLABELLED = -1  # the label of a file to predict on: no class directory, its `labels` ignored


@dataclass(frozen=True)
class SourceFile:
    """A merged file: its path, its name relative to the data root, its class from its directory
    (UNLABELLED for files to predict on)."""

    path: Path
    name: str
    label: int


def find_files(
    root: Path,
    file_glob: str,
    viral_dir_substring: str,
    script: str = "train.py",
    both_classes: bool = True,
) -> list[SourceFile]:
    """All files matching `<root>/<class dir>/<file_glob>`, sorted; with `both_classes`, a
    UserError unless both classes are present (training needs them; an evaluation of one class,
    e.g. a viral-only set to measure recall, does not). `script` names the command in messages.

    Paths that look like data files but are not read (broken links, directories, files in
    sub-directories of a class directory or in the root itself) get one warning per kind.
    """
    if not root.is_dir():
        raise UserError(
            f"data directory not found: {root}\n"
            "Point data.root at a folder of merged embedding files, e.g. "
            f"`python {script} data.root=/path/to/data_merge`,\n"
            f"or try the bundled demo data: `python {script} data=synthetic`."
        )
    candidates = sorted(root.glob(f"*/{file_glob}"))
    paths = [p for p in candidates if p.is_file()]
    _warn_skipped(root, file_glob, candidates, paths)
    if not paths:
        raise UserError(
            f"no files matching '<class dir>/{file_glob}' under {root}: expected "
            "sub-directories such as viral.1.1_merged/ and vertebrate_mammalian_merged/ "
            "holding *_merged.pt files (see data.file_glob)"
        )
    files = [
        SourceFile(p, p.relative_to(root).as_posix(), int(viral_dir_substring in p.parent.name))
        for p in paths
    ]
    for label, name in CLASS_NAMES.items():
        if both_classes and not any(f.label == label for f in files):
            dirs = sorted({f.path.parent.name for f in files})
            raise UserError(
                f"no {name} files under {root}: a directory whose name contains "
                f"'{viral_dir_substring}' holds viral files (label 1), any other directory host "
                f"files (label 0); found only: {', '.join(dirs)}"
            )
    return files


def _warn_skipped(root: Path, file_glob: str, candidates: list[Path], read: list[Path]) -> None:
    """One warning for each kind of path that looks like a data file but is not read."""
    broken = [p for p in candidates if p.is_symlink() and not p.exists()]
    loose, nested = [], []
    for p in sorted(root.rglob(file_glob)):  # does not descend into symlinked directories
        depth = len(p.relative_to(root).parts)
        if p.is_file() and depth != 2:
            (loose if depth == 1 else nested).append(p)
    kinds = (
        (broken, "broken symbolic link(s)", "the file a link points to does not exist"),
        (
            [p for p in candidates if p.exists() and not p.is_file()],
            f"directory or other non-file(s) matching {file_glob}",
            "only regular files can be read as data",
        ),
        (
            nested,
            f"file(s) matching {file_glob} in sub-directories of class directories",
            "class directories are not searched recursively",
        ),
        (
            loose,
            f"file(s) matching {file_glob} directly in the data root",
            "a file's class comes from the directory it is in",
        ),
    )
    for paths, what, why in kinds:
        if paths:
            examples = [
                p.relative_to(root).as_posix()
                + (f" -> {os.readlink(p)}" if p in broken else "/" if p.is_dir() else "")
                for p in paths[:3]
            ]
            log.warning(
                "%s: skipped %d %s (%s%s): %s; only files at <data root>/<class dir>/%s are read",
                root,
                len(paths),
                what,
                "e.g. " if len(paths) > 3 else "",
                ", ".join(examples),
                why,
                file_glob,
            )
