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


def record_tracker_settings(path: str | os.PathLike, settings: dict, chosen_on: str, tracker: str) -> None:
    """Writes the tracker settings chosen for the network in ``path`` (``high_score``,
    ``new_track_score``, optionally ``report_observation``: :mod:`evaluation.calibration`) for the
    tracker named ``tracker`` into the checkpoint, where :class:`~models.checkpoint.InferenceSpec` reads them back; the weights and
    everything else stay as they were, and the file is replaced atomically."""
    from models.checkpoint import TRACKER_SETTINGS, read_checkpoint, read_inference_spec
    state = read_checkpoint(path)
    read_inference_spec(path, state)  # refuse to add to a checkpoint inference could not read
    state[TRACKER_SETTINGS] = {**settings, "chosen_on": str(chosen_on), "tracker": str(tracker)}
    read_inference_spec(path, state)  # the settings checked as a reader will check them, before writing
    save_checkpoint(path, state)
