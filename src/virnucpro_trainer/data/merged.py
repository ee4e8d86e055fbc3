"""Finding merged embedding files under the data root and reading each one with every check.

A merged file is `torch.save` of {"ids": [str], "data": float tensor [n, width],
"labels": [0 or 1]}. Its class comes from its directory name and must agree with its `labels`
where it has them (files made for prediction do not).
Whatever a file holds, reading it either gives a checked MergedFile or raises a UserError that
names the file.
"""

from __future__ import annotations

import logging
import os
import pickle
import reprlib
from dataclasses import dataclass
from pathlib import Path

import torch

from virnucpro_trainer.errors import UserError

log = logging.getLogger(__name__)

CLASS_NAMES = {0: "non_viral", 1: "viral"}

# What `data` may hold: everything else either cannot be copied into the float32 table (packed and
# sub-byte types) or is surely a mistake (integers, complex numbers, 8-bit floats).
DATA_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


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
    """All files matching `<root>/<class dir>/<file_glob>`, sorted, with both classes present.

    Paths that look like data files but are not read (broken links, directories, files in
    sub-directories of a class directory or in the root itself) get one warning per kind.
    """
    if not root.is_dir():
        raise UserError(
            f"data directory not found: {root}\n"
            "Point data.root at a folder of merged embedding files, e.g. "
            "`python train.py data.root=/path/to/data_merge`,\n"
            "or try the bundled demo data: `python train.py data=synthetic`."
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
        if not any(f.label == label for f in files):
            dirs = sorted({f.path.parent.name for f in files})
            raise UserError(
                f"no {name} files under {root}: a directory whose name contains "
                f"'{viral_dir_substring}' holds viral files (label 1), any other directory host "
                f"files (label 0); found only: {', '.join(dirs)}"
            )
    return files


def _warn_skipped(root: Path, file_glob: str, candidates: list[Path], read: list[Path]) -> None:
    """One warning for each kind of path that looks like a data file but is not read."""
    read_set = set(read)
    broken = [p for p in candidates if p.is_symlink() and not p.exists()]
    not_files = [p for p in candidates if p.exists() and not p.is_file()]
    loose, nested = [], []
    for p in sorted(root.rglob(file_glob)):  # does not descend into symlinked directories
        depth = len(p.relative_to(root).parts)
        if p in read_set or not p.is_file() or depth == 2:
            continue
        (loose if depth == 1 else nested).append(p)

    g = file_glob
    kinds = (
        (
            broken,
            "broken symbolic link",
            "broken symbolic links",
            "the file a link points to does not exist",
        ),
        (
            not_files,
            f"directory or other non-file matching {g}",
            f"directories or other non-files matching {g}",
            "only regular files can be read as data",
        ),
        (
            nested,
            f"file matching {g} in a sub-directory of a class directory",
            f"files matching {g} in sub-directories of class directories",
            "class directories are not searched recursively",
        ),
        (
            loose,
            f"file matching {g} directly in the data root",
            f"files matching {g} directly in the data root",
            "a file's class comes from the directory it is in",
        ),
    )
    for paths, singular, plural, why in kinds:
        if not paths:
            continue
        examples = []
        for p in paths[:3]:
            name = p.relative_to(root).as_posix()
            if p in broken:
                name += f" -> {os.readlink(p)}"
            elif p.is_dir():
                name += "/"
            examples.append(name)
        log.warning(
            "%s: skipped %d %s (%s%s): %s; only files at <data root>/<class dir>/%s are read",
            root,
            len(paths),
            singular if len(paths) == 1 else plural,
            "e.g. " if len(paths) > len(examples) else "",
            ", ".join(examples),
            why,
            file_glob,
        )


class _ShortRepr(reprlib.Repr):
    """reprlib with room for a short message; bounded in length and nesting for any value."""

    def __init__(self):
        super().__init__()
        self.maxlevel, self.maxstring, self.maxother = 3, 40, 40

    def repr_bytes(self, x, level):
        return repr(x[:20]) + ("..." if len(x) > 20 else "")

    repr_bytearray = repr_bytes


_SHORT_REPR = _ShortRepr()


def _short_repr(value: object, limit: int = 80) -> str:
    """A repr of any value found in a file, at most `limit` characters; never raises."""
    try:
        text = _SHORT_REPR.repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _torch_load(path: Path) -> object:
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)  # legacy format
    except pickle.UnpicklingError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        culprit = next((line for line in lines if "GLOBAL" in line), "")
        if not culprit:  # not an object that was refused: a pickle stream that is broken
            marker = next((i for i, x in enumerate(lines) if x.endswith("Unpickler error:")), -1)
            detail = (lines[marker + 1 :] or lines or [type(err).__name__])[0]
            raise UserError(
                f"{path}: cannot be read as a torch file (truncated or corrupt?): {detail:.200}"
            ) from None
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
        values = torch.unique(torch.as_tensor(labels)).tolist()
    except Exception:  # anything that is not numbers: strings, None, dicts, ragged lists ...
        values = []
    if len(values) != 1 or type(values[0]) not in (bool, int, float) or values[0] not in (0, 1):
        raise UserError(f"{path}: 'labels' must be [0] or [1], found {_short_repr(labels)}")
    return int(values[0])


def read_merged(source: SourceFile, width: int) -> MergedFile:
    """Load one merged file and check its structure, width and label against its directory."""
    path = source.path
    obj = _torch_load(path)
    if not isinstance(obj, dict) or "data" not in obj:
        if isinstance(obj, dict):
            keys = sorted(_short_repr(k, 40) for k in obj)
            more = f" and {len(keys) - 10} more keys" if len(keys) > 10 else ""
            found = f"[{', '.join(keys[:10])}]{more}"
        else:
            found = type(obj).__name__
        raise UserError(
            f"{path}: expected a dict with keys 'ids', 'data' (and 'labels'), found {found}"
        )
    data = obj["data"]
    if (
        not isinstance(data, torch.Tensor)
        or data.is_nested
        or data.layout != torch.strided
        or data.device.type != "cpu"
        or data.ndim != 2
        or data.dtype not in DATA_DTYPES
    ):
        raise UserError(
            f"{path}: 'data' must be a 2-D floating-point tensor (float32, float16, bfloat16 or "
            f"float64), found {_describe(data)}"
        )
    if data.requires_grad or type(data) is not torch.Tensor:  # a saved nn.Parameter, say
        data = data.detach()  # or the table built from it would carry an autograd graph
    held = data.untyped_storage().nbytes() // data.element_size()
    if data.numel() > held:  # a file of a few bytes could otherwise ask the table for terabytes
        rows, row_width = data.shape
        raise UserError(
            f"{path}: 'data' has {rows} rows of {row_width} numbers but the file holds only {held} "
            "numbers: its rows repeat one another in memory (saved from .expand()?); "
            "re-save it with data.contiguous()"
        )
    if data.shape[1] != width:
        raise UserError(
            f"{path}: rows are {data.shape[1]} numbers wide, expected {width} "
            "(data.dna_dim + data.protein_dim; ESM2-3B data needs data.protein_dim=2560)"
        )
    # The class comes from the directory; `labels` (absent from files made for prediction) is a
    # cross-check where present.
    label = _file_label(path, obj["labels"]) if "labels" in obj else source.label
    if label != source.label:
        raise UserError(
            f"{path}: its labels say {CLASS_NAMES[label]} ({label}) but its directory "
            f"'{path.parent.name}' says {CLASS_NAMES[source.label]} ({source.label}) "
            "(see data.viral_dir_substring)"
        )
    ids = obj.get("ids")
    if isinstance(ids, tuple):
        ids = list(ids)
    if isinstance(ids, list):
        bad = next((i for i, x in enumerate(ids) if not isinstance(x, str)), None)
        if bad is not None:
            raise UserError(
                f"{path}: 'ids' must be a list of strings, found {type(ids[bad]).__name__} at "
                f"position {bad} ({_short_repr(ids[bad])})"
            )
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


def _describe(data: object) -> str:
    """What a file's `data` is, for a message: '3-D torch.int64 tensor', 'list', ..."""
    if not isinstance(data, torch.Tensor):
        return type(data).__name__
    text = f"{data.ndim}-D {data.dtype} tensor"
    if data.is_nested:
        text = f"nested {text}"
    if data.layout != torch.strided:
        text += f" with layout {data.layout}"
    if data.device.type != "cpu":
        text += f" on device {data.device.type}"
    return text
