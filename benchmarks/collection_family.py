"""The family of simulated test collections behind the coverage benchmark (issue 33), with
population truths computed, not simulated.

A collection has `genomes` genomes; each is viral with probability `viral_share` (0.5, or 1:10
either way); its size in fragments comes from SIZES (log-uniform, lognormal or Pareto-tailed
with tail index 1.1, so that a few genomes can hold most fragments); each fragment's logit is
+shift (viral) or -shift (host), plus the genome's effect (Normal, or Student t with 3 degrees
of freedom scaled to the same sd: a few genomes far off), shared by all its fragments, plus the
fragment's own noise ~ N(0, fragment_sd^2). The viral probability is sigmoid(overconfidence x
logit), the threshold 0.5; AUROC and AUPRC rank by the logit.

Truths. Sizes are drawn independently of the genome effects, so in the population (infinitely
many genomes) a fragment is viral with probability s = share x E[viral size] / (share x
E[viral size] + (1 - share) x E[host size]), and its logit, given its class, is the shift plus a
genome effect from the effect distribution itself, plus noise: the fragment-weighted metrics
follow from the two class-conditional logit distributions and s alone. Those distributions are
integrated numerically over the genome effect (scipy's quad_vec, to about 1e-9), E[size]
exactly from the size distribution's probabilities: no Monte-Carlo draw of Pareto-sized genomes,
whose weighted means converge badly. `monte_carlo_check` compares them with a large draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cache

import numpy as np
from scipy import integrate, special, stats

from virnucpro_trainer.stats.metrics import SCALAR_METRICS

CAP = 20_000  # fragments: no genome is larger (a 6 Mb bacterium in 300 bp fragments)
# (name, description, drawing the underlying continuous size X; a genome has max(1, floor(X))
# fragments, at most CAP). Medians 9-32 fragments, largest genomes thousands.
SIZES = {
    "log-uniform": "log-uniform 1-500",
    "lognormal": "lognormal, median 20, sd of log 1.5",
    "pareto": "Pareto, 5 or more, tail index 1.1",
}
EFFECTS = {"normal": "Normal", "t3": "Student t, 3 df"}
BALANCES = {0.5: "1:1", 1 / 11: "1:10", 10 / 11: "10:1"}  # viral : host genomes


def size_cdf(kind: str, x: np.ndarray) -> np.ndarray:
    """P(X <= x) of the continuous size X before flooring and capping."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "log-uniform":
            return np.clip(np.log(np.maximum(x, 1e-300)) / math.log(501), 0.0, 1.0)
        if kind == "lognormal":
            return stats.norm.cdf((np.log(np.maximum(x, 1e-300)) - math.log(20)) / 1.5)
        if kind == "pareto":
            return np.where(x < 5, 0.0, 1.0 - (5.0 / np.maximum(x, 5.0)) ** 1.1)
    raise ValueError(kind)


def draw_sizes(rng: np.random.Generator, kind: str, n: int) -> np.ndarray:
    u = rng.random(n)
    if kind == "log-uniform":
        x = np.exp(u * math.log(501))
    elif kind == "lognormal":
        x = np.exp(math.log(20) + 1.5 * stats.norm.ppf(u))
    elif kind == "pareto":
        x = 5.0 * (1.0 - u) ** (-1 / 1.1)
    else:
        raise ValueError(kind)
    return np.clip(np.floor(x), 1, CAP).astype(np.int64)


@cache
def size_pmf(kind: str) -> np.ndarray:
    """P(size = k) for k = 0..CAP (0 at k = 0), exactly as draw_sizes draws them."""
    k = np.arange(1, CAP + 1, dtype=np.float64)
    upper = size_cdf(kind, k + 1)
    upper[-1] = 1.0  # everything at or above CAP
    lower = size_cdf(kind, k)
    lower[0] = 0.0  # everything below 2 (floor 0 included) is 1
    return np.r_[0.0, upper - lower]


def mean_size(kind: str) -> float:
    pmf = size_pmf(kind)
    return float(np.sum(np.arange(len(pmf)) * pmf))


@dataclass(frozen=True)
class Shape:
    """One data model of the family: how sizes, effects and classes are drawn."""

    sizes: str
    effects: str
    viral_share: float
    genomes: int
    shift: float = 1.0  # viral logits centre on +shift, host on -host_shift (None: -shift)
    host_shift: float | None = None
    genome_sd: float = 1.0
    host_genome_sd: float | None = None
    fragment_sd: float = 0.7
    host_sizes: str | None = None  # None: as the viral genomes
    overconfidence: float = 1.0  # probabilities are sigmoid(overconfidence x logit)
    fixed_classes: bool = False  # exactly round(share x genomes) viral genomes, not drawn
    label: str = ""

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        return (
            f"{self.genomes} genomes, {self.sizes}, {EFFECTS[self.effects]} effects, "
            f"viral:host {BALANCES.get(self.viral_share, f'{self.viral_share:.2f}')}"
        )

    def per_class(self) -> dict[int, tuple[float, float, str]]:
        """{class: (centre, genome sd, sizes)}."""
        host = -(self.shift if self.host_shift is None else self.host_shift)
        host_sd = self.genome_sd if self.host_genome_sd is None else self.host_genome_sd
        return {
            1: (self.shift, self.genome_sd, self.sizes),
            0: (host, host_sd, self.host_sizes or self.sizes),
        }


def effect_distribution(kind: str, sd: float):
    if kind == "normal":
        return stats.norm(0.0, sd)
    if kind == "t3":
        return stats.t(3, scale=sd / math.sqrt(3.0))
    raise ValueError(kind)


def simulate(rng: np.random.Generator, shape: Shape):
    """One collection: labels, viral probabilities, logits and each row's genome."""
    if shape.fixed_classes:
        viral = np.zeros(shape.genomes, dtype=np.int64)
        viral[: round(shape.viral_share * shape.genomes)] = 1
    else:
        viral = (rng.random(shape.genomes) < shape.viral_share).astype(np.int64)
    centre, sd, n = np.zeros(shape.genomes), np.zeros(shape.genomes), np.zeros(shape.genomes)
    for label, (mu, genome_sd, kind) in shape.per_class().items():
        mine = viral == label
        centre[mine], sd[mine] = mu, genome_sd
        n[mine] = draw_sizes(rng, kind, int(mine.sum()))
    effect = effect_distribution(shape.effects, 1.0).rvs(size=shape.genomes, random_state=rng)
    genome = np.repeat(np.arange(shape.genomes), n.astype(np.int64))
    logit = (centre + sd * effect)[genome] + rng.normal(0, shape.fragment_sd, len(genome))
    prob = special.expit(shape.overconfidence * logit)
    return viral[genome], prob, logit, genome


# --- population truths ---------------------------------------------------------------------------

_GRID = np.linspace(-40.0, 40.0, 16_001)  # logits; step 0.005


@cache
def _logit_law(effects: str, centre: float, genome_sd: float, fragment_sd: float):
    """Density and survival function on _GRID of a fragment's logit: centre + genome effect +
    noise, integrated over the genome effect."""
    law = effect_distribution(effects, genome_sd)

    def at(b):
        z = (_GRID - centre - b) / fragment_sd
        return law.pdf(b) * np.stack([stats.norm.pdf(z) / fragment_sd, stats.norm.sf(z)])

    # Beyond |b| = 60 a fragment's logit lies over 24 noise sds beyond the grid's end: such
    # genomes add nothing to the density there and all (b > 60) or nothing to the survival.
    found, _ = integrate.quad_vec(at, -60.0, 60.0, epsabs=1e-10, epsrel=1e-9, limit=4000)
    return found[0], found[1] + law.sf(60.0)


def _integral(values: np.ndarray) -> float:
    return float(integrate.simpson(values, x=_GRID))


@cache
def truth(shape: Shape) -> dict[str, float]:
    """Every metric of SCALAR_METRICS in the population of `shape` (fragment-weighted, as the
    metrics of a collection are): see the module's docstring."""
    laws = {
        label: _logit_law(shape.effects, mu, sd, shape.fragment_sd)
        for label, (mu, sd, _) in shape.per_class().items()
    }
    sizes = {label: mean_size(kind) for label, (_, _, kind) in shape.per_class().items()}
    p = shape.viral_share
    s = p * sizes[1] / (p * sizes[1] + (1 - p) * sizes[0])
    (f1, s1), (f0, s0) = laws[1], laws[0]
    zero = int(np.argmin(np.abs(_GRID)))
    tpr, fpr = float(s1[zero]), float(s0[zero])
    tp, fn, fp, tn = s * tpr, s * (1 - tpr), (1 - s) * fpr, (1 - s) * (1 - fpr)
    called = s * s1 + (1 - s) * s0
    with np.errstate(divide="ignore", invalid="ignore"):
        precision_at = np.where(called > 0, s * s1 / called, 1.0)
    prob = special.expit(shape.overconfidence * _GRID)
    out = {
        "accuracy": tp + tn,
        "precision": tp / (tp + fp),
        "recall": tpr,
        "f1": 2 * tp / (2 * tp + fp + fn),
        "specificity": 1 - fpr,
        "balanced_accuracy": (tpr + 1 - fpr) / 2,
        "mcc": (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)),
        "auroc": _integral(f1 * (1.0 - s0)),
        "auprc": _integral(f1 * precision_at),
        "brier": s * _integral(f1 * (1 - prob) ** 2) + (1 - s) * _integral(f0 * prob**2),
    }
    return {k: float(out[k]) for k in SCALAR_METRICS}


def monte_carlo_check(shape: Shape, genomes: int, seed: int = 0) -> dict[str, tuple]:
    """{metric: (truth, one huge collection's value)}: the collection has `genomes` genomes of
    `shape` (its sizes need a finite variance for the comparison to mean much)."""
    from virnucpro_trainer.stats.metrics import classification_metrics

    y, prob, logit, _ = simulate(np.random.default_rng(seed), replace(shape, genomes=genomes))
    found = classification_metrics(y, prob, ranking=logit)
    return {k: (v, found[k]) for k, v in truth(shape).items()}


# --- the family, split into the part the method was tuned on and the part held out ---------------

GENOME_COUNTS = (30, 100, 300)


def grid() -> list[Shape]:
    """Every combination of issue 33's family: sizes x effects x balance x genome count."""
    return [
        Shape(sizes, effects, share, g)
        for sizes in SIZES
        for effects in EFFECTS
        for share in BALANCES
        for g in GENOME_COUNTS
    ]


def tuned_on(shape: Shape) -> bool:
    """The part the default's rules were chosen on (declared before any coverage was seen):
    Normal genome effects with log-uniform or lognormal sizes. Everything with Pareto sizes or
    Student-t effects, and the STRESS models, are held out."""
    return (
        shape.effects == "normal"
        and shape.sizes in ("log-uniform", "lognormal")
        and (not shape.label)
    )


# Data models unlike the grid's, also held out: class-specific sizes and effects, a model whose
# classes differ in accuracy, fixed class counts, an accurate model near the metrics' bounds, an
# over-confident one (probabilities saturate; Brier then differs).
STRESS = (
    Shape(
        "lognormal",
        "t3",
        0.5,
        100,
        host_sizes="pareto",
        label="100 genomes: viral lognormal, host Pareto sizes, t3 effects",
    ),  # fmt: skip
    Shape(
        "lognormal",
        "normal",
        0.5,
        100,
        shift=1.8,
        host_shift=0.4,
        host_genome_sd=1.6,
        label="100 genomes, lognormal: recall 0.96 vs specificity 0.61",
    ),  # fmt: skip
    Shape(
        "pareto",
        "t3",
        1 / 11,
        300,
        fixed_classes=True,
        label="300 genomes, Pareto, t3, exactly 27 viral",
    ),  # fmt: skip
    Shape(
        "lognormal",
        "t3",
        0.5,
        100,
        shift=3.0,
        label="100 genomes, lognormal, t3: an accurate model (AUROC 0.99)",
    ),  # fmt: skip
    Shape(
        "log-uniform",
        "t3",
        0.5,
        100,
        overconfidence=8.0,
        label="100 genomes, log-uniform, t3: over-confident probabilities",
    ),  # fmt: skip
    Shape("lognormal", "normal", 0.5, 30, label="30 genomes, lognormal, Normal, 1:1 (again)"),
)


# --- two models of equal accuracy (the paired tests' nulls) --------------------------------------

PAIR_NULLS = {  # (the exchangeable null is simulators.simulate_pair's, as before issue 33)
    "genome-imbalanced": (
        Shape("pareto", "normal", 1 / 11, 100),
        "100 genomes, Pareto sizes, viral:host 1:10; the models alike on every genome",
    ),
    "non-exchangeable": (
        Shape("lognormal", "normal", 0.5, 100),
        "100 genomes, lognormal sizes, 1:1; model a better on viral genomes, b on host ones",
    ),
}


def simulate_pair(rng: np.random.Generator, kind: str):
    """Labels, two models' viral probabilities and genomes of one collection of PAIR_NULLS[kind],
    the two models equally accurate in the population. Their genome effects correlate 0.5 and so
    do their fragment noises (errors cluster by genome). Non-exchangeable: model a's logits
    centre on +1.3 (viral) and -0.7 (host), b's on +0.7 and -1.3: with the classes' fragments
    equal in the population, the same accuracy, but on each genome one model is the better."""
    shape = PAIR_NULLS[kind][0]
    viral = (rng.random(shape.genomes) < shape.viral_share).astype(np.int64)
    sizes = draw_sizes(rng, shape.sizes, shape.genomes)
    genome = np.repeat(np.arange(shape.genomes), sizes)
    y = viral[genome]
    both = [[1.0, 0.5], [0.5, 1.0]]
    effects = rng.multivariate_normal([0, 0], both, shape.genomes) * shape.genome_sd
    noise = rng.multivariate_normal([0, 0], both, len(y)) * shape.fragment_sd
    if kind == "non-exchangeable":
        centre_a, centre_b = np.where(y == 1, 1.3, -0.7), np.where(y == 1, 0.7, -1.3)
    else:
        centre_a = centre_b = np.where(y == 1, shape.shift, -shape.shift)
    prob_a = special.expit(centre_a + effects[genome, 0] + noise[:, 0])
    prob_b = special.expit(centre_b + effects[genome, 1] + noise[:, 1])
    return y, prob_a, prob_b, genome
