"""The feature store: all merged files packed once into one memory-mapped matrix on disk.

The first run reads and checks every `.pt` file and writes `<cache_dir>/<key>/`:
`features.bin` (raw [rows, width] float32 or float16), `labels.bin` (int8), `index.json` (files,
row ranges, manifest) and `ids.json`. The key hashes a manifest of the inputs (names, sizes,
modification times, width, storage dtype), so a changed file means a new entry. Later runs, and
every job of a multirun, map the entry instead of reading the `.pt` files again. Builders hold a
lock and write under a temporary name, then rename, so concurrent jobs never see or make a
half-built store.

Every run holds a shared lock on its entry's lock file (`.<key>.lock`) until it exits. Entries
whose inputs have changed are deleted only when nobody holds them: each time a store is opened,
outdated ones from the same data root are removed unless a running job still uses them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import mmap
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
import torch

from virnucpro_trainer.data.files import SourceFile
from virnucpro_trainer.data.ids import check_table_ids
from virnucpro_trainer.data.store_build import build_entry, labelled
from virnucpro_trainer.data.table import FeatureTable, warn_empty
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


def _lock_file(cache_dir: Path, entry_name: str) -> Path:
    return cache_dir / f".{entry_name}.lock"


def _hold(path: Path) -> IO:
    """A shared lock on `path`, held until the returned file is closed (or the process ends)."""
    handle = path.open("a")
    fcntl.flock(handle, fcntl.LOCK_SH)
    return handle


def _map(path: Path, dtype, shape: tuple[int, ...]) -> tuple[torch.Tensor, mmap.mmap | None]:
    """A tensor over the file's pages (copy-on-write, never written back), and its mapping."""
    count = int(np.prod(shape))
    if count == 0:
        return torch.from_numpy(np.empty(shape, dtype)), None
    with path.open("rb") as f:
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    array = np.frombuffer(mapping, dtype=dtype, count=count).reshape(shape)
    return torch.from_numpy(array), mapping


def _open(entry: Path, lock: IO) -> FeatureTable:
    index = json.loads((entry / "index.json").read_text())
    warn_empty(index.get("empty_files", []))
    rows, width, dtype = index["rows"], index["width"], DTYPES[index["dtype"]]
    features, mapping = _map(entry / "features.bin", dtype, (rows, width))
    labels = torch.from_numpy(np.fromfile(entry / "labels.bin", dtype=np.int8).astype(np.int64))
    names = [f["name"] for f in index["files"]]
    offsets = np.array([0] + [f["stop"] for f in index["files"]], dtype=np.int64)
    table = FeatureTable(features, labels, names, offsets, None, entry / "ids.json", mapping)
    table.features_file = entry / "features.bin"
    table.lock = lock
    if not index.get("ids_checked"):  # an entry built before the id rule: check it once per open
        try:
            check_table_ids(names, table.file_ids())
        except UserError:
            lock.close()
            raise
    return table


def _remove_stale(cache_dir: Path, keep: Path, data_root: Path, dtype: str, kind: bool) -> None:
    """Delete older entries built from the same data root, dtype and kind (labelled or not: their
    inputs have changed) that no running job holds; those in use are left for a later run."""
    for entry in cache_dir.iterdir():
        index_path = entry / "index.json"
        if entry == keep or not index_path.is_file():
            continue
        try:
            index = json.loads(index_path.read_text())
        except (OSError, ValueError):
            continue
        same = (index.get("data_root"), index.get("dtype"), index.get("labelled", True))
        if same != (str(data_root), dtype, kind):
            continue
        with _lock_file(cache_dir, entry.name).open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("keeping the outdated feature store %s while a running job uses it", entry)
                continue
            log.info("removing the outdated feature store %s", entry)
            shutil.rmtree(entry, ignore_errors=True)


def find_store(
    sources: list[SourceFile], cache_dir: Path, width: int, dtype: str
) -> FeatureTable | None:
    """The store of exactly these input files if one is built already, mapped under its shared
    lock; None otherwise. Builds, removes and creates nothing (evaluate.py writes only into its
    own directory)."""
    entry = cache_dir / store_key(manifest(sources, width, dtype))
    lock_path = _lock_file(cache_dir, entry.name)
    if not (entry / "index.json").is_file() or not lock_path.is_file():
        return None
    lock = _hold(lock_path)
    if not (entry / "index.json").is_file():  # removed before we held it
        lock.close()
        return None
    log.info("feature store: %s", entry)
    return _open(entry, lock)


def open_store(
    sources: list[SourceFile],
    data_root: Path,
    cache_dir: Path,
    width: int,
    dtype: str,
    workers: int = 0,
) -> FeatureTable:
    """Map the store for these input files, building it first if there is none yet.

    The returned table holds the entry's shared lock (`table.lock`) so no other run deletes it.
    """
    man = manifest(sources, width, dtype)
    entry = cache_dir / store_key(man)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(
            f"cannot create the feature cache {cache_dir}: {err}; set data.cache_dir to a "
            "writable folder (or data.cache_dir=null to read the .pt files on every run)"
        ) from None
    lock_path = _lock_file(cache_dir, entry.name)
    while True:
        if not (entry / "index.json").is_file():
            with _locked(lock_path):
                if not (entry / "index.json").is_file():  # nobody built it while we waited
                    for stale in cache_dir.glob(f".{entry.name}.tmp-*"):  # a killed build's
                        shutil.rmtree(stale, ignore_errors=True)
                    build_entry(entry, sources, man, data_root, workers)
        else:
            log.info("feature store: %s", entry)
        lock = _hold(lock_path)
        # Another run, whose files differ from ours, may have removed the entry between the
        # build and the lock; now that we hold it, nobody can.
        if (entry / "index.json").is_file():
            break
        lock.close()
    _remove_stale(cache_dir, entry, data_root, dtype, labelled(sources))
    return _open(entry, lock)
