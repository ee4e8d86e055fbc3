"""Batches: index gathers from the feature matrix, on the GPU, in host memory, or under a budget.

Every batch is one indexed gather (`features[idx]`), never one sample at a time. The shuffle is a
permutation from a CPU generator, so the order is the same on every device.

- GPU resident: when the training device is CUDA and the whole matrix fits in free GPU memory
  (keeping `gpu_margin_bytes` free), it is copied there once and batches are gathered on the GPU.
- Host: batches are gathered from the (possibly memory-mapped) matrix on the host; for CUDA they go
  through pinned memory with a non-blocking copy.
- Memory budget: when the matrix is memory-mapped and larger than `memory_budget_bytes`, mapped
  pages are handed back to the kernel whenever this process's resident memory grows more than the
  budget beyond what it was when the source was made (the Python, torch and model baseline).
- `block_rows`: the shuffle is block-wise (blocks of rows in random order, rows shuffled inside
  each block), so that reads from a memory map stay mostly sequential.
"""

from __future__ import annotations

import logging
import mmap
import os
from collections.abc import Iterator

import torch

log = logging.getLogger(__name__)

PAGE = os.sysconf("SC_PAGE_SIZE")
CHECK_EVERY = 64  # batches between resident-memory checks under a budget


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class BatchSource:
    """Yields (features, labels) batches for given rows, ready on `device` as float32."""

    def __init__(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        device: torch.device,
        *,
        mapping: mmap.mmap | None = None,
        on_gpu: bool = True,
        gpu_margin_bytes: int = 2 << 30,
        memory_budget_bytes: int | None = None,
        block_rows: int | None = None,
    ):
        self.device = device
        self.features, self.labels = features, labels
        self.pin = device.type == "cuda"
        nbytes = features.numel() * features.element_size()
        self.gpu_resident = False
        if device.type == "cuda" and on_gpu:
            free, _ = torch.cuda.mem_get_info(device)
            if nbytes + gpu_margin_bytes <= free:
                self.features = features.to(device)
                self.labels = labels.to(device)
                self.gpu_resident, self.pin = True, False
            else:
                log.info(
                    "features (%.1f GB) do not fit in free GPU memory (%.1f GB) with the "
                    "margin: gathering batches on the host",
                    nbytes / 1e9,
                    free / 1e9,
                )
        over_budget = memory_budget_bytes is not None and nbytes > memory_budget_bytes
        self.mapping = mapping if over_budget and not self.gpu_resident else None
        self.rss_limit = None
        if self.mapping is not None:
            self.rss_limit = resident_bytes() + memory_budget_bytes
        self.block_rows = block_rows  # honoured wherever the features are, budget or not
        if self.mapping is not None:
            log.info(
                "features (%.1f GB) exceed data.memory_budget_gb: reading them from the "
                "memory map%s",
                nbytes / 1e9,
                " in shuffled blocks" if block_rows else "",
            )
            advice = mmap.MADV_SEQUENTIAL if block_rows else mmap.MADV_RANDOM
            self.mapping.madvise(advice)
        self._batches = 0

    @property
    def where(self) -> str:
        if self.gpu_resident:
            return "GPU memory"
        return "memory map under a budget" if self.mapping is not None else "host memory"

    def _release_pages(self) -> None:
        """Under a budget, drop mapped pages from this process once it holds too many."""
        self._batches += 1
        if (
            self.mapping is not None
            and self._batches % CHECK_EVERY == 0
            and resident_bytes() > self.rss_limit
        ):
            self.mapping.madvise(mmap.MADV_DONTNEED)

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pin:
            x, y = x.pin_memory(), y.pin_memory()
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        return x.float(), y

    def gather(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch: the rows `idx` (int64, on the features' device) of features and labels."""
        # index_select: half the per-batch cost of features[idx] for 32 rows on a CPU
        x = torch.index_select(self.features, 0, idx)
        y = torch.index_select(self.labels, 0, idx)
        if self.gpu_resident:
            return x.float(), y
        self._release_pages()
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
        until the next one is asked for.
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
            if x is None:
                if reuse and raw is None:
                    rows_max = min(batch_size, len(rows))
                    raw = self.features.new_empty((rows_max, *self.features.shape[1:]))
                x = torch.index_select(self.features, 0, idx, out=None if raw is None else raw[:n])
                y = torch.index_select(self.labels, 0, idx)
            self._release_pages()
            if not reuse:
                yield self._to_device(x, y)
            elif x.dtype == torch.float32:
                yield x, y
            else:
                if out is None:
                    out = torch.empty((min(batch_size, len(rows)), *x.shape[1:]))
                yield out[:n].copy_(x), y
