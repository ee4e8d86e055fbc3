"""Models handed on (issue 26), measured on the demo data; the tables are in docs/evaluate.md.

    python benchmarks/handed_on.py                 # both parts, ~2-3 minutes on 2 cores
    python benchmarks/handed_on.py --only ensemble --seeds 5 --epochs 10

ensemble: a seed sweep (`train.py --multirun seed=1,...`), each run's test metrics (its
test_metrics.json), and the ensemble of them scored by `evaluate.py ckpt=<sweep dir>` on the same
test side: Brier score, log loss and AUROC of each member, their mean, and the ensemble's.

fine-tuning: the demo files split in halves (3 viral + 3 host files each, linked, not copied);
a run trained on the first half; then on the second half a run from scratch and one with
`init_from=` that run, each for the same epochs: their validation AUROC per epoch (metrics.csv),
the first epoch at which each reaches the from-scratch run's best, and their test AUROC.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

import numpy as np

from _common import machine, run_project_script, say

CPU = ["device=cpu", "cpu_threads=2"]
DEMO_DATA = Path("data/synthetic/data_merge")  # where a data=synthetic run in `work` makes it


def run(script: str, cwd: Path, *overrides: str) -> None:
    run_project_script(script, cwd, *CPU, *overrides)


def ensemble(work: Path, seeds: int, epochs: int, demo: list[str]) -> None:
    seeds_list = ",".join(str(s) for s in range(1, seeds + 1))
    say(f"training {seeds} seeds")
    run("train.py", work, "--multirun", *demo, f"epochs={epochs}", f"seed={seeds_list}",
        "hydra.sweep.dir=sweep")  # fmt: skip
    run("evaluate.py", work, "ckpt=sweep", "ci.enabled=false", "hydra.run.dir=ensemble")
    rows = []
    for job in sorted((work / "sweep").glob("[0-9]*"), key=lambda p: int(p.name)):
        test = json.loads((job / "test_metrics.json").read_text())
        rows.append([f"seed {test['seed']}", test["brier"], test["loss"], test["auroc"]])
    mean = ["members' mean", *np.mean([r[1:] for r in rows], axis=0)]
    metrics = json.loads((work / "ensemble/metrics.json").read_text())["rows"]
    combined = ["ensemble", metrics["predicted"]["brier"], metrics["loss"],
                metrics["predicted"]["auroc"]]  # fmt: skip
    print(f"\nensemble of {seeds} seeds, {epochs} epochs each, demo data test side\n")
    print("| model | Brier | log loss | AUROC |\n|---|---|---|---|")
    for r in [*rows, mean, combined]:
        print(f"| {r[0]} | {r[1]:.4f} | {r[2]:.4f} | {r[3]:.4f} |")


def halves(work: Path) -> tuple[Path, Path]:
    """Two data roots, each with half of the demo files of each class (symbolic links)."""
    demo = work / DEMO_DATA
    roots = (work / "first/data_merge", work / "second/data_merge")
    for class_dir in (d for d in demo.iterdir() if d.is_dir()):
        files = sorted(class_dir.glob("*_merged.pt"))
        for root, part in zip(roots, (files[: len(files) // 2], files[len(files) // 2 :]),
                              strict=True):  # fmt: skip
            (root / class_dir.name).mkdir(parents=True, exist_ok=True)
            for f in part:
                (root / class_dir.name / f.name).symlink_to(f)
    return roots


def curve(run_dir: Path) -> list[float]:
    with open(run_dir / "metrics.csv") as f:
        return [float(r["val_auroc"]) for r in csv.DictReader(f)]


def fine_tuning(work: Path, epochs: int, demo: list[str]) -> None:
    if not (work / DEMO_DATA).is_dir():  # the ensemble part's runs made it already
        run("train.py", work, *demo, "epochs=1", "hydra.run.dir=demo")  # makes the data
    first, second = halves(work)
    say("training on the first half, then on the second from scratch and from that run")
    common = [f"epochs={epochs}", "patience=1000", "ci.enabled=false"]
    run("train.py", work, f"data.root={first}", *common, "hydra.run.dir=base")
    run("train.py", work, f"data.root={second}", *common, "hydra.run.dir=scratch")
    run("train.py", work, f"data.root={second}", *common, "init_from=base",
        "hydra.run.dir=tuned")  # fmt: skip
    curves = {name: curve(work / name) for name in ("scratch", "tuned")}
    target = max(curves["scratch"])
    print(f"\nfine-tuning on the second half of the demo files, {epochs} epochs each\n")
    print("| run | " + " | ".join(f"epoch {i + 1}" for i in range(epochs)) + " | reaches "
          f"{target:.4f} at epoch | test AUROC |")  # fmt: skip
    print("|---" * (epochs + 3) + "|")
    for name, values in curves.items():
        reached = next((i + 1 for i, v in enumerate(values) if v >= target), None)
        test = json.loads((work / name / "test_metrics.json").read_text())["auroc"]
        cells = " | ".join(f"{v:.4f}" for v in values)
        print(f"| {name} | {cells} | {reached or 'never'} | {test:.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("ensemble", "fine-tuning"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rows-per-file", type=int, help="a smaller demo data set (tests)")
    args = parser.parse_args()
    demo = ["data=synthetic"]
    if args.rows_per_file:
        demo += [f"data.synthetic.rows_per_file={args.rows_per_file}",
                 "data.synthetic.chunks_per_genome=5"]  # fmt: skip
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="handed_on_") as tmp:
        if args.only != "fine-tuning":
            ensemble(Path(tmp), args.seeds, args.epochs, demo)
        if args.only != "ensemble":
            fine_tuning(Path(tmp), args.epochs, demo)


if __name__ == "__main__":
    main()
