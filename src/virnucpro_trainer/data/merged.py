"""Reading one merged embedding file with every check (files.py finds them).

A merged file is `torch.save` of {"ids": [str], "data": float tensor [n, width],
"labels": [0 or 1]}. Its class comes from its directory name and must agree with its `labels`
where it has them (files made for prediction do not).
Whatever a file holds, reading it either gives a checked MergedFile or raises a UserError that
names the file.
"""

from __future__ import annotations

import logging
import reprlib
from dataclasses import dataclass
from pathlib import Path

import torch

from virnucpro_trainer.data.files import CLASS_NAMES, UNLABELLED, SourceFile
from virnucpro_trainer.data.ids import check_id_text
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.torch_files import load_weights_only

log = logging.getLogger(__name__)

# What `data` may hold: everything else either cannot be copied into the float32 table (packed and
# sub-byte types) or is surely a mistake (integers, complex numbers, 8-bit floats).
DATA_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


@dataclass
class MergedFile:
    """A checked merged file. `data` is memory-mapped where the file format allows it."""

    source: SourceFile
    data: torch.Tensor
    ids: list[str] | None  # None when the ids cannot be matched to rows

    @property
    def rows(self) -> int:
        return self.data.shape[0]


_SHORT_REPR = reprlib.Repr()  # bounded in length and nesting, for any value found in a file
_SHORT_REPR.maxlevel, _SHORT_REPR.maxstring, _SHORT_REPR.maxother = 3, 40, 40


def _short_repr(value: object, limit: int = 80) -> str:
    """A repr of any value found in a file, at most `limit` characters; never raises."""
    try:
        text = _SHORT_REPR.repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# What a merged file holding other objects is, and what would load.
REFUSED = (
    "it holds Python objects other than tensors and plain types, and unpickling those could run "
    "code (torch.load with weights_only=True). Ask whoever made it to save only tensors, lists, "
    "dicts and strings."
)


def _file_label(path: Path, labels: object) -> int:
    try:
        values = torch.unique(torch.as_tensor(labels)).tolist()
    except Exception:  # anything that is not numbers: strings, None, dicts, ragged lists ...
        values = []
    if len(values) != 1 or type(values[0]) not in (bool, int, float) or values[0] not in (0, 1):
        raise UserError(f"{path}: 'labels' must be [0] or [1], found {_short_repr(labels)}")
    return int(values[0])


def read_merged(source: SourceFile, width: int) -> MergedFile:
    """Load one merged file and check its structure, width and label against its directory.

    A file to predict on (label UNLABELLED: no class directory) has its `labels` ignored.
    """
    path = source.path
    obj = load_weights_only(path, REFUSED)
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
    data = _checked_data(path, obj["data"], width)
    # The class comes from the directory; `labels` (absent from files made for prediction) is a
    # cross-check where present.
    has_labels = source.label != UNLABELLED and "labels" in obj
    label = _file_label(path, obj["labels"]) if has_labels else source.label
    if label != source.label:
        raise UserError(
            f"{path}: its labels say {CLASS_NAMES[label]} ({label}) but its directory "
            f"'{path.parent.name}' says {CLASS_NAMES[source.label]} ({source.label}) "
            "(see data.viral_dir_substring)"
        )
    return MergedFile(source, data, _checked_ids(path, obj.get("ids"), data.shape[0]))


def _checked_data(path: Path, data: object, width: int) -> torch.Tensor:
    """`data` if it is a dense 2-D float tensor `width` wide (detached); else a UserError."""
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
            f"{path}: rows are {data.shape[1]} numbers wide, expected {width} (training: "
            "data.dna_dim + data.protein_dim, and ESM2-3B data needs data.protein_dim=2560; "
            "evaluate.py: the checkpoint's width, so every file must be embedded like its data)"
        )
    return data


def _checked_ids(path: Path, ids: object, rows: int) -> list[str] | None:
    """The ids, one string per row; None (with a warning) when they cannot be matched to rows.
    Ids that are not strings, and ids of rows that break the id rule (data/ids.py), are a
    UserError."""
    if isinstance(ids, tuple):
        ids = list(ids)
    if isinstance(ids, list):
        bad = next((i for i, x in enumerate(ids) if not isinstance(x, str)), None)
        if bad is not None:
            raise UserError(
                f"{path}: 'ids' must be a list of strings, found {type(ids[bad]).__name__} at "
                f"position {bad} ({_short_repr(ids[bad])})"
            )
    if isinstance(ids, list) and len(ids) == rows:
        check_id_text(path, ids)
        return ids
    found = f"{len(ids)} ids" if isinstance(ids, list) else f"ids of type {type(ids).__name__}"
    log.warning(
        "%s: %s for %d rows; ids cannot be matched to rows, so rows are named <file>#<row> instead",
        path,
        found,
        rows,
    )
    return None


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
