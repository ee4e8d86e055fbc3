"""The memory budget: what batches under data.memory_budget_gb map of the feature store, measured
from /proc/self/smaps (a real run's peak, from the kernel: e2e/test_memory_budget.py)."""

from __future__ import annotations

import mmap

import pytest
import torch

from virnucpro_trainer.data.batches import FOLIO_BYTES, BatchSource, Placement
from virnucpro_trainer.data.files import find_files
from virnucpro_trainer.data.store import open_store

from helpers import make_dataset

WIDTH = 2048
CPU = torch.device("cpu")


def mapped_bytes(path) -> int:
    """Resident bytes of this process's mappings of `path` (Rss in /proc/self/smaps)."""
    total, ours = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            first = line.split(maxsplit=5)
            if "-" in first[0] and len(first) >= 5:  # a mapping's header line
                ours = len(first) == 6 and first[5].strip() == str(path)
            elif ours and first[0] == "Rss:":
                total += int(first[1]) * 1024
    return total


@pytest.fixture
def table(tmp_path):
    root = tmp_path / "data_merge"
    make_dataset(root, files_per_class=2, rows=1000, width=WIDTH)  # 4,000 rows, 32 MB
    sources = find_files(root, "*_merged.pt", "viral")
    return open_store(sources, root, tmp_path / "cache", WIDTH, "float32")


def budgeted(table, **kwargs) -> BatchSource:
    return BatchSource(
        table.features,
        table.labels,
        CPU,
        Placement(memory_budget_bytes=1, **kwargs),
        mapping=table.mapping,
        path=table.features_file,
    )


def test_gathered_rows_under_a_budget_map_no_page_of_the_store(table):
    source = budgeted(table)
    assert source.where == "the feature store under a budget"
    rows = torch.randperm(len(table.labels), generator=torch.Generator().manual_seed(0))
    source.release()
    batches = [source.gather(idx) for idx in rows.split(32)]
    assert mapped_bytes(table.features_file) == 0
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    assert torch.equal(x, table.features[rows]) and torch.equal(y, table.labels[rows])
    assert mapped_bytes(table.features_file) > 0  # reading the map does map its pages


@pytest.mark.parametrize("budget", [True, False])
def test_in_place_batches_under_a_budget_hold_one_batch_and_none_after(table, budget):
    # overhead 0, budget 1 byte: every in-place batch after the first needs a release first
    rows = torch.cat([torch.arange(0, 3000), torch.arange(3001, 4000, 3)])  # ranges, then not
    if budget:
        source = budgeted(table, overhead_bytes=0)
    else:
        source = BatchSource(table.features, table.labels, CPU)
    batch_bytes = 512 * WIDTH * 4
    table.mapping.madvise(mmap.MADV_DONTNEED)
    seen, values = [], []
    for x, _ in source.eval_batches(rows, 512, reuse_buffer=True):
        values.append(x.clone())
        seen.append(mapped_bytes(table.features_file))
    after = mapped_bytes(table.features_file)
    assert torch.equal(torch.cat(values), table.features[rows])
    if budget:
        assert max(seen) <= batch_bytes + 2 * FOLIO_BYTES
        assert after == 0
    else:  # the control: without a budget, every row read in place stays mapped
        assert after >= 3000 * WIDTH * 4
