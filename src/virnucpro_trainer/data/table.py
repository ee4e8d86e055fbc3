"""The feature table: every row of every file in one contiguous matrix, with labels and ids.

The matrix lives in RAM or is memory-mapped from the feature store (`store.py`). Batches are
gathered from it by row index (`features[rows]`), never one sample at a time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import torch

from virnucpro_trainer.data.ids import check_unique_ids
from virnucpro_trainer.data.merged import MergedFile
from virnucpro_trainer.data.records import records_of
from virnucpro_trainer.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class FeatureTable:
    features: torch.Tensor  # [n_rows, width] float32 or float16, contiguous
    labels: torch.Tensor  # [n_rows] int64
    names: list[str]  # file names relative to the data root, in row order
    offsets: np.ndarray  # [n_files + 1]: file i holds rows offsets[i]:offsets[i + 1]
    ids: list[list[str] | None] | None  # per file; None: read from ids_file when first needed
    ids_file: Path | None = None
    mapping: mmap.mmap | None = None  # the memory map behind `features`, if any
    features_file: Path | None = None  # the file mapped, for reads that map nothing
    lock: IO | None = None  # the feature store's shared lock, held while the table is in use
    _records: dict = field(default_factory=dict, repr=False)  # pattern -> records(pattern)

    def file_summary(self) -> dict[str, tuple[int, int]]:
        """{file name: (label, rows)}, what the split is made from and checked against."""
        return {
            name: (int(self.labels[start]) if stop > start else -1, int(stop - start))
            for name, start, stop in zip(
                self.names, self.offsets[:-1], self.offsets[1:], strict=True
            )
        }

    def file_ids(self) -> list[list[str] | None]:
        """Each file's sequence ids (None where they cannot be matched to its rows), read from
        the feature store's ids.json when first needed."""
        if self.ids is None:
            self.ids = json.loads(self.ids_file.read_text())
        return self.ids

    def ids_digests(self) -> dict[str, str]:
        """{file name: a hash of its sequence ids}: which sequences a file holds, to tell the
        same data (moved, or re-embedded) from other data under the same file names."""
        self.file_ids()
        return {
            name: hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16]
            for name, ids in zip(self.names, self.ids, strict=True)
        }

    def rows_of(self, names: list[str]) -> torch.Tensor:
        """Row indices (int64) of the given files, in table order."""
        position = {name: i for i, name in enumerate(self.names)}
        index = sorted(position[name] for name in names)
        ranges = [np.arange(self.offsets[i], self.offsets[i + 1]) for i in index]
        return torch.from_numpy(np.concatenate(ranges) if ranges else np.empty(0, np.int64))

    def records(self, pattern: str) -> dict[str, list[str]]:
        """{file name: the source record of each of its rows}, from the ids (data/records.py)."""
        if pattern in self._records:
            return self._records[pattern]
        self.file_ids()
        out, unmatched, n = {}, [], 0
        for name, ids, start, stop in zip(
            self.names, self.ids, self.offsets[:-1], self.offsets[1:], strict=True
        ):
            ids = ids if ids is not None else [f"{name}#{i}" for i in range(stop - start)]
            out[name], missed = records_of(ids, pattern)
            unmatched += missed[:3]
            n += len(missed)
        if n:
            log.warning(
                "%d of %d sequence ids do not match split.record_pattern %r (e.g. %s); each of "
                "those rows counts as a source record of its own",
                n,
                len(self.labels),
                pattern,
                ", ".join(unmatched[:3]),
            )
        self._records[pattern] = out
        return out

    def rows_of_records(
        self, side_records: dict[str, list[str]], pattern: str
    ) -> dict[str, torch.Tensor]:
        """Row indices (int64, table order) of each side's source records (a group split)."""
        side_of = {r: i for i, names in enumerate(side_records.values()) for r in names}
        records = self.records(pattern)
        codes = np.fromiter(
            (side_of.get(r, -1) for name in self.names for r in records[name]),
            np.int64,
            len(self.labels),
        )
        unknown = np.flatnonzero(codes < 0)
        if len(unknown):
            rows = torch.from_numpy(unknown[:5])
            where = zip(self.row_ids(rows), self.row_files(rows), strict=True)
            examples = [f"{i} in {f}" for i, f in where]
            raise UserError(
                f"{len(unknown)} rows belong to source records that the split does not know "
                f"(e.g. {', '.join(examples)}): the ids changed since the split was made; move "
                "or delete the split folder to split afresh"
            )
        return {
            side: torch.from_numpy(np.flatnonzero(codes == i))
            for i, side in enumerate(side_records)
        }

    def row_files(self, rows: torch.Tensor) -> list[str]:
        """The file (relative to the data root) that each row comes from."""
        file_of = np.searchsorted(self.offsets, rows.numpy(), side="right") - 1
        return [self.names[f] for f in file_of.tolist()]

    def row_ids(self, rows: torch.Tensor) -> list[str]:
        """The sequence id of each row (`<file>#<row>` where the file's ids were unusable)."""
        self.file_ids()
        file_of = np.searchsorted(self.offsets, rows.numpy(), side="right") - 1
        out = []
        for row, f in zip(rows.tolist(), file_of.tolist(), strict=True):
            ids, local = self.ids[f], row - self.offsets[f]
            out.append(ids[local] if ids is not None else f"{self.names[f]}#{local}")
        return out


def check_finite(f: MergedFile, block: torch.Tensor) -> None:
    """Reject NaN or infinite values in `block`, the rows of `f` as stored."""
    if block.numel() == 0:
        return
    low, high = torch.aminmax(block)  # NaN and inf reach these; no block-sized temporaries
    if not (torch.isfinite(low) and torch.isfinite(high)):
        bad = ~torch.isfinite(block)
        bad_rows = bad.any(dim=1).nonzero().flatten()
        overflow = ""
        if block.dtype == torch.float16 and torch.isfinite(f.data[bad_rows]).all():
            overflow = " after conversion to float16 (values beyond +-65504 overflow it)"
        raise UserError(
            f"{f.source.path}: {int(bad.sum())} NaN or infinite values{overflow} in "
            f"{len(bad_rows)} of {f.rows} rows (first rows: {bad_rows[:5].tolist()}); "
            "fix or drop those rows upstream"
        )


def _fill(features: torch.Tensor, labels: torch.Tensor, f: MergedFile, start: int, stop: int):
    block = features[start:stop]
    block.copy_(f.data)  # reads the file's pages when it is memory-mapped
    check_finite(f, block)
    labels[start:stop] = f.source.label


def fill_rows(
    files: list[MergedFile], features: torch.Tensor, labels: torch.Tensor, workers: int = 0
) -> None:
    """Copy every file's rows, in order, into `features` and its label into `labels`.

    Rejects NaN or infinite values. `workers` threads read files at once (torch copies release
    the GIL); 0 reads one at a time.
    """
    offsets = np.cumsum([0] + [f.rows for f in files]).tolist()
    jobs = list(zip(files, offsets[:-1], offsets[1:], strict=True))
    with ThreadPoolExecutor(max(1, workers)) as pool:
        list(pool.map(lambda job: _fill(features, labels, *job), jobs))


def warn_empty(names: list[str]) -> None:
    """Files with no rows are left out of the table, and so of the split: say which."""
    if names:
        log.warning(
            "%d file(s) have no rows and are left out (not in the split either): %s",
            len(names),
            ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else ""),
        )


def build_table(files: list[MergedFile], workers: int = 0) -> FeatureTable:
    """Read every file's rows into one float32 matrix in RAM (the store-less path).

    Files without rows are left out, with a warning.
    """
    warn_empty([f.source.name for f in files if f.rows == 0])
    files = [f for f in files if f.rows > 0]
    if not files:
        raise UserError("none of the data files has any rows")
    offsets = np.cumsum([0] + [f.rows for f in files]).astype(np.int64)
    shape = (int(offsets[-1]), files[0].data.shape[1])
    try:
        features = torch.empty(shape, dtype=torch.float32)
    except RuntimeError:  # the allocator's "can't allocate memory"
        raise UserError(
            f"the data ({shape[0]} rows x {shape[1]} numbers, {4 * shape[0] * shape[1] / 1e9:.1f} "
            "GB as float32) does not fit in memory: use the feature store (data.cache_dir, on by "
            "default) with data.memory_budget_gb, or data.storage_dtype=float16"
        ) from None
    check_unique_ids([f.source.name for f in files], [f.ids for f in files])  # text: on reading
    labels = torch.empty(int(offsets[-1]), dtype=torch.int64)
    fill_rows(files, features, labels, workers)
    return FeatureTable(
        features, labels, [f.source.name for f in files], offsets, [f.ids for f in files]
    )
