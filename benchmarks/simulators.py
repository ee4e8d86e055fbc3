"""Simulated test sets whose truth is known, one definition for the benchmarks that measure the
statistics at full size and the tests that check them at a smaller one (pytest's pythonpath
includes benchmarks/, so both `import simulators`).

Genome-clustered scores (interval_coverage.py, bootstrap_speed.py --coverage; tests/stats/
test_intervals.py and test_uncertainty.py): a genome is viral with probability 1/2; each
fragment's logit is +SHIFT (viral) or -SHIFT (host), plus the genome's effect ~ N(0, GENOME_SD^2)
shared by all its fragments, plus the fragment's own noise ~ N(0, FRAGMENT_SD^2); the viral
probability is sigmoid(logit), the threshold 0.5. Either class is on the right side of logit 0
with the same probability, so accuracy and AUROC have closed forms whatever the genome sizes
(TRUE_ACCURACY, TRUE_AUROC); `truth` adds F1 and MCC for a `Case`'s size distributions.

Samples of a known viral fraction (sample_fraction_sim.py; tests/stats/test_composition.py): see
`scored_genomes`; a temperature fitted on a validation set calibrates the model's logits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from virnucpro_trainer.stats.calibration import apply_temperature, fit_temperature
from virnucpro_trainer.stats.intervals import cluster_bootstrap
from virnucpro_trainer.stats.metrics import choose_threshold

# --- genome-clustered scores ----------------------------------------------------------------------

SHIFT, GENOME_SD, FRAGMENT_SD = 1.0, 1.0, 0.7
TOTAL_SD = math.hypot(GENOME_SD, FRAGMENT_SD)
# A viral and a host fragment of different genomes: logit difference ~ N(2 shift, 2 total sd^2).
TRUE_AUROC = float(stats.norm.cdf(2 * SHIFT / (math.sqrt(2) * TOTAL_SD)))
TRUE_ACCURACY = float(stats.norm.cdf(SHIFT / TOTAL_SD))
FRAGMENTS = (5, 25)  # fragments per genome of `simulate_records`, uniform, inclusive


@dataclass(frozen=True)
class Case:
    name: str
    genomes: int
    viral: tuple[int, int]  # fragments per viral genome, inclusive
    host: tuple[int, int]
    log_uniform: bool = True

    @property
    def skewed(self) -> bool:
        return self.log_uniform


def sizes(rng: np.random.Generator, n: int, low: int, high: int, log_uniform: bool) -> np.ndarray:
    """Fragments per genome: floor(exp(U(log low, log(high + 1)))), or uniform integers."""
    if not log_uniform:
        return rng.integers(low, high + 1, size=n)
    drawn = np.floor(np.exp(rng.uniform(math.log(low), math.log(high + 1), size=n)))
    return np.clip(drawn, low, high).astype(np.int64)


def mean_size(low: int, high: int, log_uniform: bool) -> float:
    """E[fragments per genome] of `sizes`, exactly."""
    k = np.arange(low, high + 1, dtype=np.float64)
    if not log_uniform:
        return float(k.mean())
    p = np.log((k + 1) / k) / math.log((high + 1) / low)
    return float(np.sum(k * p))


def simulate(rng: np.random.Generator, case: Case):
    """One test set of `case`: labels, viral probabilities and each row's genome."""
    viral = rng.integers(0, 2, size=case.genomes)
    n = np.where(
        viral == 1,
        sizes(rng, case.genomes, *case.viral, case.log_uniform),
        sizes(rng, case.genomes, *case.host, case.log_uniform),
    )
    genome = np.repeat(np.arange(case.genomes), n)
    y = viral[genome]
    logit = np.where(y == 1, SHIFT, -SHIFT) + rng.normal(0, GENOME_SD, case.genomes)[genome]
    logit += rng.normal(0, FRAGMENT_SD, len(genome))
    return y, 1.0 / (1.0 + np.exp(-logit)), genome


def truth(case: Case) -> dict[str, float]:
    """The population's metrics: each fragment is right with probability Phi(1 / total sd) in
    either class; the viral share of fragments is E[viral size] / (E[viral] + E[host])."""
    right = TRUE_ACCURACY
    viral = mean_size(*case.viral, case.log_uniform)
    share = viral / (viral + mean_size(*case.host, case.log_uniform))
    tp, fn = share * right, share * (1 - right)
    tn, fp = (1 - share) * right, (1 - share) * (1 - right)
    return {
        "accuracy": right,
        "auroc": TRUE_AUROC,
        "f1": 2 * tp / (2 * tp + fp + fn),
        "mcc": (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)),
    }


def simulate_pair(rng: np.random.Generator, genomes: int, delta: float):
    """Two models' scores on one simulated test set (sizes 1-5000), model b `delta` more
    accurate; their genome effects correlate 0.5 and so do their fragment noises."""
    y, _, genome = simulate(rng, Case("paired", genomes, (1, 5000), (1, 5000)))
    shift_b = TOTAL_SD * stats.norm.ppf(stats.norm.cdf(SHIFT / TOTAL_SD) + delta)
    sign = np.where(y == 1, 1.0, -1.0)
    both = [[1.0, 0.5], [0.5, 1.0]]
    effects = rng.multivariate_normal([0, 0], both, genomes) * GENOME_SD
    noise = rng.multivariate_normal([0, 0], both, len(y)) * FRAGMENT_SD
    prob_a = 1 / (1 + np.exp(-(sign * SHIFT + effects[genome, 0] + noise[:, 0])))
    prob_b = 1 / (1 + np.exp(-(sign * shift_b + effects[genome, 1] + noise[:, 1])))
    return y, prob_a, prob_b, genome


def simulate_records(
    rng: np.random.Generator,
    records: int,
    fragments: tuple[int, int] = FRAGMENTS,
    rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One test set of `records` genomes: (labels, viral probabilities, genome code per row).
    Each genome has `fragments` (uniform, inclusive) fragments, or, with `rows`, that many rows
    fall on the genomes at random (at least one each)."""
    if rows is None:
        counts = rng.integers(fragments[0], fragments[1] + 1, size=records)
    else:
        counts = 1 + rng.multinomial(rows - records, np.full(records, 1 / records))
    viral = rng.integers(0, 2, size=records)
    effect = rng.normal(0.0, GENOME_SD, size=records)
    groups = np.repeat(np.arange(records), counts)
    y = viral[groups]
    logit = np.where(y == 1, SHIFT, -SHIFT) + effect[groups]
    logit += rng.normal(0.0, FRAGMENT_SD, size=len(groups))
    return y, 1.0 / (1.0 + np.exp(-logit)), groups


def bootstrap_coverage(
    sets: int, records: int, n_boot: int, seed: int = 0, row_sets: int | None = None
) -> dict[str, dict[str, float]]:
    """How often the 95% intervals of `cluster_bootstrap` cover TRUE_AUROC and TRUE_ACCURACY,
    over `sets` test sets of `simulate_records`: {"cluster": {"auroc": ..., "accuracy": ...},
    "row": {...}}; the row bootstrap (each row its own group: the slow one) on the first
    `row_sets` of them (default: all)."""
    rng = np.random.default_rng(seed)
    truth = {"auroc": TRUE_AUROC, "accuracy": TRUE_ACCURACY}
    row_sets = sets if row_sets is None else row_sets
    hits = {kind: dict.fromkeys(truth, 0) for kind in ("cluster", "row")}
    for i in range(sets):
        y, prob, groups = simulate_records(rng, records)
        kinds = [("cluster", groups)] + ([("row", np.arange(len(y)))] if i < row_sets else [])
        for kind, codes in kinds:
            ci = cluster_bootstrap(y, prob, codes, n_boot=n_boot, seed=i)
            for metric, value in truth.items():
                hits[kind][metric] += ci[metric][0] <= value <= ci[metric][1]
    done = {"cluster": sets, "row": row_sets}
    return {kind: {m: h / done[kind] for m, h in per.items()} for kind, per in hits.items()}


# --- samples of a known viral fraction ------------------------------------------------------------

# A fragment's x is +MIX_SHIFT (viral) or -MIX_SHIFT (host), plus its genome's effect
# ~ N(0, MIX_GENOME_SD^2), plus its own noise ~ N(0, MIX_FRAGMENT_SD^2); genome sizes are
# log-uniform in MIX_SIZES.
MIX_SHIFT, MIX_GENOME_SD, MIX_FRAGMENT_SD = 2.0, 1.0, 1.5
OVERCONFIDENCE = 2.0
MIX_SIZES = (1, 500)
VAL_GENOMES = 150


def genome_sizes(rng: np.random.Generator, total: int) -> np.ndarray:
    """Log-uniform genome sizes in MIX_SIZES summing to exactly `total` (the last one cut)."""
    drawn: list[int] = []
    while sum(drawn) < total:
        drawn.append(int(np.exp(rng.uniform(np.log(MIX_SIZES[0]), np.log(MIX_SIZES[1] + 1)))))
    if drawn:
        drawn[-1] -= sum(drawn) - total
    return np.array([s for s in drawn if s > 0], dtype=np.int64)


def scored_genomes(rng, sizes_by_class: dict[int, np.ndarray], bias: float = 0.0):
    """Labels, the model's logits and genome codes of genomes of the given sizes. The model's
    logit is OVERCONFIDENCE * L(x) + bias, L(x) the true log-odds of a fragment at a balanced
    prior (2 MIX_SHIFT x / total variance)."""
    labels, logits, genomes, start = [], [], [], 0
    scale = 2 * MIX_SHIFT / (MIX_GENOME_SD**2 + MIX_FRAGMENT_SD**2)
    for label, counts in sizes_by_class.items():
        code = np.repeat(np.arange(start, start + len(counts)), counts)
        effect = rng.normal(0, MIX_GENOME_SD, len(counts))[code - start]
        x = (
            (MIX_SHIFT if label else -MIX_SHIFT)
            + effect
            + rng.normal(0, MIX_FRAGMENT_SD, code.size)
        )
        labels.append(np.full(code.size, label))
        logits.append(OVERCONFIDENCE * scale * x + bias)
        genomes.append(code)
        start += len(counts)
    return np.concatenate(labels), np.concatenate(logits), np.concatenate(genomes)


def validation_set(rng, bias: float = 0.0, genomes: int = VAL_GENOMES):
    """Validation labels, calibrated probabilities, genome codes, the temperature and the F1
    threshold, from `genomes` genomes per class."""
    counts = {
        c: np.exp(rng.uniform(0, np.log(MIX_SIZES[1] + 1), genomes)).astype(int) for c in (1, 0)
    }
    y, raw, codes = scored_genomes(rng, counts, bias)
    temperature = fit_temperature(y, raw)
    probs = apply_temperature(raw, temperature)
    return y, probs, codes, temperature, choose_threshold(y, probs, "f1")


def sample_at(rng, fraction: float, n: int, temperature: float, bias: float = 0.0):
    """A sample of n fragments, round(fraction n) of them viral (whole genomes drawn until the
    class is full, the last one cut): labels, calibrated probabilities, genome codes."""
    viral = round(fraction * n)
    y, raw, codes = scored_genomes(
        rng, {1: genome_sizes(rng, viral), 0: genome_sizes(rng, n - viral)}, bias
    )
    return y, apply_temperature(raw, temperature), codes
