"""Writing results atomically: readers see the old file or folder, or the whole new one, never a
part. Everything a run, the store or the split writes for others to read goes through here."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: Path, folder: bool = False) -> Iterator[Path]:
    """A temporary path beside `path` (an empty folder if `folder`) to write into; renamed over
    `path` when the block ends, removed if it raises.

    A folder cannot replace a non-empty one: the rename then raises OSError, for the caller to
    decide (another process may have written the same thing first).
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    _remove(tmp)
    if folder:
        tmp.mkdir(parents=True)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def write_lines(path: Path, lines: Iterable[str]) -> None:
    """Write `lines` as they come: from a generator, no file's whole text is ever in memory (a
    million rows' lines would take about as much as the data budget of a large run)."""
    with atomic_path(path) as tmp, tmp.open("w") as f:
        f.writelines(line + "\n" for line in lines)


def _json_safe(obj):
    """NaN and infinities as null (JSON has no such numbers), numpy scalars as Python numbers."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):  # numpy or torch scalar
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: Path, obj: dict) -> None:
    """Every JSON result file: valid JSON for any parser (an undefined metric is null, never a
    bare NaN token), indented, written atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json_text(obj))


def json_text(obj: dict) -> str:
    """The text write_json writes, for files written inside an atomic folder."""
    return json.dumps(_json_safe(obj), indent=2, allow_nan=False) + "\n"
