"""The feature store: all merged files packed once into one memory-mapped matrix on disk.

The first run reads and checks every `.pt` file and writes `<cache_dir>/<key>/`:
`features.bin` (raw [rows, width] float32 or float16), `labels.bin` (int8), `index.json` (files,
row ranges, manifest) and `ids.json`. The key hashes a manifest of the inputs (names, sizes,
modification times, width, storage dtype), so a changed file means a new entry. Later runs, and
every job of a multirun, map the entry instead of reading the `.pt` files again. Builders hold a
lock and write under a temporary name, then rename, so concurrent jobs never see or make a
half-built store.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import mmap
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from virnucpro_trainer.data.merged import SourceFile, read_merged
from virnucpro_trainer.data.table import FeatureTable, fill_rows
from virnucpro_trainer.errors import UserError

log = logging.getLogger(__name__)

STORE_VERSION = 1
DTYPES = {"float32": np.float32, "float16": np.float16}


def manifest(sources: list[SourceFile], width: int, dtype: str) -> dict:
    """What the store depends on: every input file's name, class, size and mtime, and the layout."""
    files = []
    for s in sources:
        st = s.path.stat()
        files.append([s.name, s.label, st.st_size, st.st_mtime_ns])
    return {"version": STORE_VERSION, "width": width, "dtype": dtype, "files": files}


def store_key(man: dict) -> str:
    return hashlib.sha256(json.dumps(man, sort_keys=True).encode()).hexdigest()[:20]


@contextmanager
def _locked(path: Path):
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _map(path: Path, dtype, shape: tuple[int, ...]) -> tuple[torch.Tensor, mmap.mmap | None]:
    """A tensor over the file's pages (copy-on-write, never written back), and its mapping."""
    count = int(np.prod(shape))
    if count == 0:
        return torch.from_numpy(np.empty(shape, dtype)), None
    with path.open("rb") as f:
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    array = np.frombuffer(mapping, dtype=dtype, count=count).reshape(shape)
    return torch.from_numpy(array), mapping


def _open(entry: Path) -> FeatureTable:
    index = json.loads((entry / "index.json").read_text())
    rows, width, dtype = index["rows"], index["width"], DTYPES[index["dtype"]]
    features, mapping = _map(entry / "features.bin", dtype, (rows, width))
    labels = torch.from_numpy(np.fromfile(entry / "labels.bin", dtype=np.int8).astype(np.int64))
    names = [f["name"] for f in index["files"]]
    offsets = np.array([0] + [f["stop"] for f in index["files"]], dtype=np.int64)
    return FeatureTable(features, labels, names, offsets, None, entry / "ids.json", mapping)


def _build(
    entry: Path, sources: list[SourceFile], man: dict, data_root: Path, workers: int
) -> None:
    width, dtype = man["width"], DTYPES[man["dtype"]]
    start = time.perf_counter()
    merged = [read_merged(s, width) for s in sources]
    rows = sum(f.rows for f in merged)
    tmp = entry.with_name(f".{entry.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        features = np.memmap(
            tmp / "features.bin", dtype=dtype, mode="w+", shape=(max(rows, 1), width)
        )
        labels = np.zeros(rows, dtype=np.int8)
        fill_rows(merged, torch.from_numpy(features[:rows]), torch.from_numpy(labels), workers)
        features.flush()
        del features
        labels.tofile(tmp / "labels.bin")
        offsets = np.cumsum([0] + [f.rows for f in merged]).tolist()
        files = [
            {"name": f.source.name, "label": f.source.label, "start": a, "stop": b}
            for f, a, b in zip(merged, offsets[:-1], offsets[1:], strict=True)
        ]
        (tmp / "ids.json").write_text(json.dumps([f.ids for f in merged]))
        index = {
            "rows": rows,
            "width": width,
            "dtype": man["dtype"],
            "files": files,
            "data_root": str(data_root),
            "manifest": man,
        }
        (tmp / "index.json").write_text(json.dumps(index))
        tmp.rename(entry)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info(
        "feature store built in %.1fs: %d rows x %d %s, %.2f GB at %s",
        time.perf_counter() - start,
        rows,
        width,
        man["dtype"],
        (entry / "features.bin").stat().st_size / 1e9,
        entry,
    )


def _remove_stale(cache_dir: Path, keep: Path, data_root: Path, dtype: str) -> None:
    """Delete older entries built from the same data root and dtype: their inputs have changed."""
    for entry in cache_dir.iterdir():
        index_path = entry / "index.json"
        if entry == keep or not index_path.is_file():
            continue
        try:
            index = json.loads(index_path.read_text())
        except (OSError, ValueError):
            continue
        if index.get("data_root") == str(data_root) and index.get("dtype") == dtype:
            log.info("removing the outdated feature store %s", entry)
            shutil.rmtree(entry, ignore_errors=True)


def open_store(
    sources: list[SourceFile],
    data_root: Path,
    cache_dir: Path,
    width: int,
    dtype: str,
    workers: int = 0,
) -> FeatureTable:
    """Map the store for these input files, building it first if there is none yet."""
    man = manifest(sources, width, dtype)
    entry = cache_dir / store_key(man)
    if not (entry / "index.json").is_file():
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(
                f"cannot create the feature cache {cache_dir}: {err}; set data.cache_dir to a "
                "writable folder (or data.cache_dir=null to read the .pt files on every run)"
            ) from None
        with _locked(cache_dir / f".{entry.name}.lock"):
            if not (entry / "index.json").is_file():  # nobody built it while we waited
                _build(entry, sources, man, data_root, workers)
                _remove_stale(cache_dir, entry, data_root, dtype)
    else:
        log.info("feature store: %s", entry)
    return _open(entry)
