"""Out-of-distribution scores and p-values (stats/ood.py) against direct computations and
scikit-learn, and what their guarantee promises, checked by simulation (`stat`)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp
from sklearn.decomposition import PCA

from virnucpro_trainer.stats.ood import (
    bonferroni,
    conformal_p,
    energy,
    excess_p_value,
    fit_gaussian,
    fit_knn,
    gaussian_coordinates,
    gaussian_distance,
    group_max,
    knn_distance,
    simes,
)


def structured(rng, n: int, width: int = 40, rank: int = 5) -> np.ndarray:
    """Rows with a mean, a low-rank part and per-feature noise, as embeddings have."""
    loadings = rng.normal(size=(width, rank)) * 3
    return (2 + rng.normal(size=(n, rank)) @ loadings.T + rng.normal(size=(n, width)) * 0.5).astype(
        np.float32
    )


def test_the_conformal_p_value_counts_the_reference_scores_at_least_as_high():
    reference = np.array([0.5, 1.0, 1.0, 2.0, 3.0])
    scores = np.array([0.0, 1.0, 2.5, 9.0, np.nan])
    expected = [(1 + np.sum(reference >= s)) / 6 for s in scores[:4]]
    p = conformal_p(scores, reference)
    assert p[:4] == pytest.approx(expected) and np.isnan(p[4])
    assert p[3] == pytest.approx(1 / 6)  # the smallest a p-value of 5 references can be


def test_the_distance_is_probabilistic_pcas_as_scikit_learn_scores_it():
    rng = np.random.default_rng(0)
    x = structured(rng, 400)
    state = fit_gaussian(x.copy(), np.zeros(400), rank=5)
    scale = 1 / x.std(axis=0, dtype=np.float64)  # features scaled to unit variance first
    pca = PCA(n_components=5, iterated_power=3, random_state=0).fit((x - x.mean(0)) * scale)
    new = structured(rng, 50) * 1.1
    ours = gaussian_distance(*gaussian_coordinates(new, state), state)
    # score_samples = -(distance + log det(2 pi covariance)) / 2: the same up to a constant
    theirs = -2 * pca.score_samples((new - x.mean(0)) * scale)
    assert np.ptp(ours - theirs) < 1e-5 * np.ptp(ours)  # theirs: float32


def test_the_distance_is_to_the_nearest_class_mean():
    rng = np.random.default_rng(1)
    x = np.r_[structured(rng, 300), structured(rng, 300) + 20].astype(np.float32)
    labels = np.r_[np.zeros(300), np.ones(300)]
    state = fit_gaussian(x.copy(), labels, rank=5)
    k = len(state["variances"])
    near_a, near_b = x[:5], x[300:305]
    d_a = gaussian_distance(*gaussian_coordinates(near_a, state), state)
    d_b = gaussian_distance(*gaussian_coordinates(near_b, state), state)
    middle = gaussian_distance(*gaussian_coordinates((near_a + near_b) / 2, state), state)
    assert state["basis"].shape == (k + 2, 40)
    assert d_a.max() < middle.min() and d_b.max() < middle.min()


def test_rows_with_their_correlations_broken_score_far_higher():
    rng = np.random.default_rng(2)
    x = structured(rng, 1000)
    state = fit_gaussian(x[:800].copy(), np.zeros(800), rank=5)
    center = x[:800].mean(0)
    test = x[800:]
    other = center + (test - center)[:, rng.permutation(40)] * rng.choice([-1, 1], 40)
    d_test = gaussian_distance(*gaussian_coordinates(test, state), state)
    d_other = gaussian_distance(*gaussian_coordinates(other, state), state)
    assert np.median(d_other) > 10 * np.median(d_test)
    assert np.mean(d_other > np.quantile(d_test, 0.99)) > 0.95


def test_knn_distance_is_to_the_kth_nearest_normalised_bank_row():
    rng = np.random.default_rng(3)
    h = rng.random((200, 8)).astype(np.float32)
    state = fit_knn(h, size=50, seed=0)
    assert state["bank"].shape == (50, 8)
    assert np.linalg.norm(state["bank"], axis=1) == pytest.approx(np.ones(50), abs=1e-6)
    query = rng.random((7, 8)).astype(np.float32)
    unit = query / np.linalg.norm(query, axis=1, keepdims=True)
    distances = np.linalg.norm(unit[:, None, :] - state["bank"][None], axis=2)
    assert knn_distance(query, state, k=3) == pytest.approx(np.sort(distances)[:, 2], abs=1e-5)


def test_energy_is_minus_logsumexp():
    logits = np.array([[0.0, 0.0], [5.0, -5.0], [-3.0, 3.0]])
    assert energy(logits) == pytest.approx(-logsumexp(logits, axis=1))
    assert energy(logits)[0] > energy(logits)[1]  # an unsure row is less like the confident


def test_simes_and_bonferroni_against_their_definitions():
    rng = np.random.default_rng(4)
    p = rng.random(60)
    groups = rng.integers(0, 7, 60)
    found = simes(p, groups, 8)
    for g in range(7):
        mine = np.sort(p[groups == g])
        n = len(mine)
        assert found[g] == pytest.approx(min(1.0, np.min(n * mine / np.arange(1, n + 1))))
    assert np.isnan(found[7])  # a group with no rows
    assert bonferroni([np.array([0.01, 0.4]), np.array([0.2, 0.9])]) == pytest.approx([0.02, 0.8])
    assert group_max(p, groups, 8)[:7] == pytest.approx([p[groups == g].max() for g in range(7)])


def test_the_excess_test_is_binomials_upper_tail():
    assert excess_p_value(5, 100, 0.01) == pytest.approx(stats.binom.sf(4, 100, 0.01))
    assert excess_p_value(0, 100, 0.01) == pytest.approx(1.0)
    assert np.isnan(excess_p_value(0, 0, 0.01))


def clustered_scores(rng, genomes: int) -> tuple[np.ndarray, np.ndarray]:
    """In-distribution scores with genome structure: a genome's rows share its own effect;
    genome sizes log-uniform 1-300 (a phage: a few rows; a bacterium: hundreds)."""
    size = np.floor(np.exp(rng.uniform(0, np.log(301), genomes))).astype(np.int64)
    genome = np.repeat(np.arange(genomes), size)
    return rng.normal(size=genomes)[genome] + rng.normal(size=len(genome)), genome


def flagged_shares(rng, genomes: int, sides: int, alpha: float) -> dict[str, float]:
    """Mean shares flagged over `sides` fresh validation and test sides of `genomes` genomes
    each, in distribution: rows, records (Simes over their rows), and rows by two dependent
    scores (Bonferroni)."""
    found = {"rows": [], "records": [], "combined": []}
    for _ in range(sides):
        val, _ = clustered_scores(rng, genomes)
        test, genome = clustered_scores(rng, genomes)
        p = conformal_p(test, val)
        found["rows"].append(np.mean(p <= alpha))
        found["records"].append(np.mean(simes(p, genome, genomes) <= alpha))
        # a second score of the same rows
        other = conformal_p(test + rng.normal(size=len(test)), val + rng.normal(size=len(val)))
        found["combined"].append(np.mean(bonferroni([p, other]) <= alpha))
    return {name: float(np.mean(values)) for name, values in found.items()}


@pytest.mark.stat
@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_in_distribution_units_are_flagged_about_alpha_of_the_time(alpha):
    """Fragments of a genome are not independent, so a row is not exchangeable with the
    validation rows and with few validation genomes the rows' share runs above alpha (docs/
    ood.md: 1.3% at alpha 1% with 60 genomes), approaching alpha as they grow; records (Simes)
    and two scores (Bonferroni) stay closer to it."""
    rng = np.random.default_rng(5)
    few = flagged_shares(rng, 60, 1500, alpha)
    many = flagged_shares(rng, 1000, 60, alpha)
    assert alpha * 0.8 < few["rows"] < alpha * 1.5, few
    assert few["records"] < alpha * 1.25 and few["combined"] < alpha * 1.2, few
    assert alpha * 0.9 < many["rows"] < alpha * 1.1, many


def test_the_methods_the_configuration_offers_are_the_detectors_parts():
    # stats.names keeps the configuration free of scipy and scikit-learn; the methods it offers
    # are what a detector fits, no more and no fewer
    from virnucpro_trainer.config.checks import CHECKS
    from virnucpro_trainer.stats import names

    assert tuple(names.OOD_PARTS) == names.OOD_METHODS
    assert all(CHECKS["ood.method"][0](m) for m in names.OOD_METHODS)
