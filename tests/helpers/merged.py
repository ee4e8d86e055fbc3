"""Merged embedding files: real files on disk, deterministic content."""

from __future__ import annotations

from pathlib import Path

import torch

from virnucpro_trainer.data.files import find_files
from virnucpro_trainer.data.merged import read_merged

VIRAL_DIR = "viral.1.1_merged"
HOST_DIR = "vertebrate_mammalian_merged"

MISSING = object()  # pass as an override to leave that key out of the saved dict


def read_all(root: Path, width: int) -> list:
    """Every merged file under `root` (the default glob and viral substring), read as a run does."""
    return [read_merged(s, width) for s in find_files(root, "*_merged.pt", "viral")]


def write_merged(
    path: Path,
    n_rows: int,
    width: int,
    label: int,
    ids: list[str] | None | object = MISSING,
    seed: int = 0,
    **overrides,
) -> dict:
    """torch.save a merged-file dict at `path` (parents created) and return what was saved.

    `data` is a float32 [n_rows, width] tensor drawn from `seed`; `ids` default to one
    `<directory>.<stem>_<row>` per row (unique across the files of a data set, as data/ids.py
    asks). `overrides` replace keys of the dict (MISSING removes a key).
    """
    gen = torch.Generator().manual_seed(seed)
    obj = {
        "ids": [f"{path.parent.name}.{path.stem}_{i}" for i in range(n_rows)]
        if ids is MISSING
        else ids,
        "data": torch.randn(n_rows, width, generator=gen),
        "labels": [label],
    }
    obj.update(overrides)
    obj = {k: v for k, v in obj.items() if v is not MISSING}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return obj


def make_dataset(root: Path, files_per_class: int, rows: int, width: int) -> dict[str, dict]:
    """Write `files_per_class` viral and host files under `root`; returns {name: saved dict}.

    Names are relative to `root` (as `find_files` gives them); every file has its own seed.
    """
    written = {}
    for label, class_dir in ((1, VIRAL_DIR), (0, HOST_DIR)):
        for i in range(files_per_class):
            name = f"{class_dir}/output_{i}_merged.pt"
            written[name] = write_merged(root / name, rows, width, label, seed=1000 * label + i)
    return written


def genomes_across_files(root: Path, width: int, files_per_class=3, genomes=6, chunks=4) -> None:
    """Each class's genomes spread over all its files: fragment k of genome g in file
    (g + k) % files, ids `G<label>_<g>.1_chunk_<k>F1`. Any file split of this data leaks every
    genome; a group split must not."""
    for label, class_dir in ((1, VIRAL_DIR), (0, HOST_DIR)):
        ids = {i: [] for i in range(files_per_class)}
        for g in range(genomes):
            for k in range(chunks):
                ids[(g + k) % files_per_class].append(f"G{label}_{g}.1_chunk_{k}F1")
        for i, file_ids in ids.items():
            path = root / class_dir / f"output_{i}_merged.pt"
            write_merged(path, len(file_ids), width, label, ids=file_ids, seed=10 * label + i)
