"""Seconds for the cluster bootstrap of all test metrics, and its coverage on simulated genomes.

    python benchmarks/bootstrap_speed.py             # 200,000 rows, 2,000 records, 1000 resamples
    python benchmarks/bootstrap_speed.py --coverage  # coverage, cluster vs row bootstrap
    python benchmarks/bootstrap_speed.py --rows 2000 --records 50 --n-boot 50 --repeats 1

Speed: `stats.intervals.cluster_bootstrap` on `--rows` simulated fragments of `--records` genomes
(rows fall on genomes at random; scores correlated within a genome), timed `--repeats` times;
prints the median, every run, and the machine (`_common.machine`, numpy version).
`--row-bootstrap` also times the row bootstrap (one group per row) on the same data.

Coverage (`--coverage`): `--sets` simulated test sets (`--set-records` genomes each, 5-25
fragments per genome, a random effect per genome shifting all its fragments' scores); for each,
the 95% cluster-bootstrap and row-bootstrap intervals of AUROC and accuracy (`--coverage-boot`
resamples), and how often each covers the true value of the generative model, which is known in
closed form (TRUE_AUROC, TRUE_ACCURACY; checked on a large sample). tests/stats/test_uncertainty.py
runs the same simulation at a smaller size.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy import stats

from virnucpro_trainer.stats.intervals import cluster_bootstrap

from _common import MEDIANS, machine, medians, table, timed

# The generative model: a genome's class is viral with probability 1/2; each fragment's logit is
# CLASS_SHIFT (viral) or -CLASS_SHIFT (host), plus the genome's effect ~ N(0, GENOME_SD^2), plus
# the fragment's own noise ~ N(0, FRAGMENT_SD^2); prob = sigmoid(logit); threshold 0.5 (logit 0).
CLASS_SHIFT, GENOME_SD, FRAGMENT_SD = 1.0, 1.0, 0.7
FRAGMENTS = (5, 25)  # fragments per genome, uniform, inclusive
_TOTAL_SD = math.hypot(GENOME_SD, FRAGMENT_SD)
# A viral and a host fragment of different genomes: logit difference ~ N(2 shift, 2 total sd^2).
TRUE_AUROC = float(stats.norm.cdf(2 * CLASS_SHIFT / (math.sqrt(2) * _TOTAL_SD)))
# Either class is on the right side of logit 0 with the same probability.
TRUE_ACCURACY = float(stats.norm.cdf(CLASS_SHIFT / _TOTAL_SD))


def simulate(
    rng: np.random.Generator,
    records: int,
    fragments: tuple[int, int] = FRAGMENTS,
    rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One test set of `records` genomes: (labels, viral probabilities, genome code per row).
    Each genome has `fragments` (uniform, inclusive) fragments, or, with `rows`, that many rows
    fall on the genomes at random (at least one each)."""
    if rows is None:
        sizes = rng.integers(fragments[0], fragments[1] + 1, size=records)
    else:
        sizes = 1 + rng.multinomial(rows - records, np.full(records, 1 / records))
    viral = rng.integers(0, 2, size=records)
    effect = rng.normal(0.0, GENOME_SD, size=records)
    groups = np.repeat(np.arange(records), sizes)
    y = viral[groups]
    logit = np.where(y == 1, CLASS_SHIFT, -CLASS_SHIFT) + effect[groups]
    logit += rng.normal(0.0, FRAGMENT_SD, size=len(groups))
    return y, 1.0 / (1.0 + np.exp(-logit)), groups


def coverage(
    sets: int, records: int, n_boot: int, seed: int = 0, row_sets: int | None = None
) -> dict[str, dict[str, float]]:
    """How often the 95% intervals cover TRUE_AUROC and TRUE_ACCURACY, over `sets` simulated
    test sets: {"cluster": {"auroc": ..., "accuracy": ...}, "row": {...}}; the row bootstrap
    (each row its own group: the slow one) on the first `row_sets` of them (default: all)."""
    rng = np.random.default_rng(seed)
    truth = {"auroc": TRUE_AUROC, "accuracy": TRUE_ACCURACY}
    row_sets = sets if row_sets is None else row_sets
    hits = {kind: dict.fromkeys(truth, 0) for kind in ("cluster", "row")}
    for i in range(sets):
        y, prob, groups = simulate(rng, records)
        kinds = [("cluster", groups)] + ([("row", np.arange(len(y)))] if i < row_sets else [])
        for kind, codes in kinds:
            ci = cluster_bootstrap(y, prob, codes, n_boot=n_boot, seed=i)
            for metric, value in truth.items():
                hits[kind][metric] += ci[metric][0] <= value <= ci[metric][1]
    done = {"cluster": sets, "row": row_sets}
    return {kind: {m: h / done[kind] for m, h in per.items()} for kind, per in hits.items()}


def speed(args: argparse.Namespace) -> None:
    y, prob, groups = simulate(np.random.default_rng(0), args.records, rows=args.rows)
    print(f"machine: {machine()}; numpy {np.__version__}")
    print(
        f"{len(y):,} rows, {args.records:,} records, n_boot {args.n_boot}, {args.repeats} repeats"
    )
    kinds = {"cluster (by record)": groups}
    if args.row_bootstrap:
        kinds["row"] = np.arange(len(y))

    def rows():
        for label, codes in kinds.items():
            times = [
                timed(cluster_bootstrap, y, prob, codes, n_boot=args.n_boot)
                for _ in range(args.repeats)
            ]
            yield [label, *medians(times)]

    table(["bootstrap", *MEDIANS], rows())


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--records", type=int, default=2_000)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--row-bootstrap", action="store_true", help="also time the row bootstrap")
    parser.add_argument("--coverage", action="store_true", help="measure coverage instead")
    parser.add_argument("--sets", type=int, default=1000, help="simulated test sets (--coverage)")
    parser.add_argument("--set-records", type=int, default=100, help="genomes per simulated set")
    parser.add_argument("--coverage-boot", type=int, default=1000, help="resamples per interval")
    return parser


def main() -> None:
    args = arguments().parse_args()
    if not args.coverage:
        speed(args)
        return
    print(f"machine: {machine()}; numpy {np.__version__}")
    print(
        f"{args.sets} simulated test sets of {args.set_records} genomes ({FRAGMENTS[0]}-"
        f"{FRAGMENTS[1]} fragments each), 95% intervals from {args.coverage_boot} resamples; "
        f"true AUROC {TRUE_AUROC:.4f}, true accuracy {TRUE_ACCURACY:.4f}"
    )
    start = time.perf_counter()
    result = coverage(args.sets, args.set_records, args.coverage_boot)
    se = math.sqrt(0.95 * 0.05 / args.sets)
    table(
        ["bootstrap", "AUROC coverage", "accuracy coverage"],
        ([kind, f"{per['auroc']:.3f}", f"{per['accuracy']:.3f}"] for kind, per in result.items()),
    )
    print(f"binomial SE at 0.95: {se:.3f} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
