"""The feature table: rows, labels and ids of the merged files in order, as one matrix."""

from __future__ import annotations

import math

import pytest
import torch

from virnucpro_trainer.data.table import build_table
from virnucpro_trainer.errors import UserError

from helpers import HOST_DIR, VIRAL_DIR, read_all, write_merged

WIDTH = 4


# build_table


@pytest.fixture
def three_files(tmp_path):
    """Files of 5, 3 and 4 rows; in sorted order: host/0 (5), viral/0 (3), viral/1 (4)."""
    saved = {
        f"{HOST_DIR}/output_0_merged.pt": write_merged(
            tmp_path / HOST_DIR / "output_0_merged.pt", 5, WIDTH, 0, seed=1
        ),
        f"{VIRAL_DIR}/output_0_merged.pt": write_merged(
            tmp_path / VIRAL_DIR / "output_0_merged.pt", 3, WIDTH, 1, seed=2
        ),
        f"{VIRAL_DIR}/output_1_merged.pt": write_merged(
            tmp_path / VIRAL_DIR / "output_1_merged.pt",
            4,
            WIDTH,
            1,
            seed=3,
            ids=["too", "many", "ids", "for", "four", "rows"],
        ),
    }
    return tmp_path, saved


@pytest.mark.parametrize("workers", [0, 3])
def test_build_table_rows_are_the_files_in_order(three_files, workers):
    root, saved = three_files
    table = build_table(read_all(root, WIDTH), workers=workers)

    assert table.names == list(saved)
    assert table.offsets.tolist() == [0, 5, 8, 12]
    assert table.features.dtype == torch.float32
    assert table.features.is_contiguous()
    expected = torch.cat([s["data"] for s in saved.values()])
    assert torch.equal(table.features, expected)
    assert table.labels.dtype == torch.int64
    assert table.labels.tolist() == [0] * 5 + [1] * 7


def test_build_table_converts_float64_to_float32(tmp_path):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    data = torch.randn(3, WIDTH, dtype=torch.float64)
    write_merged(path, 3, WIDTH, 1, data=data)
    write_merged(tmp_path / HOST_DIR / "output_0_merged.pt", 2, WIDTH, 0)
    table = build_table(read_all(tmp_path, WIDTH))
    assert table.features.dtype == torch.float32
    assert torch.equal(table.features[2:], data.float())


def test_rows_of_gives_exactly_the_files_rows_in_table_order(three_files):
    root, saved = three_files
    table = build_table(read_all(root, WIDTH))
    names = [f"{VIRAL_DIR}/output_1_merged.pt", f"{HOST_DIR}/output_0_merged.pt"]

    rows = table.rows_of(names)

    assert rows.dtype == torch.int64
    assert rows.tolist() == [0, 1, 2, 3, 4, 8, 9, 10, 11]
    expected = torch.cat([saved[names[1]]["data"], saved[names[0]]["data"]])
    assert torch.equal(table.features[rows], expected)
    assert table.rows_of([]).tolist() == []


def test_row_ids_use_file_ids_or_file_and_row(three_files):
    root, saved = three_files
    table = build_table(read_all(root, WIDTH))
    host_ids = saved[f"{HOST_DIR}/output_0_merged.pt"]["ids"]
    viral_ids = saved[f"{VIRAL_DIR}/output_0_merged.pt"]["ids"]

    ids = table.row_ids(torch.arange(12))

    assert ids[:8] == host_ids + viral_ids
    assert ids[8:] == [f"{VIRAL_DIR}/output_1_merged.pt#{i}" for i in range(4)]
    assert table.row_ids(torch.tensor([10, 0, 5])) == [
        f"{VIRAL_DIR}/output_1_merged.pt#2",
        host_ids[0],
        viral_ids[0],
    ]


@pytest.mark.parametrize("workers", [0, 2])
def test_build_table_rejects_nan_and_inf_with_count(tmp_path, workers):
    data = torch.randn(6, WIDTH)
    data[1, 0] = math.nan
    data[1, 2] = math.inf
    data[4, 3] = -math.inf
    bad = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    write_merged(bad, 6, WIDTH, 1, data=data)
    write_merged(tmp_path / HOST_DIR / "output_0_merged.pt", 2, WIDTH, 0)

    with pytest.raises(UserError) as err:
        build_table(read_all(tmp_path, WIDTH), workers=workers)

    message = str(err.value)
    assert str(bad) in message
    assert "3 NaN or infinite values in 2 of 6 rows" in message
    assert "[1, 4]" in message


def test_data_too_large_for_memory_points_at_the_feature_store(tmp_path):
    from virnucpro_trainer.data.files import SourceFile
    from virnucpro_trainer.data.merged import MergedFile

    huge = torch.zeros(1, 2048).expand(10**9, 2048)  # 8 TB as float32, and no memory at all
    files = [MergedFile(SourceFile(tmp_path / "f.pt", "v/f.pt", 1), huge, None)]
    with pytest.raises(UserError, match="8192.0 GB as float32\\) does not fit in memory"):
        build_table(files)
