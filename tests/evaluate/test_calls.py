"""evaluate/calls.py: the keys each level's units are compared by, the validation's host units,
the conformal calls with their reason, and each chunk's and row's record call (issue 33)."""

from __future__ import annotations

import numpy as np
import pytest

from virnucpro_trainer.evaluate.calls import (
    Keys,
    conformal_calls,
    host_keys,
    null_levels,
    unit_keys,
    with_record_calls,
)
from virnucpro_trainer.levels import Level, chunk_level, record_level

PATTERN = r"^(.+)_chunk_\d+"


def sample_levels(with_logits: bool = True) -> dict[str, Level]:
    ids = ["A.1_chunk_0F1", "A.1_chunk_0R2", "A.1_chunk_1F1", "B.1_chunk_0F3", "odd"]
    z = np.array([2.0, 5.0, -1.0, 0.5, 3.0], dtype=np.float32)
    p = (1 / (1 + np.exp(-z))).astype(np.float32)
    rows = Level(ids, p, p >= 0.5, np.ones(5, np.int64), None, ranking=z if with_logits else None)
    chunks, unparsed = chunk_level(ids, p, None, np.float32(1) - p)
    assert unparsed == 1  # "odd": no frame suffix, no chunk
    records, _ = record_level(chunks, PATTERN, "vote")
    return {"rows": rows, "chunks": chunks, "records": records}


def test_keys_rank_chunks_by_their_highest_frame_logit_and_records_by_their_mean():
    levels = sample_levels()
    keys = unit_keys(levels, PATTERN)
    assert keys["rows"].score.tolist() == [2.0, 5.0, -1.0, 0.5, 3.0]
    assert levels["chunks"].ids == ["A.1_chunk_0", "A.1_chunk_1", "B.1_chunk_0"]
    assert keys["chunks"].score.tolist() == [5.0, -1.0, 0.5]
    assert keys["chunks"].size.tolist() == [2, 1, 1]  # frames: the size bins of chunks
    assert levels["records"].ids == ["A.1", "B.1"]
    assert keys["records"].score.tolist() == [2.0, 0.5]  # mean of (5, -1); 0.5
    assert keys["records"].tie.tolist() == [0.5, 1.0]  # the vote share breaks ties
    assert keys["records"].size.tolist() == [2, 1]
    # without logits (scores from elsewhere) the chunks rank by their score
    plain = unit_keys(sample_levels(with_logits=False), PATTERN)
    assert plain["chunks"].score == pytest.approx(levels["chunks"].score, rel=1e-6)


def test_the_validation_is_built_by_the_samples_rules_and_only_its_hosts_count():
    ids = [f"G{g}.1_chunk_{c}F{f}" for g in range(4) for c in range(3) for f in (1, 2)]
    labels = np.array([g % 2 for g in range(4) for _ in range(6)], dtype=np.uint8)
    logits = np.linspace(-3, 3, len(ids)).astype(np.float32)
    validation = {"ids": "\n".join(ids), "labels": labels, "logits": logits,
                  "record_pattern": PATTERN}  # fmt: skip
    units = null_levels(validation, temperature=2.0, aggregate="vote")
    assert [len(units[n].ids) for n in ("rows", "chunks", "records")] == [24, 12, 4]
    assert units["rows"].score.dtype == np.float32  # as the sample's probabilities
    keys = unit_keys(units, PATTERN)
    hosts = host_keys(units["records"], keys["records"])
    assert hosts.score.size == 2 and hosts.size.tolist() == [3, 3]


def test_calls_follow_bh_and_too_few_hosts_are_said():
    rng = np.random.default_rng(0)
    hosts = Keys(rng.normal(size=2000), np.zeros(2000), np.ones(2000, np.int64))
    score = np.r_[rng.normal(size=180), rng.normal(6.0, 0.5, size=20)]  # 20 viral, far out
    sample = Keys(score, np.zeros(200), np.ones(200, np.int64))
    found = conformal_calls(sample, hosts, 0.1, 0.1, min_hosts=100)
    assert found.called[180:].all() and found.called[:180].sum() <= 4
    assert found.null_share == pytest.approx(0.9) and found.reason is None
    assert (found.called == (found.q_value <= 0.1)).all()
    # 50 host units: the smallest p-value 1/51 cannot reach 0.1 x 20 / 180: nothing, and why
    few = Keys(hosts.score[:50], hosts.tie[:50], hosts.size[:50])
    none = conformal_calls(sample, few, 0.1, 0.1, min_hosts=100)
    assert not none.called.any()
    assert none.reason.startswith("too few validation host units: 50")
    assert none.as_dict()["size_bins"] == [{"sizes": [1, None], "hosts": 50}]


def test_each_chunk_and_row_carries_its_records_call():
    levels = sample_levels()
    columns = {
        "rows": {"q_value": np.zeros(5), "call": np.zeros(5, bool), "ood": np.zeros(5)},
        "chunks": {"call": np.array([True, False, False])},
        "records": {"call": np.array([True, False])},
    }
    out = with_record_calls(columns, levels, PATTERN)
    assert list(out["rows"]) == ["q_value", "call", "record_call", "ood"]
    assert out["rows"]["record_call"][:4].tolist() == [1, 1, 1, 0]
    assert np.isnan(out["rows"]["record_call"][4])  # no frame suffix: no record
    assert out["chunks"]["record_call"].tolist() == [1, 1, 0]
    assert "record_call" not in out["records"]
    # abstaining records pass their `abstain` on; no calls at all: NA
    columns["records"]["call"] = np.array(["abstain", 0], dtype=object)
    assert with_record_calls(columns, levels, PATTERN)["chunks"]["record_call"].tolist() == [
        "abstain", "abstain", 0
    ]  # fmt: skip
    columns["records"]["call"] = np.full(2, np.nan)
    assert np.isnan(with_record_calls(columns, levels, PATTERN)["chunks"]["record_call"]).all()
