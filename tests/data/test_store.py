"""The feature store: build, reuse, invalidation, float16 storage (concurrent builders and runs:
e2e/test_store.py)."""

from __future__ import annotations

import os
import shutil

import pytest
import torch

from virnucpro_trainer.data.batches import BatchSource, Placement
from virnucpro_trainer.data.files import UNLABELLED, find_files
from virnucpro_trainer.data.merged import read_merged
from virnucpro_trainer.data.store import open_store
from virnucpro_trainer.data.table import build_table
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.evaluate.inputs import unlabelled_sources

from helpers import VIRAL_DIR, make_dataset, write_merged

WIDTH = 12


@pytest.fixture
def data(tmp_path):
    root = tmp_path / "data_merge"
    make_dataset(root, files_per_class=3, rows=7, width=WIDTH)
    return root, tmp_path / "cache"


def store(root, cache, dtype="float32"):
    return open_store(find_files(root, "*_merged.pt", "viral"), root, cache, WIDTH, dtype)


def entries(cache):
    return sorted(p for p in cache.iterdir() if not p.name.startswith("."))


def in_ram(root):
    return build_table([read_merged(s, WIDTH) for s in find_files(root, "*_merged.pt", "viral")])


def test_store_holds_exactly_what_the_files_hold(data):
    root, cache = data
    table, expected = store(root, cache), in_ram(root)
    assert torch.equal(table.features, expected.features)
    assert torch.equal(table.labels, expected.labels)
    assert table.names == expected.names
    assert table.offsets.tolist() == expected.offsets.tolist()
    rows = torch.tensor([0, 8, 41])
    assert table.row_ids(rows) == expected.row_ids(rows)
    assert table.file_summary() == expected.file_summary()


def test_second_open_reuses_the_store(data, caplog):
    root, cache = data
    store(root, cache)
    (entry,) = entries(cache)
    stamp = (entry / "features.bin").stat().st_mtime_ns
    caplog.set_level("INFO")
    caplog.clear()  # the first build's message, where an earlier test left INFO on
    table = store(root, cache)
    assert "feature store built" not in caplog.text
    assert entries(cache) == [entry]
    assert (entry / "features.bin").stat().st_mtime_ns == stamp
    assert torch.equal(table.features, in_ram(root).features)


def test_changed_input_file_rebuilds_and_drops_the_old_store(data):
    root, cache = data
    store(root, cache)
    (old,) = entries(cache)
    changed = root / VIRAL_DIR / "output_1_merged.pt"
    write_merged(changed, 9, WIDTH, 1, seed=99)  # new content, size and mtime
    table = store(root, cache)
    (new,) = entries(cache)
    assert new != old
    assert torch.equal(table.features, in_ram(root).features)
    assert len(table.labels) == 6 * 7 + 2


def test_touched_input_file_invalidates_the_store(data):
    root, cache = data
    store(root, cache)
    (old,) = entries(cache)
    path = root / VIRAL_DIR / "output_0_merged.pt"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    store(root, cache)
    assert entries(cache) != [old]


def test_files_to_predict_on_get_their_own_store_beside_the_labelled_one(data):
    """evaluate.py labelled=false: every file at any depth, labelled -1, its `labels` ignored
    (here they disagree with no class directory at all); both stores of the root are kept."""
    root, cache = data
    labelled = store(root, cache)
    write_merged(root / "loose/deeper/extra_merged.pt", 3, WIDTH, 1, labels=[0, 1, 1])
    sources = unlabelled_sources(root, "*_merged.pt")
    table = open_store(sources, root, cache, WIDTH, "float32")
    assert len(entries(cache)) == 2 and table.names[0] == "loose/deeper/extra_merged.pt"
    assert set(table.labels.tolist()) == {UNLABELLED} and len(table.labels) == 6 * 7 + 3
    assert torch.equal(table.features[3:], labelled.features)
    store(root, cache)  # reopening the labelled one keeps the other
    assert len(entries(cache)) == 2


def test_float16_storage_halves_the_matrix(data):
    root, cache = data
    table32, table16 = store(root, cache), store(root, cache, "float16")
    assert table16.features.dtype == torch.float16
    assert torch.equal(table16.features, table32.features.half())
    sizes = sorted((e / "features.bin").stat().st_size for e in entries(cache))
    assert sizes[1] == 2 * sizes[0]


def test_float16_overflow_is_reported(tmp_path):
    root = tmp_path / "data_merge"
    make_dataset(root, files_per_class=3, rows=4, width=WIDTH)
    big = torch.ones(4, WIDTH)
    big[2, 3] = 1e6
    write_merged(root / VIRAL_DIR / "output_0_merged.pt", 4, WIDTH, 1, data=big)
    with pytest.raises(UserError, match="overflow"):
        store(root, tmp_path / "cache", "float16")


def test_bad_file_leaves_no_store_behind(data):
    root, cache = data
    bad = torch.zeros(7, WIDTH)
    bad[3, 0] = float("nan")
    write_merged(root / VIRAL_DIR / "output_2_merged.pt", 7, WIDTH, 1, data=bad)
    with pytest.raises(UserError, match="1 NaN or infinite values"):
        store(root, cache)
    assert entries(cache) == []
    assert not any(p.name.startswith(".") and "tmp" in p.name for p in cache.iterdir())


def test_budget_and_blocks_cover_every_training_row_once(data):
    root, cache = data
    table = store(root, cache)
    rows = torch.arange(2, 42)  # five blocks of 8
    source = BatchSource(
        table.features,
        table.labels,
        torch.device("cpu"),
        Placement(memory_budget_bytes=1, block_rows=8),
        mapping=table.mapping,
        path=table.features_file,
    )
    assert source.where == "the feature store under a budget"
    gen = torch.Generator().manual_seed(0)
    order = source.order(rows, gen)
    assert sorted(order.tolist()) == rows.tolist()
    # block-wise: each run of 8 consecutive positions holds one block of sorted rows
    blocks = [sorted(order[i : i + 8].tolist()) for i in range(0, len(order), 8)]
    assert all(b == list(range(b[0], b[0] + len(b))) for b in blocks)
    x = torch.cat([x for x, _ in source.train_batches(rows, 5, gen)])
    assert len(x) == len(rows)


def test_leftovers_of_a_killed_build_are_removed(data):
    root, cache = data
    store(root, cache)
    (entry,) = entries(cache)
    shutil.rmtree(entry)
    leftover = cache / f".{entry.name}.tmp-999999"
    leftover.mkdir()
    (leftover / "features.bin").write_bytes(b"partial")
    store(root, cache)
    assert not leftover.exists()
    assert entries(cache) == [entry]


def test_block_rows_apply_without_a_budget(data):
    root, cache = data
    table = store(root, cache)
    source = BatchSource(table.features, table.labels, torch.device("cpu"), Placement(block_rows=8))
    assert source.where == "host memory"
    order = source.order(torch.arange(0, 40), torch.Generator().manual_seed(0))
    blocks = [sorted(order[i : i + 8].tolist()) for i in range(0, 40, 8)]
    assert all(b == list(range(b[0], b[0] + 8)) for b in blocks)


def test_an_outdated_store_in_use_is_kept_until_nobody_holds_it(data, caplog):
    root, cache = data
    in_use = store(root, cache)  # holds its entry's lock, as a running job does
    (old,) = entries(cache)
    path = root / VIRAL_DIR / "output_0_merged.pt"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    caplog.set_level("INFO")
    store(root, cache)
    assert old in entries(cache) and "while a running job uses it" in caplog.text
    assert torch.equal(in_use.features, in_ram(root).features)
    in_use.lock.close()  # the job ends
    store(root, cache)
    assert old not in entries(cache) and len(entries(cache)) == 1
