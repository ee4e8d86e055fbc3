"""Reading torch files that come from other people (merged data, checkpoints): always with
`weights_only=True`, since unpickling arbitrary objects runs code, and with one clear message,
naming the file, for each way that can fail."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import torch

from virnucpro_trainer.errors import UserError


def load_weights_only(path: Path, refused: str) -> object:
    """`torch.load(path, weights_only=True)`, memory-mapped where the format allows.

    A UserError for a file that cannot be read, and for one holding objects other than tensors
    and plain types: `refused` then says what such a file is and what would load instead.
    """
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)  # legacy format
    except pickle.UnpicklingError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        culprit = next((line for line in lines if "GLOBAL" in line), "")
        if not culprit:  # not an object that was refused: a pickle stream that is broken
            marker = next((i for i, x in enumerate(lines) if x.endswith("Unpickler error:")), -1)
            detail = (lines[marker + 1 :] or lines or [type(err).__name__])[0]
            raise UserError(
                f"{path}: cannot be read as a torch file (truncated or corrupt?): {detail:.200}"
            ) from None
        raise UserError(f"{path}: refused to load: {refused} {culprit}".strip()) from None
    except Exception as err:  # zip, EOF and I/O errors all mean the same to the user
        raise UserError(
            f"{path}: cannot be read as a torch file (truncated or corrupt?): "
            f"{str(err).strip() or type(err).__name__}"
        ) from None


def sha256(path: Path) -> str:
    """The file's SHA-256, hex: which checkpoint a model or an ensemble member came from."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
