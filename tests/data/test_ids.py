"""The id rule (data/ids.py), the same for training and evaluate.py: ids non-empty and free of tab,
newline and carriage return where merged files are read (and in a feature store built before the
rule), and unique across files, the message naming both files."""

from __future__ import annotations

import json

import pytest
import torch

from virnucpro_trainer.checkpoint import checkpoint_metadata
from virnucpro_trainer.data.files import SourceFile, find_files
from virnucpro_trainer.data.ids import check_unique_ids
from virnucpro_trainer.data.merged import read_merged
from virnucpro_trainer.data.store import open_store
from virnucpro_trainer.errors import UserError
from virnucpro_trainer.model import VirNucProMLP

from helpers import (
    HOST_DIR,
    VIRAL_DIR,
    evaluate_in_process,
    make_dataset,
    train_in_process,
    write_merged,
)

pytestmark = pytest.mark.usefixtures("no_figures")

WIDTH = 2048
QUICK = ["epochs=1", "device=cpu", "data.root=data_merge"]


def minimal_checkpoint(path):
    meta = checkpoint_metadata(768, WIDTH - 768, 16, 2, "m", "org/protein")
    state = VirNucProMLP(WIDTH, 16).state_dict()
    torch.save(
        {"epoch": 1, "model_state_dict": state, "optimizer_state_dict": {}, "best_loss": 0.5,
         "metadata": meta},
        path,
    )  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("bad", "what"),
    [
        ("NC_1_chunk_0\tF1", "holds a tab"),
        ("NC_1_chunk_0F1\n", "holds a newline"),
        ("NC_1_chunk_0F1\r", "holds a carriage return"),
        ("", "is empty"),
        ("a\r\nb", "holds a newline and a carriage return"),
    ],
)
def test_an_id_that_would_break_the_tables_is_refused_naming_file_id_and_row(tmp_path, bad, what):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    write_merged(path, 4, WIDTH, 1, ids=["a", "b", bad, "d"])
    with pytest.raises(UserError) as err:
        read_merged(SourceFile(path, f"{VIRAL_DIR}/output_0_merged.pt", 1), WIDTH)
    assert str(err.value).startswith(f"{path}: sequence id {bad!r} at row 2 {what}: ids must")


def test_ids_that_cannot_be_matched_to_rows_are_not_checked(tmp_path):
    path = tmp_path / VIRAL_DIR / "output_0_merged.pt"
    write_merged(
        path, 2, WIDTH, 1, ids=["a\tb", "", "c"]
    )  # 3 ids for 2 rows: rows named <file>#<row>
    assert read_merged(SourceFile(path, "x", 1), WIDTH).ids is None


def test_unique_ids_the_message_names_both_files_and_rows():
    check_unique_ids(["a.pt", "b.pt", "c.pt"], [["x", "y"], None, ["z"]])
    with pytest.raises(UserError) as err:
        check_unique_ids(["a/one.pt", "b/two.pt"], [["x", "y"], ["z", "y"]])
    assert str(err.value).startswith(
        "sequence id 'y' names two rows, in a/one.pt (row 1) and b/two.pt (row 1): ids must be "
        "unique across all files"
    )
    with pytest.raises(UserError, match=r"'x' names two rows, twice in a\.pt \(rows 0 and 2\)"):
        check_unique_ids(["a.pt"], [["x", "y", "x"]])


@pytest.mark.slow  # a whole run in-process
@pytest.mark.parametrize("cache", ["store", "no_store"])
def test_training_refuses_an_id_in_two_files(tmp_path, cache):
    """Even in two classes: before, training took it and evaluate.py refused it."""
    root = tmp_path / "data_merge"
    make_dataset(root, files_per_class=4, rows=30, width=WIDTH)
    viral = root / VIRAL_DIR / "output_3_merged.pt"
    ids = [f"{VIRAL_DIR}.output_3_merged_{row}" for row in range(30)]
    ids[7] = f"{HOST_DIR}.output_1_merged_5"  # row 5 of the host file output_1
    write_merged(viral, 30, WIDTH, 1, ids=ids, seed=3)
    args = [*QUICK] + (["data.cache_dir=null"] if cache == "no_store" else [])
    with pytest.raises(UserError) as err:
        train_in_process(tmp_path, *args)
    assert str(err.value).startswith(
        f"sequence id '{HOST_DIR}.output_1_merged_5' names two rows, in "
        f"{HOST_DIR}/output_1_merged.pt (row 5) and {VIRAL_DIR}/output_3_merged.pt (row 7)"
    )


def test_training_refuses_an_id_with_a_tab(tmp_path):
    root = tmp_path / "data_merge"
    make_dataset(root, files_per_class=4, rows=30, width=WIDTH)
    bad = root / HOST_DIR / "output_2_merged.pt"
    write_merged(bad, 30, WIDTH, 0, ids=[f"h{row}\t" for row in range(30)], seed=2)
    with pytest.raises(UserError, match=rf"^{bad}: sequence id 'h0\\t' at row 0 holds a tab"):
        train_in_process(tmp_path, *QUICK)


def test_a_store_built_before_the_rule_is_checked_when_opened(tmp_path):
    root, cache = tmp_path / "data_merge", tmp_path / "cache"
    make_dataset(root, files_per_class=3, rows=4, width=12)
    sources = find_files(root, "*_merged.pt", "viral")
    open_store(sources, root, cache, 12, "float32").lock.close()
    (ids_file,) = cache.glob("*/ids.json")
    ids = json.loads(ids_file.read_text())
    ids[1][2] = "x\ty"  # as a store built from such a file before the rule held it
    ids_file.write_text(json.dumps(ids))
    index_file = ids_file.with_name("index.json")  # which has no mark that its ids were checked
    index = json.loads(index_file.read_text())
    assert index.pop("ids_checked") is True
    index_file.write_text(json.dumps(index))
    with pytest.raises(UserError, match=r"output_1_merged\.pt: sequence id 'x\\ty' at row 2"):
        open_store(sources, root, cache, 12, "float32")


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (["p_0", "p_1\n"], r"b_merged\.pt: sequence id 'p_1\\n' at row 1 holds a newline"),
        (["r_0", "q_1"], r"'q_1' names two rows, in a/a_merged\.pt \(row 1\) and b/b_merged\.pt"),
    ],
)
def test_evaluate_applies_the_same_rule(tmp_path, ids, message):
    data = tmp_path / "predict"
    write_merged(data / "a/a_merged.pt", 2, WIDTH, 1, ids=["q_0", "q_1"])
    write_merged(data / "b/b_merged.pt", 2, WIDTH, 1, ids=ids)
    ckpt = minimal_checkpoint(tmp_path / "model.pth")
    with pytest.raises(UserError, match=message):
        evaluate_in_process(
            tmp_path, tmp_path / "eval", f"ckpt={ckpt}", f"data.root={data}", "labelled=false"
        )


def test_a_store_built_under_the_rule_does_not_read_its_ids_again_when_opened(tmp_path):
    root, cache = tmp_path / "data_merge", tmp_path / "cache"
    make_dataset(root, files_per_class=3, rows=4, width=12)
    sources = find_files(root, "*_merged.pt", "viral")
    open_store(sources, root, cache, 12, "float32").lock.close()
    table = open_store(sources, root, cache, 12, "float32")
    assert table.ids is None  # ids.json is read only when something needs the ids
    table.lock.close()
