"""Seconds per training epoch of this trainer's loop, on random features already in memory.

    python benchmarks/epoch_speed.py --rows 2000000 --device cuda          # what gpu_check.sh runs
    python benchmarks/epoch_speed.py --rows 20000 --device cpu --repeats 1  # a quick CPU check

For each setting it builds the model, optimizer and BatchSource exactly as a run does (features go
to the GPU when they fit), trains one warm-up pass over `--warmup-rows` rows (this also compiles),
then times `--repeats` full epochs over all rows and prints the median. File reading is not timed:
`benchmarks/data_path.py` measures that.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from virnucpro_trainer.config.schema import OptimizerConfig, TrainConfig
from virnucpro_trainer.data.batches import BatchSource, Placement
from virnucpro_trainer.model import VirNucProMLP, build_optimizer
from virnucpro_trainer.train.loop import Training, train_epoch

from _common import MEDIANS, machine, medians, table, timed

SETTINGS = {
    "defaults (batch 32)": {"batch_size": 32},
    "bf16 + torch.compile reduce-overhead (batch 32)": {
        "batch_size": 32,
        "bf16": True,
        "compile_mode": "reduce-overhead",
    },
    "large batch 4096": {"batch_size": 4096},
}


def epoch_seconds(
    source: BatchSource,
    rows: int,
    device: torch.device,
    batch_size: int,
    repeats: int,
    warmup_rows: int,
    bf16: bool = False,
    compile_mode: str | None = None,
) -> list[float]:
    torch.manual_seed(0)
    model = VirNucProMLP(source.features.shape[1]).to(device)
    optimizer, _ = build_optimizer(model, OptimizerConfig())
    net = torch.compile(model, mode=compile_mode) if compile_mode else None
    training = Training(model, optimizer, None, source, net, torch.Generator().manual_seed(0))
    all_rows = torch.arange(rows)

    def epoch(rows: torch.Tensor) -> None:
        train_epoch(training, rows, batch_size, bf16=bf16)
        if device.type == "cuda":
            torch.cuda.synchronize()  # the GPU's work done, not only queued

    epoch(all_rows[:warmup_rows])
    return [timed(epoch, all_rows) for _ in range(repeats)]


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warmup-rows", type=int, default=200_000)
    parser.add_argument(
        "--only", action="append", help="run only settings whose name contains this (repeatable)"
    )
    return parser


def main() -> None:
    args = arguments().parse_args()
    device = torch.device(args.device)
    gen = torch.Generator(device=device).manual_seed(0)
    features = torch.randn(args.rows, args.width, generator=gen, device=device)
    labels = torch.randint(0, 2, (args.rows,), generator=gen, device=device)
    defaults = TrainConfig()  # a run's placement: features on the GPU when they fit
    margin = int(defaults.gpu_memory_margin_gb * 2**30)
    source = BatchSource(features, labels, device, Placement(defaults.features_on_gpu, margin))
    print(f"machine: {machine(device)}")
    print(f"{args.rows} x {args.width} float32 features in {source.where}")

    def rows():
        for label, options in SETTINGS.items():
            if args.only and not any(part in label for part in args.only):
                continue
            warmup = min(args.warmup_rows, args.rows)
            times = epoch_seconds(
                source, args.rows, device, repeats=args.repeats, warmup_rows=warmup, **options
            )
            yield [label, *medians(times), f"{args.rows / statistics.median(times):,.0f}"]

    table(["setting", *MEDIANS, "samples/s"], rows())


if __name__ == "__main__":
    main()
