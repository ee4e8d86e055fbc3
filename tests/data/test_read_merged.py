"""Reading one merged file with every check: valid and legacy files, odd ids, bad data and labels,
damaged files, and files that carry code (a randomized test: data/test_reader_fuzz.py)."""

from __future__ import annotations

import logging
import os
import pickle
import sys
import warnings

import pytest
import torch

from virnucpro_trainer.data.files import SourceFile
from virnucpro_trainer.data.merged import read_merged
from virnucpro_trainer.errors import UserError

from helpers import HOST_DIR, MISSING, VIRAL_DIR, write_merged

WIDTH = 6


class CarriesCode:
    """Unpickling this runs code (it makes the directory `path`, which starts no process): the
    kind of object a data file must never load."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.makedirs, (self.path,))


def nested_rows(n: int) -> torch.Tensor:
    """A 2-D nested tensor of n rows (torch warns that nested tensors are a prototype)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.nested.nested_tensor([torch.zeros(WIDTH)] * n)


def source(path, label=1):
    return SourceFile(path, f"{path.parent.name}/{path.name}", label)


def read_error(path, label=1, width=WIDTH) -> str:
    """Read `path`, expect a UserError, check the file was left as it was; return the message."""
    before = path.read_bytes()
    with pytest.raises(UserError) as err:
        read_merged(source(path, label), width)
    assert path.read_bytes() == before
    return str(err.value)


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


def test_read_merged_tuple_ids_accepted_as_a_list(tmp_path):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    write_merged(path, 3, WIDTH, 1, ids=("a", "b", "c"))
    merged = read_merged(source(path), WIDTH)
    assert merged.ids == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("ids", "found"),
    [
        (MISSING, "ids of type NoneType"),
        (None, "ids of type NoneType"),
        ("abc", "ids of type str"),
        (("a", "b"), "2 ids"),
        ([], "0 ids"),
    ],
)
def test_read_merged_unusable_ids_warn_and_name_rows_by_position(tmp_path, caplog, ids, found):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    saved = write_merged(path, 3, WIDTH, 1, ids=ids)
    if ids is MISSING:
        del saved["ids"]
        torch.save(saved, path)
    with caplog.at_level(logging.WARNING, logger="virnucpro_trainer.data.merged"):
        merged = read_merged(source(path), WIDTH)
    assert merged.ids is None
    assert f"{path}: {found} for 3 rows" in caplog.text
    assert "<file>#<row>" in caplog.text


@pytest.mark.parametrize(
    ("data", "width"),
    [
        (torch.zeros(0, WIDTH), WIDTH),
        (torch.arange(4 * WIDTH, dtype=torch.float64).reshape(WIDTH, 4).t(), WIDTH),
        (torch.randn(9, WIDTH + 2)[1::2, 1 : WIDTH + 1], WIDTH),
        (torch.randn(5, WIDTH, dtype=torch.float16), WIDTH),
        (torch.randn(5, WIDTH, dtype=torch.bfloat16), WIDTH),
        (torch.randn(5, WIDTH, requires_grad=True), WIDTH),
        (torch.nn.Parameter(torch.randn(5, WIDTH)), WIDTH),
    ],
    ids=["0-rows", "transposed", "sliced", "float16", "bfloat16", "requires-grad", "parameter"],
)
def test_read_merged_unusual_but_valid_data(tmp_path, data, width):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    n = data.shape[0]
    write_merged(path, n, width, 1, data=data)
    merged = read_merged(source(path), width)
    assert type(merged.data) is torch.Tensor
    assert not merged.data.requires_grad
    assert merged.data.dtype == data.dtype
    assert torch.equal(merged.data, data.detach())
    assert merged.ids == [f"{VIRAL_DIR}.output_0_merged_{i}" for i in range(n)]


# read_merged: bad files


@pytest.mark.parametrize(
    ("ids", "found"),
    [
        (["a", "b", "c", 3, "e"], "found int at position 3 (3)"),
        ([b"a", "b", "c"], "found bytes at position 0 (b'a')"),
        (("a", None, "c"), "found NoneType at position 1 (None)"),
        (["a", "b", ["c"]], "found list at position 2 (['c'])"),
        (["a", torch.tensor(1.5)], "found Tensor at position 1 (tensor(1.5000))"),
        ([1, 2], "found int at position 0 (1)"),  # refused even though the length is wrong
    ],
)
def test_read_merged_ids_that_are_not_strings(tmp_path, ids, found):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    write_merged(path, len(ids) if len(ids) != 2 else 3, WIDTH, 1, ids=ids)
    message = read_error(path)
    assert message == f"{path}: 'ids' must be a list of strings, {found}"


def test_read_merged_messages_stay_short_for_huge_or_deep_values(tmp_path):
    deep = [1]
    for _ in range(2000):  # deeper than repr() can go
        deep = [deep]
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    for overrides in (
        {"labels": deep},
        {"labels": list(range(100_000))},
        {"labels": "x" * 100_000},
        {"ids": ["a", "b", deep]},
        {"ids": ["a", "b", "c" * 10_000, b"x" * 100_000]},
    ):
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(10_000)  # for torch.save only: loading does not recurse
        try:
            write_merged(path, 3, WIDTH, 1, **overrides)
        finally:
            sys.setrecursionlimit(limit)
        message = read_error(path)
        assert message.startswith(f"{path}: '")
        assert len(message) < len(str(path)) + 200


@pytest.mark.parametrize("rows", [2, 10**12])
def test_read_merged_rows_that_repeat_in_memory(tmp_path, rows):
    """An expanded tensor saves one row's numbers however many rows it claims."""
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    write_merged(path, 3, WIDTH, 1, data=torch.zeros(1, WIDTH).expand(rows, WIDTH))
    assert path.stat().st_size < 5000
    message = read_error(path)
    assert message == (
        f"{path}: 'data' has {rows} rows of {WIDTH} numbers but the file holds only {WIDTH} "
        "numbers: its rows repeat one another in memory (saved from .expand()?); re-save it with "
        "data.contiguous()"
    )


def test_read_merged_dict_without_data_with_odd_keys(tmp_path):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    path.parent.mkdir(parents=True)
    torch.save({1: "a", (2, (3,)): "b", "ids": [], **{f"k{i}": i for i in range(20)}}, path)
    message = read_error(path)
    expected = f"{path}: expected a dict with keys 'ids', 'data' (and 'labels'), found ["
    assert message.startswith(expected)
    assert "and 13 more keys" in message


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (torch.zeros(3, WIDTH, dtype=torch.complex64), "2-D torch.complex64 tensor"),
        (torch.zeros(3, WIDTH, dtype=torch.float8_e4m3fn), "2-D torch.float8_e4m3fn tensor"),
        (torch.zeros(3, WIDTH).to_sparse(), "tensor with layout torch.sparse_coo"),
        (torch.empty(3, WIDTH, device="meta"), "tensor on device meta"),
        (nested_rows(3), "nested 2-D torch.float32"),
    ],
)
def test_read_merged_tensors_the_table_cannot_hold(tmp_path, data, found):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    write_merged(path, 3, WIDTH, 1, data=data)
    message = read_error(path)
    assert message.startswith(f"{path}: 'data' must be a 2-D floating-point tensor")
    assert found in message


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


def test_read_merged_missing_data(tmp_path):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    write_merged(path, 3, WIDTH, 1, data=MISSING)
    message = read_error(path)
    assert str(path) in message
    assert "'data'" in message


def test_read_merged_without_labels_takes_the_class_of_its_directory(tmp_path):
    # files made for the prediction step have only ids and data
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    saved = write_merged(path, 3, WIDTH, 1, labels=MISSING)
    merged = read_merged(SourceFile(path, f"{VIRAL_DIR}/output_0_merged.pt", 1), WIDTH)
    assert torch.equal(merged.data, saved["data"]) and merged.ids == saved["ids"]


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


@pytest.mark.parametrize(
    "labels",
    [[0, 1], [], [2], "viral", "1", None, [0.5], [float("inf")], [float("nan")], [1 + 0j], {1: 1}],
)
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
    assert len(content) > 1000
    path.write_bytes(content[: int(len(content) * keep)])
    message = read_error(path)
    assert str(path) in message
    assert "cannot be read" in message


def test_read_merged_garbage_file(tmp_path):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a torch file at all\n" * 10)
    assert read_error(path).startswith(f"{path}: cannot be read as a torch file")


def test_read_merged_corrupt_legacy_pickle_is_not_called_code(tmp_path):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(bytes(range(256)))
    message = read_error(path)
    assert message.startswith(f"{path}: cannot be read as a torch file (truncated or corrupt?): ")
    assert "Unsupported operand" in message
    assert len(message) < len(str(path)) + 200


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
