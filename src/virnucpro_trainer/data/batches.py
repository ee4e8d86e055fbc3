"""Batches: rows of the feature matrix, on the GPU, in host memory, or read under a memory budget.

The shuffle is a permutation from a CPU generator, so the order is the same on every device.
Training batches, and evaluation batches of scattered rows, are gathered by index
(`index_select`, or `pread` under a budget), never one sample at a time. An evaluation batch of
consecutive ascending rows whose first row is 64-byte aligned is read in place (`narrow`, no
copy; see `eval_batches`).

- GPU resident: when the training device is CUDA and the whole matrix fits in free GPU memory
  (keeping `gpu_margin_bytes` free), it is copied there once and batches are gathered on the GPU.
- Host: batches are gathered from the (possibly memory-mapped) matrix on the host; for CUDA they go
  through pinned memory with a non-blocking copy.
- Memory budget: when the matrix is memory-mapped from the feature store and larger than
  `memory_budget_bytes`, gathered rows are read from the store file with `pread` into a new
  tensor (or the reused evaluation buffer), so they map none of its pages: with the kernel's
  large page-cache folios, touching one mapped 8 KB row can map up to 2 MB, and a few thousand
  random rows map gigabytes. Only in-place evaluation batches map the store; those are counted
  in bytes (plus a large folio at each end), and the map is handed back to the kernel before the
  count would take this process past `memory_budget_bytes + OVERHEAD_BYTES`, and at the end of
  every evaluation pass. `resident_bytes()` is read only right after such a release, when none
  of the store is mapped: what it shows then is everything else (Python, torch, the model, ids).
- `block_rows`: the shuffle is block-wise (blocks of rows in random order, rows shuffled inside
  each block), so that reads from the store stay mostly sequential.
"""

from __future__ import annotations

import itertools
import logging
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

PAGE = os.sysconf("SC_PAGE_SIZE")
OVERHEAD_BYTES = 300 << 20  # the process besides the store: Python, torch, the model, the ids
FOLIO_BYTES = 2 << 20  # the largest page-cache folio a mapped read can map beyond its bytes


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def pread_into(fd: int, out: np.ndarray, offset: int) -> None:
    """Fill `out` (contiguous) with the bytes of file `fd` from `offset`."""
    view, done = memoryview(out).cast("B"), 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n == 0:
            raise OSError(f"the feature store file ends before byte {offset + len(view)}")
        done += n


@dataclass(frozen=True)
class Placement:
    """Where a BatchSource keeps the features and what memory it may use (see above); the
    default keeps them where they are, with no budget."""

    on_gpu: bool = False  # copy the features to a CUDA device once when they fit
    gpu_margin_bytes: int = 0  # GPU memory left free when they are copied there
    memory_budget_bytes: int | None = None  # for features mapped from a file
    block_rows: int | None = None  # a block-wise shuffle
    overhead_bytes: int = OVERHEAD_BYTES  # the process besides the store, added to the budget


class BatchSource:
    """Yields (features, labels) batches for given rows, ready on `device` as float32.

    A memory budget applies to features mapped from a file (`mapping` over the file `path`):
    the process then stays under `memory_budget_bytes + overhead_bytes` of resident memory.
    """

    def __init__(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        device: torch.device,
        placement: Placement = Placement(),
        *,
        mapping: mmap.mmap | None = None,
        path: Path | None = None,
    ):
        p = placement
        self.device = device
        self.features, self.labels = features, labels
        self.pin = device.type == "cuda"
        nbytes = features.numel() * features.element_size()
        self.gpu_resident = False
        if device.type == "cuda" and p.on_gpu:
            free, _ = torch.cuda.mem_get_info(device)
            if nbytes + p.gpu_margin_bytes <= free:
                self.features = features.to(device)
                self.labels = labels.to(device)
                self.gpu_resident, self.pin = True, False
            else:
                log.info("features (%.1f GB) do not fit in free GPU memory (%.1f GB) with "
                         "the margin: gathering batches on the host", nbytes / 1e9,
                         free / 1e9)  # fmt: skip
        over_budget = p.memory_budget_bytes is not None and nbytes > p.memory_budget_bytes
        budgeted = over_budget and mapping is not None and path is not None
        self.mapping = mapping if budgeted and not self.gpu_resident else None
        self.block_rows = p.block_rows  # honoured wherever the features are, budget or not
        self.fd = None
        if self.mapping is not None:
            self.rss_limit = p.memory_budget_bytes + p.overhead_bytes
            self.row_bytes = features.stride(0) * features.element_size()
            self.fd = os.open(path, os.O_RDONLY)
            if hasattr(os, "posix_fadvise"):  # not on macOS
                advice = os.POSIX_FADV_SEQUENTIAL if p.block_rows else os.POSIX_FADV_RANDOM
                os.posix_fadvise(self.fd, 0, 0, advice)
            self.release()
            log.info(
                "features (%.1f GB) exceed data.memory_budget_gb: reading them from the feature "
                "store file%s, resident memory held under %.2f GB (%.2f GB besides the store now)",
                nbytes / 1e9,
                " in shuffled blocks" if p.block_rows else "",
                self.rss_limit / 1e9,
                self.base / 1e9,
            )

    def __del__(self):
        if getattr(self, "fd", None) is not None:
            os.close(self.fd)

    @property
    def where(self) -> str:
        if self.gpu_resident:
            return "GPU memory"
        return "the feature store under a budget" if self.mapping is not None else "host memory"

    def release(self) -> None:
        """Under a budget, hand every mapped page of the store back to the kernel (they stay in
        the page cache) and measure what the process holds besides the store."""
        if self.mapping is None:
            return
        self.mapping.madvise(mmap.MADV_DONTNEED)
        self.base = resident_bytes()
        self.mapped = 0  # bytes of the store mapped since: in-place batches, each end's folio

    def _map_rows(self, nbytes: int) -> None:
        """Under a budget, before `nbytes` of the store are read in place: release first if the
        process could otherwise go past `rss_limit`."""
        if self.mapping is None:
            return
        nbytes += 2 * FOLIO_BYTES
        if self.mapped and self.base + self.mapped + nbytes > self.rss_limit:
            self.release()
        self.mapped += nbytes

    def _rows(self, idx: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """The feature rows `idx` as stored, copied into `out` (or a new tensor)."""
        if self.mapping is not None:
            return self._read_rows(idx, out)
        # index_select: half the per-batch cost of features[idx] for 32 rows on a CPU
        return torch.index_select(self.features, 0, idx, out=out)

    def _read_rows(self, idx: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """The rows `idx` of the store file, read with pread into `out` (or a new tensor):
        one read per run of consecutive rows, no page of the store mapped."""
        x = self.features.new_empty((len(idx), *self.features.shape[1:])) if out is None else out
        a, rows = x.numpy(), idx.numpy()
        bounds = [0, *(np.flatnonzero(np.diff(rows) != 1) + 1).tolist(), len(rows)]
        for start, stop in itertools.pairwise(bounds):
            pread_into(self.fd, a[start:stop], int(rows[start]) * self.row_bytes)
        return x

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pin:
            x, y = x.pin_memory(), y.pin_memory()
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        return x.float(), y

    def gather(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch: the rows `idx` (int64, on the features' device) of features and labels."""
        x, y = self._rows(idx), torch.index_select(self.labels, 0, idx)
        if self.gpu_resident:
            return x.float(), y
        return self._to_device(x, y)

    def order(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A seeded shuffle of `rows`: a full permutation, or block-wise under a budget."""
        if not self.block_rows:
            return rows[torch.randperm(len(rows), generator=generator)]
        blocks = torch.sort(rows).values.split(self.block_rows)
        shuffled = [blocks[i] for i in torch.randperm(len(blocks), generator=generator)]
        return torch.cat([b[torch.randperm(len(b), generator=generator)] for b in shuffled])

    def train_batches(
        self, rows: torch.Tensor, batch_size: int, generator: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled batches over `rows`; a last batch of one row is dropped (BatchNorm needs 2)."""
        order = self.order(rows, generator)
        if self.gpu_resident:  # one copy of the indices per epoch, not one per batch
            order = order.to(self.device)
        batches = order.split(batch_size)
        if len(batches) > 1 and len(batches[-1]) == 1:
            batches = batches[:-1]
        for idx in batches:
            yield self.gather(idx)

    def eval_batches(
        self, rows: torch.Tensor, batch_size: int, *, reuse_buffer: bool = False
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches over `rows` in order, read-only: the same values as `gather`.

        On the host, a batch of consecutive ascending rows is read in place (`narrow`, no copy)
        when its first row is 64-byte aligned, as a new tensor is (matrix products can round
        differently at other alignments). With `reuse_buffer` on a CPU device, the batches that
        need a copy or a float32 conversion are written into one buffer instead of a new 32 MB
        tensor each (whose fresh pages cost as much as the copy): each batch is then valid only
        until the next one is asked for. Under a budget, the map is released at the end.
        """
        if self.gpu_resident:
            rows = rows.to(self.device)
            for idx in rows.split(batch_size):
                yield self.gather(idx)
            return
        reuse = reuse_buffer and self.device.type == "cpu"
        raw = out = None  # reused buffers: rows as stored, rows as float32
        for idx in rows.split(batch_size):
            n = len(idx)
            x = None
            if n and int(idx[-1]) - int(idx[0]) == n - 1 and bool((idx.diff() == 1).all()):
                view = self.features.narrow(0, int(idx[0]), n)
                if view.data_ptr() % 64 == 0:
                    x, y = view, self.labels.narrow(0, int(idx[0]), n)
                    self._map_rows(n * view.stride(0) * view.element_size())
            if x is None:
                if reuse and raw is None:
                    rows_max = min(batch_size, len(rows))
                    raw = self.features.new_empty((rows_max, *self.features.shape[1:]))
                x = self._rows(idx, None if raw is None else raw[:n])
                y = torch.index_select(self.labels, 0, idx)
            if not reuse:
                yield self._to_device(x, y)
            elif x.dtype == torch.float32:
                yield x, y
            else:
                if out is None:
                    out = torch.empty((min(batch_size, len(rows)), *x.shape[1:]))
                yield out[:n].copy_(x), y
        self.release()
