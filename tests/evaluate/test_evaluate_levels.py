"""Rows -> chunks -> records (levels.py) against a hand computation, with frames of one chunk that
disagree, ids that do not parse, and each record aggregate; and the level metrics built on them."""

from __future__ import annotations

import os

import numpy as np
import pytest

from virnucpro_trainer.evaluate.outputs import (
    level_metrics,
    write_prediction_results,
    write_row_table,
)
from virnucpro_trainer.levels import chunk_level, record_level

PATTERN = r"^(.+?)_chunk_\d+"

# Record A: chunk 0's frames disagree (one very viral frame, two host frames), chunk 1 is viral.
# Record B: one chunk, frames all mildly host. Two ids do not parse.
ROWS = [
    ("A_chunk_0F1", 0.70, 1),  # highest viral 0.70; highest host (1 - 0.05) = 0.95 -> host
    ("A_chunk_0F2", 0.05, 1),
    ("A_chunk_0R3", 0.20, 1),
    ("A_chunk_1F1", 0.90, 1),  # highest viral 0.90; highest host 0.60 -> viral
    ("A_chunk_1R1", 0.40, 1),
    ("B_chunk_0F1", 0.45, 0),  # highest viral 0.45; highest host 0.70 -> host
    ("B_chunk_0F3", 0.30, 0),
    ("no_frame_here", 0.99, 0),  # no [FR][1-3] suffix: in no chunk
    ("contig7_F2", 0.80, 0),  # a chunk `contig7_` that record_pattern does not match
]


def levels(aggregate: str = "mean"):
    ids = [r[0] for r in ROWS]
    probs = np.array([r[1] for r in ROWS], dtype=np.float32)
    labels = np.array([r[2] for r in ROWS])
    chunks, unparsed_rows = chunk_level(ids, probs, labels)
    records, unparsed_chunks = record_level(chunks, PATTERN, aggregate)
    return chunks, unparsed_rows, records, unparsed_chunks


def test_chunks_follow_the_prediction_steps_rule():
    chunks, unparsed_rows, _, _ = levels()
    assert chunks.ids == ["A_chunk_0", "A_chunk_1", "B_chunk_0", "contig7_"]
    assert unparsed_rows == 1
    np.testing.assert_allclose(chunks.score, [0.70, 0.90, 0.45, 0.80], rtol=1e-6)
    assert chunks.viral.tolist() == [False, True, False, True]
    assert chunks.size.tolist() == [3, 2, 2, 1]
    assert chunks.labels.tolist() == [1, 1, 0, 0]


@pytest.mark.parametrize(
    ("aggregate", "scores", "viral"),
    [
        ("mean", [0.80, 0.45, 0.80], [True, False, True]),  # (0.70 + 0.90) / 2; 0.45
        ("max", [0.90, 0.45, 0.80], [True, False, True]),
        # one of A's two chunks is viral: a tie -> viral
        ("vote", [0.50, 0.0, 1.0], [True, False, True]),
    ],
)
def test_records_aggregate_their_chunks(aggregate, scores, viral):
    _, _, records, unparsed_chunks = levels(aggregate)
    # the chunk without a record pattern match is a record of its own (data/records.py), counted
    assert records.ids == ["A", "B", "contig7_"]
    assert unparsed_chunks == 1
    np.testing.assert_allclose(records.score, scores, rtol=1e-6)
    assert records.viral.tolist() == viral
    assert records.size.tolist() == [2, 1, 1]
    assert records.labels.tolist() == [1, 0, 0]


def test_given_host_probabilities_decide_the_rule():
    # score1 as written (not 1 - score2): a frame whose host probability ties the best viral one
    ids = ["x_chunk_0F1", "x_chunk_0F2"]
    chunks, _ = chunk_level(ids, np.array([0.6, 0.3]), None, np.array([0.6, 0.1]))
    assert chunks.viral.tolist() == [True]
    assert chunks.labels is None


def test_mixed_labels_are_counted_and_go_to_the_majority():
    ids = ["r_chunk_0F1", "r_chunk_0F2", "r_chunk_0F3"]
    chunks, _ = chunk_level(ids, np.array([0.9, 0.9, 0.1]), np.array([1, 0, 1]))
    assert chunks.mixed == 1
    assert chunks.labels.tolist() == [1]


def test_level_metrics_use_the_levels_own_prediction_and_each_threshold():
    chunks, _, _, _ = levels()
    m = level_metrics(chunks, {"at_0.5": 0.5, "at_threshold": 0.8})
    # own prediction: [F, T, F, T] against labels [1, 1, 0, 0]
    assert m["predicted"]["confusion_matrix"] == [[1, 1], [1, 1]]
    # scores [0.70, 0.90, 0.45, 0.80] cut at 0.5: [T, T, F, T]; at 0.8: [F, T, F, T]
    assert m["at_0.5"]["confusion_matrix"] == [[1, 1], [0, 2]]
    assert m["at_threshold"]["confusion_matrix"] == [[1, 1], [1, 1]]
    assert m["predicted"]["auroc"] == m["at_0.5"]["auroc"] == 0.75
    assert (m["units"], m["viral_units"], m["mixed_label_units"]) == (4, 2, 0)


class WatchedIds(list):
    """Ids that note, when their last one is taken, how much of `file` is already on disk."""

    def __init__(self, ids, file):
        super().__init__(ids)
        self.file, self.on_disk = file, None

    def __iter__(self):
        for i, name in enumerate(super().__iter__()):
            if i == len(self) - 1:
                self.on_disk = self.file.stat().st_size
            yield name


@pytest.mark.parametrize("which", ["prediction_results.txt", "predictions_rows.tsv"])
def test_prediction_files_are_written_as_their_lines_come(tmp_path, which):
    """A million rows' lines held at once took 0.3 GB beside a memory budget: the files one line
    per row are written as their lines are made, most of each on disk before its last line."""
    path = tmp_path / which
    n = 100_000
    ids = WatchedIds(
        [f"r{i}_chunk_0F1" for i in range(n)], tmp_path / f".{which}.tmp-{os.getpid()}"
    )
    probs = np.linspace(0, 1, n)
    if which == "prediction_results.txt":
        write_prediction_results(path, ids, 1 - probs, probs)
    else:
        write_row_table(path, ids, ["f.pt"] * n, None, probs, {"viral": 0.5})
    lines = path.read_text().splitlines()
    assert len(lines) == n + 1 and lines[-1].startswith(f"r{n - 1}_chunk_0F1\t")
    assert ids.on_disk > 0.9 * path.stat().st_size
