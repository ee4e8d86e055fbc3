"""Time making and loading a group split (split.unit=group) of a large table's ids.

python benchmarks/group_split.py [--rows 2000000] [--repeats 3]

Only ids matter to the split, so the table has no features; 100 files, 120 fragments per record.
Prints each class's share of rows on the test and validation sides, and the median seconds to make
the split, to load it again (split.json only), and to map a fresh table's rows to sides (reading
the record of every id).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from virnucpro_trainer.data.split import SplitSettings, load_or_make_split
from virnucpro_trainer.data.table import FeatureTable

from _common import MEDIANS, machine, medians, table

PATTERN = r"^(.+?)_chunk_\d+"


def id_table(n_rows: int, n_files: int = 100) -> FeatureTable:
    rows = n_rows // n_files
    labels = [int(f < n_files // 2) for f in range(n_files)]
    ids = [
        [f"G{labels[f]}_{(f * rows + i) // 120}.1_chunk_{i % 20}F{i % 6}" for i in range(rows)]
        for f in range(n_files)
    ]
    names = [f"{'viral' if labels[f] else 'host'}/output_{f}_merged.pt" for f in range(n_files)]
    y = torch.tensor(labels).repeat_interleave(rows)
    return FeatureTable(torch.empty(len(y), 1), y, names, np.arange(n_files + 1) * rows, ids)


def split(t: FeatureTable, where: Path):
    return load_or_make_split(
        t.file_summary(),
        where,
        where / "test_set",
        SplitSettings("group", 0.1, 0.1, 42, PATTERN),
        records=lambda: t.records(PATTERN),
    )


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    return parser


def main() -> None:
    args = arguments().parse_args()
    times = {"make": [], "load": [], "rows": []}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            for step in ("make", "load"):
                t = id_table(args.rows)
                start = time.perf_counter()
                s = split(t, Path(tmp))
                times[step].append(time.perf_counter() - start)
            start = time.perf_counter()
            rows = t.rows_of_records(s.records, PATTERN)
            times["rows"].append(time.perf_counter() - start)
    sides = {side: len(r) for side, r in rows.items()}
    print(f"machine: {machine()}")
    print(f"{args.rows} rows, {len(s.document['train_records'])} train records; rows {sides}")
    for class_name, of_class in s.document["row_fractions"].items():
        shares = ", ".join(
            f"{side} {of_class[side]['achieved']:.4f} (requested {of_class[side]['requested']})"
            for side in ("test", "val")
        )
        print(f"{class_name} share of rows: {shares}")
    table(["step", *MEDIANS], ([step, *medians(values)] for step, values in times.items()))


if __name__ == "__main__":
    main()
