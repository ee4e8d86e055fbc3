"""Do the genome intervals keep their promise? Coverage of the 95% intervals of all ten metrics on
the family of simulated collections of issue 33 (collection_family.py), the default against the
other rules; and the paired tests' type-I error and power.

    python benchmarks/interval_coverage.py                  # the family, then the paired tests
    python benchmarks/interval_coverage.py --quick          # 100 genomes, lognormal and Pareto
    python benchmarks/interval_coverage.py --part held-out  # the held-out part only
    python benchmarks/interval_coverage.py --paired         # the paired tests only
    python benchmarks/interval_coverage.py --save run.jsonl # keep each case's tallies as it
                                                            # ends; run again to resume

The family: genome sizes log-uniform, lognormal or Pareto-tailed (tail index 1.1); genome
effects Normal or Student t (3 df); viral:host genomes 1:1, 1:10 or 10:1; 30, 100 or 300
genomes; and six data models unlike these (collection_family.STRESS). The truths are the
population's metrics, computed by numerical integration over the genome effects. The default's
rules were chosen on part of the family (Normal effects, log-uniform or lognormal sizes: the
"tuned" part) and every other case is held out.

Each simulated collection gets its default intervals exactly as `genome_intervals` makes them
(same resamples, same rules); the other rules (interval_candidates.py) come from the same
resamples. Coverage counts the sets where an interval was given ("estimable").

Paired: two models score the same genomes, their genome effects and fragment noises correlated
0.5 (errors cluster by genome). Under three nulls of equal population accuracy (exchangeable:
the two models alike on every genome, sizes log-uniform 1-5000; genome-imbalanced: Pareto sizes,
viral:host 1:10; non-exchangeable: each model better on one class) how often does each test
reject at alpha 0.05, and with model b 2 points more accurate (exchangeable), how often does it?
"""

from __future__ import annotations

import os

# One BLAS thread per worker: the workers already use the cores, and the bootstrap's small
# matrix-vector products only wait on each other with more threads (set before numpy loads).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from interval_candidates import BEFORE_MIN_EFFECTIVE, CANDIDATES, candidate_intervals  # noqa: E402

from virnucpro_trainer.runtime import processor  # noqa: E402
from virnucpro_trainer.stats.bootstrap import Design, Scored, check_inputs  # noqa: E402
from virnucpro_trainer.stats.effective import effective_genomes  # noqa: E402
from virnucpro_trainer.stats.intervals import (  # noqa: E402
    DEFAULT_METHOD,
    MIN_EFFECTIVE_GENOMES,
    MIN_GENOMES_PER_CLASS,
    design_problem,
    draw,
    interval,
    not_estimable,
)
from virnucpro_trainer.stats.metrics import SCALAR_METRICS  # noqa: E402
from virnucpro_trainer.stats.paired import (  # noqa: E402
    clustered_mcnemar,
    mcnemar,
    paired_bootstrap,
)

import collection_family as cf  # noqa: E402
import simulators  # noqa: E402

LEVEL = 0.95
SHAPES = (*cf.grid(), *cf.STRESS)
METHODS = (f"{DEFAULT_METHOD} (default)", *CANDIDATES)
# The default's sets by the metric's own effective number of genomes (Interval.genomes: how
# evenly the genomes carry its variance), to show where it misses.
OWN_BINS = ((0.0, 5.0), (5.0, 12.0), (12.0, math.inf))
BY_OWN = tuple(f"default, own effective genomes {lo:g}-{hi:g}" for lo, hi in OWN_BINS)
SHORT = {
    "accuracy": "acc",
    "precision": "prec",
    "recall": "rec",
    "f1": "F1",
    "specificity": "spec",
    "balanced_accuracy": "bal",
    "mcc": "MCC",
    "auroc": "AUROC",
    "auprc": "AUPRC",
    "brier": "Brier",
}
MIN_SETS = 20  # a cell's coverage counts toward the minima with this many estimable sets


def quick_cases() -> list[int]:
    return [
        i
        for i, s in enumerate(SHAPES)
        if not s.label and s.genomes == 100 and s.sizes != "log-uniform" and s.viral_share == 0.5
    ]


def judged(found, truth: dict) -> dict[str, np.ndarray]:
    """Per metric: [covered, missed above, missed below, not estimable, width]."""
    out = {}
    for metric, got in found.items():
        if got.reason is not None:
            out[metric] = np.array([0, 0, 0, 1, 0.0])
            continue
        above, below = got.low > truth[metric], got.high < truth[metric]
        out[metric] = np.array(
            [not (above or below), above, below, 0, got.high - got.low], dtype=float
        )
    return out


def one_set(task: tuple) -> dict:
    """One simulated collection's intervals by every rule, judged against the truth."""
    number, i, n_boot, seed = task
    shape = SHAPES[number]
    y, prob, logit, genome = cf.simulate(np.random.default_rng([seed, number, i]), shape)
    effective = effective_genomes(y, genome)
    y, (score, rank, cut), codes, n_groups = check_inputs(y, [prob, logit, prob >= 0.5], genome)
    problem = design_problem(y, codes, n_groups)
    per_class = effective["effective_genomes"]
    counts = effective["genomes"]
    before_admits = (
        min(counts["viral"], counts["host"]) >= MIN_GENOMES_PER_CLASS
        and min(per_class["viral"], per_class["host"]) >= BEFORE_MIN_EFFECTIVE
    )
    withheld = {k: not_estimable(problem or "") for k in SCALAR_METRICS}
    found = {name: withheld for name in (*METHODS, *BY_OWN)}
    if problem is None or before_admits:
        scored = Scored(y, score, [cut], codes, n_groups, rank)
        (drawn,) = draw([scored], Design(y, codes, n_groups), n_boot, i)
        shares = np.bincount(codes, minlength=n_groups) / len(y)
        others = candidate_intervals(drawn, LEVEL, per_class, shares, [seed, number, i, 1])
        for name in CANDIDATES:
            if problem is None or name == "before":
                found[name] = others[name]
        if problem is None:
            own = {k: interval(drawn, k, DEFAULT_METHOD, LEVEL) for k in SCALAR_METRICS}
            found[METHODS[0]] = own
            for name, (lo, hi) in zip(BY_OWN, OWN_BINS, strict=True):
                found[name] = {
                    k: own[k] if lo <= own[k].genomes < hi else not_estimable("another bin")
                    for k in SCALAR_METRICS
                }
    truth = cf.truth(shape)
    return {name: judged(intervals, truth) for name, intervals in found.items()}


def saved(path: str | None, args: argparse.Namespace) -> tuple[dict, dict | None]:
    """The case tallies and paired rates a --save file holds for these settings."""
    results, rates = {}, None
    if not path or not os.path.exists(path):
        return results, rates
    same = {"sets": args.sets, "n_boot": args.n_boot, "seed": args.seed}
    with open(path) as f:
        for line in f:
            entry = json.loads(line)
            if "paired" in entry:
                rates = {k: [tuple(r) for r in v] for k, v in entry["paired"].items()}
            elif all(entry[k] == v for k, v in same.items()):
                tally = {tuple(k.split("|")): np.array(v) for k, v in entry["tally"].items()}
                results[entry["case"]] = {"sets": entry["sets"], "tally": tally}
    return results, rates


def keep(path: str | None, entry: dict) -> None:
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(entry) + "\n")


def coverage(number: int, sets: int, n_boot: int, seed: int, pool) -> dict:
    tasks = [(number, i, n_boot, seed) for i in range(sets)]
    tally = {(m, k): np.zeros(5) for m in (*METHODS, *BY_OWN) for k in SCALAR_METRICS}
    for result in pool.imap_unordered(one_set, tasks, chunksize=2):
        for method, per_metric in result.items():
            for metric, row in per_metric.items():
                tally[(method, metric)] += row
    return {"sets": sets, "tally": tally}


def cell(row: np.ndarray, sets: int) -> tuple[float | None, int]:
    """(coverage or None, estimable sets) of one tally row."""
    estimable = int(sets - row[3])
    return (row[0] / estimable if estimable else None), estimable


def print_default(results: dict) -> None:
    method = METHODS[0]
    print(
        f"\nThe default ({DEFAULT_METHOD}): coverage of the 95% intervals over the sets where "
        "it is estimable; 'given': the share of sets with an interval (lowest over the metrics); "
        "'misses': intervals above : below the truth, over the metrics"
    )
    print(
        "| collection | part | given | "
        + " | ".join(SHORT[k] for k in SCALAR_METRICS)
        + " | misses |"
    )
    print("|---" * (len(SCALAR_METRICS) + 4) + "|")
    for number, result in results.items():
        shape, sets, tally = SHAPES[number], result["sets"], result["tally"]
        cells, given = [], []
        for metric in SCALAR_METRICS:
            share, estimable = cell(tally[(method, metric)], sets)
            given.append(estimable / sets)
            cells.append("-" if share is None else f"{share:.2f}")
        above = int(sum(tally[(method, k)][1] for k in SCALAR_METRICS))
        below = int(sum(tally[(method, k)][2] for k in SCALAR_METRICS))
        part = "tuned" if cf.tuned_on(shape) else "held out"
        print(
            f"| {shape.name} | {part} | {min(given):.2f} | "
            + " | ".join(cells)
            + f" | {above} : {below} |"
        )


def print_by_own(results: dict) -> None:
    """The default's coverage by the metric's own effective number of genomes (cells of fewer
    than MIN_SETS sets shown as '-'), for the cases whose tallies have it."""
    print(
        "\nThe default by the metric's own effective number of genomes (how evenly the genomes "
        f"carry its variance): coverage over the sets in each bin; '-' under {MIN_SETS} sets"
    )
    print("| collection | own effective genomes | " + " | ".join(SHORT.values()) + " |")
    print("|---" * (len(SCALAR_METRICS) + 2) + "|")
    for number, result in results.items():
        for name, (lo, hi) in zip(BY_OWN, OWN_BINS, strict=True):
            if (name, SCALAR_METRICS[0]) not in result["tally"]:
                break  # a case saved before the bins existed
            cells = []
            for metric in SCALAR_METRICS:
                share, estimable = cell(result["tally"][(name, metric)], result["sets"])
                cells.append("-" if share is None or estimable < MIN_SETS else f"{share:.2f}")
            print(f"| {SHAPES[number].name} | {lo:g}-{hi:g} | " + " | ".join(cells) + " |")


def summary(results: dict, method: str, part: str) -> dict:
    """Over the cases of `part` (tuned, held out): the lowest coverage of any (case, metric)
    with MIN_SETS estimable sets, how many such cells lie below 0.92, their mean coverage and
    width, and the share of sets given an interval."""
    shares, widths, below, given = [], [], 0, []
    for number, result in results.items():
        shape = SHAPES[number]
        if ("tuned" if cf.tuned_on(shape) else "held out") != part:
            continue
        for metric in SCALAR_METRICS:
            row = result["tally"][(method, metric)]
            share, estimable = cell(row, result["sets"])
            given.append(estimable / result["sets"])
            if share is not None and estimable >= MIN_SETS:
                shares.append(share)
                widths.append(row[4] / estimable)
                below += share < 0.92
    if not shares:
        return {}
    return {
        "lowest": min(shares),
        "below": below,
        "cells": len(shares),
        "mean": float(np.mean(shares)),
        "width": float(np.mean(widths)),
        "given": float(np.mean(given)),
    }


def lognormal_100_given(results: dict, method: str) -> float | None:
    """The lowest share of sets given an interval, over the metrics, at 100 genomes of lognormal
    sizes (1:1, either kind of effects)."""
    found = []
    for number, result in results.items():
        s = SHAPES[number]
        if not s.label and s.sizes == "lognormal" and s.genomes == 100 and s.viral_share == 0.5:
            for metric in SCALAR_METRICS:
                found.append(cell(result["tally"][(method, metric)], result["sets"])[1])
                found[-1] /= result["sets"]
    return min(found) if found else None


def print_methods(results: dict) -> None:
    print(
        f"\nEvery rule over the (collection, metric) cells with {MIN_SETS} or more estimable "
        "sets: the lowest coverage, cells below 0.92, mean coverage, mean width, the share "
        "of sets given an interval, and the lowest such share at 100 lognormal genomes (1:1)"
    )
    print("| rule | part | lowest | below 0.92 | mean | width | given | lognormal 100 |")
    print("|---|---|---|---|---|---|---|---|")
    for method in METHODS:
        for part in ("tuned", "held out"):
            found = summary(results, method, part)
            if not found:
                continue
            ln = lognormal_100_given(results, method)
            print(
                f"| {method} | {part} | {found['lowest']:.3f} | {found['below']} of "
                f"{found['cells']} | {found['mean']:.3f} | {found['width']:.3f} | "
                f"{found['given']:.2f} | {'n/a' if ln is None else f'{ln:.2f}'} |"
            )


# --- paired tests ---------------------------------------------------------------------------------

PAIRED_TESTS = (
    "clustered McNemar, sign flips by genome (the summary's test)",
    "clustered McNemar, chi-square (Durkalski 2003)",
    "paired genome bootstrap: accuracy difference's interval excludes 0",
    "paired genome bootstrap: AUROC difference's interval excludes 0",
    "row McNemar (assumes independent fragments)",
)
NULLS = ("exchangeable", "genome-imbalanced", "non-exchangeable")
NULL_TEXT = {
    "exchangeable": "100 genomes of 1-5000 fragments (log-uniform), 1:1; the models alike on "
    "every genome (simulators.simulate_pair, the null before issue 33)",
    **{kind: text for kind, (_, text) in cf.PAIR_NULLS.items()},
}


def one_pair(task: tuple) -> list[float]:
    """Two models on one simulated test set: does each test of PAIRED_TESTS reject equal
    performance at alpha 0.05 (1 or 0; NaN: the bootstrap tests run on the first `boot_sets`
    sets only)? kind: one of NULLS, or "power" (exchangeable, model b 2 points better)."""
    i, kind, seed, n_boot, boot_sets = task
    rng = np.random.default_rng([seed, 1000 + NULLS.index(kind) if kind in NULLS else 2000, i])
    if kind in ("exchangeable", "power"):
        delta = 0.02 if kind == "power" else 0.0
        y, prob_a, prob_b, genome = simulators.simulate_pair(rng, 100, delta)
    else:
        y, prob_a, prob_b, genome = cf.simulate_pair(rng, kind)
    pred_a, pred_b = prob_a >= 0.5, prob_b >= 0.5
    clustered = clustered_mcnemar(y, pred_a, pred_b, genome, seed=i)
    outside = [math.nan, math.nan]
    if i < boot_sets:
        diff = paired_bootstrap(y, prob_a, prob_b, genome, n_boot=n_boot, seed=i)
        outside = [
            math.nan if diff[k]["reason"] else not diff[k]["low"] <= 0 <= diff[k]["high"]
            for k in ("accuracy", "auroc")
        ]
    return [
        clustered["p_value"] < 0.05,
        clustered["chi2_p_value"] < 0.05,
        *outside,
        mcnemar(y, pred_a, pred_b)["p_value"] < 0.05,
    ]


def paired(args: argparse.Namespace, kind: str, pool) -> list[tuple[float, int]]:
    tasks = [
        (i, kind, args.seed, args.paired_boot, args.paired_boot_sets)
        for i in range(args.paired_sets)
    ]
    results = np.array(list(pool.imap_unordered(one_pair, tasks, chunksize=4)), dtype=float)
    counts = np.sum(np.isfinite(results), axis=0)
    return list(zip(np.nanmean(results, axis=0), counts, strict=True))


def print_paired(args: argparse.Namespace, rates: dict[str, list]) -> None:
    print(
        "\npaired tests at alpha 0.05, rejection rates: type-I error under each null (100 "
        "genomes, errors clustered by genome), power with model b 2 points more accurate; the "
        f"paired bootstrap with {args.paired_boot} resamples"
    )
    for kind in NULLS:
        print(f"- {kind}: {NULL_TEXT[kind]}")
    print("| test | pairs | " + " | ".join(rates) + " |")
    print("|---|---|" + "---|" * len(rates))
    for row, name in enumerate(PAIRED_TESTS):
        pairs = rates["power"][row][1]
        cells = [f"{r[row][0]:.3f}" for r in rates.values()]
        print(f"| {name} | {pairs} | " + " | ".join(cells) + " |")
    print(
        f"(± {math.sqrt(0.05 * 0.95 / args.paired_sets):.3f} for the McNemar tests, "
        f"{math.sqrt(0.05 * 0.95 / args.paired_boot_sets):.3f} for the bootstrap: the binomial "
        "standard error at a rate of 0.05)"
    )


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
    parser.add_argument("--sets", type=int, default=200, help="simulated collections per case")
    parser.add_argument("--n-boot", type=int, default=1000, help="resamples (as ci.n_boot)")
    parser.add_argument("--quick", action="store_true", help="100 genomes, lognormal and Pareto")
    parser.add_argument("--part", choices=("all", "tuned", "held-out"), default="all")
    parser.add_argument(
        "--cases", type=int, nargs="+", help="cases by number (0-based, the table's order)"
    )
    parser.add_argument("--paired", action="store_true", help="the paired tests only")
    parser.add_argument("--no-paired", action="store_true", help="no paired tests")
    parser.add_argument("--paired-sets", type=int, default=1000, help="simulated pairs")
    parser.add_argument(
        "--paired-boot-sets", type=int, default=200, help="of them, with the paired bootstrap"
    )
    parser.add_argument("--paired-boot", type=int, default=200, help="resamples (paired)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=min(2, len(os.sched_getaffinity(0))))
    parser.add_argument("--save", help="a JSON-lines file of finished cases (resumed from)")
    return parser.parse_args()


def chosen_cases(args: argparse.Namespace) -> list[int]:
    if args.paired:
        return []
    if args.cases:
        return args.cases
    if args.quick:
        return quick_cases()
    wanted = {"all": None, "tuned": True, "held-out": False}[args.part]
    return [i for i, s in enumerate(SHAPES) if wanted is None or cf.tuned_on(s) == wanted]


def summary_line(results: dict, rates: dict | None) -> str:
    """The last line, for scripts: the default's lowest coverage over the tuned and the held-out
    cells, the share of sets given an interval at 100 lognormal genomes, the clustered McNemar
    test's type-I error under each null."""
    method = METHODS[0]
    low = {part: summary(results, method, part).get("lowest") for part in ("tuned", "held out")}
    given = lognormal_100_given(results, method)
    text = " ".join(
        f"min_{part.replace(' ', '_')}={'n/a' if v is None else f'{v:.3f}'}"
        for part, v in low.items()
    )
    text += f" given_lognormal_100={'n/a' if given is None else f'{given:.2f}'}"
    if rates:
        text += " paired_type1=" + "/".join(f"{rates[k][0][0]:.3f}" for k in NULLS)
    return f"coverage: {text}"


def main() -> None:
    args = arguments()
    start = time.perf_counter()
    print(
        f"machine: {processor()}, {len(os.sched_getaffinity(0))} cores available, load average "
        f"{os.getloadavg()[0]:.2f} at the start; numpy {np.__version__}; {args.jobs} worker(s)"
    )
    cases = chosen_cases(args)
    for number in cases:  # the truths once, before the workers fork (t effects take seconds)
        cf.truth(SHAPES[number])
    print(
        f"95% intervals from {args.n_boot} resamples, {args.sets} simulated collections per "
        f"case; the default withholds an interval below {MIN_GENOMES_PER_CLASS} genomes or an "
        f"effective number of {MIN_EFFECTIVE_GENOMES:g} genomes in a class"
    )
    done, rates = saved(args.save, args)
    results = {}
    context = multiprocessing.get_context("fork")
    with context.Pool(args.jobs) if args.jobs > 1 else InProcess() as pool:
        for number in cases:
            if number in done:
                results[number] = done[number]
                continue
            results[number] = coverage(number, args.sets, args.n_boot, args.seed, pool)
            tally = {"|".join(k): v.tolist() for k, v in results[number]["tally"].items()}
            keep(args.save, {"case": number, "sets": args.sets, "n_boot": args.n_boot,
                             "seed": args.seed, "tally": tally})  # fmt: skip
            print(
                f"  {SHAPES[number].name}: done ({time.perf_counter() - start:.0f} s)", flush=True
            )
        if results:
            print_default(results)
            print_methods(results)
            print_by_own(results)
        if not args.no_paired:
            if rates is None:
                rates = {kind: paired(args, kind, pool) for kind in (*NULLS, "power")}
                plain = {k: [[float(r), int(n)] for r, n in v] for k, v in rates.items()}
                keep(args.save, {"paired": plain})
            print_paired(args, rates)
    print(f"({time.perf_counter() - start:.0f} s in all)")
    print(summary_line(results, rates))


if __name__ == "__main__":
    main()
