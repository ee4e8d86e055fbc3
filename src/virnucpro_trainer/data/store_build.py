"""Building one feature-store entry (store.py decides when): every input file read and checked,
its rows converted to the storage dtype and appended to `features.bin` a few files at a time, with
the labels, ids and index beside them, all under a temporary name renamed when complete."""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from virnucpro_trainer.atomic import atomic_path
from virnucpro_trainer.data.files import UNLABELLED, SourceFile
from virnucpro_trainer.data.ids import check_unique_ids
from virnucpro_trainer.data.merged import MergedFile, read_merged
from virnucpro_trainer.data.table import check_finite
from virnucpro_trainer.errors import UserError

log = logging.getLogger(__name__)


def _stored_block(
    source: SourceFile, width: int, dtype: torch.dtype
) -> tuple[MergedFile, torch.Tensor]:
    """Read and check one file; its rows converted to the storage dtype."""
    f = read_merged(source, width)
    block = f.data.to(dtype).contiguous()
    check_finite(f, block)
    return f, block


def _write_rows(path: Path, sources: list[SourceFile], width: int, dtype, workers: int) -> dict:
    """Append every file's rows to `path`, a few files at a time; the index of what went where.

    Files without rows are left out (and listed, for a warning on every open).
    """
    files, ids, labels, empty, rows = [], [], [], [], 0
    step = max(1, workers)
    with path.open("wb") as out, ThreadPoolExecutor(step) as pool:
        for i in range(0, len(sources), step):
            for f, block in pool.map(
                lambda s: _stored_block(s, width, dtype), sources[i : i + step]
            ):
                if f.rows == 0:
                    empty.append(f.source.name)
                    continue
                out.write(memoryview(block.numpy()).cast("B"))
                files.append(
                    {
                        "name": f.source.name,
                        "label": f.source.label,
                        "start": rows,
                        "stop": rows + f.rows,
                    }
                )
                labels.append(np.full(f.rows, f.source.label, dtype=np.int8))
                ids.append(f.ids)
                rows += f.rows
            # let these files go before the next ones are read: otherwise the last block held
            # here and the next `step` blocks are in memory together
            f = block = None
        out.flush()
        os.fsync(out.fileno())  # the data is on disk before the entry can be seen
    if not files:
        raise UserError("none of the data files has any rows")
    return {"rows": rows, "files": files, "empty_files": empty, "ids": ids, "labels": labels}


def build_entry(
    entry: Path, sources: list[SourceFile], man: dict, data_root: Path, workers: int
) -> None:
    """Write the store file by file, so memory holds only a few input files at a time."""
    width, dtype = man["width"], getattr(torch, man["dtype"])
    start = time.perf_counter()
    with atomic_path(entry, folder=True) as tmp:
        done = _write_rows(tmp / "features.bin", sources, width, dtype, workers)
        # each file's ids were checked when it was read; across files, once here, at the build
        check_unique_ids([f["name"] for f in done["files"]], done["ids"])
        np.concatenate(done.pop("labels")).tofile(tmp / "labels.bin")
        (tmp / "ids.json").write_text(json.dumps(done.pop("ids")))
        index = {
            **done,
            "width": width,
            "dtype": man["dtype"],
            "data_root": str(data_root),
            "labelled": labelled(sources),
            "manifest": man,
            "ids_checked": True,  # the id rule (data/ids.py) held when the entry was built
        }
        (tmp / "index.json").write_text(json.dumps(index))
    log.info(
        "feature store built in %.1fs: %d rows x %d %s, %.2f GB at %s",
        time.perf_counter() - start,
        index["rows"],
        width,
        man["dtype"],
        (entry / "features.bin").stat().st_size / 1e9,
        entry,
    )


def labelled(sources: list[SourceFile]) -> bool:
    """Whether a store holds classes (training, labelled evaluation) or files to predict on."""
    return all(s.label != UNLABELLED for s in sources)
