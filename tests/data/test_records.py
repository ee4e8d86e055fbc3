"""One rule for "which genome is this id": the split's records, the leakage report, the interval
groups and evaluate.py's record level agree on every id, odd ones included."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from virnucpro_trainer.config.schema import SplitConfig
from virnucpro_trainer.data.leakage import leakage_report
from virnucpro_trainer.data.records import record_codes, records_of
from virnucpro_trainer.levels import chunk_level, record_level

PATTERN = OmegaConf.structured(SplitConfig).record_pattern
# a plain id, a record name that itself contains _chunk_, and ids without any _chunk_
IDS = [
    "NC_001416.1_chunk_3F2",
    "NC_001416.1_chunk_4R1",
    "A_chunk_1_chunk_2F1",
    "A_chunk_1_chunk_3F1",
    "contig7F1",
    "contig7F2",
    "plain_idF3",
]
EXPECTED = ["NC_001416.1", "NC_001416.1", "A_chunk_1", "A_chunk_1", "contig7F1", "contig7F2"]
EXPECTED += ["plain_idF3"]


def test_the_default_record_is_the_id_up_to_its_last_chunk():
    records, unmatched = records_of(IDS, PATTERN)
    assert records == EXPECTED
    assert unmatched == ["contig7F1", "contig7F2", "plain_idF3"]  # each its own record


def test_interval_groups_follow_the_same_records():
    codes = record_codes(IDS, PATTERN)
    assert codes.tolist() == [0, 0, 1, 1, 2, 3, 4]
    # two rows with one unmatched id are one record, not two
    assert record_codes(["x", "x", "y"], PATTERN).tolist() == [0, 0, 1]


def test_record_level_keeps_unmatched_chunks_as_their_own_records():
    p = np.array([0.9, 0.8, 0.2, 0.1, 0.7, 0.6, 0.3])
    chunks, no_frame = chunk_level(IDS, p, np.array([1, 1, 0, 0, 1, 1, 0]))
    assert no_frame == 0
    records, own = record_level(chunks, PATTERN, "mean")
    chunk_records, _ = records_of(chunks.ids, PATTERN)
    assert sorted(records.ids) == sorted(set(chunk_records))
    assert own == 2  # the chunks contig7 and plain_id: counted, not dropped
    assert int(records.size.sum()) == len(chunks.ids)
    # a chunk's record is its rows' record in the split
    row_records = dict(zip(IDS, records_of(IDS, PATTERN)[0], strict=True))
    for chunk, record in zip(chunks.ids, chunk_records, strict=True):
        rows = [i for i in IDS if i[:-2] == chunk]
        assert {row_records[i] for i in rows} == {record} or record == chunk


def test_leakage_report_counts_records_by_the_same_rule():
    train, _ = records_of(IDS[:3], PATTERN)
    test, _ = records_of(IDS[3:], PATTERN)
    report = leakage_report({"train": {"f": train}, "val": {"g": []}, "test": {"h": test}})
    assert report["train_test"]["shared_records"] == 1  # A_chunk_1, on both sides
    assert report["train_test"]["test_rows_in_shared_records"] == 1


def test_a_pattern_without_a_group_is_refused():
    with pytest.raises(ValueError, match="capture group"):
        records_of(IDS, r".+_chunk_\d+")
