"""Finding merged files under the data root and reading each one with every check."""

from __future__ import annotations

import logging
import os
import pickle

import pytest
import torch

from virnucpro_trainer.data.merged import SourceFile, find_files, read_merged
from virnucpro_trainer.errors import UserError

from helpers import HOST_DIR, MISSING, VIRAL_DIR, make_dataset, write_merged

GLOB = "*_merged.pt"
WIDTH = 6


class CarriesCode:
    """Unpickling this runs `touch <path>`: the kind of object a data file must never load."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def source(path, label=1):
    return SourceFile(path, f"{path.parent.name}/{path.name}", label)


def read_error(path, label=1, width=WIDTH) -> str:
    """Read `path`, expect a UserError, check the file was left as it was; return the message."""
    before = path.read_bytes()
    with pytest.raises(UserError) as err:
        read_merged(source(path, label), width)
    assert path.read_bytes() == before
    return str(err.value)


# find_files


def test_find_files_missing_root_points_at_the_settings(tmp_path):
    with pytest.raises(UserError) as err:
        find_files(tmp_path / "nowhere", GLOB, "viral")
    message = str(err.value)
    assert str(tmp_path / "nowhere") in message
    assert "data.root" in message
    assert "data=synthetic" in message


def test_find_files_no_matching_files(tmp_path):
    (tmp_path / VIRAL_DIR).mkdir()
    (tmp_path / VIRAL_DIR / "notes.txt").write_text("not a merged file")
    with pytest.raises(UserError, match="no files matching"):
        find_files(tmp_path, GLOB, "viral")


@pytest.mark.parametrize(("present", "absent"), [(VIRAL_DIR, "non_viral"), (HOST_DIR, "viral")])
def test_find_files_only_one_class_names_the_missing_class(tmp_path, present, absent):
    write_merged(tmp_path / present / "output_0_merged.pt", 3, WIDTH, int(present == VIRAL_DIR))
    with pytest.raises(UserError) as err:
        find_files(tmp_path, GLOB, "viral")
    assert f"no {absent} files" in str(err.value)
    assert present in str(err.value)


def test_find_files_sorted_with_label_from_directory_name(tmp_path):
    make_dataset(tmp_path, files_per_class=2, rows=3, width=WIDTH)
    write_merged(tmp_path / "phage_viral_db_merged" / "output_0_merged.pt", 3, WIDTH, 1)
    write_merged(tmp_path / "bacteria_merged" / "output_0_merged.pt", 3, WIDTH, 0)
    (tmp_path / "loose_merged.pt").write_bytes(b"not in a class directory")

    files = find_files(tmp_path, GLOB, "viral")

    assert [f.name for f in files] == sorted(f.name for f in files)
    assert {f.name: f.label for f in files} == {
        "bacteria_merged/output_0_merged.pt": 0,
        "phage_viral_db_merged/output_0_merged.pt": 1,
        f"{HOST_DIR}/output_0_merged.pt": 0,
        f"{HOST_DIR}/output_1_merged.pt": 0,
        f"{VIRAL_DIR}/output_0_merged.pt": 1,
        f"{VIRAL_DIR}/output_1_merged.pt": 1,
    }
    assert all(f.path == tmp_path / f.name for f in files)


def test_find_files_uses_the_configured_substring(tmp_path):
    make_dataset(tmp_path, files_per_class=1, rows=3, width=WIDTH)
    labels = {f.name: f.label for f in find_files(tmp_path, GLOB, "mammalian")}
    assert labels == {f"{HOST_DIR}/output_0_merged.pt": 1, f"{VIRAL_DIR}/output_0_merged.pt": 0}


# read_merged: valid files


def test_read_merged_valid_file(tmp_path):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    saved = write_merged(path, 5, WIDTH, 1, seed=3)

    merged = read_merged(source(path), WIDTH)

    assert merged.rows == 5
    assert merged.data.shape == (5, WIDTH)
    assert torch.equal(merged.data, saved["data"])
    assert merged.ids == saved["ids"]
    assert merged.source.label == 1


def test_read_merged_legacy_format(tmp_path):
    path = tmp_path / HOST_DIR / "output_0_merged.pt"
    data = torch.randn(4, WIDTH, dtype=torch.float64)
    path.parent.mkdir(parents=True)
    torch.save(
        {"ids": list("abcd"), "data": data, "labels": [0]},
        path,
        _use_new_zipfile_serialization=False,
    )
    merged = read_merged(source(path, 0), WIDTH)
    assert torch.equal(merged.data, data)
    assert merged.ids == list("abcd")


def test_read_merged_more_ids_than_rows_warns_and_drops_ids(tmp_path, caplog):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    write_merged(path, 3, WIDTH, 1, ids=["a", "b", "c", "d", "e"])
    before = path.read_bytes()

    with caplog.at_level(logging.WARNING, logger="virnucpro_trainer.data.merged"):
        merged = read_merged(source(path), WIDTH)

    assert merged.ids is None
    assert merged.rows == 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(path) in warnings[0].getMessage()
    assert "5 ids for 3 rows" in warnings[0].getMessage()
    assert path.read_bytes() == before


# read_merged: bad files


def test_read_merged_wrong_width_names_file_and_both_widths(tmp_path):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    write_merged(path, 3, 7, 1)
    message = read_error(path, width=2048)
    assert str(path) in message
    assert "7" in message and "2048" in message


def test_read_merged_not_a_dict(tmp_path):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    path.parent.mkdir(parents=True)
    torch.save([torch.zeros(2, WIDTH)], path)
    message = read_error(path)
    assert str(path) in message
    assert "list" in message


@pytest.mark.parametrize("key", ["data", "labels"])
def test_read_merged_missing_key(tmp_path, key):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    write_merged(path, 3, WIDTH, 1, **{key: MISSING})
    message = read_error(path)
    assert str(path) in message
    assert f"'{key}'" in message


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (torch.zeros(WIDTH), "1-D"),
        (torch.zeros(3, WIDTH, dtype=torch.int64), "torch.int64"),
        ([[0.0] * WIDTH] * 3, "list"),
    ],
)
def test_read_merged_data_not_a_2d_float_tensor(tmp_path, data, found):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    write_merged(path, 3, WIDTH, 1, data=data)
    message = read_error(path)
    assert str(path) in message
    assert "2-D floating-point" in message
    assert found in message


@pytest.mark.parametrize("labels", [[0, 1], [], [2], "viral"])
def test_read_merged_bad_labels(tmp_path, labels):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    write_merged(path, 3, WIDTH, 1, labels=labels)
    message = read_error(path)
    assert str(path) in message
    assert "'labels' must be [0] or [1]" in message


def test_read_merged_labels_contradict_directory(tmp_path):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    write_merged(path, 3, WIDTH, label=0)
    message = read_error(path, label=1)
    assert str(path) in message
    assert "non_viral (0)" in message and "viral (1)" in message
    assert VIRAL_DIR in message


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.0])
def test_read_merged_truncated_file(tmp_path, keep):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    write_merged(path, 20, WIDTH, 1)
    content = path.read_bytes()
    path.write_bytes(content[: int(len(content) * keep)])
    message = read_error(path)
    assert str(path) in message
    assert "cannot be read" in message


def test_read_merged_garbage_file(tmp_path):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a torch file at all\n" * 10)
    assert str(path) in read_error(path)


def test_read_merged_refuses_torch_file_carrying_code(tmp_path):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    marker = tmp_path / "code_ran"
    write_merged(path, 3, WIDTH, 1, extra=CarriesCode(marker))
    message = read_error(path)
    assert str(path) in message
    assert "refused" in message
    assert not marker.exists()


def test_read_merged_refuses_plain_pickle_carrying_code(tmp_path):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    marker = tmp_path / "code_ran"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps({"data": CarriesCode(marker), "labels": [1]}, protocol=2))
    message = read_error(path)
    assert str(path) in message
    assert "refused" in message
    assert not marker.exists()


def test_carries_code_really_runs_code_when_unpickled(tmp_path):
    """Guards the two tests above: the object they save does run code if loaded unsafely."""
    marker = tmp_path / "code_ran"
    pickle.loads(pickle.dumps(CarriesCode(marker)))
    assert marker.exists()
