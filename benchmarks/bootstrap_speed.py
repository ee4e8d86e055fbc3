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
closed form (TRUE_AUROC, TRUE_ACCURACY; checked on a large sample). The simulation is
simulators.py's `simulate_records` and `bootstrap_coverage`; tests/stats/test_uncertainty.py runs
it at a smaller size.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from virnucpro_trainer.stats.intervals import cluster_bootstrap

from _common import MEDIANS, machine, medians, table, timed
from simulators import (
    FRAGMENTS,
    TRUE_ACCURACY,
    TRUE_AUROC,
    bootstrap_coverage,
    simulate_records,
)


def speed(args: argparse.Namespace) -> None:
    y, prob, groups = simulate_records(np.random.default_rng(0), args.records, rows=args.rows)
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
    result = bootstrap_coverage(args.sets, args.set_records, args.coverage_boot)
    se = math.sqrt(0.95 * 0.05 / args.sets)
    table(
        ["bootstrap", "AUROC coverage", "accuracy coverage"],
        ([kind, f"{per['auroc']:.3f}", f"{per['accuracy']:.3f}"] for kind, per in result.items()),
    )
    print(f"binomial SE at 0.95: {se:.3f} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
