"""Fine-tuning with train.py as a real process (issue 26): init_from starts a new run from a
run's weights and records where they came from; freeze=hidden keeps the first layer; weights of
another width are refused by name with nothing written; init_from cannot be mixed with resume=."""

from __future__ import annotations

import json

import pytest
import torch

from virnucpro_trainer.model import VirNucProMLP
from virnucpro_trainer.reports.tables import fmt

from helpers import TINY, run_dirs, run_train

pytestmark = pytest.mark.e2e

CPU = ["device=cpu", "cpu_threads=1"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A one-epoch run on the tiny demo data: (the folder it ran in, its run directory)."""
    cwd = tmp_path_factory.mktemp("fine_tuning")
    run_train(cwd, *TINY, *CPU, "epochs=1", "hydra.run.dir=base")
    return cwd, cwd / "base"


def weights(run_dir):
    return torch.load(run_dir / "model_fastesm650.pth", weights_only=True)


def test_init_from_starts_a_new_run_from_those_weights_and_says_so(base):
    cwd, run = base
    run_train(cwd, *TINY, *CPU, "epochs=1", "init_from=base", "freeze=hidden", "hydra.run.dir=ft")
    before, after = weights(run), weights(cwd / "ft")
    state, tuned = before["model_state_dict"], after["model_state_dict"]
    assert torch.equal(state["hidden_layer.weight"], tuned["hidden_layer.weight"])  # frozen
    assert not torch.equal(state["output_layer.weight"], tuned["output_layer.weight"])  # trained
    lineage = after["metadata"]["init_from"]
    assert lineage["path"] == str(run / "model_fastesm650.pth") and lineage["freeze"] == "hidden"
    assert lineage["model_id"] == before["metadata"]["huggingface_model_id"]
    test = json.loads((cwd / "ft/test_metrics.json").read_text())
    assert test["init_from"] == lineage and len(lineage["sha256"]) == 64
    assert f"from {lineage['path']}" in (cwd / "ft/report.md").read_text()
    # the model card: written from the results, its numbers are test_metrics.json's
    card = (cwd / "ft/model_card.md").read_text()
    assert f"Fine-tuned from `{lineage['path']}`" in card and lineage["sha256"] in card
    chosen = test["chosen_threshold"]
    for m in ("accuracy", "recall", "mcc"):
        half, at = test["intervals"].get(m), chosen["intervals"].get(m)
        assert f"| {m} | {fmt(test[m], half)} | {fmt(chosen[m], at)} |" in card
    assert f"| auroc | {fmt(test['auroc'], test['intervals'].get('auroc'))} | |" in card
    assert "- `init_from=base`" in card and "- `freeze=hidden`" in card  # the settings changed
    # the fine-tuned run fits its own out-of-distribution detector, for its own weights
    own, inherited = after["ood"], before["ood"]
    assert own["fitted_on"]["rows"] > 0 and test["ood"]["rows"]["n"] == test["sequences"]
    assert not torch.equal(own["validation"]["hidden"], inherited["validation"]["hidden"])


def test_weights_of_another_width_are_refused_and_nothing_is_written(base):
    cwd, run = base
    metadata = {**weights(run)["metadata"], "input_dim": 3328, "protein_dim": 2560}
    torch.save({"model_state_dict": VirNucProMLP(3328).state_dict(), "metadata": metadata},
               cwd / "wide.pth")  # fmt: skip
    done = run_train(cwd, *TINY, *CPU, "init_from=wide.pth", "hydra.run.dir=wide", expect_ok=False)
    printed = done.stdout + done.stderr
    assert done.returncode == 1 and "wide.pth has input_dim 3328" in printed
    assert "this run's model has 2048" in printed
    assert not (cwd / "wide").exists()


def test_init_from_and_resume_cannot_be_mixed(base):
    cwd, run = base
    done = run_train(cwd, f"resume={run}", "init_from=base", expect_ok=False)
    printed = done.stdout + done.stderr
    assert done.returncode != 0 and "give one of them" in printed
    assert run_dirs(cwd) == []  # no new run anywhere under outputs/


def test_init_from_errors_name_init_from(base):
    # issue 35: not evaluate.py's words (ckpt=)
    cwd, _ = base
    done = run_train(cwd, *TINY, *CPU, "init_from=missing.pth", "hydra.run.dir=gone",
                     expect_ok=False)  # fmt: skip
    printed = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in printed
    assert f"init_from={cwd / 'missing.pth'}: checkpoint not found (init_from= takes" in printed
    assert "ckpt=" not in printed and not (cwd / "gone").exists()
