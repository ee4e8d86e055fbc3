"""The mean of a seed sweep: how much a test metric moves with the training randomness."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats


def mean_interval(values: Sequence[float] | np.ndarray, level: float = 0.95) -> dict:
    """Summary of a seed sweep's values of one metric.

    Returns {"n", "mean", "sd", "low", "high"}: n the number of values used (NaN values are left
    out), their mean, sample standard deviation (n - 1 divisor) and the Student-t interval of the
    mean at `level`, mean -/+ t(n - 1) * sd / sqrt(n). sd, low and high are NaN when n < 2 (and
    mean too when n = 0).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, not {level}")
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return {"n": n, "mean": mean, "sd": math.nan, "low": math.nan, "high": math.nan}
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf((1.0 + level) / 2, df=n - 1)) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "low": mean - half, "high": mean + half}
