"""Simulated checkpoints and samples where false calls come by whole genome, for the FDR calls
(benchmarks/fdr_calls.py; tests/evaluate/test_calls_fdr.py import it as `calls_simulator`).

A genome (record) has a size in chunks drawn from a Pareto tail (index TAIL_INDEX, so a few
genomes hold most chunks; at most MAX_CHUNKS) and an effect GENOME_SCALE * t(3 df), heavy-tailed,
shared by all its chunks; each chunk has its own effect ~ N(0, CHUNK_SD^2) and 1-6 reading frames
(rows), each with its own noise ~ N(0, FRAME_SD^2). A row's x is +SHIFT (viral) or -SHIFT (host)
plus those three. The model's logit is OVERCONFIDENCE * x * 2 SHIFT / (CHUNK_SD^2 + FRAME_SD^2):
over-confident, and, the genome effects being heavy-tailed, no temperature calibrates its tail. A
checkpoint's temperature is fitted on a small validation (TEMPERATURE_GENOMES genomes per class,
its own draw); its validation_scores hold VAL_GENOMES genomes per class. Ids are
`<V|H><sample>_<genome>.1_chunk_<k><frame>`, so levels.py builds chunks and records from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from virnucpro_trainer.evaluate.scoring import Scored
from virnucpro_trainer.stats.calibration import apply_temperature, fit_temperature

TAIL_INDEX = 1.1
MAX_CHUNKS = 2000
GENOME_SCALE, SHIFT, CHUNK_SD, FRAME_SD = 1.0, 4.0, 1.0, 0.6
OVERCONFIDENCE = 3.0
VAL_GENOMES = 1000
TEMPERATURE_GENOMES = 50
FRAMES = np.array(["F1", "F2", "F3", "R1", "R2", "R3"])
PATTERN = r"^(.+)_chunk_\d+"
# Record sizes of a sample (chunks, Pareto-tailed within the range): like the validation's,
# short contigs only, or longer genomes only.
SIZES = {"same": (1, MAX_CHUNKS), "short": (1, 2), "long": (8, 64)}


def pareto_sizes(rng: np.random.Generator, n: int, low: int = 1, high: int = MAX_CHUNKS):
    """Chunks per genome: floor(low U^(-1/TAIL_INDEX)), kept in [low, high]."""
    drawn = np.floor(low * rng.uniform(size=n) ** (-1.0 / TAIL_INDEX))
    return np.clip(drawn, low, high).astype(np.int64)


@dataclass
class Rows:
    """Scored rows: ids, labels (1 viral) and the model's raw logits (float32)."""

    ids: list[str]
    labels: np.ndarray
    logits: np.ndarray


def genome_rows(rng: np.random.Generator, sizes: dict[int, np.ndarray], tag: str) -> Rows:
    """The rows of genomes of the given sizes (chunks) per class, scored by the model."""
    ids, labels, logits = [], [], []
    scale = OVERCONFIDENCE * 2 * SHIFT / (CHUNK_SD**2 + FRAME_SD**2)
    for label, counts in sizes.items():
        n_genomes = counts.size
        chunk_genome = np.repeat(np.arange(n_genomes), counts)
        chunk_index = np.arange(chunk_genome.size) - np.repeat(np.cumsum(counts) - counts, counts)
        frames = rng.integers(1, 7, size=chunk_genome.size)
        row_chunk = np.repeat(np.arange(chunk_genome.size), frames)
        frame = np.arange(row_chunk.size) - np.repeat(np.cumsum(frames) - frames, frames)
        effect = GENOME_SCALE * rng.standard_t(3, size=n_genomes)
        chunk = rng.normal(0.0, CHUNK_SD, size=chunk_genome.size)
        x = (SHIFT if label else -SHIFT) + effect[chunk_genome[row_chunk]] + chunk[row_chunk]
        x = x + rng.normal(0.0, FRAME_SD, size=row_chunk.size)
        prefix = f"{'V' if label else 'H'}{tag}_"
        g, k = chunk_genome[row_chunk], chunk_index[row_chunk]
        ids += [f"{prefix}{a}.1_chunk_{b}{f}" for a, b, f in zip(g, k, FRAMES[frame], strict=True)]
        labels.append(np.full(row_chunk.size, label, dtype=np.int64))
        logits.append((scale * x).astype(np.float32))
    return Rows(ids, np.concatenate(labels), np.concatenate(logits))


def checkpoint(rng: np.random.Generator, genomes: int = VAL_GENOMES):
    """What compositions() reads of a checkpoint: its temperature (fitted on a small validation
    of its own) and its validation_scores (`genomes` genomes per class)."""
    small = genome_rows(rng, {c: pareto_sizes(rng, TEMPERATURE_GENOMES) for c in (1, 0)}, "t")
    temperature = fit_temperature(small.labels, small.logits)
    val = genome_rows(rng, {c: pareto_sizes(rng, genomes) for c in (1, 0)}, "v")
    validation = {
        "train_viral_prior": 0.5,  # the model's logit has no prior term: balanced training
        "ids": "\n".join(val.ids),
        "labels": val.labels.astype(np.uint8),
        "logits": val.logits,
        "record_pattern": PATTERN,
    }
    return SimpleNamespace(validation=validation, temperature=temperature, path="simulated")


def sample(rng: np.random.Generator, fraction: float, records: int, sizes: str = "same"):
    """A sample of `records` genomes, round(fraction records) of them viral, with record sizes
    `sizes` (SIZES): its rows as the model scores them."""
    viral = round(fraction * records)
    low, high = SIZES[sizes]
    counts = {
        1: pareto_sizes(rng, viral, low, high),
        0: pareto_sizes(rng, records - viral, low, high),
    }
    return genome_rows(rng, counts, "s")


def scored(rows: Rows, temperature: float, labelled: bool = False) -> Scored:
    """The rows as evaluate.py's scoring hands them on: float32 probabilities with the
    checkpoint's temperature applied, the raw logits as the ranking."""
    p = apply_temperature(rows.logits, temperature).astype(np.float32)
    return Scored(
        ids=rows.ids,
        files=["sample"] * len(rows.ids),
        labels=rows.labels if labelled else None,
        prob_viral=p,
        prob_host=np.float32(1.0) - p,
        loss=float("nan"),
        logits=rows.logits,
    )
