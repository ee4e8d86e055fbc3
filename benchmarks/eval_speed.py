"""Scoring speed of evaluate.py's path (`loop.predict` over a BatchSource) against the model alone,
and what the out-of-distribution score adds to it.

    python benchmarks/eval_speed.py                           # 500,000 x 2048 float32, 5 repeats
    python benchmarks/eval_speed.py --storage-dtype float16   # a float16 store, scored as float32
    python benchmarks/eval_speed.py --rows 20000 --repeats 1  # a quick check
    python benchmarks/eval_speed.py --max-others 0.1          # on a shared machine
    python benchmarks/eval_speed.py --threads 1 --rows 100000 # one thread: on a busy machine

On random features already in memory it times, after a short warm-up, `--repeats` rounds of:

- floor: the model alone (`eval()`, `torch.inference_mode()`) over contiguous float32 slices
  `features[i:i + batch]`, nothing else: the model's own inference speed;
- scoring: `predict(model, BatchSource(features, labels, cpu), rows, batch)` as evaluate.py calls
  it, with rows = every row (subset=all) and with a sorted random `--test-fraction` of the rows
  (what subset=test gives), each against the floor over as many rows;
- scoring with ood: the same pass with the out-of-distribution score of `--ood` (default: the
  default `ood.method`) computed in it, as evaluate.py does (`predict_scores(..., extra=...)`,
  evaluate/ood.py), its detector fitted first on `--ood-rows` of the rows (train/ood_fit.py).

Each repeat runs the floor and the scoring passes back to back (in turns first). It prints median
rows/s, the median of the repeats' floor / scoring and ood / scoring time ratios, the seconds
2,000,000 rows would
take, the share of the scoring pass spent in the model's forward (timed inside the same pass, so a
busy machine slows both sides of that share alike), and how busy other processes kept the machine
meanwhile. On a shared machine `--max-others 0.1` keeps only the repeats during which other
processes kept under 0.1 cores busy, retrying the others. File reading is not timed:
`benchmarks/data_path.py` measures that.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from virnucpro_trainer.config.schema import TrainConfig
from virnucpro_trainer.data.batches import BatchSource
from virnucpro_trainer.evaluate.ood import BatchScorer, with_validation
from virnucpro_trainer.model import VirNucProMLP, predict, predict_scores
from virnucpro_trainer.stats.names import OOD_METHODS as METHODS
from virnucpro_trainer.train.ood_fit import fit_detector

from _common import OtherLoad, listed, machine, table, timed

ROWS_2M = 2_000_000


def floor(model: torch.nn.Module, features: torch.Tensor, n: int, batch: int) -> None:
    """The model alone over contiguous slices of the first `n` rows."""
    model.eval()
    with torch.inference_mode():
        for i in range(0, n, batch):
            model(features[i : min(i + batch, n)])


class TimedModel(torch.nn.Module):
    """The model, adding up the seconds its forward takes inside predict."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model, self.seconds = model, 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        out = self.model(x)
        self.seconds += time.perf_counter() - start
        return out


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--test-fraction", type=float, default=0.1)
    parser.add_argument("--storage-dtype", choices=["float32", "float16"], default="float32")
    parser.add_argument(
        "--max-others",
        type=float,
        help="on a shared machine: keep only repeats during which other processes kept fewer "
        "than this many cores busy (e.g. 0.1), retrying up to --max-tries times",
    )
    parser.add_argument("--max-tries", type=int, default=30)
    parser.add_argument("--ood", choices=METHODS, default=TrainConfig().ood.method)
    parser.add_argument("--ood-rows", type=int, default=20_000, help="rows the detector fits on")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    return parser


def ood_scorer(model, source, rows: torch.Tensor, method: str, batch: int) -> BatchScorer:
    """A detector of `method` fitted on `rows`, with validation scores of the same rows."""
    fitted = fit_detector(model, source, rows, method, len(rows), 0, batch)
    with BatchScorer(model, fitted) as scorer:
        raw = predict_scores(model, source, rows, batch, extra=scorer).extra
    return BatchScorer(model, with_validation(fitted, raw, scorer.parts))


def with_ood(model, scorer: BatchScorer, source, rows, batch: int) -> None:
    with scorer:
        predict_scores(model, source, rows, batch, logits=False, extra=scorer)


def main() -> None:
    args = arguments().parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(args.rows, args.width, generator=gen)
    labels = torch.randint(0, 2, (args.rows,), generator=gen)
    stored = features.half() if args.storage_dtype == "float16" else features
    source = BatchSource(stored, labels, torch.device("cpu"))
    n_test = max(1, int(args.rows * args.test_fraction))
    test = torch.sort(torch.randperm(args.rows, generator=gen)[:n_test]).values
    every = torch.arange(args.rows)
    torch.manual_seed(0)
    model = VirNucProMLP(args.width)
    batch = args.batch_size

    timed_model = TimedModel(model)
    scorer = ood_scorer(model, source, every[: min(args.ood_rows, args.rows)], args.ood, batch)
    pairs = {  # name: (rows, the floor over as many rows, the scoring path, with ood)
        "subset=all": (
            args.rows,
            lambda: floor(model, features, args.rows, batch),
            lambda: predict(timed_model, source, every, batch),
            lambda: with_ood(model, scorer, source, every, batch),
        ),
        "subset=test": (
            n_test,
            lambda: floor(model, features, n_test, batch),
            lambda: predict(timed_model, source, test, batch),
            lambda: with_ood(model, scorer, source, test, batch),
        ),
    }
    warm = 8 * batch  # a few batches of each
    floor(model, features, min(warm, args.rows), batch)
    predict(model, source, every[:warm], batch)
    predict(model, source, test[:warm], batch)

    floors: dict[str, list[float]] = {name: [] for name in pairs}
    scorings: dict[str, list[float]] = {name: [] for name in pairs}
    oods: dict[str, list[float]] = {name: [] for name in pairs}
    shares: dict[str, list[float]] = {name: [] for name in pairs}
    others: dict[str, list[float]] = {name: [] for name in pairs}  # kept repeats' others
    dropped = 0
    for name, (_, floor_pass, scoring_pass, ood_pass) in pairs.items():
        for attempt in range(args.max_tries if args.max_others is not None else args.repeats):
            if len(floors[name]) == args.repeats:
                break
            # back to back, in turns first, so that a busy spell hits both alike
            timed_model.seconds = 0.0
            with OtherLoad() as load:
                if attempt % 2 == 0:
                    floor_s, scoring_s = timed(floor_pass), timed(scoring_pass)
                    ood_s = timed(ood_pass)
                else:
                    ood_s = timed(ood_pass)
                    scoring_s, floor_s = timed(scoring_pass), timed(floor_pass)
            if args.max_others is not None and load.cores >= args.max_others:
                dropped += 1
                continue
            floors[name].append(floor_s)
            scorings[name].append(scoring_s)
            oods[name].append(ood_s)
            shares[name].append(timed_model.seconds / scoring_s)
            others[name].append(load.cores)
        if not floors[name]:
            raise SystemExit(f"{name}: no repeat with other processes under --max-others")

    print(f"machine: {machine()}")
    print(
        f"{args.rows:,} x {args.width} features in RAM, stored as {args.storage_dtype}; "
        f"batch {batch}; subset=test: {n_test:,} sorted random rows; "
        f"medians of {', '.join(f'{len(t)} ({name})' for name, t in floors.items())} "
        "repeats after a warm-up"
    )
    kept = [share for shares_ in others.values() for share in shares_]
    print(
        f"other processes kept {statistics.mean(kept):.2f} cores busy on average (at most "
        f"{max(kept):.2f}) during the repeats kept (0 on a quiet machine)"
        + (f"; {dropped} busier repeats dropped" if args.max_others is not None else "")
    )
    header = ["rows scored", "rows", "floor rows/s", "scoring rows/s", "scoring / floor"]
    header += ["model's share of scoring", "s per 2M rows, floor", "s per 2M rows, scoring"]
    header += [f"s per 2M rows, with ood ({args.ood})", "with ood / scoring"]

    def rows():
        for name, (n, *_) in pairs.items():
            floor_speed = n / statistics.median(floors[name])
            scoring_speed = n / statistics.median(scorings[name])
            ratios = (f / s for f, s in zip(floors[name], scorings[name], strict=True))
            ood_speed = n / statistics.median(oods[name])
            ood_ratios = (o / s for o, s in zip(oods[name], scorings[name], strict=True))
            yield [
                name,
                f"{n:,}",
                f"{floor_speed:,.0f}",
                f"{scoring_speed:,.0f}",
                f"{statistics.median(ratios):.3f}",
                f"{statistics.median(shares[name]):.3f}",
                f"{ROWS_2M / floor_speed:.1f}",
                f"{ROWS_2M / scoring_speed:.1f}",
                f"{ROWS_2M / ood_speed:.1f}",
                f"{statistics.median(ood_ratios):.3f}",
            ]

    table(header, rows())
    for name in pairs:
        print(
            f"{name} seconds per repeat: floor {listed(floors[name])}; "
            f"scoring {listed(scorings[name])}; with ood {listed(oods[name])}"
        )


if __name__ == "__main__":
    main()
