"""Out-of-distribution scores and their conformal p-values (issue 34; docs/ood.md): is a sequence
like the training data? Plain numpy arrays in, plain values out.

Scores (higher: less like the training rows), each fitted on training rows:

- `gaussian`: the squared Mahalanobis distance to the nearest class mean (Lee et al. 2018, class
  means with one covariance shared by the classes) of the features scaled to unit variance, the
  covariance that of probabilistic PCA (Tipping & Bishop 1999; scikit-learn's `PCA`): the top
  `rank` principal directions of the class-centred rows at their own variances, every other
  direction at their mean variance (a shrinkage that keeps the distance off the directions the
  data never varied in; scaling the features first keeps features of large variance from
  swamping that mean). Computed from `r @ basis.T` and `|r|^2`, r = (x - center) * scale, so
  scoring costs one product with `rank + classes` columns; on the input (`input`) and on the
  hidden layer after its ReLU (`hidden`).
- `knn`: the distance to the k-th nearest of a sample of training rows, rows scaled to length 1
  (Sun et al. 2022; scikit-learn's `NearestNeighbors`).
- `energy`: -logsumexp of the logits (Liu et al. 2020); needs no fitting.

A score becomes a p-value against the validation rows' scores (`conformal_p`): an exchangeable
in-distribution row gets p <= alpha with probability at most alpha. P-values of one row from
several scores or models merge by Bonferroni (any dependence); a unit's rows (a chunk, a record) by
Simes (valid when the p-values are positively dependent, as conformal p-values sharing one
validation set are: Bates et al. 2023).
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.special import logsumexp
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

# Principal directions kept at their own variance (the rest share one). 29, with 2 class means
# and the centre, makes scoring a product with 32 columns (past 32 its cost steps up on a CPU);
# on benchmarks/ood.py's data 29 detected as much as 61 (AUROCs within 0.01, one seed).
RANK = 29
KNN_BANK = 5000  # training rows the k-NN score searches
KNN_K = 5  # the k-th neighbour (Sun et al.: k scaled with the share of rows kept)


def fit_gaussian(x: np.ndarray, labels: np.ndarray, rank: int = RANK, seed: int = 0) -> dict:
    """Class means and the probabilistic-PCA covariance of the class-centred rows of `x`
    (float32 [n, d], changed in place: pass a copy you can spare), each feature scaled to unit
    variance, as {center [d], scale [d] (1 / each feature's standard deviation), basis
    [k + classes, d] (the top k principal directions, then the scaled class means minus
    center), variances [k], tail_variance}."""
    x = np.asarray(x, dtype=np.float32)
    labels = np.asarray(labels)
    classes, codes = np.unique(labels, return_inverse=True)
    means = np.stack([x[codes == c].mean(axis=0, dtype=np.float64) for c in range(len(classes))])
    center = means.mean(axis=0)
    x -= means[codes].astype(np.float32)
    n, d = x.shape
    sd = np.sqrt(np.einsum("ij,ij->j", x, x, dtype=np.float64) / n)
    scale = 1 / np.maximum(sd, 1e-3 * max(float(sd.mean()), 1e-12))  # a constant feature: sd 0
    x *= scale.astype(np.float32)
    k = max(1, min(rank, n - len(classes) - 1, d - 1))
    # 3 power iterations rather than the default 7: the fit takes half the time on the demo
    # run, and the distance needs the top directions' span more than their exact order
    pca = PCA(n_components=k, copy=False, iterated_power=3, random_state=seed)
    pca.fit(x)  # squares x in place
    variances = pca.explained_variance_.astype(np.float64)
    floor = 1e-6 * max(float(variances.max(initial=0.0)), 1e-12)
    return {
        "center": center.astype(np.float32),
        "scale": scale.astype(np.float32),
        "basis": np.vstack([pca.components_, (means - center) * scale]).astype(np.float32),
        "variances": np.maximum(variances, floor),
        "tail_variance": max(float(pca.noise_variance_), floor),
    }


def gaussian_coordinates(x: np.ndarray, state: dict) -> tuple[np.ndarray, np.ndarray]:
    """r @ basis.T and |r|^2, r = (x - center) * scale: what `gaussian_distance` needs of each
    row (evaluate/ood.py computes the same on the scoring device, batch by batch)."""
    r = np.asarray(x, dtype=np.float64) - np.asarray(state["center"], dtype=np.float64)
    r *= np.asarray(state["scale"], dtype=np.float64)
    return r @ np.asarray(state["basis"], dtype=np.float64).T, np.einsum("ij,ij->i", r, r)


def gaussian_distance(projected: np.ndarray, sq_norm: np.ndarray, state: dict) -> np.ndarray:
    """The squared Mahalanobis distance of each row to its nearest class mean, from its
    coordinates (`gaussian_coordinates`): sum_i z_i^2 / variance_i over the top directions plus
    the rest of |x - mean|^2 over the tail variance."""
    basis = np.asarray(state["basis"], dtype=np.float64)
    variances = np.asarray(state["variances"], dtype=np.float64)
    k = len(variances)
    projected = np.asarray(projected, dtype=np.float64)
    sq_norm = np.asarray(sq_norm, dtype=np.float64)
    z_all, dots = projected[:, :k], projected[:, k:]
    best = np.full(len(sq_norm), np.inf)
    for c, mean in enumerate(basis[k:]):
        z = z_all - basis[:k] @ mean
        residual = sq_norm - 2 * dots[:, c] + mean @ mean  # |x - mean|^2
        top = np.einsum("ij,ij->i", z, z)
        tail = np.maximum(residual - top, 0.0) / float(state["tail_variance"])
        best = np.minimum(best, np.einsum("ij,j->i", z * z, 1 / variances) + tail)
    return best


def normalised(h: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (a row of zeros stays zero)."""
    h = np.asarray(h, dtype=np.float32)
    return h / np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-12)


def fit_knn(h: np.ndarray, size: int = KNN_BANK, seed: int = 0) -> dict:
    """{bank}: a seeded sample of at most `size` rows of `h`, normalised."""
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(h), size=min(size, len(h)), replace=False))
    return {"bank": normalised(np.asarray(h)[keep])}


def knn_distance(h: np.ndarray, state: dict, k: int = KNN_K) -> np.ndarray:
    """The distance of each normalised row of `h` to its k-th nearest row of the bank."""
    bank = np.asarray(state["bank"], dtype=np.float32)
    k = min(k, len(bank))
    found, _ = NearestNeighbors(n_neighbors=k).fit(bank).kneighbors(normalised(h))
    return found[:, -1].astype(np.float64)


def energy(logits: np.ndarray) -> np.ndarray:
    """-logsumexp of each row's logits: higher for rows the model is less sure belong."""
    return -logsumexp(np.asarray(logits, dtype=np.float64), axis=1)


def conformal_p(scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(1 + #{reference >= s}) / (n + 1) for each score s: the conformal p-value of a score
    among the `n` reference (validation) scores. NaN scores give NaN."""
    ref = np.sort(np.asarray(reference, dtype=np.float64))
    s = np.asarray(scores, dtype=np.float64)
    at_least = len(ref) - np.searchsorted(ref, s, side="left")
    return np.where(np.isnan(s), np.nan, (1.0 + at_least) / (len(ref) + 1.0))


def bonferroni(p_values: list[np.ndarray]) -> np.ndarray:
    """min(1, m * the smallest of m p-values), row by row: valid whatever their dependence."""
    p = np.stack([np.asarray(v, dtype=np.float64) for v in p_values])
    return np.minimum(1.0, len(p) * p.min(axis=0))


def simes(p: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Each group's Simes p-value, min_i n p_(i) / i over its n sorted p-values (NaN for a
    group with none)."""
    p, groups = np.asarray(p, dtype=np.float64), np.asarray(groups, dtype=np.int64)
    order = np.lexsort((p, groups))
    g, sorted_p = groups[order], p[order]
    sizes = np.bincount(groups, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.arange(len(g)) - starts[g] + 1
    out = np.full(n_groups, np.inf)
    np.minimum.at(out, g, sizes[g] * sorted_p / rank)
    return np.where(sizes > 0, np.minimum(out, 1.0), np.nan)


def group_max(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Each group's largest value (NaN for a group with none)."""
    out = np.full(n_groups, -np.inf)
    np.maximum.at(out, np.asarray(groups, dtype=np.int64), np.asarray(values, dtype=np.float64))
    return np.where(np.isneginf(out), np.nan, out)


def excess_p_value(flagged: int, n: int, alpha: float) -> float:
    """One-sided binomial test that the flagged share exceeds alpha: P(X >= flagged), X ~
    Binomial(n, alpha). NaN without units."""
    if n == 0:
        return float("nan")
    return float(stats.binomtest(int(flagged), int(n), alpha, alternative="greater").pvalue)
