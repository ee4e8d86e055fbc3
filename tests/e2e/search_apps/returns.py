"""A Hydra app whose jobs return what `ret` says (a number, None, a string, a tuple, NaN) or
raise: each but the number must end as a failed trial with its reason, never a worker crash."""

import math

import hydra
from omegaconf import DictConfig

RETURNS = {"number": 1.5, "none": None, "text": "abc", "pair": (1.0, 2.0), "nan": math.nan}


@hydra.main(version_base=None, config_path=None)
def job(cfg: DictConfig):
    if cfg.ret == "raise":
        raise RuntimeError("the job raised")
    return RETURNS[cfg.ret]


if __name__ == "__main__":
    job()
