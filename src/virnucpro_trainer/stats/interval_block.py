"""The interval block of the results files: what training's test_metrics.json and evaluate.py's
metrics.json write beside each set of metrics, built in one place from genome_intervals' draws.

Each metric set gets `intervals` ({metric: [low, high]}, NaN (null in JSON) where not estimable),
`not_estimable` ({metric: reason}, empty when every interval could be made) and
`interval_genomes` ({metric: its own effective number of genomes}, NaN where no resampling was
done; what its interval's coverage depends on, docs/statistics.md); `ci` says how,
and how many genomes the rows are worth (effective.py: `effective_genomes`, `genomes`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from virnucpro_trainer.stats.effective import effective_genomes
from virnucpro_trainer.stats.intervals import intervals_of

# What `ci.method` is called in the results files and the report's caption.
METHOD_NAMES = {
    "studentized": "studentized cluster bootstrap",
    "bca": "BCa cluster bootstrap",
    "percentile": "percentile cluster bootstrap",
}


def interval_blocks(
    labels, scores, genomes, predictions: Sequence[np.ndarray], ci, ranking=None
) -> tuple[list[dict], dict]:
    """For each 0/1 prediction of `scores`: {"intervals": ..., "not_estimable": ...} (threshold
    metrics from the prediction; Brier from the scores; AUROC and AUPRC ranking by `ranking`
    where given, as their values do, else by the scores), all from the same resamples of
    genomes; and the `ci` description: n_boot, level, seed, method (as named in
    the files), method_setting (ci.method), and the rows' `effective_genomes` and `genomes`
    (overall, viral, host: effective.effective_genomes). `ci`: any object with n_boot, level,
    seed and method (config.schema.CIConfig)."""
    method = getattr(ci, "method", "studentized")
    found = intervals_of(
        labels, scores, genomes, list(predictions), ci.level, ci.n_boot, ci.seed, (method,),
        ranking,
    )  # fmt: skip
    blocks = [
        {
            "intervals": {k: v.bounds for k, v in per_method[method].items()},
            "not_estimable": {
                k: v.reason for k, v in per_method[method].items() if v.reason is not None
            },
            "interval_genomes": {k: round(v.genomes, 2) for k, v in per_method[method].items()},
        }
        for per_method in found
    ]
    described = {
        "n_boot": ci.n_boot,
        "level": ci.level,
        "seed": ci.seed,
        "method": METHOD_NAMES.get(method, method),
        "method_setting": method,
        **effective_genomes(labels, genomes),
    }
    return blocks, described
