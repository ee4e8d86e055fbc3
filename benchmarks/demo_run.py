"""Time the Quick start demo: `python train.py data=synthetic`, several runs, median wall time.

    python benchmarks/demo_run.py --runs 3

The demo data is generated once before timing (in a temporary directory), so every timed run
measures what a user's second and later demo runs cost: start-up, loading, training, evaluation.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from virnucpro_trainer.runtime import processor

TRAIN_PY = Path(__file__).resolve().parents[1] / "train.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, str(TRAIN_PY), "data=synthetic"]
        subprocess.run([*cmd, "epochs=1"], cwd=tmp, check=True, capture_output=True)
        walls, results = [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run(cmd, cwd=tmp, check=True, capture_output=True)
            walls.append(time.perf_counter() - start)
            newest = max(Path(tmp, "outputs").glob("*/*"), key=lambda p: p.name)
            results.append(json.loads((newest / "test_metrics.json").read_text()))
    print(
        f"machine: {processor()}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}"
    )
    print(
        f"wall seconds per run: {', '.join(f'{w:.1f}' for w in walls)}; "
        f"median {statistics.median(walls):.1f}"
    )
    r = results[0]
    print(
        f"epochs run {r['epochs_run']}, best epoch {r['best_epoch']}, "
        f"test accuracy {r['accuracy']:.4f}, f1 {r['f1']:.4f}, auroc {r['auroc']:.4f}"
    )


if __name__ == "__main__":
    main()
