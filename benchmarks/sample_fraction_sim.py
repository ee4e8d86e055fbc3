"""Does the sample's estimated viral fraction keep its promise? Per true viral fraction: each
estimator's mean absolute error, how often its 95% interval covers the truth and how wide it is,
and the realized FDR and recall of each preset's calls, on simulated samples with skewed genome
sizes (about a minute per command on 2 cores).

    python benchmarks/sample_fraction_sim.py                      # 100 samples of 2,000 each
    python benchmarks/sample_fraction_sim.py --calls-at lower     # presets at the low end
    python benchmarks/sample_fraction_sim.py --bias 0.5           # calibration off by 0.5 logit
    python benchmarks/sample_fraction_sim.py --prior validation   # EM's prior: validation's share
    python benchmarks/sample_fraction_sim.py --samples 60 --sizes 300 1000 3000 10000

The generative model (simulators.py, which tests/stats/test_composition.py shares): a genome's
size (fragments) is drawn log-uniformly from 1..500; each fragment's x is +MIX_SHIFT (viral) or
-MIX_SHIFT (host), plus the genome's effect ~ N(0, MIX_GENOME_SD^2) shared by its fragments, plus
its own noise ~ N(0, MIX_FRAGMENT_SD^2). The model's logit is OVERCONFIDENCE * L(x) + bias, L(x)
the true log-odds of a fragment at a balanced prior (2 MIX_SHIFT x / total variance); a
temperature fitted on a validation set of VAL_GENOMES genomes per class calibrates it (exactly,
when bias = 0). A sample at true fraction f holds
`--sequences` fragments, round(f n) of them viral: whole genomes drawn until the class is full,
the last one cut, so the truth is the sample's own viral share. Each sample is scored with
`estimate_fraction` (stats/composition_interval.py); the presets' calls use the q-values at the
default estimator's fraction.

This is a simulation: the issue's real benchmark, benchmarks/sample_fraction.py (train once on
the demo data, draw samples from the test genomes, score them through evaluate.py), still has to
be written once the estimate is wired into evaluate.py.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from virnucpro_trainer.stats.composition import PRESETS, calls_at_fdr, sequence_fdr
from virnucpro_trainer.stats.composition_interval import (
    DEFAULT_METHOD,
    METHODS,
    estimate_fraction,
)

from simulators import sample_at, validation_set

FRACTIONS = (0.01, 0.05, 0.2, 0.5)
TRAIN_PRIOR = 0.5  # the model's own prior: its log-odds have no prior term


def one_sample(rng, fraction, n, args, min_sequences=0) -> dict:
    """Every estimator's error and coverage, and each preset's realized FDR and recall."""
    vy, vp, vg, temperature, threshold = validation_set(rng, args.bias)
    y, p, g = sample_at(rng, fraction, n, temperature, args.bias)
    truth = float(y.mean())
    prior = TRAIN_PRIOR if args.prior == "train" else None
    found = estimate_fraction(
        p, g, vy, vp, vg, threshold, n_boot=args.n_boot, seed=int(rng.integers(2**31)),
        min_sequences=min_sequences, recalibrate=not args.no_recalibrate, train_prior=prior,
    )  # fmt: skip
    out = {}
    for method, r in found.items():
        out[f"{method}_error"] = abs(r.value - truth)
        out[f"{method}_covered"] = r.low <= truth <= r.high if math.isfinite(r.low) else math.nan
        out[f"{method}_width"] = r.high - r.low
    default = found[DEFAULT_METHOD]
    at = default.low if args.calls_at == "lower" else default.value
    if math.isfinite(at):
        q = sequence_fdr(p, float(vy.mean()) if prior is None else prior, at).q_value
        for preset in PRESETS:
            called = calls_at_fdr(q, preset)
            out[f"{preset}_fdr"] = float(np.sum(called & (y == 0)) / max(called.sum(), 1))
            out[f"{preset}_recall"] = float(np.sum(called & (y == 1)) / max(y.sum(), 1))
    return out


def table(rows: list[dict], fraction: float, n: int, samples: int, seconds: float) -> None:
    def mean(key: str) -> str:
        values = np.array([r.get(key, math.nan) for r in rows], dtype=float)
        values = values[np.isfinite(values)]
        return f"{values.mean():.3f}" if values.size else "n/a"

    def share(key: str, target: float) -> str:
        values = np.array([r.get(key, math.nan) for r in rows], dtype=float)
        values = values[np.isfinite(values)]
        return f"{np.mean(values <= target):.2f}" if values.size else "n/a"

    cells = [f"{fraction:g}", str(n), str(samples)]
    for m in METHODS:
        cells += [mean(f"{m}_error"), mean(f"{m}_covered"), mean(f"{m}_width")]
    for preset, target in PRESETS.items():
        cells += [mean(f"{preset}_fdr"), share(f"{preset}_fdr", target + 0.02)]
        cells += [mean(f"{preset}_recall")]
    print("| " + " | ".join(cells) + f" | {seconds:.0f} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100, help="simulated samples per fraction")
    parser.add_argument("--sequences", type=int, default=2000, help="fragments per sample")
    parser.add_argument("--sizes", type=int, nargs="*", help="sample sizes (overrides --sequences)")
    parser.add_argument("--fractions", type=float, nargs="*", default=list(FRACTIONS))
    parser.add_argument("--bias", type=float, default=0.0, help="logit bias temperature misses")
    parser.add_argument("--n-boot", type=int, default=300)
    parser.add_argument("--no-recalibrate", action="store_true", help="keep the temperature")
    parser.add_argument(
        "--prior", choices=("train", "validation"), default="train",
        help="EM's training prior: the model's (0.5) or each validation set's viral share",
    )  # fmt: skip
    parser.add_argument(
        "--calls-at", choices=("estimate", "lower"), default="estimate",
        help="the fraction the presets' q-values use: the estimate or its interval's low end",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    header = ["true fraction", "sequences", "samples"]
    for m in METHODS:
        header += [f"{m} MAE", f"{m} coverage", f"{m} width"]
    for preset, target in PRESETS.items():
        header += [f"{preset} FDR", f"{preset} FDR<={target + 0.02:g}", f"{preset} recall"]
    print(
        f"default estimator {DEFAULT_METHOD}; bias {args.bias}; n_boot {args.n_boot}; "
        f"prior {args.prior}; calls at the {args.calls_at}; recalibrate {not args.no_recalibrate}"
    )
    print("| " + " | ".join(header + ["s"]) + " |")
    print("|" + "---|" * (len(header) + 1))
    for n in args.sizes or [args.sequences]:
        for fraction in args.fractions:
            rng = np.random.default_rng([args.seed, n, round(fraction * 1e6)])
            start = time.perf_counter()
            rows = [one_sample(rng, fraction, n, args) for _ in range(args.samples)]
            table(rows, fraction, n, args.samples, time.perf_counter() - start)


if __name__ == "__main__":
    main()
