"""Each scored row's out-of-distribution score and conformal p-value (issue 34; docs/ood.md), in
the scoring pass itself: `BatchScorer` is `predict_scores`' `extra`, reading the hidden layer
through a forward hook on the model's ReLU, so nothing is scored twice.

A checkpoint's `ood` (written by train/ood_fit.py and train/held_out.py; docs/checkpoint.md):
{method, parts: {part: fitted state}, validation: {part: the validation rows' scores},
fitted_on}. A row's p-value is conformal among the validation scores of each part
(stats/ood.py), merged by Bonferroni over the parts of a method (`combined`: input and hidden)
and over the members of an ensemble; where several p-values merge, the row's score is
-log10 of the smallest of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from virnucpro_trainer.errors import UserError
from virnucpro_trainer.stats.names import OOD_PARTS as PARTS
from virnucpro_trainer.stats.ood import (
    bonferroni,
    conformal_p,
    energy,
    gaussian_distance,
    knn_distance,
)

NO_DETECTOR = (
    "the checkpoint carries no out-of-distribution detector (written before issue 34, by "
    "another program, or trained with ood.method=none): retrain to fit one"
)
OFF = "not asked for (ood.method=none)"
HIDDEN = ("hidden", "knn")  # the parts that read the hidden layer (after its ReLU)


@dataclass
class RowOOD:
    """Each row's score and p-value (None, with `reason`, where there is no detector)."""

    method: str
    score: np.ndarray | None = None
    p: np.ndarray | None = None
    reason: str | None = None


def chosen_parts(detector: dict, method: str, where: object) -> tuple[str, tuple[str, ...]]:
    """(method, its parts): `auto` is the detector's own; another must be one it holds."""
    own = str(detector.get("method"))
    method = own if method == "auto" else method
    held = set(detector.get("parts") or {})
    if method not in PARTS or not set(PARTS[method]) <= held:
        usable = [m for m, parts in PARTS.items() if set(parts) <= held]
        raise UserError(
            f"{where}: its out-of-distribution detector is {own!r}, fitted with the parts "
            f"{sorted(held)}; ood.method={method} needs {list(PARTS.get(method, ()))}: use "
            f"auto, none or one of {usable}"
        )
    return method, PARTS[method]


class BatchScorer:
    """One model's raw scores of each part, batch by batch (`predict_scores`' `extra`), while
    entered (`with`: the hook on the model's ReLU)."""

    def __init__(self, model: torch.nn.Module, detector: dict, method: str = "auto", where=""):
        self.model, self.detector = model, detector
        self.method, self.parts = chosen_parts(detector, method, where)
        self.states = {part: detector["parts"][part] for part in self.parts}
        self.validation = detector.get("validation") or {}
        self.device, self.hidden, self.handle = None, None, None

    def __enter__(self) -> BatchScorer:
        if any(part in HIDDEN for part in self.parts):
            self.handle = self.model.relu.register_forward_hook(self._keep)
        return self

    def __exit__(self, *_) -> None:
        if self.handle is not None:
            self.handle.remove()
        self.handle, self.hidden = None, None

    def _keep(self, module, inputs, output) -> None:
        self.hidden = output

    def _on(self, device: torch.device) -> None:
        """The Gaussian parts' tensors on the scoring device (once). Rows are scored as u = x *
        scale, one product u @ [basis; center * scale].T and |u|^2: the centring is folded into
        constants, so each batch costs one pass to scale it (into a buffer kept for the next
        batch), the product and a norm (stats/ood.py's coordinates, from these)."""
        if self.device == device:
            return
        self.device, self.tensors, self.buffers = device, {}, {}
        for part, state in self.states.items():
            if part not in ("input", "hidden"):
                continue
            scale = torch.as_tensor(state["scale"]).to(device)
            basis = torch.as_tensor(state["basis"]).to(device)
            shift = torch.as_tensor(state["center"]).to(device) * scale
            offsets = (basis.double() @ shift.double()).cpu().numpy()
            both = torch.cat([basis, shift[None]])
            self.tensors[part] = (scale, both, offsets, float(shift.double().square().sum()))

    def _gaussian(self, part: str, x: torch.Tensor) -> np.ndarray:
        scale, basis, offsets, shift_sq = self.tensors[part]
        buffer = self.buffers.get(part)
        if buffer is None or len(buffer) < len(x):
            buffer = self.buffers[part] = x.new_empty(x.shape, dtype=torch.float32)
        u = torch.mul(x, scale, out=buffer[: len(x)])
        found = (u @ basis.T).double().cpu().numpy()
        sq_u = torch.linalg.vector_norm(u, dim=1).double().cpu().numpy() ** 2
        projected = found[:, :-1] - offsets  # (x - center) * scale, projected
        sq_norm = sq_u - 2 * found[:, -1] + shift_sq  # |(x - center) * scale|^2
        return gaussian_distance(projected, sq_norm, self.states[part])

    def __call__(self, x: torch.Tensor, logits: torch.Tensor) -> np.ndarray:
        self._on(x.device)
        columns = []
        for part in self.parts:
            if part == "input":
                columns.append(self._gaussian(part, x))
            elif part == "hidden":
                columns.append(self._gaussian(part, self.hidden))
            elif part == "knn":
                columns.append(knn_distance(self.hidden.float().cpu().numpy(), self.states[part]))
            else:
                columns.append(energy(logits.float().cpu().numpy()))
        return np.column_stack(columns)

    def p_values(self, raw: np.ndarray | None) -> list[np.ndarray]:
        """Each part's conformal p-values of `raw` (this scorer's columns)."""
        raw = np.empty((0, len(self.parts))) if raw is None else raw
        return [
            conformal_p(raw[:, j], np.asarray(self.validation[part]))
            for j, part in enumerate(self.parts)
        ]


def scorers_for(members: list, method: str) -> tuple[list[BatchScorer] | None, str | None]:
    """A BatchScorer per member (ScoringModel), or None with the reason there is none."""
    if method == "none":
        return None, OFF
    lacking = [str(m.path) for m in members if not m.ood]
    if lacking:
        which = "" if len(members) == 1 else f" (ensemble members without one: {lacking})"
        return None, NO_DETECTOR + which
    try:
        return [BatchScorer(m.model, m.ood, method, m.path) for m in members], None
    except (KeyError, TypeError, AttributeError) as err:  # a hand-made or damaged checkpoint
        raise UserError(
            f"{members[0].path}: its out-of-distribution detector (`ood`) cannot be used "
            f"({type(err).__name__}: {err}); expected method, parts and validation "
            "(docs/checkpoint.md)"
        ) from None


def row_ood(scorers: list[BatchScorer] | None, raws: list, reason: str | None) -> RowOOD:
    """Each row's p-value (merged by Bonferroni over parts and members) and score."""
    if scorers is None:
        return RowOOD("none" if reason == OFF else "unavailable", reason=reason)
    methods = {s.method for s in scorers}
    method = methods.pop() if len(methods) == 1 else "mixed"
    per_member = [s.p_values(raw) for s, raw in zip(scorers, raws, strict=True)]
    every = [p for parts in per_member for p in parts]
    if len(every) == 1:
        return RowOOD(method, np.asarray(raws[0][:, 0], dtype=np.float64), every[0])
    merged = [bonferroni(parts) for parts in per_member]
    p = bonferroni(merged) if len(merged) > 1 else merged[0]
    return RowOOD(method, -np.log10(np.min(np.stack(every), axis=0)), p)


def with_validation(detector: dict, raw: np.ndarray | None, parts: tuple[str, ...]) -> dict:
    """The detector with its validation rows' raw scores (float64 tensors, one per part: as
    the rows it is compared with are scored, so a row scores exactly as its twin would)."""
    raw = np.empty((0, len(parts))) if raw is None else raw
    scores = {p: torch.as_tensor(raw[:, j], dtype=torch.float64) for j, p in enumerate(parts)}
    return {**detector, "validation": scores}
