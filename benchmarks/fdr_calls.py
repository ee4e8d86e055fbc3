"""Do evaluate.py's viral calls keep their FDR where false calls come by whole genome? (issue 33;
the table is in docs/cutoffs-and-calibration.md.) Per viral fraction, level and method (lfdr,
conformal): each preset's mean realized FDR over samples, the share of samples whose realized
FDR is at most 1.2 x the target, the mean recall, and how often nothing was called.

    python benchmarks/fdr_calls.py                            # 100 samples per fraction
    python benchmarks/fdr_calls.py --samples 20 --fractions 0.05 0.2
    python benchmarks/fdr_calls.py --sizes short              # the sample's records: 1-2 chunks
    python benchmarks/fdr_calls.py --sizes long               # the sample's records: 8-64 chunks
    python benchmarks/fdr_calls.py --min-bin-hosts 100000     # one bin: sizes not conditioned on
    python benchmarks/fdr_calls.py --fixed-validation         # one checkpoint for every sample

The data (calls_simulator.py): genome effects Student t (3 df), genome sizes Pareto-tailed (index
1.1, 1 to 2,000 chunks of 1-6 frames), an over-confident model with a temperature fitted on a
small validation (50 genomes per class); the checkpoint's validation_scores hold 1,000 genomes per
class. A sample holds `--records` genomes, round(fraction x records) of them viral, so the record
level's viral fraction is the fraction (the rows' and chunks' vary with the genomes' sizes). Each
sample gets its own checkpoint (the guarantee on average over validations and samples) unless
`--fixed-validation`. Each sample goes through evaluate.py's own code as unlabelled data: the
levels of evaluate/assess.py's `make_levels`, then evaluate/composition.py's `compositions` with
evaluate.py's default settings (the interval's resamples cut to `--n-boot`: the calls use the
estimate only). Both methods' calls come from the same run: lfdr's and conformal's q-values, each
called at the preset's target as evaluate.py calls them (`calls_at_fdr`). A sample where a method
calls nothing has realized FDR 0 (FDR = E[false / max(called, 1)]).

The last line: `fdr: mean_record=X exceed_record=Y recall_record=Z`, the record level of the
default method at the default preset over fractions >= 0.05, worst over fractions: the highest
mean realized FDR, the highest share of samples whose realized FDR exceeds 1.2 x the target, the
lowest mean recall.
"""

from __future__ import annotations

import argparse
import logging
import time
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache

import numpy as np
from omegaconf import OmegaConf

from virnucpro_trainer.config.evaluate import EvalConfig
from virnucpro_trainer.evaluate.assess import make_levels
from virnucpro_trainer.evaluate.composition import compositions
from virnucpro_trainer.stats.composition import PRESETS, calls_at_fdr
from virnucpro_trainer.stats.conformal import DEFAULT_METHOD, METHODS, MIN_BIN_HOSTS

import calls_simulator as sim
from _common import machine

FRACTIONS = (0.01, 0.05, 0.2, 0.5)
LEVELS = ("rows", "chunks", "records")
HEADLINE = 0.05  # the last line: fractions at or above this


@lru_cache(maxsize=1)
def fixed_checkpoint(seed: int, genomes: int):
    return sim.checkpoint(np.random.default_rng([seed, 999_999]), genomes)


def one_sample(task: tuple) -> dict:
    """One sample's realized FDR, recall and whether anything was called, per level, method and
    preset: {(level, method, preset): (fdr, recall, called_any)}."""
    package = logging.getLogger("virnucpro_trainer")
    before = package.level
    package.setLevel(logging.ERROR)  # T at its edge, etc.
    try:
        return _one_sample(task)
    finally:  # a test runs this in its own process: leave the logging as it was
        package.setLevel(before)


def _one_sample(task: tuple) -> dict:
    fraction, index, args = task
    rng = np.random.default_rng([args.seed, round(fraction * 1e6), index])
    if args.fixed_validation:
        scoring = fixed_checkpoint(args.seed, args.val_genomes)
    else:
        scoring = sim.checkpoint(rng, args.val_genomes)
    rows = sim.sample(rng, fraction, args.records, args.sizes)
    cfg = OmegaConf.structured(EvalConfig)  # evaluate.py's defaults
    cfg.fraction.n_boot = args.n_boot
    cfg.calls.min_bin_hosts = args.min_bin_hosts
    levels, _ = make_levels(sim.scored(rows, scoring.temperature), sim.PATTERN, cfg.aggregate)
    truth, _ = make_levels(sim.scored(rows, scoring.temperature, True), sim.PATTERN, cfg.aggregate)
    found = compositions(cfg, scoring, levels)
    out = {}
    for level in LEVELS:
        y, c = np.asarray(truth[level].labels), found[level]
        q = {
            "lfdr": None if c.numbers is None else c.numbers.q_value,
            "conformal": None if c.conformal is None else c.conformal.q_value,
        }
        for method in METHODS:
            for preset in PRESETS:
                called = (
                    np.zeros(y.size, bool) if q[method] is None else calls_at_fdr(q[method], preset)
                )
                false = int(np.sum(called & (y == 0)))
                recall = float(np.sum(called & (y == 1)) / max(int(y.sum()), 1))
                out[level, method, preset] = (
                    false / max(int(called.sum()), 1),
                    recall,
                    called.any(),
                )
    return out


def summary(results: list[dict], key: tuple) -> tuple[float, float, float, float]:
    """(mean realized FDR, share at or under 1.2 x target, mean recall, share calling nothing)."""
    fdr, recall, any_call = (np.array([r[key][i] for r in results], float) for i in range(3))
    target = PRESETS[key[2]]
    return fdr.mean(), np.mean(fdr <= 1.2 * target + 1e-12), recall.mean(), 1 - any_call.mean()


def report(results: dict[float, list[dict]], args, seconds: float) -> None:
    print(f"machine: {machine()}")
    print(
        f"{args.samples} samples per fraction of {args.records} genomes; validation "
        f"{args.val_genomes} genomes per class; record sizes "
        f"{args.sizes}; min_bin_hosts {args.min_bin_hosts}; "
        f"{'one checkpoint' if args.fixed_validation else 'a checkpoint per sample'}; "
        f"default method {DEFAULT_METHOD}; {seconds:.0f} s"
    )
    header = ["fraction", "level", "method"]
    for preset, target in PRESETS.items():
        header += [f"{preset} FDR", f"<={1.2 * target:.2g}", "recall", "none"]
    print("| " + " | ".join(header) + " |")
    print("|---" * len(header) + "|")
    for fraction, found in results.items():
        for level in LEVELS:
            for method in METHODS:
                cells = [f"{fraction:g}", level, method]
                for preset in PRESETS:
                    cells += [f"{v:.3f}" for v in summary(found, (level, method, preset))]
                print("| " + " | ".join(cells) + " |")
    worst = [
        summary(found, ("records", DEFAULT_METHOD, "default"))
        for fraction, found in results.items()
        if fraction >= HEADLINE
    ]
    if not worst:
        print("fdr: mean_record=n/a exceed_record=n/a recall_record=n/a")
        return
    mean = max(w[0] for w in worst)
    exceed = max(1 - w[1] for w in worst)
    recall = min(w[2] for w in worst)
    print(f"fdr: mean_record={mean:.3f} exceed_record={exceed:.3f} recall_record={recall:.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100, help="samples per fraction")
    parser.add_argument("--records", type=int, default=2000, help="genomes per sample")
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    parser.add_argument("--sizes", choices=tuple(sim.SIZES), default="same",
                        help="the sample's record sizes (the validation's: `same`)")  # fmt: skip
    parser.add_argument("--min-bin-hosts", type=int, default=MIN_BIN_HOSTS)
    parser.add_argument("--fixed-validation", action="store_true",
                        help="one checkpoint (validation) for every sample")  # fmt: skip
    parser.add_argument("--val-genomes", type=int, default=sim.VAL_GENOMES,
                        help="the checkpoint's validation genomes per class")  # fmt: skip
    parser.add_argument("--n-boot", type=int, default=50, help="fraction.n_boot")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    tasks = [(f, i, args) for f in args.fractions for i in range(args.samples)]
    start = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            found = list(pool.map(one_sample, tasks, chunksize=4))
    else:
        found = [one_sample(t) for t in tasks]
    results = {
        f: [r for t, r in zip(tasks, found, strict=True) if t[0] == f] for f in args.fractions
    }
    report(results, args, time.perf_counter() - start)


if __name__ == "__main__":
    main()
