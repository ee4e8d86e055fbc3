"""Device choice and seeding: what decides where, and how reproducibly, a run computes."""

from __future__ import annotations

import logging
import os
import platform
import random

import numpy as np
import torch

from virnucpro_trainer.errors import UserError

log = logging.getLogger(__name__)


def processor(device: torch.device | None = None) -> str:
    """What computes: the GPU's name on CUDA, else the CPU model (from /proc/cpuinfo on Linux).
    Written into train.log and the benchmarks' output, so figures say where they came from."""
    if device is not None and device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def describe(device: torch.device) -> str:
    """For the log: the device, what it is, the CPU threads and the torch version."""
    return (
        f"{device}: {processor(device)} ({torch.get_num_threads()} CPU threads), "
        f"torch {torch.__version__}"
    )


def select_device(requested: str) -> torch.device:
    """`auto` takes CUDA when present and falls back to the CPU with a warning."""
    has_cuda = torch.cuda.is_available()
    if requested == "cuda" and not has_cuda:
        raise UserError(
            "device=cuda but PyTorch sees no CUDA GPU (torch.cuda.is_available() is False); "
            "use device=cpu or device=auto, or install a CUDA build of PyTorch"
        )
    if requested == "auto" and not has_cuda:
        log.warning("no CUDA GPU found: computing on the CPU (set device=cpu to silence this)")
    return torch.device("cuda" if requested != "cpu" and has_cuda else "cpu")


def seed_everything(seed: int, device: torch.device) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA); on CUDA, make cuDNN and cuBLAS deterministic."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if device.type == "cuda":
        # The CPU kernels used here are deterministic already; this call costs ~1 s of imports.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
