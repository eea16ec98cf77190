"""Writing checkpoints: atomically, so a crash or a full disk never leaves a truncated file and the
previous checkpoint stays intact. Reading them is :mod:`models.checkpoint`'s."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from common.errors import InputError
from common.io import atomic_path
from models.checkpoint import FORMAT


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """A full disk or a read-only folder (an ``OSError``, or the ``RuntimeError`` of torch.save's
    writer) is one :class:`InputError`; the previous file at ``path`` stays intact and the partial
    one is removed (as are those of writers killed earlier)."""
    path = Path(path)
    try:
        with atomic_path(path, "the checkpoint") as tmp:  # an OSError is its one line
            torch.save({"format": FORMAT, **state}, tmp)
    except RuntimeError as exc:  # torch.save's zip writer reports a full disk as a RuntimeError
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        kept = f"the previous {path.name} is intact" if path.exists() else f"no {path.name} was written"
        raise InputError(f"{path}: cannot write the checkpoint ({reason}); {kept}") from None
