"""Checkpoints: atomic writes, ``torch.load(weights_only=True)`` reads, clear mismatch errors."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from common.errors import InputError
from common.io import atomic_path

FORMAT = "mot-action-checkpoint/1"


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write to a temporary file then rename, so a crash never leaves a truncated checkpoint."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for foreign or corrupt files
        raise InputError(f"{path}: not a readable checkpoint ({exc.__class__.__name__}: {str(exc).splitlines()[0][:120]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise InputError(f"{path}: not a mot-action checkpoint (no '{FORMAT}' format tag)")
    return state


def load_model_state(model: torch.nn.Module, state_dict: dict, source: str) -> None:
    """Load weights, or raise one error that lists what does not match."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(k for k in set(own) & set(state_dict) if own[k].shape != state_dict[k].shape)
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {shapes[0]}: checkpoint {tuple(state_dict[shapes[0]].shape)} "
                         f"vs model {tuple(own[shapes[0]].shape)})")
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        raise InputError(f"{source}: checkpoint does not fit this model: " + "; ".join(parts))
    model.load_state_dict(state_dict)


def load_model_from_checkpoint(path: str | os.PathLike, device="cpu", use_ema: bool = True):
    """Rebuild the network a checkpoint was trained with and load its (EMA, when saved) weights.

    Returns ``(model, state)``; ``state`` carries ``action_names``, ``input_size``, ``clip_len``
    and ``stride`` for inference.
    """
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    state = load_checkpoint(path)
    missing = [k for k in ("model_config", "model", "input_size") if k not in state]
    if missing:
        raise InputError(f"{path}: checkpoint lacks {', '.join(missing)} (not written by run_trainer.py?)")
    model = instantiate(OmegaConf.create({"model": state["model_config"]}).model.net)
    weights = state["ema"]["module"] if use_ema and state.get("ema") else state["model"]
    load_model_state(model, weights, str(path))
    return model.to(device).eval(), state
