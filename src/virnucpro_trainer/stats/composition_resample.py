"""The joint resamples behind the interval of a sample's viral fraction
(composition_interval.py): the sample's genomes and the validation's genomes drawn with
replacement, and both estimators of the fraction re-computed on every resample at once.

The sample's genomes are drawn within two strata, by the genome's mean probability (below or
at least 0.5), and each stratum's resampled rows are weighted back to its own row count: the
sample's composition is held where the data put it, so the interval is about this sample's
fraction (the estimate's error), not about the fraction of a population of samples, which with
a few dozen genomes of skewed sizes is far less certain. With fewer than `min_genomes` genomes in
a stratum the draw is unstratified. The validation's genomes are drawn without strata: its viral
share (EM's training prior), its TPR and FPR (the adjusted count's correction) and its
calibration all move.

Resampled EM works on histograms: each genome's rows are counted in N_BINS bins of the logit
(width 0.066), each bin standing at its rows' mean logit, so a block of resamples is one
(resamples x genomes) @ (genomes x bins) product; each resample's maximum-likelihood fraction
is found by bisection (EM's fixed point, without EM's slow steps near 0 or 1).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.special import expit, logit

N_BINS = 512
_EPS = 1e-7
_EDGE = float(logit(1 - _EPS))  # the logits of clipped probabilities lie in [-_EDGE, _EDGE]
_BLOCK_CELLS = 2**21  # resamples x genomes per block of multiplicities


class GenomeRows:
    """One side's rows by genome, in two parts (`part`: the class of each validation row, the
    stratum of each sample row): per genome and part, rows, calls at the threshold and a
    histogram of the logits; `z`: each bin's mean logit."""

    def __init__(self, probs: np.ndarray, codes: np.ndarray, part: np.ndarray, threshold: float):
        self.n_groups = int(codes.max()) + 1
        z = logit(np.clip(probs, _EPS, 1 - _EPS))
        bins = np.clip(((z + _EDGE) / (2 * _EDGE) * N_BINS).astype(np.int64), 0, N_BINS - 1)
        count = np.bincount(bins, minlength=N_BINS)
        self.z = np.bincount(bins, weights=z, minlength=N_BINS) / np.maximum(count, 1)
        called = (probs >= threshold).astype(np.float64)
        self.size, self.called, self.hist = {}, {}, {}
        for label in (0, 1):
            mine = part == label
            g, b = codes[mine], bins[mine]
            self.size[label] = np.bincount(g, minlength=self.n_groups).astype(np.float64)
            self.called[label] = np.bincount(g, weights=called[mine], minlength=self.n_groups)
            shape = (self.n_groups, N_BINS)
            self.hist[label] = sparse.csr_matrix((np.ones(g.size), (g, b)), shape=shape)

    def genomes(self, label: int) -> np.ndarray:
        """The genomes holding rows of one part."""
        return np.flatnonzero(self.size[label] > 0)

    def totals(self, counts: np.ndarray, label: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per resample (counts: resamples x genomes): rows, calls, bin counts of one part."""
        hist = np.asarray((self.hist[label].T @ counts.T).T)
        return counts @ self.size[label], counts @ self.called[label], hist


def genome_counts(
    rng: np.random.Generator, strata: list[np.ndarray], n_groups: int, n: int
) -> np.ndarray:
    """(n, G) multiplicities: each resample draws, in each stratum (an array of genome codes),
    as many of its genomes as it has, uniformly with replacement."""
    counts = np.zeros((n, n_groups))
    for members in strata:
        k = len(members)
        drawn = rng.integers(0, k, size=(n, k)) + np.arange(n)[:, None] * k
        counts[:, members] = np.bincount(drawn.ravel(), minlength=n * k).reshape(n, k)
    return counts


def temperature_scale(z: np.ndarray, viral: np.ndarray, host: np.ndarray) -> np.ndarray:
    """Per resample, the scale s minimising the weighted cross-entropy of sigmoid(s * z) (viral,
    host: bin counts per resample): the temperature re-fit (s = 1 / T), by Newton steps on a
    convex function, kept in [0.05, 20]."""
    s = np.ones(len(viral))
    for _ in range(30):
        up, down = expit(s[:, None] * z), expit(-s[:, None] * z)
        grad = (host * up - viral * down) @ z
        curve = ((host + viral) * up * down) @ (z * z)
        s = np.clip(s - grad / np.maximum(curve, 1e-12), 0.05, 20.0)
    return s


def mixture_mle(weights: np.ndarray, log_ratio: np.ndarray) -> np.ndarray:
    """Per resample, the unconstrained maximiser theta of sum_k w_k log(1 + theta (r_k - 1)),
    r_k = exp(log_ratio) the viral-to-host likelihood ratio of bin k: the log-likelihood of the
    viral fraction, concave, so bisection on its decreasing derivative within the range where
    every 1 + theta (r - 1) > 0 (and [-1, 2]). Clipped to [0, 1] it is EM's fixed point."""
    d = np.expm1(np.clip(log_ratio, -50.0, 50.0))
    used = weights > 0
    with np.errstate(divide="ignore"):
        low = np.max(np.where(used & (d > 0), -1.0 / d, -1.0), axis=1).clip(-1.0, None)
        high = np.min(np.where(used & (d < 0), -1.0 / d, 2.0), axis=1).clip(None, 2.0)
    for _ in range(50):
        mid = (low + high) / 2
        slope = np.sum(weights * d / (1.0 + mid[:, None] * d), axis=1)
        low, high = np.where(slope > 0, mid, low), np.where(slope > 0, high, mid)
    return (low + high) / 2


class JointDraws:
    """Both estimators (unconstrained: the adjusted count unclipped, EM's likelihood maximised
    over [-1, 2]) on the whole data and on n_boot joint resamples. EM's training prior: `prior`,
    or (None) each validation resample's viral share of rows."""

    def __init__(
        self, sample: GenomeRows, validation: GenomeRows, min_genomes: int, prior: float | None
    ):
        self.sample, self.validation, self.prior = sample, validation, prior
        strata = [sample.genomes(0), sample.genomes(1)]
        self.stratified = min(len(s) for s in strata) >= min_genomes
        self.strata = strata if self.stratified else [np.arange(sample.n_groups)]
        self.reference: float | None = None

    def run(self, n_boot: int, seed: int, recalibrate: bool) -> tuple[dict, dict]:
        s, v = self.sample, self.validation
        whole = np.ones((1, s.n_groups)), np.ones((1, v.n_groups))
        if recalibrate:  # each resample's temperature relative to the whole validation's
            self.reference = float(self._scale(whole[1])[0])
        point = self._estimates(*whole)
        rng = np.random.default_rng(seed)
        block = max(1, _BLOCK_CELLS // max(s.n_groups, v.n_groups))
        parts = []
        for start in range(0, n_boot, block):
            b = min(block, n_boot - start)
            own = genome_counts(rng, self.strata, s.n_groups, b)
            val = genome_counts(rng, [np.arange(v.n_groups)], v.n_groups, b)
            parts.append(self._estimates(own, val))
        draws = {m: np.concatenate([p[m] for p in parts]) for m in point}
        return {m: float(x[0]) for m, x in point.items()}, draws

    def residual_df(self, em_point: float) -> dict[str, float]:
        """Per method, the degrees of freedom of the resamples' spread (Welch-Satterthwaite):
        (sum e^2)^2 / sum e^4 over the sample's genomes, e a genome's residual: its part of the
        estimating equation (calls; EM's score at `em_point`) less its rows' share of its
        stratum's. One dominant genome gives about 1, k alike genomes k."""
        s, whole = self.sample, np.ones((1, self.validation.n_groups))
        viral, host = self.validation.totals(whole, 1)[0][0], self.validation.totals(whole, 0)[0][0]
        prior = viral / (viral + host) if self.prior is None else self.prior
        d = np.expm1(np.clip(s.z + np.log((1 - prior) / prior), -50.0, 50.0))
        score = d / (1.0 + em_point * d)
        parts = {"em": {k: s.hist[k] @ score for k in (0, 1)}, "adjusted_count": s.called}
        out = {}
        for method, own in parts.items():
            groups = [(s.size[k], own[k]) for k in (0, 1)]
            if not self.stratified:
                groups = [(s.size[0] + s.size[1], own[0] + own[1])]
            e = [c[n > 0] - n[n > 0] * c.sum() / n.sum() for n, c in groups]
            e2 = np.concatenate(e) ** 2
            out[method] = float(e2.sum() ** 2 / np.sum(e2**2)) if e2.sum() > 0 else np.inf
        return out

    def _scale(self, val: np.ndarray) -> np.ndarray:
        viral, host = self.validation.totals(val, 1)[2], self.validation.totals(val, 0)[2]
        return temperature_scale(self.validation.z, viral, host)

    def _sample_totals(self, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per resample: the call rate and the bin weights, each stratum weighted back to its
        own rows (or, unstratified, the whole resample to the sample's rows)."""
        parts = [self.sample.totals(own, label) for label in (0, 1)]
        sizes = [self.sample.size[label].sum() for label in (0, 1)]
        if self.stratified:
            factor = [sizes[k] / parts[k][0] for k in (0, 1)]
        else:
            factor = [sum(sizes) / (parts[0][0] + parts[1][0])] * 2
        calls = sum(f * p[1] for f, p in zip(factor, parts, strict=True))
        weights = sum(f[:, None] * p[2] for f, p in zip(factor, parts, strict=True))
        return calls / sum(sizes), weights

    def _estimates(self, own: np.ndarray, val: np.ndarray) -> dict[str, np.ndarray]:
        rate, weights = self._sample_totals(own)
        viral, tp, viral_bins = self.validation.totals(val, 1)
        host, fp, host_bins = self.validation.totals(val, 0)
        scale = np.ones(len(own))
        if self.reference is not None:
            scale = temperature_scale(self.validation.z, viral_bins, host_bins) / self.reference
        with np.errstate(divide="ignore", invalid="ignore"):
            tpr, fpr = tp / viral, fp / host
            adjusted = np.where(tpr - fpr > 0, (rate - fpr) / (tpr - fpr), np.nan)
            prior = viral / (viral + host) if self.prior is None else np.full(len(own), self.prior)
            shift = np.log((1 - prior) / prior)[:, None]
        log_ratio = scale[:, None] * self.sample.z[None, :] + shift
        em = np.where((prior > 0) & (prior < 1), mixture_mle(weights, log_ratio), np.nan)
        return {"em": em, "adjusted_count": adjusted}
