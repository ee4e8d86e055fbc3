"""The out-of-distribution detector fitted when training ends (issue 34; docs/ood.md): the best
model's inputs and hidden-layer activations (after its ReLU) of a seeded sample of at most
`ood.max_rows` training rows, fitted as `ood.method` needs (stats/ood.py). Its validation scores
are added by the validation pass of train/held_out.py (evaluate/ood.py's `with_validation`); the
checkpoint carries the whole detector under `ood` (docs/checkpoint.md).

Memory while fitting: the sample's features, ood.max_rows x (input width + hidden width) x 4
bytes (2 GB at the defaults), freed when the fit ends; under data.memory_budget_gb the sample is
cut to what an eighth of the budget holds (`fit_rows`)."""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from virnucpro_trainer.data.batches import BatchSource
from virnucpro_trainer.stats.names import OOD_PARTS as PARTS
from virnucpro_trainer.stats.ood import fit_gaussian, fit_knn

log = logging.getLogger(__name__)


def fit_rows(
    max_rows: int, model: torch.nn.Module, source: BatchSource, budget_bytes: int | None
) -> int:
    """`max_rows`, or fewer where data.memory_budget_gb is set: the sample's input and hidden
    features (float32) take at most an eighth of the budget (the fit's temporaries about double
    them, and the budget's pages of the store stay mapped), at least 1,000 rows."""
    if budget_bytes is None:
        return max_rows
    per_row = 4 * (source.features.shape[1] + model.hidden_layer.out_features)
    cap = max(1000, budget_bytes // 8 // per_row)
    if cap < max_rows:
        log.info("out-of-distribution detector: %d training rows at most (an eighth of "
                 "data.memory_budget_gb), not ood.max_rows=%d", cap, max_rows)  # fmt: skip
    return min(max_rows, cap)


def sample_rows(rows: torch.Tensor, max_rows: int, seed: int) -> torch.Tensor:
    """A seeded sample of at most `max_rows` of `rows`, in ascending order (reads stay mostly
    sequential)."""
    if len(rows) <= max_rows:
        return torch.sort(rows).values
    pick = np.random.default_rng(seed).choice(len(rows), size=max_rows, replace=False)
    return torch.sort(rows[torch.as_tensor(pick)]).values


@torch.no_grad()
def features(
    model: torch.nn.Module,
    source: BatchSource,
    rows: torch.Tensor,
    batch_size: int,
    wanted: set[str],
    bf16: bool = False,
) -> dict[str, np.ndarray]:
    """The rows' `input` and/or `hidden` features (float32 numpy) and their `labels`."""
    model.eval()
    hidden_dim = model.hidden_layer.out_features
    out = {"labels": np.empty(len(rows), dtype=np.int64)}
    if "input" in wanted:
        out["input"] = np.empty((len(rows), source.features.shape[1]), dtype=np.float32)
    if "hidden" in wanted:
        out["hidden"] = np.empty((len(rows), hidden_dim), dtype=np.float32)
    kept = {}
    handle = model.relu.register_forward_hook(lambda m, i, o: kept.update(hidden=o))
    done = 0
    try:
        for x, y in source.eval_batches(rows, batch_size):
            with torch.autocast(source.device.type, dtype=torch.bfloat16, enabled=bf16):
                model(x)
            n = len(y)
            out["labels"][done : done + n] = y.cpu().numpy()
            if "input" in out:
                out["input"][done : done + n] = x.float().cpu().numpy()
            if "hidden" in out:
                out["hidden"][done : done + n] = kept["hidden"].float().cpu().numpy()
            done += n
    finally:
        handle.remove()
    return out


def fit_detector(
    model: torch.nn.Module,
    source: BatchSource,
    train_rows: torch.Tensor,
    method: str,
    max_rows: int,
    seed: int,
    batch_size: int,
    bf16: bool = False,
) -> dict | None:
    """The detector `method` needs (None for `none`), without its validation scores: {method,
    parts: {part: state as tensors and floats}, fitted_on: {rows, seed}} (the seconds it took
    are logged, not stored: a run's results do not depend on how busy the machine was)."""
    if method == "none":
        return None
    start = time.perf_counter()
    parts = PARTS[method]
    rows = sample_rows(train_rows, max_rows, seed)
    wanted = {"input" if part == "input" else "hidden" for part in parts if part != "energy"}
    found = features(model, source, rows, batch_size, wanted, bf16) if wanted else {}
    states = {}
    for part in parts:  # fit_gaussian centres its rows in place: each part has its own
        if part == "knn":
            states[part] = fit_knn(found["hidden"], seed=seed)
        elif part == "energy":
            states[part] = {}
        else:
            states[part] = fit_gaussian(found.pop(part), found["labels"], seed=seed)
    seconds = time.perf_counter() - start
    log.info("out-of-distribution detector (%s) fitted on %d training rows in %.1f s",
             method, len(rows), seconds)  # fmt: skip
    parts_out = {part: plain(state) for part, state in states.items()}
    return {"method": method, "parts": parts_out, "fitted_on": {"rows": len(rows), "seed": seed}}


def plain(state: dict) -> dict:
    """A fitted state with its arrays as CPU tensors (the checkpoint loads weights_only)."""
    return {
        k: torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
        for k, v in state.items()
    }
