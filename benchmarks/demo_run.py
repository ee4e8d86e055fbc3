"""Time the Quick start demo: `python train.py data=synthetic`, several runs, median wall time.

    python benchmarks/demo_run.py --runs 3

The demo data is generated once before timing (in a temporary directory), so every timed run
measures what a user's second and later demo runs cost: start-up, loading, training, evaluation.
More train.py overrides may follow the options (the tests pass a tiny demo).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from _common import listed, machine, run_timed, train_command


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="more train.py overrides")
    return parser


def main() -> None:
    args = arguments().parse_args()
    cmd = train_command(*args.overrides)
    with tempfile.TemporaryDirectory() as tmp:
        run_timed([*cmd, "epochs=1"], tmp)  # makes the demo data: not timed
        walls, results = [], []
        for _ in range(args.runs):
            walls.append(run_timed(cmd, tmp)[0])
            newest = max(Path(tmp, "outputs").glob("*/*"), key=lambda p: p.name)
            results.append(json.loads((newest / "test_metrics.json").read_text()))
    print(f"machine: {machine()}")
    print(f"wall seconds per run: {listed(walls, 1)}; median {statistics.median(walls):.1f}")
    r = results[0]
    print(
        f"epochs run {r['epochs_run']}, best epoch {r['best_epoch']}, "
        f"test accuracy {r['accuracy']:.4f}, f1 {r['f1']:.4f}, auroc {r['auroc']:.4f}"
    )


if __name__ == "__main__":
    main()
