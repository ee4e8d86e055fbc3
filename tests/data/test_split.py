"""The train/validation/test split: by whole files or by source record (group), saved once and
reused, refused when the data changed, and the leakage report."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from virnucpro_trainer.data.split import (
    SplitSettings,
    assign_units,
    load_or_make_split,
    split_folder,
)
from virnucpro_trainer.data.table import build_table
from virnucpro_trainer.errors import UserError

from helpers import HOST_DIR, VIRAL_DIR, genomes_across_files, make_dataset, read_all, write_merged

WIDTH = 4


# assign_units


def class_labels(per_class):
    labels = {f"{VIRAL_DIR}/output_{i}_merged.pt": 1 for i in range(per_class)}
    labels |= {f"{HOST_DIR}/output_{i}_merged.pt": 0 for i in range(per_class)}
    return labels


def test_assign_units_stratified_disjoint_and_complete():
    labels = class_labels(20)
    sides = assign_units(labels, test_fraction=0.2, val_fraction=0.1, seed=1)

    assert set(sides) == {"train", "val", "test"}
    all_names = [n for names in sides.values() for n in names]
    assert sorted(all_names) == sorted(labels)  # every file once: disjoint and complete
    for names in sides.values():
        assert {labels[n] for n in names} == {0, 1}
    counts = {side: sum(labels[n] for n in names) for side, names in sides.items()}
    assert counts == {"test": 4, "val": 2, "train": 14}  # viral files; host files the same
    assert {side: len(names) for side, names in sides.items()} == {
        "test": 8,
        "val": 4,
        "train": 28,
    }


def test_assign_units_deterministic_per_seed():
    labels = class_labels(20)
    first = assign_units(labels, 0.2, 0.1, seed=5)
    assert assign_units(dict(reversed(labels.items())), 0.2, 0.1, seed=5) == first
    assert assign_units(labels, 0.2, 0.1, seed=6)["test"] != first["test"]


def test_assign_units_minimum_of_three_per_class():
    sides = assign_units(class_labels(3), 0.1, 0.1, seed=0)
    assert all(len(names) == 2 for names in sides.values())
    with pytest.raises(UserError) as err:
        assign_units(class_labels(2), 0.1, 0.1, seed=0)
    assert "only 2" in str(err.value)
    assert "at least 3 per class" in str(err.value)


def test_assign_units_too_few_for_the_fractions():
    # 4 files: 3 for test, then at least 1 for validation leaves none to train on
    with pytest.raises(UserError, match="it needs 5"):
        assign_units(class_labels(4), test_fraction=0.75, val_fraction=0.1, seed=0)


# load_or_make_split


SETTINGS = {"unit": "file", "test_fraction": 0.25, "val_fraction": 0.25, "seed": 7}


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "data_merge"
    make_dataset(root, files_per_class=4, rows=5, width=WIDTH)
    return root, tmp_path / "test_set"


def split_of(root, split_dir, **changes):
    table = build_table(read_all(root, WIDTH))
    return load_or_make_split(
        table.file_summary(),
        root,
        split_dir,
        SplitSettings(**(SETTINGS | changes)),
        ids=table.ids_digests,
    )


def test_first_split_writes_document_and_test_file_links(dataset):
    root, split_dir = dataset
    split = split_of(root, split_dir)

    folder = split_folder(split_dir, **SETTINGS)
    assert split.path == folder / "split.json"
    doc = json.loads(split.path.read_text())
    for key in (
        "seed",
        "split_ratio",
        "train_files",
        "val_files",
        "test_files",
        "train_labels",
        "val_labels",
        "test_labels",
        "distribution",
        "timestamp",
        "hash",
    ):
        assert key in doc, key
    assert doc["seed"] == 7
    assert doc["split_ratio"] == 0.25
    assert doc == split.document
    for side in ("train", "val", "test"):
        assert split.files[side] == doc[f"{side}_files"]
        assert doc[f"{side}_labels"] == [int(n.startswith(VIRAL_DIR)) for n in doc[f"{side}_files"]]
    assert len(doc["test_files"]) == 2
    assert doc["distribution"]["test"]["sequences"] == 10

    links = {}
    for class_dir, label in (("viral", 1), ("non_viral", 0)):
        for link in (folder / class_dir).iterdir():
            assert link.is_symlink()
            links[link.resolve()] = label
    expected = {(root / n).resolve(): int(n.startswith(VIRAL_DIR)) for n in doc["test_files"]}
    assert links == expected
    assert [p.name for p in split_dir.iterdir()] == [folder.name]  # no temporary folder left


def test_second_call_loads_the_same_split(dataset):
    root, split_dir = dataset
    first = split_of(root, split_dir)
    written = first.path.read_bytes()

    second = split_of(root, split_dir)

    assert second.hash == first.hash
    assert second.files == first.files
    assert second.path == first.path
    assert first.path.read_bytes() == written  # loaded, not rewritten (same timestamp)


@pytest.mark.parametrize("change", [{"seed": 8}, {"test_fraction": 0.4}, {"val_fraction": 0.4}])
def test_other_settings_get_another_folder(dataset, change):
    root, split_dir = dataset
    first = split_of(root, split_dir)
    written = first.path.read_bytes()

    other = split_of(root, split_dir, **change)

    assert other.path.parent != first.path.parent
    assert other.path.parent.parent == split_dir
    assert first.path.read_bytes() == written
    assert other.hash != first.hash


def test_settings_differing_beyond_six_digits_do_not_share_a_split(dataset):
    root, split_dir = dataset
    first = split_of(root, split_dir)
    other = split_of(root, split_dir, test_fraction=0.2500001)
    assert other.path != first.path
    assert other.document["split_ratio"] == 0.2500001


def changed_data_message(root, split_dir) -> str:
    with pytest.raises(UserError) as err:
        split_of(root, split_dir)
    return str(err.value)


def test_added_file_is_reported(dataset):
    root, split_dir = dataset
    split_of(root, split_dir)
    write_merged(root / VIRAL_DIR / "output_9_merged.pt", 5, WIDTH, 1)
    message = changed_data_message(root, split_dir)
    assert "no longer matches" in message
    assert f"1 file(s) found that the split does not know: {VIRAL_DIR}/output_9_merged.pt" in (
        message
    )


def test_removed_file_is_reported(dataset):
    root, split_dir = dataset
    split = split_of(root, split_dir)
    gone = split.files["train"][0]
    (root / gone).unlink()
    message = changed_data_message(root, split_dir)
    assert f"1 file(s) in the split are gone: {gone}" in message


def test_changed_row_count_is_reported(dataset):
    root, split_dir = dataset
    split_of(root, split_dir)
    name = f"{HOST_DIR}/output_2_merged.pt"
    write_merged(root / name, 8, WIDTH, 0)
    message = changed_data_message(root, split_dir)
    assert f"{name}: split recorded label 0 and 5 rows, found label 0 and 8 rows" in message


def test_corrupt_split_file_names_its_path(dataset):
    root, split_dir = dataset
    split = split_of(root, split_dir)
    split.path.write_text(split.path.read_text()[:40])
    message = changed_data_message(root, split_dir)
    assert str(split.path) in message
    assert "unreadable or incomplete" in message


@pytest.mark.parametrize("damage", ["drop_distribution", "drop_file_rows_entry"])
def test_incomplete_split_file_is_a_user_error(dataset, damage):
    root, split_dir = dataset
    split = split_of(root, split_dir)
    doc = json.loads(split.path.read_text())
    if damage == "drop_distribution":
        del doc["distribution"]
    else:
        del doc["file_rows"][doc["train_files"][0]]
    split.path.write_text(json.dumps(doc))
    message = changed_data_message(root, split_dir)
    assert str(split.path) in message


def test_split_document_rows_match_files(dataset):
    root, split_dir = dataset
    doc = split_of(root, split_dir).document
    assert doc["file_rows"] == {n: 5 for n in sorted(doc["file_rows"])}
    assert len(doc["file_rows"]) == 8
    assert np.isclose(doc["distribution"]["train"]["viral_ratio"], 0.5)


def test_split_file_with_other_settings_is_refused(dataset):
    root, split_dir = dataset
    split = split_of(root, split_dir)
    doc = json.loads(split.path.read_text())
    doc["seed"] += 1
    split.path.write_text(json.dumps(doc))
    message = changed_data_message(root, split_dir)
    assert str(split.path) in message and "was made with" in message


def test_leakage_report_on_a_split_built_to_leak(tmp_path):
    root = tmp_path / "data_merge"
    make_dataset(root, files_per_class=4, rows=5, width=WIDTH)
    # every host file holds fragments of one genome, so whatever the split, it sits on all sides
    for i in range(4):
        ids = [f"NC_000001.1_chunk_{i}F{k + 1}" for k in range(5)]
        write_merged(root / HOST_DIR / f"output_{i}_merged.pt", 5, WIDTH, 0, ids=ids, seed=i)
    table = build_table(read_all(root, WIDTH))
    split = load_or_make_split(
        table.file_summary(),
        root,
        tmp_path / "test_set",
        SplitSettings(**SETTINGS),
        records=lambda: table.records(r"^(.+?)_chunk_\d+"),
    )
    report = split.document["leakage"]
    assert report["train_test"]["shared_records"] == 1
    assert report["train_test"]["examples"] == ["NC_000001.1"]
    assert report["train_test"]["test_rows_in_shared_records"] == 5  # the one host test file
    assert report["train_test"]["test_rows"] == 10
    assert report["train_val"]["shared_records"] == 1
    saved = json.loads(split.path.read_text())["leakage"]
    assert saved == report


def test_no_leakage_when_records_stay_in_their_files(tmp_path, caplog):
    root = tmp_path / "data_merge"
    for label, class_dir in ((1, VIRAL_DIR), (0, HOST_DIR)):
        for i in range(4):
            ids = [f"G{label}{i}.1_chunk_{k}F1" for k in range(5)]  # one genome per file
            write_merged(root / class_dir / f"output_{i}_merged.pt", 5, WIDTH, label, ids=ids)
    table = build_table(read_all(root, WIDTH))
    caplog.set_level("INFO")
    split = load_or_make_split(
        table.file_summary(),
        root,
        tmp_path / "test_set",
        SplitSettings(**SETTINGS),
        records=lambda: table.records(r"^(.+?)_chunk_\d+"),
    )
    assert split.document["leakage"]["train_test"]["shared_records"] == 0
    assert "train/test leakage: 0 source records" in caplog.text
    assert "WARNING" not in caplog.text


# split.unit=group


PATTERN = r"^(.+?)_chunk_\d+"
GROUP = {"unit": "group", "test_fraction": 0.2, "val_fraction": 0.25, "seed": 3}


def group_split(root, split_dir, table=None, **changes):
    table = table or build_table(read_all(root, WIDTH))
    settings = GROUP | {"record_pattern": PATTERN} | changes
    split = load_or_make_split(
        table.file_summary(),
        root,
        split_dir,
        SplitSettings(**settings),
        records=lambda: table.records(settings["record_pattern"]),
    )
    return split, table


def test_group_split_keeps_every_record_on_one_side(tmp_path):
    root = tmp_path / "data_merge"
    genomes_across_files(root, WIDTH)
    split, table = group_split(root, tmp_path / "test_set")

    rows = table.rows_of_records(split.records, PATTERN)
    all_rows = torch.cat(list(rows.values()))
    assert sorted(all_rows.tolist()) == list(range(len(table.labels)))  # each row exactly once
    ids = {side: table.row_ids(r) for side, r in rows.items()}
    records = {side: {i.split("_chunk_")[0] for i in side_ids} for side, side_ids in ids.items()}
    assert not records["train"] & records["test"]
    assert not records["train"] & records["val"]
    assert not records["val"] & records["test"]
    for side in ("train", "val", "test"):
        assert records[side] == set(split.records[side])
        assert set(table.labels[rows[side]].tolist()) == {0, 1}  # stratified: both classes
        assert len(split.files[side]) > 0
    # 6 genomes per class: 1 test, 1 validation, 4 train
    assert [len(split.records[s]) for s in ("train", "val", "test")] == [8, 2, 2]
    doc = split.document
    assert doc["distribution"]["test"]["viral_records"] == 1
    assert doc["distribution"]["test"]["sequences"] == len(rows["test"]) == 8
    assert doc["leakage"]["train_test"]["shared_records"] == 0
    assert doc["leakage"]["train_val"]["shared_records"] == 0
    assert doc["leakage"]["train_test"]["test_rows"] == 8
    assert not (split.path.parent / "viral").exists()  # no whole test files to link


def test_file_split_of_the_same_data_leaks_and_says_so(tmp_path, caplog):
    root = tmp_path / "data_merge"
    genomes_across_files(root, WIDTH)
    table = build_table(read_all(root, WIDTH))
    split = load_or_make_split(
        table.file_summary(),
        root,
        tmp_path / "test_set",
        SplitSettings("file", test_fraction=0.2, val_fraction=0.25, seed=3),
        records=lambda: table.records(PATTERN),
    )
    assert split.records is None
    assert split.document["leakage"]["train_test"]["shared_records"] > 0
    assert "WARNING" in caplog.text and "test scores may be optimistic" in caplog.text


def test_group_split_is_saved_reloaded_and_seeded(tmp_path):
    root = tmp_path / "data_merge"
    genomes_across_files(root, WIDTH)
    first, table = group_split(root, tmp_path / "test_set")
    written = first.path.read_bytes()
    again, _ = group_split(root, tmp_path / "test_set")
    assert again.records == first.records and again.hash == first.hash
    assert first.path.read_bytes() == written
    assert first.path.parent.name == "group-test0.2-val0.25-seed3"
    other, _ = group_split(root, tmp_path / "test_set", seed=4)
    assert other.records["test"] != first.records["test"]


def test_group_split_remembers_its_record_pattern(tmp_path):
    root = tmp_path / "data_merge"
    genomes_across_files(root, WIDTH)
    group_split(root, tmp_path / "test_set")
    with pytest.raises(UserError, match="was made with"):
        group_split(root, tmp_path / "test_set", record_pattern=r"^(.+?)_chunk_\d+F")
    # a split made with the old default pattern names the override that keeps using it
    with pytest.raises(UserError, match=r"to use it as it is: split.record_pattern='\^\(\.\+\?\)"):
        group_split(root, tmp_path / "test_set", record_pattern=r"^(.+)_chunk_\d+")


def test_group_split_needs_three_records_per_class(tmp_path):
    root = tmp_path / "data_merge"
    genomes_across_files(root, WIDTH, genomes=2)
    with pytest.raises(UserError) as err:
        group_split(root, tmp_path / "test_set")
    message = str(err.value)
    assert "only 2 non_viral source record(s)" in message and "split.record_pattern" in message


def test_changed_ids_under_a_group_split_are_reported(tmp_path):
    root = tmp_path / "data_merge"
    genomes_across_files(root, WIDTH)
    split, _ = group_split(root, tmp_path / "test_set")
    name = f"{VIRAL_DIR}/output_0_merged.pt"
    saved = torch.load(root / name)
    saved["ids"] = [i.replace("G1_", "X1_") for i in saved["ids"]]  # same rows, new records
    torch.save(saved, root / name)
    table = build_table(read_all(root, WIDTH))
    with pytest.raises(UserError) as err:
        table.rows_of_records(split.records, PATTERN)
    assert "source records that the split does not know" in str(err.value)
    assert "X1_" in str(err.value) and name in str(err.value)


def test_unmatched_ids_and_mixed_records_are_warned_about(tmp_path, caplog):
    root = tmp_path / "data_merge"
    genomes_across_files(root, WIDTH)
    write_merged(  # one genome also among the host files, and ids the pattern does not match
        root / HOST_DIR / "output_3_merged.pt",
        3,
        WIDTH,
        0,
        ids=["G1_0.1_chunk_9F1", "contig_a", "contig_b"],
    )
    caplog.set_level("INFO")
    split, table = group_split(root, tmp_path / "test_set")
    assert "2 of 51 sequence ids do not match split.record_pattern" in caplog.text
    assert "1 source records have both viral and host fragments (e.g. G1_0.1)" in caplog.text
    rows = table.rows_of_records(split.records, PATTERN)
    side = next(s for s, names in split.records.items() if "G1_0.1" in names)
    ids = table.row_ids(rows[side])
    assert sum(i.startswith("G1_0.1_") for i in ids) == 5  # all its fragments, both classes


def test_same_names_and_rows_with_other_sequence_ids_are_reported(dataset):
    root, split_dir = dataset
    split_of(root, split_dir)
    name = f"{VIRAL_DIR}/output_1_merged.pt"
    write_merged(root / name, 5, WIDTH, 1, ids=[f"other_{i}" for i in range(5)])
    message = changed_data_message(root, split_dir)
    assert "1 file(s) hold other sequence ids" in message and name in message


def test_a_split_is_used_for_moved_data_only_when_the_sequences_are_the_same(dataset, caplog):
    root, split_dir = dataset
    first = split_of(root, split_dir)
    moved = root.parent / "moved"
    shutil.copytree(root, moved)
    again = split_of(moved, split_dir)
    assert again.hash == first.hash and "has the same files, rows and sequence ids" in caplog.text
    write_merged(moved / f"{HOST_DIR}/output_0_merged.pt", 5, WIDTH, 0, ids=list("abcde"))
    with pytest.raises(UserError, match=f"belongs to the data at {root}, not to {moved}"):
        split_of(moved, split_dir)


def genomes_of_many_sizes(root, chunks=(60, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12)):
    """Per class, genomes of `chunks` fragments each, spread over 3 files; one genome holds
    about half of its class's rows."""
    for label, class_dir in ((1, VIRAL_DIR), (0, HOST_DIR)):
        ids = {i: [] for i in range(3)}
        for g, n in enumerate(chunks):
            for k in range(n):
                ids[(g + k) % 3].append(f"G{label}_{g}.1_chunk_{k}F1")
        for i, file_ids in ids.items():
            path = root / class_dir / f"output_{i}_merged.pt"
            write_merged(path, len(file_ids), WIDTH, label, ids=file_ids, seed=10 * label + i)


def test_group_split_aims_at_shares_of_rows_and_reports_them(tmp_path, caplog):
    root = tmp_path / "data_merge"
    genomes_of_many_sizes(root)
    caplog.set_level("INFO")
    split, table = group_split(root, tmp_path / "test_set")
    doc = json.loads(split.path.read_text())
    assert doc["group_method"] == "rows"
    rows = table.rows_of_records(split.records, PATTERN)
    for class_name, label in (("non_viral", 0), ("viral", 1)):
        report = doc["row_fractions"][class_name]
        assert report["rows"] == 127 and report["records"] == 12
        for side, requested in (("test", 0.2), ("val", 0.2), ("train", 0.6)):
            on_side = int((table.labels[rows[side]] == label).sum())
            assert report[side]["rows"] == on_side
            assert report[side]["requested"] == requested
            assert report[side]["achieved"] == round(on_side / 127, 6)
            assert abs(on_side / 127 - requested) <= 0.01  # the 60-row genome stays in train
        assert report["train"]["largest_record_rows"] == 60
    assert "group split, viral rows (127 in 12 records): train 59.84% (requested 60.00%" in (
        caplog.text
    )
    assert "WARNING" not in caplog.text


def test_group_split_warns_when_a_record_is_larger_than_a_side(tmp_path, caplog):
    root = tmp_path / "data_merge"
    genomes_of_many_sizes(root, chunks=(30, 20, 25, 22))  # no genome fits a fifth of the rows
    caplog.set_level("INFO")
    split, _ = group_split(root, tmp_path / "test_set")
    test = split.document["row_fractions"]["viral"]["test"]
    assert test["records"] == 1 and test["rows"] == 20 and test["achieved"] == 0.206186
    val = split.document["row_fractions"]["viral"]["val"]
    assert val["rows"] == 22 and val["achieved"] == 0.226804
    assert (
        "group split: the val side holds 22.68% of the viral rows, not the requested 20.00% "
        "(22 of 97 rows in 1 of 4 records; the largest on this side has 22 rows"
    ) in caplog.text


def test_a_group_split_made_by_record_count_is_loaded_as_it_is(tmp_path, caplog):
    root = tmp_path / "data_merge"
    genomes_of_many_sizes(root)
    split_dir = tmp_path / "test_set"
    first, _ = group_split(root, split_dir)
    old = json.loads(first.path.read_text())  # as the record-count split wrote it: no row report
    del old["group_method"], old["row_fractions"]
    old["test_records"], old["train_records"] = old["train_records"], old["test_records"]
    first.path.write_text(json.dumps(old))
    caplog.set_level("INFO")
    again, _ = group_split(root, split_dir)
    assert again.records["test"] == old["test_records"] and again.hash == old["hash"]
    assert "made before group splits aimed at shares of rows" in caplog.text
    assert str(first.path.parent) in caplog.text
