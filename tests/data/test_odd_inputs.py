"""Odd inputs end to end, in this process: empty files, paths that look like data but are not read,
ids that are not strings, keys added with `+`, and sibling data sets that each get their own
split."""

from __future__ import annotations

import json
import logging
import re

import pytest

from virnucpro_trainer.errors import UserError

from helpers import HOST_DIR, VIRAL_DIR, make_dataset, train_in_process, write_merged

pytestmark = [
    pytest.mark.usefixtures("no_figures"),
    pytest.mark.slow,
]  # no test here looks at the report's PNGs

WIDTH = 2048
QUICK = ["epochs=1", "device=cpu"]


@pytest.fixture
def odd_data(tmp_path):
    """Four files a class, plus an empty file and four kinds of paths that are not read."""
    root = tmp_path / "data_merge"
    make_dataset(root, files_per_class=4, rows=30, width=WIDTH)
    empty = write_merged(root / VIRAL_DIR / "output_empty_merged.pt", 0, WIDTH, 1, ids=[])
    assert empty["data"].shape == (0, WIDTH)
    (root / HOST_DIR / "gone_merged.pt").symlink_to(tmp_path / "nowhere.pt")
    (root / HOST_DIR / "folder_merged.pt").mkdir()
    write_merged(root / HOST_DIR / "sub/nested_merged.pt", 5, WIDTH, 0)
    write_merged(root / "loose_merged.pt", 5, WIDTH, 0)
    return root


@pytest.mark.parametrize("cache", ["store", "no_store"])
def test_empty_files_and_unread_paths_are_named_and_left_out(tmp_path, odd_data, cache, caplog):
    args = [*QUICK, "data.root=data_merge"]
    if cache == "no_store":
        args.append("data.cache_dir=null")
    train_in_process(tmp_path, *args)  # no error
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for name in ("output_empty_merged.pt", "gone_merged.pt", "folder_merged.pt"):
        assert any(name in w for w in warnings), name
    assert any("nested_merged.pt" in w for w in warnings)
    assert any("loose_merged.pt" in w for w in warnings)
    (split_file,) = (tmp_path / "test_set/data_merge").glob("*/split.json")
    split = json.loads(split_file.read_text())
    assert "output_empty_merged.pt" not in json.dumps(split)
    assert -1 not in (split["train_labels"] + split["val_labels"] + split["test_labels"])
    assert len(split["file_rows"]) == 8


def test_ids_that_are_not_strings_name_the_file(tmp_path):
    root = tmp_path / "data_merge"
    make_dataset(root, files_per_class=4, rows=30, width=WIDTH)
    bad = root / VIRAL_DIR / "output_2_merged.pt"
    write_merged(bad, 30, WIDTH, 1, ids=list(range(30)))
    before = bad.read_bytes()
    # a UserError: train.py prints its message alone and exits with 1 (e2e/test_failures.py)
    with pytest.raises(UserError) as err:
        train_in_process(tmp_path, *QUICK, "data.root=data_merge")
    assert f"{bad}: 'ids' must be a list of strings" in str(err.value)
    assert bad.read_bytes() == before


def test_a_key_added_with_plus_that_is_no_setting_is_refused(tmp_path):
    with pytest.raises(UserError) as err:
        train_in_process(tmp_path, "data=synthetic", "+optimiser.lr=1")
    assert "optimiser is not a setting (did you mean optimizer?)" in str(err.value)
    assert not (tmp_path / "data").exists()  # stopped before any work


def test_sibling_data_sets_each_get_their_own_split(tmp_path):
    make_dataset(tmp_path / "x/data_v1", files_per_class=4, rows=30, width=WIDTH)
    make_dataset(tmp_path / "x/data_v2", files_per_class=5, rows=20, width=WIDTH)
    for version in ("data_v1", "data_v2"):
        train_in_process(tmp_path, *QUICK, f"data.root=x/{version}")
        (split_file,) = (tmp_path / "x/test_set" / version).glob("*/split.json")
        split = json.loads(split_file.read_text())
        assert split["data_root"] == str(tmp_path / "x" / version)
        for link in (split_file.parent / "viral").iterdir():
            assert link.resolve().is_relative_to(tmp_path / "x" / version)
    # data_v3 has data_v1's file names and row counts but other sequences: pointed at data_v1's
    # split, it is refused
    root = tmp_path / "x/data_v3"
    v1 = json.loads(next((tmp_path / "x/test_set/data_v1").glob("*/split.json")).read_text())
    for name, rows in v1["file_rows"].items():
        label = int(name.startswith(VIRAL_DIR))
        ids = [f"other_{name}_{i}" for i in range(rows)]
        write_merged(root / name, rows, WIDTH, label, ids=ids)
    expected = f"belongs to the data at {tmp_path / 'x/data_v1'}"
    with pytest.raises(UserError, match=re.escape(expected)):
        train_in_process(tmp_path, *QUICK, "data.root=x/data_v3", "split.dir=x/test_set/data_v1")
