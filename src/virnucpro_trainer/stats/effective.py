"""How many genomes a test side is worth: Kish's effective number of genomes, overall and per
class, reported beside every interval (test_metrics.json's `ci`, each level of metrics.json,
report.md) and the rule that withholds intervals it cannot support (intervals.py).

A metric over fragments weighs each genome by its number of fragments n, so a few large genomes
decide it. Kish's effective number (sum n)^2 / sum n^2 is the number of equal-sized genomes that
would give a fragment-weighted mean the same variance, when genomes vary alike and fragments of
one genome move together: k for k genomes of one size, near 1 when one genome holds nearly all
fragments. It depends on the sizes only, never on the scores, so it reads the same for every
model scored on the same test side. docs/statistics.md says what it means and why Kish's.
"""

from __future__ import annotations

import numpy as np

CLASSES = (("viral", 1), ("host", 0))
EFFECTIVE_KEYS = ("effective_genomes", "genomes")  # what effective_genomes returns


def kish(sizes) -> float:
    """(sum n)^2 / sum n^2 over the sizes n > 0; 0.0 for none."""
    n = np.asarray(sizes, dtype=np.float64)
    n = n[n > 0]
    return float(n.sum() ** 2 / np.sum(n * n)) if len(n) else 0.0


def class_sizes(y: np.ndarray, codes: np.ndarray, n_groups: int) -> dict[str, np.ndarray]:
    """Each genome's rows, overall and per class ({"all", "viral", "host"}; 0 where a genome
    has no rows of that class); `codes` 0..n_groups-1, as bootstrap.check_inputs gives them."""
    y = np.asarray(y)
    sizes = {"all": np.bincount(codes, minlength=n_groups)}
    for name, label in CLASSES:
        sizes[name] = np.bincount(codes[y == label], minlength=n_groups)
    return sizes


def effective_genomes(labels, genomes) -> dict[str, dict]:
    """{"effective_genomes": {"all", "viral", "host"}: Kish's number (rounded to 0.01),
    "genomes": {"all", "viral", "host"}: how many genomes hold rows (of that class)}, from
    0/1 labels and each row's genome (any values np.unique sorts)."""
    uniques, codes = np.unique(np.asarray(genomes).ravel(), return_inverse=True)
    sizes = class_sizes(np.asarray(labels).ravel(), codes.ravel(), len(uniques))
    return {
        "effective_genomes": {k: round(kish(n), 2) for k, n in sizes.items()},
        "genomes": {k: int(np.count_nonzero(n)) for k, n in sizes.items()},
    }


def describe(effective: dict) -> str:
    """One line for a report: `effective number of genomes 20.3 of 100 (viral 11.2 of 50,
    host 9.1 of 50)`; a class without genomes is left out."""
    eff, count = effective["effective_genomes"], effective["genomes"]
    classes = ", ".join(
        f"{name} {eff[name]:.1f} of {count[name]}" for name, _ in CLASSES if count[name]
    )
    return f"effective number of genomes {eff['all']:.1f} of {count['all']} ({classes})"
