"""Frame-by-frame inference: network + tracker + per-track action, each frame computed once.

The network owns its per-frame step and what it keeps between frames
(:meth:`models.mot_action_net.MotActionNet.stream_step`, :class:`~models.mot_action_net.StreamState`);
:class:`StreamingEngine` is the glue around it: letterboxing, the tracker, and the action tubes
built from the tracks' histories.

Boxes given to and returned by the engine are xyxy pixels of the **original** frame; the network
works on a letterboxed copy (aspect kept, padded to the model's input size).
"""
from __future__ import annotations

import contextlib
import copy
import warnings

import numpy as np
import torch

from common.device import PRECISIONS, native_bf16
from models.inputs import Letterbox, network_input
from models.layers import fuse_conv_bn
from models.mot_action_net import StreamState
from tracking.trackers import FrameResult, MultiObjectTracker, ReportedTrack


class StreamingEngine:
    """Runs a trained :class:`models.mot_action_net.MotActionNet` and a tracker (any
    :class:`~tracking.trackers.MultiObjectTracker`) on a stream: letterboxes each frame, calls the
    network's :meth:`~MotActionNet.stream_step`, maps its boxes back to the frame, updates the
    tracker, and builds each track's tube from its history for
    :meth:`~MotActionNet.stream_actions`. ``clip_len`` and ``stride`` must match training (the
    action head learned tubes of ``clip_len`` boxes ``stride`` frames apart). ``actions=False``
    skips the action head (a model trained without action labels has nothing to say).

    ``precision="bf16"`` runs the network under bfloat16 autocast (convolutions and matmuls in
    bfloat16, normalisations in float32); its outputs are turned back into float32 before
    decoding, Soft-NMS and tracking. On a CPU with AVX512-BF16 or AMX it was about 1.2x (tiny) to
    1.5x (lite) faster than float32 with the same accuracy on the synthetic test split (README:
    inference speed); elsewhere it is emulated, and the engine warns."""

    def __init__(self, *, model, tracker: MultiObjectTracker, input_size: tuple[int, int], clip_len: int = 8,
                 stride: int = 2, conf_threshold: float = 0.1, nms_threshold: float = 0.6,
                 device: str | torch.device = "cpu", action_interval_s: float = 0.0, fuse: bool = True,
                 precision: str = "fp32", actions: bool = True):
        if not isinstance(tracker, MultiObjectTracker):
            raise TypeError(f"tracker: expected a tracking.trackers.MultiObjectTracker, got {type(tracker).__name__}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if isinstance(model, torch.nn.Module):
            # A private copy with BatchNorm folded into the convolutions (same outputs, less work
            # per frame); the caller's model is left as it was.
            self.model = fuse_conv_bn(copy.deepcopy(model).eval()) if fuse else model.eval()
            # channels-last convolutions run the GroupNorm head about a third faster on CPU (measured).
            self.model.to(device=device, memory_format=torch.channels_last)
        else:  # another runtime with the same streaming step (models.onnx_runtime.OnnxStreamingModel)
            if precision != "fp32":
                raise ValueError(f"precision {precision}: the ONNX Runtime path runs the exported fp32 graphs")
            self.model = model
        self.tracker, self.input_size, self.device = tracker, tuple(input_size), torch.device(device)
        self.precision = precision
        if precision == "bf16" and not native_bf16(self.device):
            warnings.warn(f"precision bf16: {self.device} has no native bfloat16 (AVX512-BF16 / AMX on a CPU), "
                          "so it is emulated and likely slower than fp32", stacklevel=2)
        if not action_interval_s >= 0:
            raise ValueError(f"action_interval_s must be >= 0, got {action_interval_s}")
        self.action_interval_s = action_interval_s
        self._last_actions: float | None = None  # when the action head last ran on every track
        self.actions = actions
        self.conf_threshold, self.nms_threshold = conf_threshold, nms_threshold
        self.state = StreamState(clip_len, stride)
        self.letterbox: Letterbox | None = None

    def reset(self) -> None:
        self.tracker.reset()
        self.state.clear()
        self.letterbox = None
        self._last_actions = None

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    @torch.no_grad()
    def process(self, frame: np.ndarray, index: int, timestamp: float) -> FrameResult:
        with self._autocast():
            return self._process(frame, index, timestamp)

    def _process(self, frame: np.ndarray, index: int, timestamp: float) -> FrameResult:
        if self.letterbox is None:
            self.letterbox = Letterbox.fit(frame.shape[1], frame.shape[0], self.input_size)
        x = network_input([self.letterbox.image(frame)], self.device,
                          channels_last=isinstance(self.model, torch.nn.Module))  # (1, 3, H, W)
        # Frames are keyed like the tracks' histories, by the tracker's frame count: the caller's
        # index skips where a video had undecodable frames.
        out = self.model.stream_step(x, self.state, key=self.tracker.frame_index + 1, score_threshold=self.conf_threshold,
                                     nms_threshold=self.nms_threshold, embed_min_score=self.tracker.high_score)
        scores = out.scores.cpu().numpy()
        embeddings = None if out.embeddings is None else out.embeddings.cpu().numpy()
        boxes = self.letterbox.to_original(out.boxes.cpu().numpy())
        tracks = self.tracker.update(boxes, scores, embeddings, timestamp)
        if self.actions and tracks:
            due = self._last_actions is None or timestamp - self._last_actions >= self.action_interval_s - 1e-6
            # Between runs every track keeps its last action; a track with none yet is not kept waiting.
            waiting = tracks if due else [t for t in tracks if t.action_probs is None]
            if waiting:
                self._actions(waiting, timestamp)
            if due:
                self._last_actions = timestamp
        return FrameResult(index, timestamp, tracks, boxes, scores)

    def _actions(self, tracks: list[ReportedTrack], timestamp: float) -> None:
        """Each track's tube over the action window, from its history; the probabilities at the
        newest frame are smoothed over time by the track. Averaging the whole window instead made
        the reported action lag the person by most of the window."""
        slot = {key: t for t, key in enumerate(self.state.window_keys())}  # frame key -> position in the window
        T, N = len(slot), len(tracks)
        boxes = np.zeros((1, T, N, 4), dtype=np.float64)
        mask = np.zeros((1, T, N), dtype=bool)
        for n, track in enumerate(tracks):
            for f, box in track.history:
                if f in slot:
                    boxes[0, slot[f], n], mask[0, slot[f], n] = box, True
        boxes[mask] = self.letterbox.to_network(boxes[mask])  # one call for every tube box
        probs = self.model.stream_actions(self.state, torch.from_numpy(boxes.astype(np.float32)).to(self.device),
                                          torch.from_numpy(mask).to(self.device))
        now = probs.cpu().numpy()  # (N, A): every track passed in was seen this frame
        for n, track in enumerate(tracks):
            track.add_action(now[n], timestamp, self.tracker.action_smoothing)
