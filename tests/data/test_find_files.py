"""Finding merged files under the data root: the class from the directory name, and paths that
look like data but are not read, each kind warned about once."""

from __future__ import annotations

import logging

import pytest

from virnucpro_trainer.data.files import find_files
from virnucpro_trainer.errors import UserError

from helpers import HOST_DIR, VIRAL_DIR, make_dataset, write_merged

GLOB = "*_merged.pt"
WIDTH = 6


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


def _skip_warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "skipped" in r.getMessage()
    ]


def _found_after_one_skip_warning(tmp_path, caplog, *phrases) -> None:
    """find_files on tmp_path: the two valid files are found and exactly one skip warning is
    logged, containing every phrase."""
    with caplog.at_level(logging.WARNING, logger="virnucpro_trainer.data.merged"):
        names = [f.name for f in find_files(tmp_path, GLOB, "viral")]
    assert names == [f"{HOST_DIR}/output_0_merged.pt", f"{VIRAL_DIR}/output_0_merged.pt"]
    messages = _skip_warnings(caplog)
    assert len(messages) == 1, messages
    for phrase in (str(tmp_path), f"only files at <data root>/<class dir>/{GLOB} are read"):
        assert phrase in messages[0]
    for phrase in phrases:
        assert phrase in messages[0]


def test_find_files_valid_layout_gives_no_skip_warning(tmp_path, caplog):
    make_dataset(tmp_path, files_per_class=1, rows=3, width=WIDTH)
    (tmp_path / VIRAL_DIR / "notes.txt").write_text("not matching the glob")
    with caplog.at_level(logging.WARNING, logger="virnucpro_trainer.data.merged"):
        find_files(tmp_path, GLOB, "viral")
    assert _skip_warnings(caplog) == []


def test_find_files_broken_symlinks_warned_once(tmp_path, caplog):
    make_dataset(tmp_path, files_per_class=1, rows=3, width=WIDTH)
    for i in range(4):
        (tmp_path / VIRAL_DIR / f"gone_{i}_merged.pt").symlink_to(tmp_path / f"missing_{i}.pt")
    _found_after_one_skip_warning(
        tmp_path,
        caplog,
        "skipped 4 broken symbolic link(s)",
        f"e.g. {VIRAL_DIR}/gone_0_merged.pt -> {tmp_path / 'missing_0.pt'}",
        f"{VIRAL_DIR}/gone_2_merged.pt",
        "does not exist",
    )
    assert "gone_3" not in _skip_warnings(caplog)[0]  # three examples at most


def test_find_files_directories_named_like_data_files_warned_once(tmp_path, caplog):
    make_dataset(tmp_path, files_per_class=1, rows=3, width=WIDTH)
    (tmp_path / VIRAL_DIR / "x_merged.pt").mkdir()
    _found_after_one_skip_warning(
        tmp_path,
        caplog,
        f"skipped 1 directory or other non-file(s) matching {GLOB}",
        f"({VIRAL_DIR}/x_merged.pt/)",
        "only regular files can be read",
    )


def test_find_files_nested_files_warned_once(tmp_path, caplog):
    make_dataset(tmp_path, files_per_class=1, rows=3, width=WIDTH)
    write_merged(tmp_path / VIRAL_DIR / "sub" / "x_merged.pt", 3, WIDTH, 1)
    write_merged(tmp_path / HOST_DIR / "a" / "b" / "y_merged.pt", 3, WIDTH, 0)
    _found_after_one_skip_warning(
        tmp_path,
        caplog,
        f"skipped 2 file(s) matching {GLOB} in sub-directories of class directories",
        f"({HOST_DIR}/a/b/y_merged.pt, {VIRAL_DIR}/sub/x_merged.pt)",
        "not searched recursively",
    )


def test_find_files_files_in_the_root_warned_once(tmp_path, caplog):
    make_dataset(tmp_path, files_per_class=1, rows=3, width=WIDTH)
    write_merged(tmp_path / "x_merged.pt", 3, WIDTH, 1)
    _found_after_one_skip_warning(
        tmp_path,
        caplog,
        f"skipped 1 file(s) matching {GLOB} directly in the data root (x_merged.pt)",
        "class comes from the directory",
    )


def test_find_files_each_kind_of_skip_warned_once_before_no_files_error(tmp_path, caplog):
    (tmp_path / VIRAL_DIR / "dir_merged.pt").mkdir(parents=True)
    (tmp_path / VIRAL_DIR / "link_merged.pt").symlink_to(tmp_path / "nowhere")
    write_merged(tmp_path / VIRAL_DIR / "sub" / "x_merged.pt", 3, WIDTH, 1)
    write_merged(tmp_path / "loose_merged.pt", 3, WIDTH, 1)
    with (
        caplog.at_level(logging.WARNING, logger="virnucpro_trainer.data.merged"),
        pytest.raises(UserError, match="no files matching"),
    ):
        find_files(tmp_path, GLOB, "viral")
    messages = _skip_warnings(caplog)
    assert len(messages) == 4
    for phrase, warning in zip(
        ["broken symbolic link", "directory or other", "sub-director", "directly in the data root"],
        messages,
        strict=True,
    ):
        assert phrase in warning
