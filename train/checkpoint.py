"""Writing checkpoints: atomically, so a crash or a full disk never leaves a truncated file and the
previous checkpoint stays intact. Reading them is :mod:`models.checkpoint`'s."""
from __future__ import annotations

import os

import torch

from common.io import atomic_path
from models.checkpoint import FORMAT


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)
