"""Do the genome intervals keep their promise? Coverage of the 95% intervals, and the paired
test's type-I error and power, on simulated test sets with genome sizes as skewed as real data.

    python benchmarks/interval_coverage.py            # every case, then the paired test (~10 min)
    python benchmarks/interval_coverage.py --paired   # the paired test only
    python benchmarks/interval_coverage.py --sets 20 --n-boot 200 --paired-sets 50   # a quick look

The generative model (simulators.py): a genome is viral with probability 1/2; its size
(fragments) is drawn log-uniformly from its class's range (or uniformly, for the equal-size
case); each fragment's logit is +1 (viral) or -1 (host), plus the genome's effect ~ N(0, 1)
shared by all its fragments, plus the fragment's own noise ~ N(0, 0.7^2); the viral probability
is sigmoid(logit), the threshold 0.5. The truth is the metric of the whole population (a huge
draw): exact here, since sizes do not depend on the effects (tests/stats/test_intervals.py checks
it on a large draw). Each simulated test set gets its intervals from `intervals_of`, the function
behind `genome_intervals` and everything the project writes, with every method from the same
resamples.

Paired: two models score the same genomes; their genome effects are correlated 0.5 and so are
their fragment noises, so their errors cluster by genome. With equal true accuracy, how often
does each test reject at alpha 0.05 (type-I error), and with model b 2 points more accurate, how
often does it (power)?
"""

from __future__ import annotations

import os

# One BLAS thread per worker: the workers already use the cores, and the bootstrap's small
# matrix-vector products only wait on each other with more threads (set before numpy loads).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from virnucpro_trainer.runtime import processor  # noqa: E402
from virnucpro_trainer.stats.intervals import DEFAULT_METHOD, METHODS, intervals_of  # noqa: E402
from virnucpro_trainer.stats.paired import (  # noqa: E402
    clustered_mcnemar,
    mcnemar,
    paired_bootstrap,
)

from simulators import Case, simulate, simulate_pair, truth  # noqa: E402

SHOWN = ("accuracy", "auroc", "f1", "mcc")
LEVEL = 0.95

CASES = (
    Case("30 genomes, 1-5000", 30, (1, 5000), (1, 5000)),
    Case("100 genomes, 1-5000", 100, (1, 5000), (1, 5000)),
    Case("300 genomes, 1-5000", 300, (1, 5000), (1, 5000)),
    Case("100 genomes, viral 1-500 / host 1-5000", 100, (1, 500), (1, 5000)),
    Case("100 genomes, 5-25 (equal)", 100, (5, 25), (5, 25), log_uniform=False),
)


def one_set(task: tuple) -> dict:
    """One simulated test set's intervals, judged against the truth: per (method, metric) a
    row of [covered, missed above, missed below, not estimable, width]."""
    number, i, n_boot, seed, methods = task
    case = CASES[number]
    y, prob, genome = simulate(np.random.default_rng([seed, number, i]), case)
    (found,) = intervals_of(y, prob, genome, [prob >= 0.5], LEVEL, n_boot, i, methods)
    true, out = truth(case), {}
    for method in methods:
        for metric in SHOWN:
            got = found[method][metric]
            if got.reason is not None:
                out[(method, metric)] = np.array([0, 0, 0, 1, 0.0])
                continue
            above, below = got.low > true[metric], got.high < true[metric]
            out[(method, metric)] = np.array(
                [not (above or below), above, below, 0, got.high - got.low], dtype=float
            )
    return out


def coverage(number: int, sets: int, n_boot: int, seed: int, pool, methods=METHODS) -> dict:
    """Per method and metric, summed over `sets` simulated test sets of CASES[number]: covered,
    missed above, missed below, not estimable, width."""
    tasks = [(number, i, n_boot, seed, methods) for i in range(sets)]
    tally = {(m, k): np.zeros(5) for m in methods for k in SHOWN}
    for result in pool.imap_unordered(one_set, tasks, chunksize=4):
        for key, row in result.items():
            tally[key] += row
    return {"sets": sets, "truth": truth(CASES[number]), "tally": tally}


def print_coverage(case: Case, result: dict) -> None:
    sets, tally = result["sets"], result["tally"]
    truths = ", ".join(f"{k} {v:.4f}" for k, v in result["truth"].items())
    print(f"\n{case.name}: {sets} simulated test sets; truth {truths}")
    print(
        "| method | "
        + " | ".join(f"{k}: coverage (width)" for k in SHOWN)
        + " | misses above : below the truth | not estimable |"
    )
    print("|---" * (len(SHOWN) + 3) + "|")
    for method in dict.fromkeys(m for m, _ in tally):
        cells = []
        for metric in SHOWN:
            hit, _, _, unknown, width = tally[(method, metric)]
            estimable = sets - unknown
            if estimable == 0:
                cells.append("not estimable")
                continue
            share = hit / estimable
            se = math.sqrt(share * (1 - share) / estimable)
            cells.append(f"{share:.3f} ± {se:.3f} ({width / estimable:.3f})")
        above = int(sum(tally[(method, k)][1] for k in SHOWN))
        below = int(sum(tally[(method, k)][2] for k in SHOWN))
        unknown = int(max(tally[(method, k)][3] for k in SHOWN))
        print(f"| {method} | " + " | ".join(cells) + f" | {above} : {below} | {unknown} |")


def lowest(results: dict, cases, method: str) -> float | None:
    """The lowest coverage of SHOWN over `cases` for `method`; None when none is estimable."""
    shares = []
    for case in cases:
        for metric in SHOWN:
            hit, _, _, unknown, _ = results[case]["tally"][(method, metric)]
            if results[case]["sets"] > unknown:
                shares.append(hit / (results[case]["sets"] - unknown))
    return min(shares) if shares else None


PAIRED_TESTS = (
    "clustered McNemar, sign flips by genome (the summary's test)",
    "clustered McNemar, chi-square (Durkalski 2003)",
    "paired genome bootstrap: accuracy difference's interval excludes 0",
    "paired genome bootstrap: AUROC difference's interval excludes 0",
    "row McNemar (assumes independent fragments)",
)


def one_pair(task: tuple) -> list[float]:
    """Two models on one simulated test set, model b `delta` more accurate: does each test of
    PAIRED_TESTS reject equal performance at alpha 0.05 (1 or 0; NaN: the bootstrap tests run
    on the first `boot_sets` sets only)?"""
    i, genomes, delta, seed, n_boot, boot_sets = task
    rng = np.random.default_rng([seed, 1000 + round(1000 * delta), i])
    y, prob_a, prob_b, genome = simulate_pair(rng, genomes, delta)
    pred_a, pred_b = prob_a >= 0.5, prob_b >= 0.5
    clustered = clustered_mcnemar(y, pred_a, pred_b, genome, seed=i)
    outside = [math.nan, math.nan]
    if i < boot_sets:
        diff = paired_bootstrap(y, prob_a, prob_b, genome, n_boot=n_boot, seed=i)
        outside = [not diff[k]["low"] <= 0 <= diff[k]["high"] for k in ("accuracy", "auroc")]
    return [
        clustered["p_value"] < 0.05,
        clustered["chi2_p_value"] < 0.05,
        *outside,
        mcnemar(y, pred_a, pred_b)["p_value"] < 0.05,
    ]


def paired(args: argparse.Namespace, delta: float, pool) -> list[tuple[float, int]]:
    """Each test's rejection rate at alpha 0.05 and its number of simulated pairs."""
    tasks = [
        (i, args.paired_genomes, delta, args.seed, args.paired_boot, args.paired_boot_sets)
        for i in range(args.paired_sets)
    ]
    results = np.array(list(pool.imap_unordered(one_pair, tasks, chunksize=4)), dtype=float)
    counts = np.sum(np.isfinite(results), axis=0)
    return list(zip(np.nanmean(results, axis=0), counts, strict=True))


class InProcess:
    """A stand-in for a pool of one worker: the tasks run here, in order."""

    def imap_unordered(self, fn, tasks, chunksize=1):
        return map(fn, tasks)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=300, help="simulated test sets per case")
    parser.add_argument("--n-boot", type=int, default=1000, help="resamples (as ci.n_boot)")
    parser.add_argument("--paired", action="store_true", help="the paired tests only")
    parser.add_argument("--paired-sets", type=int, default=1000, help="simulated pairs")
    parser.add_argument(
        "--paired-boot-sets", type=int, default=200, help="of them, with the paired bootstrap"
    )
    parser.add_argument("--paired-genomes", type=int, default=100)
    parser.add_argument("--paired-boot", type=int, default=200, help="resamples (paired)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument(
        "--cases",
        type=int,
        nargs="+",
        default=list(range(len(CASES))),
        help="which cases, by number (0-based, in the order of the tables)",
    )
    return parser.parse_args()


def print_paired(args: argparse.Namespace, rates: dict[str, list]) -> None:
    print(
        f"\npaired tests at alpha 0.05: simulated pairs of models on {args.paired_genomes} "
        "genomes (1-5000 fragments), errors clustered by genome; the paired bootstrap with "
        f"{args.paired_boot} resamples"
    )
    print("| test | pairs | " + " | ".join(rates) + " |")
    print("|---|---|---|---|")
    for row, name in enumerate(PAIRED_TESTS):
        pairs = rates["type-I error"][row][1]
        cells = [f"{r[row][0]:.3f} ± {math.sqrt(0.05 * 0.95 / pairs):.3f}" for r in rates.values()]
        print(f"| {name} | {pairs} | " + " | ".join(cells) + " |")
    print("(± the binomial standard error at a rate of 0.05)")


def summary_line(results: dict, type1: float) -> str:
    """The last line, for scripts: the default method's lowest coverage of the four metrics
    over the skewed cases with 100 or more genomes, and at 30 genomes; the paired test's
    type-I error."""
    skewed = [c for c in results if c.skewed and c.genomes >= 100]
    high = lowest(results, skewed, DEFAULT_METHOD) if skewed else None
    small = [c for c in results if c.genomes == 30]
    low = lowest(results, small, DEFAULT_METHOD) if small else None
    return (
        f"coverage: min_skewed_100plus={'n/a' if high is None else f'{high:.3f}'} "
        f"min_30={'n/a' if not small else 'not_estimable' if low is None else f'{low:.3f}'} "
        f"paired_type1={type1:.3f}"
    )


def main() -> None:
    args = arguments()
    start = time.perf_counter()
    print(
        f"machine: {processor()}, {len(os.sched_getaffinity(0))} cores available, load average "
        f"{os.getloadavg()[0]:.2f} at the start; numpy {np.__version__}; {args.jobs} worker(s)"
    )
    results = {}
    context = multiprocessing.get_context("fork")
    with context.Pool(args.jobs) if args.jobs > 1 else InProcess() as pool:
        if not args.paired:
            print(
                f"95% intervals from {args.n_boot} resamples; coverage ± its binomial standard "
                "error over the sets where the interval is estimable, (mean width)"
            )
            for number in args.cases:
                results[CASES[number]] = coverage(number, args.sets, args.n_boot, args.seed, pool)
                print_coverage(CASES[number], results[CASES[number]])
        rates = {
            label: paired(args, delta, pool)
            for label, delta in (("type-I error", 0.0), ("power at +0.02 accuracy", 0.02))
        }
    print_paired(args, rates)
    print(f"({time.perf_counter() - start:.0f} s in all)")
    print(summary_line(results, rates["type-I error"][0][0]))


if __name__ == "__main__":
    main()
