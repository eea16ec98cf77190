"""Reading checkpoints written by the trainer, safely: a checkpoint is data.

``torch.load(weights_only=True)`` refuses pickled code, and the network is rebuilt from the checked
numbers of its :class:`ModelConfig` (never from a name stored in the file), so a hand-made ``.pt``
can at worst be refused with a one-line :class:`InputError`.
"""
from __future__ import annotations

import hashlib
import os
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from common.errors import InputError
from common.schema import from_mapping
from models.config import ModelConfig

FORMAT = "mot-action-checkpoint/1"
TRACKER_SETTINGS = "tracker_settings"  # {high_score, new_track_score, report_observation, chosen_on}: evaluation.calibration


def read_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """The checkpoint's dictionary, or an :class:`InputError` naming the file and the problem."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: a folder, not a checkpoint file (give its best.pt or last.pt)")
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file, not a checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for foreign, truncated or unsafe files
        if not zipfile.is_zipfile(path):  # torch's own words for a text file are "KeyError: 101"
            raise InputError(f"{path}: not a checkpoint file (torch.save writes a zip archive; this is not one)") from None
        detail = (str(exc).strip().splitlines() or [""])[0][:120]
        raise InputError(f"{path}: not a readable checkpoint ({type(exc).__name__}{': ' + detail if detail else ''})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise InputError(f"{path}: not a mot-action checkpoint (no '{FORMAT}' format tag)")
    return state


def load_model_state(model: torch.nn.Module, state_dict, source: str) -> None:
    """Load weights, or raise one error that lists what does not match."""
    if not isinstance(state_dict, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state_dict.items()):
        raise InputError(f"{source}: the weights are not a mapping of names to tensors")
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(k for k in set(own) & set(state_dict) if own[k].shape != state_dict[k].shape)
    # load_state_dict casts silently: integer values where the model holds floats (or the reverse)
    # are a damaged file, not a precision choice (a float16 copy of float32 weights is one).
    kinds = sorted(k for k in set(own) & set(state_dict) if own[k].is_floating_point() != state_dict[k].is_floating_point())
    if kinds:
        raise InputError(f"{source}: checkpoint does not fit this model: {len(kinds)} tensors of another kind of dtype "
                         f"(e.g. {kinds[0]}: checkpoint {state_dict[kinds[0]].dtype} vs model {own[kinds[0]].dtype})")
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
    check_finite(state_dict, source)
    model.load_state_dict(state_dict)


def check_finite(tensors: dict, source: str, what: str = "weights") -> None:
    """NaN or infinite values in floating-point ``tensors`` (a training run that diverged, a damaged
    file) are an :class:`InputError` naming the first such tensor: such weights would run, and give
    nonsense, without a word."""
    for name, value in tensors.items():
        if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise InputError(f"{source}: {what} {name} hold {bad} NaN or infinite value(s) of {value.numel()} "
                             "(a diverged run or a damaged file)")


@dataclass(frozen=True)
class InferenceSpec:
    """What inference needs besides the weights, as the trainer recorded it."""

    action_names: tuple[str, ...]
    input_size: tuple[int, int]  # (H, W) of the network input
    clip_len: int  # frames per clip the temporal encoder and the action head were trained on
    stride: int  # frame step inside a clip
    # The tracker's high_score, new_track_score and report_observation chosen for this network on a
    # validation split (scripts/calibrate_tracker.py), and what chose them; None: the tracker's defaults.
    track_high: float | None = None
    track_new: float | None = None
    track_report_observation: bool | None = None
    tracker_chosen_on: str | None = None
    tracker_name: str | None = None  # the tracker they were chosen for (None: the project's own)

    def check(self) -> None:
        if any(v < 32 or v % 32 for v in self.input_size):
            raise ValueError(f"input_size must be two multiples of 32, got {list(self.input_size)}")
        if self.clip_len < 1 or self.stride < 1:
            raise ValueError(f"clip_len and stride must be positive, got {self.clip_len}, {self.stride}")
        check_printable(self.action_names, "action_names")


@dataclass(frozen=True)
class StoredTrackerSettings:
    """A checkpoint's ``tracker_settings`` entry, as written by :mod:`evaluation.calibration`."""

    high_score: float
    new_track_score: float
    report_observation: bool | None = None
    chosen_on: str | None = None
    tracker: str | None = None

    def check(self) -> None:
        for value in (self.high_score, self.new_track_score):
            if not 0 <= value <= 1:
                raise ValueError(f"scores must be in [0, 1], got {value:g}")
        check_printable((self.chosen_on or "", self.tracker or ""), "chosen_on and tracker")


def check_printable(texts, what: str) -> None:
    """Text a checkpoint carries is printed and drawn: a line break or a terminal escape in it would
    forge output lines, so control characters and line separators are refused (``ValueError``,
    named by the caller); any other character, a folder name's no-break space included, is text."""
    for text in texts:
        if any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in text):
            raise ValueError(f"{what} must be printable text on one line, got {text!r}")


def read_inference_spec(path: str | os.PathLike, state: dict | None = None) -> tuple[ModelConfig, InferenceSpec]:
    """The :class:`ModelConfig` and :class:`InferenceSpec` a checkpoint records, without building
    the network (another runtime, such as the exported ONNX graphs, brings its own weights)."""
    state = read_checkpoint(path) if state is None else state
    missing = [k for k in ("model_config", "model", "input_size", "action_names") if k not in state]
    if missing:
        raise InputError(f"{path}: checkpoint lacks {', '.join(missing)} (not written by run_trainer.py?)")
    config = ModelConfig.from_mapping(state["model_config"], f"{path}: model_config")
    tracker = {}
    if state.get(TRACKER_SETTINGS) is not None:
        stored = from_mapping(StoredTrackerSettings, state[TRACKER_SETTINGS], f"{path}: {TRACKER_SETTINGS}")
        tracker = {"track_high": stored.high_score, "track_new": stored.new_track_score,
                   "track_report_observation": stored.report_observation, "tracker_chosen_on": stored.chosen_on,
                   "tracker_name": stored.tracker}
    spec = from_mapping(InferenceSpec, {"action_names": state["action_names"], "input_size": state["input_size"],
                                        "clip_len": state.get("clip_len", 8), "stride": state.get("stride", 2),
                                        **tracker},
                        f"{path}")
    if len(spec.action_names) != config.num_actions:
        raise InputError(f"{path}: {len(spec.action_names)} action names for a model with {config.num_actions} actions")
    return config, spec


EXTRA_HEADS = "extra_heads."  # MotActionNet.extra_heads: heads registered for training only (train.run.register_task)


def inference_weights(state: dict, use_ema: bool = True):
    """The weights inference loads from a checkpoint's dictionary: the EMA's, when saved."""
    if use_ema and isinstance(state.get("ema"), dict) and "module" in state["ema"]:
        return state["ema"]["module"]
    return state["model"]


def weights_sha256(state: dict) -> str:
    """A digest of the weights inference loads (names, dtypes, shapes, values): what an exported
    graph is bound to, so that rewriting the checkpoint's other entries (the tracker settings
    scripts/calibrate_tracker.py records) keeps its exports valid."""
    digest = hashlib.sha256()
    weights = inference_weights(state)
    for name in sorted(weights):
        value = weights[name]
        digest.update(f"{name}|".encode())
        if isinstance(value, torch.Tensor):
            flat = value.detach().cpu().contiguous().reshape(-1)
            digest.update(f"{flat.dtype}|{tuple(value.shape)}|".encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes())
        else:
            digest.update(repr(value).encode())
    return digest.hexdigest()


def load_model_from_checkpoint(path: str | os.PathLike, device="cpu", use_ema: bool = True):
    """Rebuild the network a checkpoint was trained with and load its (EMA, when saved) weights.

    Returns ``(model, config, spec)``: the network in eval mode on ``device``, its
    :class:`ModelConfig` and the :class:`InferenceSpec`. Extra heads trained beside the built-in
    ones are left out (inference runs the built-in heads), with a warning naming them."""
    from models.mot_action_net import MotActionNet

    state = read_checkpoint(path)
    config, spec = read_inference_spec(path, state)
    model = MotActionNet.from_config(config)
    weights = inference_weights(state, use_ema)
    if isinstance(weights, dict):
        extra = sorted({k[len(EXTRA_HEADS):].split(".")[0] for k in weights if isinstance(k, str) and k.startswith(EXTRA_HEADS)})
        if extra:
            warnings.warn(f"{path}: the extra heads {', '.join(extra)} were trained but inference runs the built-in "
                          "heads only; they are not loaded", stacklevel=2)
            weights = {k: v for k, v in weights.items() if not (isinstance(k, str) and k.startswith(EXTRA_HEADS))}
    load_model_state(model, weights, str(path))
    return model.to(device).eval(), config, spec
