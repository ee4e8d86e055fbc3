"""Training on a CUDA GPU, one epoch each on the tiny demo data: the features in GPU memory, batches
through pinned host memory, bf16 autocast, and two runs of one seed that agree exactly (a compiled
run on CUDA: e2e/test_compile.py, since torch.compile runs the C++ compiler).

Skipped without CUDA; `pytest -m gpu` runs every GPU test. Each run must finish with finite losses
and metrics, and save a checkpoint that loads strictly into the prediction step's MLP on a machine
without a GPU (every tensor in it on the CPU)."""

from __future__ import annotations

import math

import pytest
import torch

from virnucpro_trainer.model import VirNucProMLP

from helpers import TINY, PredictionStepMLP, results, run_dirs, tensors, train_in_process

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    pytest.mark.usefixtures("tiny_data", "no_figures"),
]

CUDA = [*TINY, "device=cuda", "epochs=1"]


@pytest.fixture(autouse=True)
def torch_flags_restored():
    """A CUDA run makes cuDNN and cuBLAS deterministic for the whole process
    (runtime.seed_everything): the tests after these get torch's flags as they were."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    yield
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


def check_sound_run(run_dir) -> dict:
    """One finished epoch with finite losses and metrics, and a best-model checkpoint that loads
    with weights_only on a machine without a GPU and strictly into the prediction step's MLP;
    returns the checkpoint."""
    rows, test = results(run_dir)
    assert [r["epoch"] for r in rows] == ["1"]
    for column in ("train_loss", "val_loss", "val_accuracy", "val_f1", "val_auroc", "lr"):
        assert math.isfinite(float(rows[0][column])), column
    for key in ("loss", "accuracy", "precision", "recall", "f1", "auroc"):
        assert math.isfinite(test[key]), key
    assert sum(map(sum, test["confusion_matrix"])) == test["sequences"] > 0

    ckpt = torch.load(run_dir / "model_fastesm650.pth", weights_only=True)
    on_gpu = [t for t in tensors(ckpt) if t.device.type != "cpu"]
    assert not on_gpu, f"{len(on_gpu)} tensors saved on the GPU: torch.load fails without one"
    assert ckpt["epoch"] == test["best_epoch"] == 1
    assert ckpt["best_loss"] == test["best_val_loss"] == float(rows[0]["val_loss"])
    state = ckpt["model_state_dict"]
    assert not any(k.startswith(("_orig_mod.", "module.")) for k in state)
    assert all(v.dtype == torch.float32 for k, v in state.items() if "num_batches" not in k)
    assert all(torch.isfinite(v).all() for v in state.values())
    PredictionStepMLP().load_state_dict(state, strict=True)
    assert ckpt["config"]["device"] == "cuda"
    return ckpt


def output_dtypes(monkeypatch) -> list[torch.dtype]:
    """The dtype of every output of VirNucProMLP.forward from now on (training and scoring)."""
    seen, forward = [], VirNucProMLP.forward

    def recording(self, x):
        out = forward(self, x)
        seen.append(out.dtype)
        return out

    monkeypatch.setattr(VirNucProMLP, "forward", recording)
    return seen


def test_features_in_gpu_memory(tmp_path, caplog, monkeypatch):
    dtypes = output_dtypes(monkeypatch)
    caplog.set_level("INFO")
    run_dir = train_in_process(tmp_path, *CUDA, "features_on_gpu=true")
    assert "device cuda" in caplog.text
    assert "features: torch.float32 in GPU memory" in caplog.text
    check_sound_run(run_dir)
    assert dtypes and set(dtypes) == {torch.float32}  # no autocast unless bf16=true


def test_features_on_the_host_go_through_pinned_memory_with_the_same_results(
    tmp_path, caplog, monkeypatch
):
    pinned, pin_memory = [], torch.Tensor.pin_memory

    def recording(self, *args, **kwargs):
        out = pin_memory(self, *args, **kwargs)
        pinned.append(out.is_pinned())
        return out

    monkeypatch.setattr(torch.Tensor, "pin_memory", recording)
    caplog.set_level("INFO")
    host = train_in_process(tmp_path, *CUDA, "features_on_gpu=false")
    assert "features: torch.float32 in host memory" in caplog.text
    assert pinned and all(pinned)  # every batch copied to the GPU through pinned memory
    check_sound_run(host)

    pinned.clear()
    resident = train_in_process(tmp_path, *CUDA, "features_on_gpu=true")
    assert not pinned
    # the same batches, whichever memory they come from
    assert results(host) == results(resident)


def test_bf16_autocast(tmp_path, monkeypatch):
    dtypes = output_dtypes(monkeypatch)
    run_dir = train_in_process(tmp_path, *CUDA, "bf16=true")
    assert torch.bfloat16 in dtypes  # the forward passes ran under bf16 autocast
    ckpt = check_sound_run(run_dir)  # the saved weights are float32 all the same
    assert ckpt["config"]["bf16"] is True


def test_same_seed_same_results_on_cuda(tmp_path):
    for _ in range(2):
        train_in_process(tmp_path, *CUDA, "seed=7")
    first, second = run_dirs(tmp_path)
    a, b = check_sound_run(first), check_sound_run(second)
    assert results(first) == results(second)  # metrics.csv's losses, test_metrics.json
    assert a["model_state_dict"].keys() == b["model_state_dict"].keys()
    for key, tensor in a["model_state_dict"].items():
        assert torch.equal(tensor, b["model_state_dict"][key]), key
