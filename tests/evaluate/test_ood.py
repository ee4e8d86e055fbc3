"""Out-of-distribution p-values end to end in this process (issue 34): a tiny run fits its
detector and reports its test side; evaluate.py gives every unit a p-value (checked against a
computation from the checkpoint and the data files), combines rows by Simes, warns about a sample
half of an unseen population and abstains on request; a checkpoint without a detector still
scores, with the reason."""

from __future__ import annotations

import contextlib
import json
import shutil
from io import BytesIO

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from scipy import stats

from virnucpro_trainer.errors import UserError
from virnucpro_trainer.evaluate.ood import NO_DETECTOR
from virnucpro_trainer.model import VirNucProMLP
from virnucpro_trainer.stats.ood import (
    bonferroni,
    conformal_p,
    gaussian_coordinates,
    gaussian_distance,
)

from helpers import TINY, compose_train, evaluate_in_process, train_in_process

pytestmark = pytest.mark.slow  # whole pipelines in-process: not in the fast loop

DATA = TINY[:4]
FAST = ("device=cpu", "ci.enabled=false", "fraction.n_boot=20")


@contextlib.contextmanager
def no_pictures():
    """The no_figures fixture for this module's shared runs: no figure laid out or saved."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Figure, "tight_layout", lambda self, *args, **kwargs: None)
        patch.setattr(Figure, "savefig", lambda self, *args, **kwargs: None)
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_data_once):
    """A one-epoch tiny run: (its folder, its run directory, the data root)."""
    cwd = tmp_path_factory.mktemp("ood")
    root = cwd / compose_train(*TINY).data.root
    shutil.copytree(tiny_data_once, root)
    with no_pictures():
        return cwd, train_in_process(cwd, *TINY, "epochs=1"), root


@pytest.fixture(scope="module")
def test_side(trained):
    """evaluate.py on the run's own test side: (metrics.json, its directory)."""
    cwd, run, _ = trained
    out = cwd / "eval_test"
    with no_pictures():
        return evaluate_in_process(cwd, out, f"ckpt={run}", *DATA, *FAST), out


def read_table(path):
    header, *lines = path.read_text().splitlines()
    return [dict(zip(header.split("\t"), line.split("\t"), strict=True)) for line in lines]


def rows_of(root, ids):
    data = {}
    for path in sorted(root.rglob("*_merged.pt")):
        content = torch.load(path, weights_only=True)
        data.update(zip(content["ids"], content["data"], strict=True))
    return torch.stack([data[i] for i in ids])


def test_the_run_fits_a_detector_the_checkpoint_carries(trained):
    _, run, root = trained
    ckpt = torch.load(run / "model_fastesm650.pth", weights_only=True)  # plain types, tensors
    detector = ckpt["ood"]
    assert detector["method"] == "combined" and set(detector["parts"]) == {"input", "hidden"}
    assert detector["parts"]["input"]["basis"].shape == (29 + 2, 2048)
    n_val = len(detector["validation"]["input"])
    assert (
        n_val == len(detector["validation"]["hidden"]) == len(ckpt["validation_scores"]["labels"])
    )
    split = json.loads((run / "split.json").read_text())
    train_rows = sum(
        len(torch.load(root / f, weights_only=True)["ids"]) for f in split["train_files"]
    )
    assert detector["fitted_on"]["rows"] == train_rows  # fewer than ood.max_rows: every one
    buffer = BytesIO()
    torch.save(detector, buffer)
    # at the default widths: the bases (31 x 2048 and 31 x 512 float32), centres and scales,
    # and 8 bytes per validation row and part: far under 20 MB with 200,000 validation rows
    assert buffer.tell() < 400_000 + 16 * n_val
    test = json.loads((run / "test_metrics.json").read_text())
    assert test["ood"]["rows"]["n"] == test["sequences"] and test["ood"]["fitted_on"]["seed"] == 42
    assert "held out as the validation files are" in test["ood"]["expected"]
    for name in ("report.md", "model_card.md"):
        text = (run / name).read_text()
        assert "| rows | " in text and f"{test['ood']['rows']['flagged']} |" in text
    header = (run / "test_predictions.tsv").read_text().split("\n")[0]
    assert header.endswith("\tood_score\tood_p\tood")


def test_each_row_gets_its_conformal_p_value_and_units_combine_by_simes(trained, test_side):
    _, run, root = trained
    metrics, out = test_side
    rows = read_table(out / "predictions_rows.tsv")
    ids = [r["id"] for r in rows]
    # the same p-values computed here from the checkpoint and the data files, in float64
    ckpt = torch.load(run / "model_fastesm650.pth", weights_only=True)
    model = VirNucProMLP(2048).eval()
    model.load_state_dict(ckpt["model_state_dict"])
    x = rows_of(root, ids)
    with torch.no_grad():
        hidden = model.relu(model.bn1(model.hidden_layer(x)))
    detector, p_parts = ckpt["ood"], []
    for part, features in (("input", x), ("hidden", hidden)):
        state = detector["parts"][part]
        score = gaussian_distance(*gaussian_coordinates(features.numpy(), state), state)
        p_parts.append(conformal_p(score, detector["validation"][part].numpy()))
    expected = bonferroni(p_parts)
    found = np.array([float(r["ood_p"]) for r in rows])
    step = 2 / (len(detector["validation"]["input"]) + 1)  # one validation score either side
    assert np.all(np.abs(found - expected) <= step + 1e-6)
    assert np.mean(np.isclose(found, expected, rtol=1e-5)) > 0.98
    assert [r["ood"] for r in rows] == [str(int(p <= 0.01)) for p in found]
    # chunks and records: Simes over their rows' p-values
    for level, key in (("chunks", lambda i: i[:-2]), ("records", lambda i: i.split("_chunk_")[0])):
        groups: dict[str, list[float]] = {}
        for i, p in zip(ids, found, strict=True):
            groups.setdefault(key(i), []).append(p)
        units = read_table(out / f"predictions_{level}.tsv")
        assert len(units) == len(groups)
        for unit in units:
            p = np.sort(groups[unit[level[:-1]]])
            simes = min(1.0, np.min(len(p) * p / np.arange(1, len(p) + 1)))
            assert float(unit["ood_p"]) == pytest.approx(simes, rel=1e-5)
    block = metrics["ood"]["rows"]
    flagged = sum(r["ood"] == "1" for r in rows)
    assert block["n"] == len(rows) and block["flagged"] == flagged
    binomial = stats.binomtest(flagged, len(rows), 0.01, alternative="greater").pvalue
    assert block["p_value"] == pytest.approx(binomial) and block["warning"] is None
    assert "Unlike the training data" not in (out / "report.md").read_text()
    assert "## Is the sample like the training data?" in (out / "report.md").read_text()


def unseen_rows(n: int, seed: int = 0) -> torch.Tensor:
    """Rows of a population the demo data never had: wider spread, another centre."""
    gen = torch.Generator().manual_seed(seed)
    return 1.5 * torch.randn(n, 2048, generator=gen) + 0.5 * torch.randn(2048, generator=gen)


def test_a_sample_half_unseen_is_flagged_warned_about_and_abstained_on(trained, no_figures):
    cwd, run, root = trained
    sample = cwd / "sample"
    split = json.loads((run / "split.json").read_text())
    n = 0
    for name in split["test_files"]:
        (sample / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / name, sample / name)
        n += len(torch.load(root / name, weights_only=True)["ids"])
    frames = ("F1", "F2", "F3", "R1", "R2", "R3")
    ids = [f"UNSEEN{k // 60}.1_chunk_{k // 6}{frames[k % 6]}" for k in range(n)]
    (sample / "new").mkdir()
    torch.save({"ids": ids, "data": unseen_rows(n)}, sample / "new/unseen_merged.pt")
    out = cwd / "eval_sample"
    metrics = evaluate_in_process(
        cwd, out, f"ckpt={run}", f"data.root={sample}", "labelled=false", *FAST,
        "fraction.min_sequences=100", "ood.abstain=true",
    )  # fmt: skip
    block = metrics["ood"]["rows"]
    assert block["share"] >= 0.4 and block["p_value"] < 1e-10
    assert "are unlike the data the model was trained on" in block["warning"]
    for name in ("report.md", "model_card.md"):
        assert "Unlike the training data (rows)" in (out / name).read_text()
    # abstain: flagged rows are called `abstain`, their FDR columns NA; the rest are called
    rows = read_table(out / "predictions_rows.tsv")
    flagged = [r for r in rows if r["ood"] == "1"]
    assert len(flagged) == block["flagged"] and all(r["call"] == "abstain" for r in flagged)
    assert all(r["q_value"] == "NA" for r in flagged)
    assert {r["call"] for r in rows if r["ood"] == "0"} <= {"0", "1"}
    assert metrics["calls"]["rows"]["abstained"] == block["flagged"]
    estimate = metrics["estimated_viral_fraction"]["rows"]
    assert estimate["n_sequences"] == len(rows) - block["flagged"]
    assert estimate["with_flagged_units"]["n_sequences"] == len(rows)
    # the prediction step's own file keeps its format
    lines = (out / "prediction_results.txt").read_text().split("\n")
    assert lines[0] == "Sequence_ID\tPrediction\tscore1\tscore2" and len(lines[1].split("\t")) == 4


def test_a_checkpoint_without_a_detector_still_scores_with_the_reason(trained, no_figures):
    cwd, run, root = trained
    old = cwd / "no_detector.pth"
    obj = torch.load(run / "model_fastesm650.pth", weights_only=True)
    del obj["ood"]
    torch.save(obj, old)
    out = cwd / "eval_old"
    metrics = evaluate_in_process(cwd, out, f"ckpt={old}", f"data.root={root}", *FAST)
    assert metrics["rows"]["units"] > 0
    for level in ("rows", "chunks", "records"):
        assert metrics["ood"][level]["reason"] == NO_DETECTOR
        assert read_table(out / f"predictions_{level}.tsv")[0]["ood_p"] == "NA"
    assert "No out-of-distribution p-values: the checkpoint carries no" in (
        (out / "report.md").read_text()
    )
    with pytest.raises(UserError, match=r"ood.method=knn needs \['knn'\]: use auto, none"):
        evaluate_in_process(cwd, cwd / "eval_knn", f"ckpt={run}", *DATA, "ood.method=knn")
