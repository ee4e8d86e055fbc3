"""Does evaluate.py's estimate of a sample's viral fraction keep its promise on the demo data?
(issue 24; the table is in docs/evaluate.md.)

    python benchmarks/sample_fraction.py                    # 20 samples per fraction, ~5 minutes
    python benchmarks/sample_fraction.py --samples 40 --sequences 3000

Trains once with `train.py` on a larger demo data set (the demo generator: 8 files of 3,000 rows
per class, genomes of 5 chunks = 30 rows; a group split keeping a quarter of the genomes for test),
scores the run's test side once with `evaluate.py`, then draws samples from the test genomes at
each true viral fraction (0.01, 0.05, 0.2, 0.5): whole genomes of each class in random order until
the class has its share of `--sequences` rows, the last genome cut, so the truth is the sample's
own viral share. Each sample is treated as unlabelled and goes through evaluate.py's own code for
the sample's composition (evaluate/composition.py's `compositions`, on the levels `make_levels`
builds from the scored rows, with the checkpoint's validation scores and evaluate.py's default
settings). Printed per fraction and level (rows, chunks): each estimator's mean absolute error,
how often its 95% interval covers the truth and its mean width, and each preset's mean realized
FDR, the share of samples whose realized FDR is at most target + 0.02, and the mean recall.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from virnucpro_trainer.checkpoint import load_scoring_model
from virnucpro_trainer.config.evaluate import EvalConfig
from virnucpro_trainer.evaluate.assess import make_levels
from virnucpro_trainer.evaluate.composition import compositions
from virnucpro_trainer.evaluate.scoring import Scored
from virnucpro_trainer.stats.composition import PRESETS

from _common import machine, run_project_script, say

FRACTIONS = (0.01, 0.05, 0.2, 0.5)
LEVELS = ("rows", "chunks")


def data(rows_per_file: int) -> list[str]:
    return [
        "data=synthetic",
        "data.synthetic.files_per_class=8",
        f"data.synthetic.rows_per_file={rows_per_file}",
        "data.synthetic.chunks_per_genome=5",
    ]


def scored_test_side(work: Path, rows_per_file: int, epochs: int) -> tuple[Path, Scored]:
    """Train once, score the run's test side once; the run and its scored rows."""
    run_dir, eval_dir, data_set = work / "run", work / "eval", data(rows_per_file)
    if not (eval_dir / "metrics.json").is_file():  # (--work: made by an earlier call)
        say("training on the larger demo data (a few minutes)")
        split = ["split.unit=group", "split.test_fraction=0.25", f"epochs={epochs}"]
        run_project_script(
            "train.py", work, *data_set, *split, "ci.enabled=false", f"hydra.run.dir={run_dir}"
        )
        run_project_script("evaluate.py", work, f"ckpt={run_dir}", *data_set, "ci.enabled=false",
            "fraction.n_boot=20", f"hydra.run.dir={eval_dir}")  # fmt: skip
    with open(eval_dir / "predictions_rows.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    p = np.array([float(r["prob_viral"]) for r in rows], dtype=np.float32)
    scored = Scored(
        ids=[r["id"] for r in rows],
        files=[r["file"] for r in rows],
        labels=np.array([int(r["label"]) for r in rows]),
        prob_viral=p,
        prob_host=np.float32(1.0) - p,
        loss=float("nan"),
    )
    return run_dir, scored


def draw(rng, scored: Scored, genome_of: np.ndarray, fraction: float, n: int) -> np.ndarray:
    """Row positions of one sample: whole genomes per class, the last one cut."""
    picked = []
    for label, want in ((1, round(fraction * n)), (0, n - round(fraction * n))):
        genomes = np.unique(genome_of[scored.labels == label])
        rng.shuffle(genomes)
        taken: list[np.ndarray] = []
        for g in genomes:
            if sum(map(len, taken)) >= want:
                break
            taken.append(np.flatnonzero(genome_of == g))
        picked.append(np.concatenate(taken)[:want] if taken else np.zeros(0, np.int64))
    return np.sort(np.concatenate(picked))


def subset(scored: Scored, index: np.ndarray) -> Scored:
    return Scored(
        [scored.ids[i] for i in index],
        [scored.files[i] for i in index],
        None,  # scored as unlabelled: the labels stay with the benchmark
        scored.prob_viral[index],
        scored.prob_host[index],
        float("nan"),
    )


def one_sample(cfg, scoring, scored, genome_of, index) -> dict:
    """Each level's estimators' errors and coverage, and each preset's realized FDR and recall."""
    sample = subset(scored, index)
    levels, _ = make_levels(sample, cfg.record_pattern, cfg.aggregate)
    truth_levels, _ = make_levels(
        Scored(sample.ids, sample.files, scored.labels[index], sample.prob_viral,
               sample.prob_host, float("nan")),
        cfg.record_pattern, cfg.aggregate,
    )  # fmt: skip
    found = compositions(cfg, scoring, levels)
    out = {}
    for level in LEVELS:
        y = np.asarray(truth_levels[level].labels)
        truth = float(y.mean())
        for method, e in found[level].estimates.items():
            out[level, method, "error"] = abs(e.value - truth)
            inside = float(e.low <= truth <= e.high) if np.isfinite(e.low) else float("nan")
            out[level, method, "covered"] = inside
            out[level, method, "width"] = e.high - e.low
        numbers = found[level].numbers
        if numbers is None:
            continue
        for preset, target in PRESETS.items():
            called = numbers.q_value <= target + 1e-12
            fdr = float(np.sum(called & (y == 0)) / max(called.sum(), 1))
            out[level, preset, "fdr"] = fdr
            out[level, preset, "within"] = float(fdr <= target + 0.02)
            out[level, preset, "recall"] = float(np.sum(called & (y == 1)) / max(y.sum(), 1))
    return out


def mean(results: list[dict], key: tuple) -> str:
    values = [r[key] for r in results if key in r and np.isfinite(r[key])]
    return f"{np.mean(values):.3f}" if values else "n/a"


def report(results: dict, samples: int, n: int) -> None:
    methods = ("em", "adjusted_count")
    parts = ("error", "covered", "width")
    header = ["fraction", "level"] + [
        f"{m} {x}" for m in methods for x in ("MAE", "covered", "width")
    ]
    header += [f"{p} {x}" for p in PRESETS for x in ("FDR", "<=t+0.02", "recall")]
    print(f"\n{samples} samples of {n} rows per fraction; {machine()}\n")
    print("| " + " | ".join(header) + " |")
    print("|---" * len(header) + "|")
    for fraction, found in results.items():
        for level in LEVELS:
            cells = [f"{fraction:g}", level]
            cells += [mean(found, (level, m, x)) for m in methods for x in parts]
            cells += [
                mean(found, (level, p, x)) for p in PRESETS for x in ("fdr", "within", "recall")
            ]
            print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=20, help="samples per fraction")
    parser.add_argument("--sequences", type=int, default=6000, help="rows per sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="keep the data, run and scores here, reuse them")
    parser.add_argument("--rows-per-file", type=int, default=3000, help="demo rows per file")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--min-sequences", type=int, help="fraction.min_sequences (default 1000)")
    args = parser.parse_args()
    cfg = OmegaConf.structured(EvalConfig)  # evaluate.py's defaults
    if args.min_sequences:
        cfg.fraction.min_sequences = args.min_sequences
    with tempfile.TemporaryDirectory(prefix="sample_fraction_") as tmp:
        work = args.work.resolve() if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        run_dir, scored = scored_test_side(work, args.rows_per_file, args.epochs)
        scoring = load_scoring_model(run_dir)
    genome_of = np.unique([i.rsplit("_chunk_", 1)[0] for i in scored.ids], return_inverse=True)[1]
    rng = np.random.default_rng(args.seed)
    results, start = {}, time.perf_counter()
    for fraction in FRACTIONS:
        results[fraction] = [
            one_sample(cfg, scoring, scored, genome_of,
                       draw(rng, scored, genome_of, fraction, args.sequences))
            for _ in range(args.samples)
        ]  # fmt: skip
        say(f"fraction {fraction:g}: {args.samples} samples ({time.perf_counter() - start:.0f} s)")
    report(results, args.samples, args.sequences)


if __name__ == "__main__":
    main()
