"""Finding merged embedding files under the data root and reading each one with every check.

A merged file is `torch.save` of {"ids": [str], "data": float tensor [n, width],
"labels": [0 or 1]}. Its class comes from its directory name and must agree with its `labels`.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch

from virnucpro_trainer.errors import UserError

log = logging.getLogger(__name__)

CLASS_NAMES = {0: "non_viral", 1: "viral"}


@dataclass(frozen=True)
class SourceFile:
    """A merged file: its path, its name relative to the data root, its class from its directory."""

    path: Path
    name: str
    label: int


@dataclass
class MergedFile:
    """A checked merged file. `data` is memory-mapped where the file format allows it."""

    source: SourceFile
    data: torch.Tensor
    ids: list[str] | None  # None when the ids cannot be matched to rows

    @property
    def rows(self) -> int:
        return self.data.shape[0]


def find_files(root: Path, file_glob: str, viral_dir_substring: str) -> list[SourceFile]:
    """All files matching `<root>/<class dir>/<file_glob>`, sorted, with both classes present."""
    if not root.is_dir():
        raise UserError(
            f"data directory not found: {root}\n"
            "Point data.root at a folder of merged embedding files, e.g. "
            "`python train.py data.root=/path/to/data_merge`,\n"
            "or try the bundled demo data: `python train.py data=synthetic`."
        )
    paths = sorted(p for p in root.glob(f"*/{file_glob}") if p.is_file())
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
        if not any(f.label == label for f in files):
            dirs = sorted({f.path.parent.name for f in files})
            raise UserError(
                f"no {name} files under {root}: a directory whose name contains "
                f"'{viral_dir_substring}' holds viral files (label 1), any other directory host "
                f"files (label 0); found only: {', '.join(dirs)}"
            )
    return files


def _torch_load(path: Path) -> object:
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)  # legacy format
    except pickle.UnpicklingError as err:
        culprit = next((line.strip() for line in str(err).splitlines() if "GLOBAL" in line), "")
        raise UserError(
            f"{path}: refused to load: it holds Python objects other than tensors and plain "
            "types, and unpickling those could run code (torch.load with weights_only=True). "
            "Ask whoever made it to save only tensors, lists, dicts and strings. "
            f"{culprit}".strip()
        ) from None
    except Exception as err:  # zip, EOF and I/O errors all mean the same to the user
        raise UserError(
            f"{path}: cannot be read as a torch file (truncated or corrupt?): {err}"
        ) from None


def _file_label(path: Path, labels: object) -> int:
    try:
        values = {int(v) for v in torch.as_tensor(labels).flatten().tolist()}
    except (TypeError, ValueError, RuntimeError):
        values = set()
    if len(values) != 1 or not values <= {0, 1}:
        raise UserError(f"{path}: 'labels' must be [0] or [1], found {labels!r:.80}")
    return values.pop()


def read_merged(source: SourceFile, width: int) -> MergedFile:
    """Load one merged file and check its structure, width and label against its directory."""
    path = source.path
    obj = _torch_load(path)
    if not isinstance(obj, dict) or "data" not in obj or "labels" not in obj:
        found = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise UserError(f"{path}: expected a dict with keys 'ids', 'data', 'labels', found {found}")
    data = obj["data"]
    if not isinstance(data, torch.Tensor) or data.ndim != 2 or not data.is_floating_point():
        found = (
            f"{data.ndim}-D {data.dtype} tensor"
            if isinstance(data, torch.Tensor)
            else type(data).__name__
        )
        raise UserError(f"{path}: 'data' must be a 2-D floating-point tensor, found {found}")
    if data.shape[1] != width:
        raise UserError(
            f"{path}: rows are {data.shape[1]} numbers wide, expected {width} "
            "(data.dna_dim + data.protein_dim; ESM2-3B data needs data.protein_dim=2560)"
        )
    label = _file_label(path, obj["labels"])
    if label != source.label:
        raise UserError(
            f"{path}: its labels say {CLASS_NAMES[label]} ({label}) but its directory "
            f"'{path.parent.name}' says {CLASS_NAMES[source.label]} ({source.label}) "
            "(see data.viral_dir_substring)"
        )
    ids = obj.get("ids")
    if not isinstance(ids, list) or len(ids) != data.shape[0]:
        found = f"{len(ids)} ids" if isinstance(ids, list) else f"ids of type {type(ids).__name__}"
        log.warning(
            "%s: %s for %d rows; ids cannot be matched to rows, so rows are named "
            "<file>#<row> instead",
            path,
            found,
            data.shape[0],
        )
        ids = None
    return MergedFile(source, data, ids)
