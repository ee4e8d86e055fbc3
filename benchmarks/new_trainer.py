"""NEW: this trainer's own data path with its defaults, wired as `train.pipeline.run` wires it, for
`benchmarks/data_path.py` to compare against the old one (old_trainer.py) and the floor
(model_floor.py).

`find_files`, `open_store` (float32, or float16 for "NEW f16"), `load_or_make_split`,
`BatchSource`, `train_epoch` (batch 32) and `predict` (the default eval batch, 4096).
"""

from __future__ import annotations

from pathlib import Path

import torch

from virnucpro_trainer.config.schema import TrainConfig
from virnucpro_trainer.data.split import SIDES, Split, SplitSettings, load_or_make_split
from virnucpro_trainer.model import predict
from virnucpro_trainer.train.loop import Training, train_epoch

from _common import BATCH, open_demo_store, store_source


def default_split(summary: dict, root: Path, split_dir: Path) -> Split:
    """The trainer's split with its default settings (made once, then loaded)."""
    return load_or_make_split(
        summary, root, split_dir, SplitSettings.from_config(TrainConfig().split)
    )


def design(spec: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """data_path.py's design: `load` opens (cold: builds) the store of spec["root"] in
    spec["cache_dir"] as spec["dtype"] and finds the split, `train` one epoch, `evaluate` a side
    (its row count)."""
    cfg = TrainConfig()
    shuffle = torch.Generator().manual_seed(cfg.seed)
    state = {}

    def load():
        root = Path(spec["root"])
        table = open_demo_store(root, Path(spec["cache_dir"]), spec["dtype"])
        split = default_split(table.file_summary(), root, Path(spec["split_dir"]))
        state["rows"] = {side: table.rows_of(split.files[side]) for side in SIDES}
        state["source"] = store_source(table)

    def train():
        training = Training(model, optimizer, None, state["source"], shuffle=shuffle)
        train_epoch(training, state["rows"]["train"], BATCH)

    def evaluate(side):
        predict(model, state["source"], state["rows"][side], cfg.eval_batch_size)
        return len(state["rows"][side])

    return {"load": load, "train": train, "evaluate": evaluate}
