"""Randomized test of the merged-file reader (hypothesis, derandomized so CI runs are repeatable).

Every generated file must either be read correctly or be refused with a UserError naming it:
any other exception is a bug. Files the reader accepts go on through `build_table` (the in-RAM
path), which must copy them exactly or refuse them (NaN or infinite values) with a UserError
naming the file. No file is ever modified by reading it.
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from virnucpro_trainer.data.files import SourceFile
from virnucpro_trainer.data.merged import MergedFile, read_merged
from virnucpro_trainer.data.table import build_table
from virnucpro_trainer.errors import UserError

from helpers import HOST_DIR, VIRAL_DIR, write_merged

WIDTH = 4
DIRS = {1: VIRAL_DIR, 0: HOST_DIR}
FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)  # what 'data' may hold
# Ids as the id rule asks (data/ids.py): non-empty, no tab, newline or carriage return; and not.
ID = st.text(min_size=1, max_size=8).filter(lambda s: not set(s) & set("\t\n\r"))
BAD_TEXT = st.sampled_from(["", "a\tb", "x\n", "\r", "\r\n"])

# torch warns about prototype and experimental dtypes (complex32, nested tensors ...) it is given.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _saveable_dtypes() -> list[torch.dtype]:
    out = []
    for name in sorted(dir(torch)):
        dtype = getattr(torch, name)
        if not isinstance(dtype, torch.dtype) or dtype in out:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.save(torch.zeros(2, dtype=dtype), io.BytesIO())
        except Exception:  # quantized and sub-byte dtypes that cannot be made or saved
            continue
        out.append(dtype)
    return out


DTYPES = _saveable_dtypes()
OTHER_DTYPES = [d for d in DTYPES if d not in FLOATS]


def fuzz_settings(examples: int):
    """`examples` under the default profile, "ci"; fewer under "fast" (conftest.py)."""
    return settings(
        derandomize=True,
        database=None,
        max_examples=max(10, round(examples * settings.default.max_examples / 100)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Building blocks. Each part of a merged dict comes with what the reader must make of it.

numbers = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.sampled_from(
    [0.0, -0.0, 1e-40, 1e39, -1e39, 7e4, 1e300, math.nan, math.inf, -math.inf]
)
not_str = st.none() | st.booleans() | st.integers() | numbers | st.binary(max_size=5)
plain = not_str | st.text(max_size=5)
nested = st.recursive(
    plain,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=3)
    ),
    max_leaves=12,
)


def _tensor_of(dtype: torch.dtype, shape: tuple[int, ...], values: list[float]) -> torch.Tensor:
    """A tensor of `dtype` holding `values` (repeated), or zeros where `dtype` cannot hold them."""
    n = math.prod(shape)
    base = torch.tensor((values * n)[:n] if values else [0.0] * n, dtype=torch.float64)
    try:
        return base.reshape(shape).to(dtype)
    except Exception:  # packed and bit dtypes cannot be converted to
        return torch.zeros(shape, dtype=dtype)


@st.composite
def valid_data(draw, rows: int) -> torch.Tensor:
    """A 2-D [rows, WIDTH] float tensor, maybe oddly strided, maybe with NaN, inf or huge values."""
    dtype = draw(st.sampled_from(FLOATS))
    values = draw(st.lists(numbers, max_size=2 * WIDTH)) if draw(st.booleans()) else []
    if not values:  # mostly ordinary finite numbers
        gen = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
        values = torch.randn(rows * WIDTH + 1, generator=gen, dtype=torch.float64).tolist()
    layout = draw(st.sampled_from(["contiguous", "transposed", "strided", "columns"]))
    if layout == "transposed":
        data = _tensor_of(dtype, (WIDTH, rows), values).t()
    elif layout == "strided":
        data = _tensor_of(dtype, (2 * rows, WIDTH), values)[1::2]
    elif layout == "columns":
        data = _tensor_of(dtype, (rows, WIDTH + 3), values)[:, 2 : 2 + WIDTH]
    else:
        data = _tensor_of(dtype, (rows, WIDTH), values)
    grad = draw(st.integers(0, 9))  # tensors that autograd tracks: the table must not be
    if grad == 0:
        data = torch.nn.Parameter(data.clone())
    elif grad == 1:
        data = data.clone().requires_grad_()
    return data


@st.composite
def invalid_data(draw, rows: int) -> object:
    """Anything but a 2-D [rows, WIDTH] tensor of a float dtype the table can hold."""
    kind = draw(st.sampled_from(["dims", "width", "dtype", "layout", "object"]))
    if kind == "dims":
        dims = draw(st.sampled_from([0, 1, 3]))
        shape = draw(st.lists(st.integers(0, 3), min_size=dims, max_size=dims))
        return _tensor_of(draw(st.sampled_from(DTYPES)), tuple(shape), [1.5, -2.0])
    if kind == "width":
        width = WIDTH + draw(st.sampled_from([-1, 1, -WIDTH]))
        return _tensor_of(draw(st.sampled_from(FLOATS)), (rows, width), [0.5])
    if kind == "dtype":
        return _tensor_of(draw(st.sampled_from(OTHER_DTYPES)), (rows, WIDTH), [1.0, 0.0])
    if kind == "layout":
        return draw(
            st.sampled_from(
                [
                    torch.zeros(rows, WIDTH).to_sparse(),
                    torch.eye(max(rows, 1), WIDTH).to_sparse_csr(),
                    torch.empty(rows, WIDTH, device="meta"),
                    torch.zeros(1, WIDTH).expand(rows + 2, WIDTH),  # rows that share memory
                    torch.nested.nested_tensor([torch.zeros(WIDTH)] * max(rows, 1)),
                ]
            )
        )
    return draw(
        st.sampled_from([[[0.0] * WIDTH] * rows, (1.0,) * WIDTH, "data", None, 3, {"x": 1}])
        | nested
    )


@st.composite
def labels_for(draw, label: int) -> tuple[object, object]:
    """(labels, what the reader must make of them: the class 0 or 1, 'bad', or 'any')."""
    kind = draw(st.sampled_from(["good", "good", "odd-good", "bad", "any"]))
    if kind == "good":
        return [label], label
    if kind == "odd-good":  # other spellings of one class that mean the same
        chosen = draw(st.sampled_from([0, 1]))
        spelled = draw(
            st.sampled_from(
                [
                    [chosen] * 3,
                    (chosen,),
                    chosen,
                    [float(chosen)],
                    [bool(chosen)],
                    [[chosen]],
                    torch.tensor([chosen]),
                    torch.tensor([chosen], dtype=torch.float16),
                    torch.full((2, 2), chosen, dtype=torch.int8),
                ]
            )
        )
        return spelled, chosen
    if kind == "bad":
        bad = [[2], [0, 1], [-1], [], "1", "viral", None, [0.5], [math.nan], [math.inf], {1: 1}]
        bad += [[[0], [1]], [1 + 0j], [None], torch.tensor([0.0, 1.0]), torch.zeros(0), [2**70]]
        return draw(st.sampled_from(bad)), "bad"
    return draw(nested), "any"


@st.composite
def ids_for(draw, rows: int) -> tuple[object, str]:
    """(ids, what the reader must make of them): 'exact' (kept), 'dropped' (warned, None),
    'bad' (refused: not all strings, or one breaking the id rule) or 'missing' (no key: warned,
    None)."""
    names = st.text(max_size=8)  # unchecked where ids cannot be matched to rows
    kinds = ["exact", "exact", "length", "not-a-list", "bad", "bad-text", "missing"]
    kind = draw(st.sampled_from(kinds))
    if kind == "exact":
        ids = draw(st.lists(ID, min_size=rows, max_size=rows, unique=True))
        return (tuple(ids) if draw(st.booleans()) else ids), "exact"
    if kind == "bad-text" and rows:
        ids = draw(st.lists(ID, min_size=rows - 1, max_size=rows - 1, unique=True))
        ids.insert(draw(st.integers(0, rows - 1)), draw(BAD_TEXT))
        return ids, "bad"
    if kind == "length":
        n = draw(st.integers(0, rows + 2).map(lambda n: n if n < rows else n + 1))
        return draw(st.lists(names, min_size=n, max_size=n)), "dropped"
    if kind == "not-a-list":
        value = draw(st.sampled_from([None, "abc", 3, {"a": 1}, torch.arange(rows)]) | plain)
        return value, "dropped"
    if kind == "bad":
        ids = draw(st.lists(names, max_size=rows + 2))
        at = draw(st.integers(0, len(ids)))
        bad = draw(st.sampled_from([None, 3, 1.5, b"id", ["a"], ("a",), torch.tensor(1)]) | not_str)
        ids.insert(at, bad)
        return (tuple(ids) if draw(st.booleans()) else ids), "bad"
    return None, "missing"


@dataclass
class Case:
    label: int  # the class of the directory the file is in
    obj: object  # what was saved
    accept: bool | None  # what the reader must do; None: either (judged by its result)
    ids_kind: str = "exact"


@st.composite
def dict_cases(draw) -> Case:
    """A merged dict with each part valid or not, and the keys missing or extra at random."""
    label = draw(st.sampled_from([0, 1]))
    rows = draw(st.integers(0, 5))
    good_data = draw(st.integers(0, 3)) > 0
    data = draw(valid_data(rows) if good_data else invalid_data(rows))
    labels, means = draw(labels_for(label))
    ids, ids_kind = draw(ids_for(rows))
    obj = {"data": data, "labels": labels, "ids": ids}
    if ids_kind == "missing":
        del obj["ids"]
    missing = draw(st.sampled_from([None] * 8 + ["data", "labels"]))
    if missing:
        del obj[missing]
    extra_keys = st.text(max_size=4) | st.integers() | st.tuples(st.integers(), st.text(max_size=2))
    for key, value in draw(st.dictionaries(extra_keys, nested, max_size=2)).items():
        obj.setdefault(key, value)
    labels_ok = missing == "labels" or means in (label, "any")  # no labels: the directory's
    accept = good_data and missing != "data" and ids_kind != "bad" and labels_ok
    if accept and ((means == "any" and missing != "labels") or holds_bytes(obj)):
        accept = None  # bytes pickle as a call to a global, which torch.load may refuse
    return Case(label, obj, accept, ids_kind)


def holds_bytes(obj: object) -> bool:
    if isinstance(obj, bytes):
        return True
    if isinstance(obj, dict):
        return any(holds_bytes(k) or holds_bytes(v) for k, v in obj.items())
    return isinstance(obj, list | tuple) and any(holds_bytes(x) for x in obj)


not_a_dict = (  # or a dict without 'data'
    st.dictionaries(st.text(max_size=6) | st.integers(), nested, max_size=4)
    | st.lists(nested, max_size=3)
    | st.tuples(plain, plain)
    | plain
    | st.builds(lambda n: torch.zeros(n, WIDTH), st.integers(0, 3))
    | st.builds(lambda n: [torch.zeros(n, WIDTH), [1]], st.integers(0, 3))
)


# Writing, reading and checking one file


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def place(tmp: Path, label: int) -> Path:
    path = tmp / DIRS[label] / "output_0_merged.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def save(obj: object, path: Path, zipped: bool = True) -> None:
    torch.save(obj, path, _use_new_zipfile_serialization=zipped)


def read(path: Path, label: int) -> MergedFile | None:
    """read_merged: a MergedFile, or None after a UserError naming the file; the file unchanged."""
    before = sha256(path)
    try:
        merged = read_merged(SourceFile(path, f"{DIRS[label]}/{path.name}", label), WIDTH)
    except UserError as err:
        assert str(path) in str(err)
        event(f"refused: {str(err)[len(str(path)) + 2 :][:28]}")  # --hypothesis-show-statistics
        return None
    else:
        event("accepted")
        return merged
    finally:
        assert sha256(path) == before


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def companion(workdir) -> MergedFile:
    """A valid host file read alongside each fuzzed one, so that a table always has rows."""
    path = workdir / "companion" / HOST_DIR / "output_9_merged.pt"
    write_merged(path, 2, WIDTH, 0, seed=9)
    return read_merged(SourceFile(path, f"{HOST_DIR}/output_9_merged.pt", 0), WIDTH)


def check_accepted(merged: MergedFile, path: Path, label: int, companion: MergedFile) -> None:
    """What any accepted file must be, and what build_table must make of it."""
    data = merged.data
    assert type(data) is torch.Tensor and not data.requires_grad
    assert data.ndim == 2 and data.shape[1] == WIDTH and data.dtype in FLOATS
    assert merged.source.label == label and merged.source.path == path
    ids = merged.ids
    assert ids is None or (len(ids) == merged.rows and all(isinstance(i, str) for i in ids))

    before = sha256(path)
    expected = data.to(torch.float32)
    try:
        table = build_table([companion, merged])
    except UserError as err:
        if ids is not None and len(set(ids)) < len(ids):  # a flipped byte can make two equal
            assert "names two rows, twice in" in str(err)
            return
        assert not torch.isfinite(expected).all(), f"build_table refused finite data: {err}"
        assert str(path) in str(err)
        return
    finally:
        assert sha256(path) == before
    assert torch.isfinite(expected).all(), "build_table accepted NaN or infinite values"
    n = companion.rows
    assert table.features.dtype == torch.float32
    assert torch.equal(table.features[:n], companion.data)
    assert torch.equal(table.features[n:], expected)
    assert table.labels[:n].tolist() == [0] * n
    assert table.labels[n:].tolist() == [label] * merged.rows
    if merged.rows:  # a file without rows may be left out of the table
        assert table.names[-1] == merged.source.name


def same_values(got: torch.Tensor, saved: torch.Tensor) -> bool:
    saved = saved.detach()
    if got.dtype != saved.dtype or got.shape != saved.shape:
        return False
    return torch.equal(
        got.double().nan_to_num(1.5), saved.double().nan_to_num(1.5)
    ) and torch.equal(got.isnan(), saved.isnan())


# The tests


@fuzz_settings(1200)
@given(case=dict_cases(), zipped=st.integers(0, 5).map(bool))
def test_fuzz_merged_dicts(workdir, companion, case, zipped):
    path = place(workdir / "dicts", case.label)
    save(case.obj, path, zipped)

    merged = read(path, case.label)

    if case.accept is not None:
        assert (merged is not None) == case.accept, f"accepted={merged is not None} for {case}"
    if merged is None:
        return
    saved = case.obj
    assert same_values(merged.data, saved["data"])
    if case.ids_kind == "exact":
        assert merged.ids == list(saved["ids"])
    else:
        assert merged.ids is None
    check_accepted(merged, path, case.label, companion)


@fuzz_settings(300)
@given(obj=not_a_dict, label=st.sampled_from([0, 1]), zipped=st.booleans())
def test_fuzz_not_a_dict(workdir, obj, label, zipped):
    path = place(workdir / "objects", label)
    save(obj, path, zipped)
    assert read(path, label) is None


LEGACY_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19."  # how a legacy torch file starts
LEGACY_V = b"\x80\x02M\xe9\x03."  # and goes on: its protocol version
PREFIXES = [b"", b"PK\x03\x04", b"\x80\x02", LEGACY_MAGIC, LEGACY_MAGIC + LEGACY_V]


@fuzz_settings(400)
@given(
    prefix=st.sampled_from(PREFIXES),
    body=st.binary(max_size=400),
    label=st.sampled_from([0, 1]),
)
def test_fuzz_random_bytes(workdir, companion, prefix, body, label):
    path = place(workdir / "bytes", label)
    path.write_bytes(prefix + body)
    merged = read(path, label)
    if merged is not None:  # never seen: it would have to be a well-formed torch file
        check_accepted(merged, path, label, companion)


@st.composite
def damaged_files(draw) -> tuple[int, bytes, bytes, dict]:
    """(label, original bytes, damaged bytes, saved dict) of a valid file truncated or flipped."""
    label = draw(st.sampled_from([0, 1]))
    rows = draw(st.integers(0, 5))
    obj = {
        "ids": draw(st.lists(ID, min_size=rows, max_size=rows, unique=True)),
        "data": draw(valid_data(rows)),
        "labels": [label],
    }
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=draw(st.integers(0, 3).map(bool)))
    original = buffer.getvalue()
    damaged = bytearray(original)
    # Positions are drawn independently of the length: the legacy format's storage keys are
    # memory addresses, so its files differ in length from one run to the next.
    if draw(st.booleans()):
        damaged = damaged[: draw(st.integers(0, 2**20)) % len(original)]
    else:
        for _ in range(draw(st.integers(1, 4))):
            damaged[draw(st.integers(0, 2**20)) % len(damaged)] ^= draw(st.integers(1, 255))
    return label, original, bytes(damaged), obj


@fuzz_settings(700)
@given(damaged=damaged_files())
def test_fuzz_damaged_valid_files(workdir, companion, damaged):
    label, original, content, obj = damaged
    path = place(workdir / "damaged", label)
    path.write_bytes(content)
    merged = read(path, label)
    if len(content) < len(original):
        assert merged is None, "a truncated file was accepted"
    if merged is None:
        return
    # A flipped byte can land where nothing checks it (in the numbers, say): then the file reads
    # as something else, but still as something valid.
    check_accepted(merged, path, label, companion)


@fuzz_settings(200)
@given(rows=st.integers(0, 5), data=st.data())
def test_fuzz_valid_files_read_exactly(workdir, companion, rows, data):
    """The plain valid case, many shapes and dtypes: every value and id comes back."""
    label = data.draw(st.sampled_from([0, 1]))
    saved = {
        "ids": data.draw(st.lists(ID, min_size=rows, max_size=rows, unique=True)),
        "data": data.draw(valid_data(rows)),
        "labels": [label],
    }
    path = place(workdir / "valid", label)
    save(saved, path, data.draw(st.booleans()))
    merged = read(path, label)
    assert merged is not None
    assert same_values(merged.data, saved["data"])
    assert merged.ids == saved["ids"]
    check_accepted(merged, path, label, companion)
