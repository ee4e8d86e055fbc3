"""torch.compile end to end, in this process: a compiled run, on the CPU and on CUDA, saves the
plain weights the prediction step loads (e2e: torch.compile runs the C++ compiler; the other GPU
paths: gpu/test_cuda.py)."""

from __future__ import annotations

import math

import pytest
import torch

from helpers import TINY, PredictionStepMLP, results, tensors, train_in_process


@pytest.mark.e2e  # torch.compile runs the C++ compiler
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.usefixtures("tiny_data")
def test_compiled_bf16_run_saves_plain_weights(tmp_path):
    run_dir = train_in_process(tmp_path, *TINY, "epochs=1", "compile=true", "bf16=true")
    ckpt = torch.load(run_dir / "model_fastesm650.pth", weights_only=True)
    assert not any(k.startswith(("_orig_mod.", "module.")) for k in ckpt["model_state_dict"])
    PredictionStepMLP().load_state_dict(ckpt["model_state_dict"], strict=True)


@pytest.mark.e2e  # torch.compile runs the C++ compiler, and Triton's
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.usefixtures("tiny_data", "no_figures")
def test_compiled_run_on_cuda_saves_plain_weights(tmp_path, monkeypatch):
    compiled, compile_ = [], torch.compile

    def recording(model, *args, **kwargs):
        compiled.append(type(model).__name__)
        return compile_(model, *args, **kwargs)

    monkeypatch.setattr(torch, "compile", recording)
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        run_dir = train_in_process(tmp_path, *TINY, "device=cuda", "epochs=1", "compile=true")
    finally:  # a CUDA run makes torch deterministic for the whole process
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
    assert compiled == ["VirNucProMLP"]
    rows, test = results(run_dir)
    assert [r["epoch"] for r in rows] == ["1"]
    for value in (rows[0]["train_loss"], rows[0]["val_loss"], test["loss"], test["auroc"]):
        assert math.isfinite(float(value))
    ckpt = torch.load(run_dir / "model_fastesm650.pth", weights_only=True)
    assert all(t.device.type == "cpu" for t in tensors(ckpt))  # loads without a GPU
    assert not any(k.startswith(("_orig_mod.", "module.")) for k in ckpt["model_state_dict"])
    PredictionStepMLP().load_state_dict(ckpt["model_state_dict"], strict=True)
