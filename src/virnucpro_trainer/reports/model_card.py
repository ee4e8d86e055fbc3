"""`model_card.md` for a training run and for an evaluation (issue 26; after Mitchell et al. 2019,
"Model cards for model reporting"): what the model is and came from, the data and split, the
settings that differ from the defaults, the numbers with their intervals, and what it is for and
not for. Written only from the results files (test_metrics.json, split.json, .hydra/, the
checkpoint's metadata; metrics.json for an evaluation), with the same table code as the reports,
so it never disagrees with them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from virnucpro_trainer import __version__
from virnucpro_trainer.atomic import atomic_path
from virnucpro_trainer.reports.composition import calls_summary, fraction_lines
from virnucpro_trainer.reports.ood import ood_section, warning_lines
from virnucpro_trainer.reports.tables import (
    calibration_lines,
    cutoff_lines,
    fmt,
    metrics_lines,
    split_lines,
)

CARD = "model_card.md"
FIRST_LAYER = {"hidden": "frozen", "none": "trained"}


def code_version() -> str:
    """The package version, and the git commit of the code where it runs from a checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        commit = done.stdout.strip() if done.returncode == 0 else ""
    except OSError:
        commit = ""
    return f"virnucpro-trainer {__version__}" + (f", git commit {commit}" if commit else "")


def details_lines(
    metadata: dict, lineage: list[str], members: list[dict] | None = None
) -> list[str]:
    """Model details: the architecture, its input, and where its weights came from; an
    ensemble's `members` (metrics.json's) each by its own hidden width and training date."""
    m = metadata
    hidden = "h" if members else m["hidden_dim"]
    lines = [
        "## Model details",
        "",
        f"- VirNucPro MLP: Linear({m['input_dim']}, {hidden}) -> BatchNorm -> ReLU -> "
        f"Dropout -> Linear({hidden}, {m['num_class']}); class 1 is viral.",
        f"- Input: merged embeddings {m['input_dim']} wide: DNABERT-S ({m.get('dna_dim', '?')}) "
        f"+ {m.get('model_type', '?')} ({m.get('huggingface_model_id', '?')}, "
        f"{m.get('protein_dim', '?')}).",
    ]
    if members:
        lines[2] += " Each member has its own hidden width h (below)."
        lines.append(
            f"- Checkpoint version {m['checkpoint_version']}, PyTorch "
            f"{m.get('pytorch_version', '?')} (the first member's); code: {code_version()}."
        )
    else:
        lines.append(
            f"- Checkpoint version {m['checkpoint_version']}, trained "
            f"{m.get('training_date', '?')} with PyTorch {m.get('pytorch_version', '?')}; code: "
            f"{code_version()}."
        )
    return [*lines, *[line if line.startswith(" ") else f"- {line}" for line in lineage], ""]


def use_lines(metadata: dict) -> list[str]:
    """Intended use and known limits."""
    return [
        "## Intended use and limits",
        "",
        "- For: ranking and calling DNA fragments as viral or not from their merged "
        f"DNABERT-S + {metadata.get('model_type', '?')} embeddings "
        f"({metadata['input_dim']} numbers), embedded as the training data was.",
        "- Not for: embeddings of other models or widths (refused), fragments of a length the "
        "training data did not have (the embeddings do not record it; scores there are not "
        "validated), kinds of viruses or hosts absent from the training data (evaluate.py "
        "flags the sequences unlike it, and warns when a sample has many: docs/ood.md).",
        "- Prior shift: the test metrics are for the test side's viral share; precision and "
        "FDR change with a sample's viral fraction (use the cutoff table, or evaluate.py's "
        "estimate of the sample's fraction: docs/cutoffs-and-calibration.md). Every interval "
        "resamples genomes; it says nothing about data unlike the test side.",
        "",
    ]


def title(metadata: dict) -> str:
    """What the model is (not its directory's name: a multirun job's is only its number)."""
    m = metadata
    return (
        f"VirNucPro MLP on {m.get('model_type', '?')} embeddings ({m['input_dim']} -> "
        f"{m['hidden_dim']} -> {m['num_class']})"
    )


def run_card(run_dir: Path, metadata: dict) -> None:
    """model_card.md of a finished training run, from the files it wrote."""
    test = json.loads((run_dir / "test_metrics.json").read_text())
    split = json.loads((run_dir / "split.json").read_text())
    overrides = run_dir / ".hydra" / "overrides.yaml"
    changed = yaml.safe_load(overrides.read_text()) if overrides.is_file() else None
    lineage = [f"Trained from scratch (seed {test['seed']})."]
    if test.get("init_from"):
        i = test["init_from"]
        lineage = [
            f"Fine-tuned from `{i['path']}` (epoch {i['epoch']}, {i['model_id']}, sha256 "
            f"`{i['sha256']}`), first layer {FIRST_LAYER[i['freeze']]}; seed {test['seed']}."
        ]
    lines = [f"# Model card: {title(metadata)}", "", f"Run: `{run_dir}`", ""]
    lines += details_lines(metadata, lineage)
    lines += ["## Training data and split", "", f"- Data: `{split['data_root']}`", ""]
    lines += [*split_lines(split), ""]
    lines += ["## Settings that differ from the defaults", ""]
    lines += [f"- `{o}`" for o in changed] if changed else ["- none recorded"]
    lines += ["", f"Best epoch {test['best_epoch']} of {test['epochs_run']}.", ""]
    lines += ["## Test metrics", "", *metrics_lines(test), *calibration_lines(test)]
    lines += ood_section(test.get("ood"), "Out-of-distribution test units")
    lines += [*cutoff_lines(test), *use_lines(metadata)]
    write_card(run_dir, lines)


def evaluation_card(out_dir: Path, metrics: dict, metadata: dict) -> None:
    """model_card.md of an evaluation: the model, the data scored, the numbers per level."""
    lineage = [f"Scored from `{metrics['checkpoint']}`."]
    if metrics.get("members"):
        lineage = ensemble_lines(metrics["ensemble"], metrics["members"])
    if metadata.get("init_from"):
        lineage.append(f"Fine-tuned from `{metadata['init_from']['path']}`.")
    lines = [f"# Model card: evaluation {out_dir.name}", "", *warning_lines(metrics.get("ood"))]
    lines += details_lines(metadata, lineage, metrics.get("members"))
    lines += ["## Data scored", "", f"- `{metrics['data_root']}`, subset {metrics['subset']}, "
              f"{'labelled' if metrics['labelled'] else 'unlabelled'}", ""]  # fmt: skip
    lines += [f"- {k.replace('_', ' ')}: {v}" for k, v in metrics["counts"].items()] + [""]
    if metrics["labelled"]:
        lines += ["## Metrics (each level's own prediction)", "", *level_lines(metrics)]
    lines += ["## The sample's viral fraction", ""]
    lines += [*fraction_lines(metrics["estimated_viral_fraction"]), ""]
    lines += calls_summary(metrics["calls"]) if metrics.get("calls") else []
    lines += ood_section(metrics.get("ood"), "Units unlike the training data", False)
    lines += use_lines(metadata)
    write_card(out_dir, lines)


def ensemble_lines(block: dict, members: list[dict]) -> list[str]:
    """An ensemble's lineage: its members, each by its own width and date, how a search's were
    chosen, and every job of its directory left out, with the reason."""
    lines = [f"An ensemble of {len(members)} ({block['combine']}):"]
    lines += [
        f"  - `{m['path']}`: Linear({m.get('input_dim', '?')}, {m['hidden_dim']}), trained "
        f"{m.get('training_date') or '?'}, sha256 `{m['sha256'][:16]}...`"
        for m in members
    ]
    chosen = block.get("chosen")
    if chosen:
        lines.append(
            f"Chosen from a search: the best {len(chosen['trials'])} of {chosen['complete']} "
            f"complete trials by {chosen['by']} ({chosen['direction']}d; ensemble.top_k "
            f"{chosen['top_k']}): "
            + ", ".join(f"trial {t['trial']} ({t['value']:.6g})" for t in chosen["trials"])
            + "."
        )
    skipped = block.get("skipped") or []
    if skipped:
        lines.append(f"Left out of the ensemble ({len(skipped)}):")
        lines += [f"  - `{s['path']}`: {s['reason']}" for s in skipped]
    return lines


def level_lines(metrics: dict) -> list[str]:
    """Each level's headline metrics with their intervals, as in report.md."""
    names = ("accuracy", "precision", "recall", "mcc", "auroc", "auprc", "brier")
    lines = ["| level | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for level in ("rows", "chunks", "records"):
        own = metrics[level].get("predicted")
        if own:
            ci = own.get("intervals", {})
            lines.append(f"| {level} | " + " | ".join(fmt(own[m], ci.get(m)) for m in names) + " |")
    return [*lines, ""]


def write_card(folder: Path, lines: list[str]) -> None:
    with atomic_path(folder / CARD) as tmp:
        tmp.write_text("\n".join(lines))
