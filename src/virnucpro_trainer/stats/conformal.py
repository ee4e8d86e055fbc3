"""Viral calls that do not trust the tail's calibration (issue 33): each unit's conformal p-value
against the validation's host units of the same level (Bates, Candes, Lei, Romano & Sesia 2023,
"Testing for outliers with conformal p-values"), then Benjamini-Hochberg with Storey's null share.

A unit's p-value is (1 + the host units scoring at least as high) / (n + 1): under the null (the
unit is a host unit drawn like the validation's), it is at most u with probability at most u,
whatever the model's calibration, because only the ranking counts. Scores are compared as keys:
a primary score and a tie-break, both compared exactly (the caller rounds both sides alike).

Records differ in size and a score aggregated over more chunks behaves differently, so units are
compared within Mondrian bins of their size: sizes 1, 2-3, 4-7, 8-15, ... (powers of two), then,
from the largest sizes down, a bin holding fewer than `min_hosts` host units joins the next
smaller one (the smallest, if still short, joins the next larger one). A unit outside the
validation's sizes falls into the first or the last bin. A bin's p-values move in steps of
1/(hosts + 1), so the minimum also grows until a bin resolves BH's threshold for the sample's
expected viral units RESOLUTION times over (`bin_minimum`): narrow bins where the sample allows
(a high fraction, many validation hosts), one bin where it needs every host unit to call at all.
Plain arrays in, plain values out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

METHODS = ("conformal", "lfdr")
DEFAULT_METHOD = "conformal"  # chosen by benchmarks/fdr_calls.py (docs/cutoffs-and-calibration.md)
MIN_BIN_HOSTS = 100  # validation host units per size bin, at least (benchmarks/fdr_calls.py)
RESOLUTION = 5  # a bin holds at least this many host units per BH threshold's worth of p-value


@dataclass(frozen=True)
class SizeBins:
    """Contiguous size ranges [low, high) (the last one open), each with its host units."""

    low: np.ndarray  # int64, the first starts at 0
    high: np.ndarray  # float64, the last is inf
    hosts: np.ndarray  # int64: validation host units in each bin

    def of(self, size) -> np.ndarray:
        """Each size's bin index."""
        s = np.asarray(size, dtype=np.float64)
        return np.clip(np.searchsorted(self.low, s, side="right") - 1, 0, self.low.size - 1)

    def as_list(self) -> list[dict]:
        """metrics.json's description: [{"sizes": [low, high or None], "hosts": n}, ...]."""
        return [
            {"sizes": [max(1, int(lo)), None if math.isinf(hi) else int(hi) - 1], "hosts": int(n)}
            for lo, hi, n in zip(self.low, self.high, self.hosts, strict=True)
        ]


def size_bins(host_sizes, min_hosts: int = MIN_BIN_HOSTS) -> SizeBins:
    """Mondrian bins of unit sizes (module docstring): powers of two, merged until each holds at
    least `min_hosts` of the validation's host units (one bin when they are fewer in all)."""
    sizes = np.asarray(host_sizes, dtype=np.int64)
    if int(min_hosts) < 1:
        raise ValueError(f"min_hosts must be at least 1, got {min_hosts!r}")
    top = int(sizes.max()) if sizes.size else 1
    edges = [0, 2] + [2**j for j in range(2, max(2, top.bit_length()) + 1)]
    counts = np.histogram(sizes, bins=[*edges, math.inf])[0] if sizes.size else [0]
    bins: list[list[float]] = []  # [low, high, hosts], built from the largest sizes down
    high, held = math.inf, 0
    for low, count in zip(reversed(edges[: len(counts)]), reversed(counts), strict=True):
        held += int(count)
        if held >= min_hosts:
            bins.insert(0, [low, high, held])
            high, held = low, 0
    if not bins:
        bins = [[0, math.inf, held]]
    elif held:  # the smallest sizes, still short: they join the next larger bin
        bins[0][0], bins[0][2] = 0, bins[0][2] + held
    bins[0][0] = 0
    low, hi, n = (np.array(x) for x in zip(*bins, strict=True))
    return SizeBins(low.astype(np.int64), hi.astype(np.float64), n.astype(np.int64))


def _keys(primary, tie) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(primary, dtype=np.float64)
    t = np.zeros_like(p) if tie is None else np.asarray(tie, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 1:
        raise ValueError(f"scores and tie-breaks must be 1-D of one length: {p.shape}, {t.shape}")
    if np.isnan(p).any() or np.isnan(t).any():
        raise ValueError("scores and tie-breaks must not be NaN")
    return p, t


def conformal_pvalues(scores, null_scores, tie=None, null_tie=None) -> np.ndarray:
    """Each unit's conformal p-value, (1 + #{null keys >= its key}) / (n + 1), keys compared by
    score, then by tie-break (higher = more viral). n = 0 gives 1 (nothing to compare with)."""
    s, t = _keys(scores, tie)
    ns, nt = _keys(null_scores, null_tie)
    # dense ranks of all keys together: equal keys get one rank
    both_s, both_t = np.r_[s, ns], np.r_[t, nt]
    order = np.lexsort((both_t, both_s))
    new = np.r_[True, (np.diff(both_s[order]) != 0) | (np.diff(both_t[order]) != 0)]
    rank = np.empty(order.size, np.int64)
    rank[order] = np.cumsum(new)
    mine, null = rank[: s.size], np.sort(rank[s.size :])
    at_least = null.size - np.searchsorted(null, mine, side="left")
    return (1.0 + at_least) / (null.size + 1.0)


def mondrian_pvalues(scores, sizes, null_scores, null_sizes, bins: SizeBins, tie=None,
                     null_tie=None) -> np.ndarray:  # fmt: skip
    """Conformal p-values computed within each unit's size bin (`bins`, from size_bins)."""
    s, t = _keys(scores, tie)
    ns, nt = _keys(null_scores, null_tie)
    mine, theirs = bins.of(sizes), bins.of(null_sizes)
    p = np.ones(s.size)
    for b in np.unique(mine):
        i, j = mine == b, theirs == b
        p[i] = conformal_pvalues(s[i], ns[j], t[i], nt[j])
    return p


def bh_qvalues(pvalues, null_share: float = 1.0) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values with Storey's null share pi0: the smallest
    pi0 m p_(k) / k over the ranks k at or above each unit's; a unit is called at FDR alpha when
    its q-value is at most alpha (the BH step-up rule at alpha pi0 / pi0)."""
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1 or not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise ValueError("p-values must be a 1-D array of numbers in [0, 1]")
    pi0 = float(null_share)
    if not (math.isfinite(pi0) and 0 < pi0 <= 1):
        raise ValueError(f"null_share must be in (0, 1], got {null_share!r}")
    if p.size == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ranked = pi0 * p.size * p[order] / np.arange(1, p.size + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(q)
    out[order] = np.minimum(q, 1.0)
    return out


def bh_reach(units: int, null_share: float, target: float) -> float:
    """BH's threshold for calling the sample's expected viral units: k target / (units pi0) with
    k = units (1 - pi0), at least 1 (1 when pi0 = 1: the fraction is unknown)."""
    viral = max(1.0, units * (1.0 - null_share))
    return viral * target / (max(units, 1) * null_share)


def bin_minimum(min_hosts: int, units: int, null_share: float, target: float) -> int:
    """Host units a size bin needs: `min_hosts`, or more where BH's threshold for this sample
    (bh_reach) is fine: RESOLUTION host units per threshold's worth of p-value."""
    return max(int(min_hosts), math.ceil(RESOLUTION / bh_reach(units, null_share, target)))


def floor_problem(hosts: int, units: int, null_share: float, target: float) -> str | None:
    """Why a bin of `hosts` validation host units cannot give calls at FDR `target` in a level
    of `units` units, or None. The smallest p-value is 1/(hosts + 1); BH calls k units only at
    p <= k target / (units pi0), so with the sample's expected viral units k (bh_reach) nothing
    is called unless 1/(hosts + 1) <= k target / (units pi0)."""
    viral = max(1.0, units * (1.0 - null_share))
    reach = bh_reach(units, null_share, target)
    floor = 1.0 / (hosts + 1.0)
    if floor <= reach + 1e-15:
        return None
    needed = math.ceil(1.0 / reach - 1.0 - 1e-9)
    expected = "one viral unit" if viral == 1.0 else f"{viral:.0f} viral units expected"
    return (
        f"too few validation host units: {hosts}, so the smallest conformal p-value is "
        f"1/{hosts + 1} = {floor:.3g}, above the BH threshold {reach:.3g} for {expected} among "
        f"{units} at FDR {target:g}; at least {needed} host units are needed"
    )
