"""The bundled demo data: a small, deterministic data set in the merged-file layout.

Rows come from simulated genomes: each genome has its own offset, each fragment adds noise, and the
classes differ along one hidden direction by `separation`, so a model does well but not perfectly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import torch

from virnucpro_trainer.atomic import atomic_path, json_text
from virnucpro_trainer.config.schema import SyntheticConfig
from virnucpro_trainer.errors import UserError

log = logging.getLogger(__name__)

MARKER = "synthetic.json"
CLASS_DIRS = {1: "viral.1.1_merged", 0: "vertebrate_mammalian_merged"}
FRAMES = ("F1", "F2", "F3", "R1", "R2", "R3")


def _class_files(
    label: int, cfg: SyntheticConfig, width: int, direction: torch.Tensor, gen: torch.Generator
) -> Iterator[dict]:
    """The class's files one at a time, so memory holds one file however large the set."""
    rows_per_genome = cfg.chunks_per_genome * len(FRAMES)
    prefix = "NC_9" if label else "NZ_CP"
    genome = 0
    for _ in range(cfg.files_per_class):
        ids, blocks, left = [], [], cfg.rows_per_file
        while left > 0:
            n = min(rows_per_genome, left)
            center = 0.3 * torch.randn(width, generator=gen)
            center += (2 * label - 1) * cfg.separation / 2 * direction
            blocks.append(center + torch.randn(n, width, generator=gen))
            name = f"{prefix}{label}{genome:05d}.1"
            ids += [f"{name}_chunk_{k // len(FRAMES)}{FRAMES[k % len(FRAMES)]}" for k in range(n)]
            genome, left = genome + 1, left - n
        yield {"ids": ids, "data": torch.cat(blocks), "labels": [label]}


def ensure_synthetic(root: Path, cfg: SyntheticConfig, width: int) -> None:
    """Generate the demo data set at `root` unless it is already there with the same settings."""
    settings = {**asdict(cfg), "width": width}
    settings.pop("enabled")
    marker = root / MARKER
    # the folder appears whole (renamed into place, marker included), so look at it before the
    # marker: a concurrent run may finish between the two looks, never half-way
    if root.exists() and any(root.iterdir()):
        if not marker.exists():
            raise UserError(
                f"{root} exists and is not demo data; refusing to write demo data into it"
            )
        _check_settings(marker, settings, root)
        return
    log.info("generating demo data (%d files per class) in %s", cfg.files_per_class, root)
    gen = torch.Generator().manual_seed(cfg.seed)
    direction = torch.randn(width, generator=gen)
    direction /= direction.norm()
    try:
        with atomic_path(root, folder=True) as tmp:
            for label, class_dir in CLASS_DIRS.items():
                (tmp / class_dir).mkdir()
                for i, content in enumerate(_class_files(label, cfg, width, direction, gen)):
                    torch.save(content, tmp / class_dir / f"output_{i}_merged.pt")
            (tmp / MARKER).write_text(json_text(settings))
    except OSError:  # a concurrent run generated it first
        if not marker.exists():
            raise
        _check_settings(marker, settings, root)


def _check_settings(marker: Path, settings: dict, root: Path) -> None:
    if json.loads(marker.read_text()) != settings:
        raise UserError(
            f"{root} holds demo data made with other settings ({marker}); delete {root} "
            "or choose another data.root"
        )
