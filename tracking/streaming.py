"""Frame-by-frame inference: network + tracker + per-track action, each frame computed once.

:class:`StreamingEngine` keeps, in ring buffers, what the network computed for recent frames:
the backbone's C5 (for the temporal encoder, which mixes the last ``clip_len`` frames at the
current one) and the fused P3 map, whose action-head features are computed at most once, when a
track's tube first needs that frame. A new frame runs the backbone once; nothing is recomputed for
older frames.

Boxes given to and returned by the engine are xyxy pixels of the **original** frame; the network
works on a letterboxed copy (aspect kept, padded to the model's input size).
"""
from __future__ import annotations

import contextlib
import copy
import warnings
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from common.device import native_bf16
from models.heads.detection import postprocess_detections
from models.layers import fuse_conv_bn
from tracking.tracker import Track, Tracker


@dataclass
class Letterbox:
    """Resize keeping the aspect ratio, then pad to ``(H, W)``; maps boxes both ways."""

    scale: float
    pad_x: float
    pad_y: float
    size: tuple[int, int]  # (H, W) of the network input

    @classmethod
    def fit(cls, width: int, height: int, size: tuple[int, int]) -> "Letterbox":
        H, W = size
        scale = min(W / width, H / height)
        return cls(scale, (W - width * scale) / 2, (H - height * scale) / 2, size)

    def image(self, frame: np.ndarray) -> np.ndarray:
        H, W = self.size
        h, w = frame.shape[:2]
        new_w, new_h = int(round(w * self.scale)), int(round(h * self.scale))
        resized = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR)
        out = np.full((H, W, 3), 114, dtype=np.uint8)
        x0, y0 = int(round(self.pad_x - 0.1)), int(round(self.pad_y - 0.1))
        out[y0:y0 + new_h, x0:x0 + new_w] = resized[: H - y0, : W - x0]
        return out

    def to_network(self, boxes: np.ndarray) -> np.ndarray:
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * self.scale
        return b + np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y])

    def to_original(self, boxes: np.ndarray) -> np.ndarray:
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) - np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y])
        return b / self.scale


@dataclass
class FrameResult:
    index: int
    timestamp: float
    tracks: list[Track]  # confirmed tracks observed in this frame
    detection_boxes: np.ndarray  # (D, 4) xyxy in the frame's pixels: the network's raw output
    detection_scores: np.ndarray  # (D,)

    @property
    def detections(self) -> int:
        return len(self.detection_boxes)


PRECISIONS = ("fp32", "bf16")


class StreamingEngine:
    """Runs a trained :class:`models.mot_action_net.MotActionNet` and a :class:`Tracker` on a
    stream. ``clip_len`` and ``stride`` must match training (the action head learned tubes of
    ``clip_len`` boxes ``stride`` frames apart).

    ``precision="bf16"`` runs the network under bfloat16 autocast (convolutions and matmuls in
    bfloat16, normalisations in float32); its outputs are turned back into float32 before
    decoding, Soft-NMS and tracking. On a CPU with AVX512-BF16 or AMX it was about 1.2x (tiny) to
    1.5x (lite) faster than float32 with the same accuracy on the synthetic test split (README:
    inference speed); elsewhere it is emulated, and the engine warns."""

    def __init__(self, *, model, tracker: Tracker, input_size: tuple[int, int], clip_len: int = 8, stride: int = 2,
                 conf_threshold: float = 0.1, nms_threshold: float = 0.6, device: str | torch.device = "cpu",
                 action_every: int = 1, fuse: bool = True, precision: str = "fp32"):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        # A private copy with BatchNorm folded into the convolutions (same outputs, less work per
        # frame); the caller's model is left as it was.
        self.model = fuse_conv_bn(copy.deepcopy(model).eval()) if fuse else model.eval()
        # channels-last convolutions run the GroupNorm head about a third faster on CPU (measured).
        self.model.to(device=device, memory_format=torch.channels_last)
        self.tracker, self.input_size, self.device = tracker, tuple(input_size), torch.device(device)
        self.precision = precision
        if precision == "bf16" and not native_bf16(self.device):
            warnings.warn(f"precision bf16: {self.device} has no native bfloat16 (AVX512-BF16 / AMX on a CPU), "
                          "so it is emulated and likely slower than fp32", stacklevel=2)
        self.clip_len, self.stride, self.action_every = clip_len, stride, max(action_every, 1)
        self.conf_threshold, self.nms_threshold = conf_threshold, nms_threshold
        span = (clip_len - 1) * stride + 1
        self.c5_buffer: deque = deque(maxlen=span)
        # [tracker frame index, P3, the action head's features of it or None]: the features are
        # computed the first time a tube needs that frame (never, while nobody is tracked), then kept.
        self.action_buffer: deque = deque(maxlen=span)
        self.letterbox: Letterbox | None = None

    def reset(self) -> None:
        self.tracker.reset()
        self.c5_buffer.clear()
        self.action_buffer.clear()
        self.letterbox = None

    def _window(self, buffer: deque) -> list:
        """Every ``stride``-th buffered entry ending at the newest: the clip the heads were trained on."""
        items = list(buffer)
        return items[::-1][:: self.stride][::-1]

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
        image = self.letterbox.image(frame)
        x = torch.from_numpy(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).to(self.device)
        x = x.permute(2, 0, 1).float().div_(255.0)[None]  # (1, 3, H, W)
        x = x.contiguous(memory_format=torch.channels_last)
        model = self.model
        c3, c4, c5 = model.backbone(x)
        self.c5_buffer.append(c5)
        window = self._window(self.c5_buffer)
        c5_clip = torch.stack(window, dim=1)  # (1, t, C, h, w)
        c5_now = model.temporal.forward_last(c5_clip)  # (1, C, h, w): the newest frame, seeing the past
        p3, p4, p5 = model.fpn([c3, c4, c5_now])
        det = model.detection_head([p3, p4, p5])
        if self.precision != "fp32":
            # Decode, rank and suppress in float32, with scores recomputed from float32 logits
            # (bfloat16 scores come in steps of 0.002-0.004 and tie); box distances keep
            # bfloat16's precision (about 0.4 % of the distance).
            det = {k: v.float() for k, v in det.items()}
            det["scores"] = model.detection_head.confidence(det["cls_logits"], det["centerness"])
        found = postprocess_detections(det, self.input_size, score_threshold=self.conf_threshold,
                                       nms_threshold=self.nms_threshold, **model.detection_head.nms_options())[0]
        net_boxes = found["boxes"]
        scores = found["scores"].cpu().numpy()
        embeddings = None
        # The tracker reads appearance only for detections at or above its high_score (matching
        # in the first stage, the appearance EMA, new tracks); the low-score ones are matched by
        # IoU alone, so only the confident boxes are embedded (a tenth of them on real footage).
        confident = np.flatnonzero(scores >= self.tracker.high_score)
        if len(confident):
            chosen = net_boxes[torch.from_numpy(confident).to(self.device)]
            rois = torch.cat([torch.zeros(len(chosen), 1, device=self.device), chosen], dim=1)
            embedded = model.reid_head.embed(model.reid_head.feature_map(p3), rois).float().cpu().numpy()
            embeddings = np.zeros((len(net_boxes), embedded.shape[1]), dtype=np.float32)
            embeddings[confident] = embedded
        boxes = self.letterbox.to_original(net_boxes.cpu().numpy())
        tracks = self.tracker.update(boxes, scores, embeddings, timestamp)
        # Keyed like the tracks' histories, by the tracker's frame count: the caller's index skips
        # where a video had undecodable frames.
        self.action_buffer.append([self.tracker.frame_index, p3, None])
        if tracks and index % self.action_every == 0:
            self._actions(tracks, timestamp)
        return FrameResult(index, timestamp, tracks, boxes, scores)

    def _actions(self, tracks: list[Track], timestamp: float) -> None:
        """Action head on each track's tube over the buffered window; the probabilities at the
        newest frame (which the recurrent head computes with the whole window as context) are
        smoothed over time by the track. Averaging the whole window instead made the reported
        action lag the person by most of the window."""
        window = self._window(self.action_buffer)
        missing = [entry for entry in window if entry[2] is None]
        if missing:
            computed = self.model.action_head.features(torch.cat([entry[1] for entry in missing]))  # (M, C/2, h, w)
            for entry, feat in zip(missing, computed.contiguous().split(1)):  # contiguous: what RoIAlign reads
                entry[1], entry[2] = None, feat
        slot = {entry[0]: t for t, entry in enumerate(window)}  # frame index -> position in the window
        T, N = len(window), len(tracks)
        boxes = np.zeros((1, T, N, 4), dtype=np.float64)
        mask = np.zeros((1, T, N), dtype=bool)
        for n, track in enumerate(tracks):
            for f, box in track.history:
                if f in slot:
                    boxes[0, slot[f], n], mask[0, slot[f], n] = box, True
        boxes[mask] = self.letterbox.to_network(boxes[mask])  # one call for every tube box
        features = torch.cat([entry[2] for entry in window], dim=0)  # (T, C/2, h, w)
        mask_t = torch.from_numpy(mask).to(self.device)
        boxes_t = torch.from_numpy(boxes.astype(np.float32)).to(self.device)
        logits = self.model.action_head.from_features(features, boxes_t, mask_t)  # (1, T, N, A)
        now = logits.float().softmax(-1)[0, -1].cpu().numpy()  # (N, A): every track passed in was seen this frame
        for n, track in enumerate(tracks):
            track.add_action(now[n], timestamp, self.tracker.action_smoothing)
