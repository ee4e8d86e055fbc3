"""What writing evaluate.py's five prediction files adds to the peak memory of a process, and how
long it takes, for N rows (ids shaped like the prediction step's, six frames per chunk, 100
chunks per record):

    python benchmarks/prediction_files.py --rows 1000000

The rows' ids, probabilities and levels are made first; the figure is the growth of the peak
resident memory (ru_maxrss) while the files are written, which counts against a run's memory
budget (docs/performance.md).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from virnucpro_trainer.evaluate.outputs import (
    write_highest_score,
    write_level_table,
    write_prediction_results,
    write_row_table,
)
from virnucpro_trainer.levels import chunk_level, record_level

from _common import machine, peak_rss_mb


def peak_gb() -> float:
    return peak_rss_mb() * 2**20 / 1e9


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    return parser


def main() -> None:
    n = arguments().parse_args().rows
    rng = np.random.default_rng(0)
    frames = [f"{s}{k}" for s in "FR" for k in (1, 2, 3)]
    ids = [f"NC_{i // 600:06d}.1_chunk_{(i // 6) % 100}{frames[i % 6]}" for i in range(n)]
    files = [f"viral.1.1_merged/output_{i // 10_000}_merged.pt" for i in range(n)]
    prob_viral = rng.random(n).astype(np.float32)
    prob_host = 1 - prob_viral
    labels = (rng.random(n) < 0.5).astype(np.int64)
    chunks, _ = chunk_level(ids, prob_viral, labels, prob_host)
    records, _ = record_level(chunks, r"^(.+?)_chunk_\d+", "mean")
    before, start = peak_gb(), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        rows_path = out / "predictions_rows.tsv"
        write_row_table(rows_path, ids, files, labels, prob_viral, {"viral": 0.5})  # as evaluate.py
        write_level_table(out / "predictions_chunks.tsv", chunks, "chunk", "frames")
        write_level_table(out / "predictions_records.tsv", records, "record", "chunks")
        write_prediction_results(out / "prediction_results.txt", ids, prob_host, prob_viral)
        write_highest_score(out / "prediction_results_highestscore.csv", chunks)
        size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
    seconds = time.perf_counter() - start
    print(f"machine: {machine()}")
    print(
        f"{n:,} rows, {len(chunks.ids):,} chunks, {len(records.ids):,} records: {size:.0f} MB of "
        f"files in {seconds:.1f} s; peak memory {before:.2f} GB before writing, "
        f"{peak_gb():.2f} GB after (+{peak_gb() - before:.2f} GB)"
    )


if __name__ == "__main__":
    main()
