"""The network: backbone -> temporal encoder (on C5) -> FPN -> detection, ReID and action heads."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

from models.backbone import CSPBackbone
from models.config import VARIANTS, ModelConfig, model_preset
from models.fpn import FPN
from models.heads.action import ActionHead
from models.heads.detection import DetectionHead
from models.heads.reid import ReIDHead
from models.layers import check_video, set_conv_activation
from models.temporal import TemporalEncoder

__all__ = ["MotActionNet", "StreamState", "StreamOutput", "build_model", "VARIANTS"]


class StreamState:
    """What the network keeps between the frames of one stream, so that each frame runs the
    backbone once and nothing is recomputed for older frames: C5 of the recent frames (the
    temporal encoder mixes the last ``clip_len`` frames, ``stride`` apart, at the newest one) and,
    per frame, P3 with the action head's features of it, computed the first time a tube needs that
    frame (never, while nobody is tracked) and then kept. ``clip_len`` and ``stride`` must be the
    training clip's: the heads learned that window."""

    def __init__(self, clip_len: int, stride: int):
        if clip_len < 1 or stride < 1:
            raise ValueError(f"clip_len and stride must be positive, got {clip_len}, {stride}")
        self.clip_len, self.stride = clip_len, stride
        span = (clip_len - 1) * stride + 1
        self.c5: deque = deque(maxlen=span)
        self.frames: deque = deque(maxlen=span)  # [key, P3 or None, action features or None]

    def clear(self) -> None:
        self.c5.clear()
        self.frames.clear()

    def window(self, buffer: deque) -> list:
        """Every ``stride``-th buffered entry ending at the newest: the clip the heads were trained on."""
        return list(buffer)[::-1][:: self.stride][::-1]

    def past_window(self, buffer: deque) -> list:
        """The entries that, with a new frame appended, make the strided window ending at it: for
        a runtime that computes the new frame's entry itself (the exported graph)."""
        return list(buffer)[::-1][self.stride - 1:: self.stride][: self.clip_len - 1][::-1]

    def window_keys(self) -> list:
        """The keys (given to :meth:`MotActionNet.stream_step`) of the frames in the action window, oldest first."""
        return [entry[0] for entry in self.window(self.frames)]


@dataclass
class StreamOutput:
    """One frame's detections in the network input's pixels (xyxy), highest score first."""

    boxes: torch.Tensor  # (D, 4)
    scores: torch.Tensor  # (D,) float32
    embeddings: torch.Tensor | None  # (D, dim) float32 unit rows where score >= embed_min_score, zeros elsewhere;
    #                                  None when no detection reached it


class MotActionNet(nn.Module):
    """One network for detection, ReID and per-track action over a clip ``(B, T, 3, H, W)``.

    ``forward(frames, boxes, mask)`` returns a dict with

    * ``detections``: the detection head's outputs for the ``B*T`` frames (see :class:`DetectionHead`);
    * ``reid_map``: ``(B*T, C, H/8, W/8)``, from which :meth:`embed` pools per-box embeddings;
    * ``p3``: the fused finest level ``(B*T, C, H/8, W/8)``;
    * when ``boxes (B, T, N, 4)`` and ``mask (B, T, N)`` are given (ground-truth tubes in training,
      tracked tubes at inference): ``action_logits (B, T, N, A)`` and ``embeddings (B, T, N, D)``
      (zero where the mask is False);
    * one entry per extra head, under its name: ``extra_heads`` maps names to modules called as
      ``head([P3, P4, P5], boxes, mask)`` (each level ``(B*T, C, h, w)``; ``boxes``/``mask`` as
      given, possibly None), so that a new task trains end to end
      (``tests/extending/test_new_head.py``). The streaming and exported paths do not run them.
    """

    # The keys forward() writes itself; an extra head may not take them.
    OUTPUTS = ("detections", "reid_map", "p3", "image_size", "clip", "action_logits", "embeddings")

    def __init__(self, *, backbone: CSPBackbone, temporal: TemporalEncoder, fpn: FPN, detection_head: DetectionHead,
                 reid_head: ReIDHead, action_head: ActionHead, extra_heads: Mapping[str, nn.Module] | None = None):
        super().__init__()
        taken = sorted(set(extra_heads or {}) & set(self.OUTPUTS))
        if taken:
            raise ValueError(f"extra head names {taken} are outputs of the network itself")
        if tuple(fpn.in_channels) != tuple(backbone.out_channels):
            raise ValueError(f"FPN in_channels {fpn.in_channels} do not match backbone out_channels {backbone.out_channels}")
        if temporal.channels != backbone.out_channels[-1]:
            raise ValueError(f"temporal encoder works on C5 ({backbone.out_channels[-1]} channels), got {temporal.channels}")
        self.backbone, self.temporal, self.fpn = backbone, temporal, fpn
        self.detection_head, self.reid_head, self.action_head = detection_head, reid_head, action_head
        # Empty by default: no parameters and no state_dict keys, so the default network is unchanged.
        self.extra_heads = nn.ModuleDict(extra_heads)

    @classmethod
    def from_config(cls, config: ModelConfig, extra_heads: Mapping[str, nn.Module] | None = None) -> "MotActionNet":
        """The network of a checked :class:`ModelConfig` (random weights), with ``extra_heads``."""
        c = config
        act = c.activation
        # Built in this order so that a seed gives the same initial values as before the option.
        return cls(
            backbone=set_conv_activation(CSPBackbone(widths=c.widths, depths=c.depths), act),
            temporal=TemporalEncoder(c.widths[4], d_model=c.temporal.d_model, num_layers=c.temporal.num_layers,
                                     num_heads=c.temporal.num_heads, ff_mult=c.temporal.ff_mult, causal=c.temporal.causal,
                                     pool=c.temporal.pool),
            fpn=set_conv_activation(FPN(c.widths[2:], out_channels=c.fpn_channels, separable=c.fpn_separable), act),
            detection_head=set_conv_activation(
                DetectionHead(c.fpn_channels, num_classes=c.num_classes, tower_depth=c.head_depth, tower=c.head_tower,
                              tower_kernel=c.head_kernel, score=c.det_score, nms=c.det_nms, soft_sigma=c.det_soft_sigma),
                act),
            reid_head=set_conv_activation(
                ReIDHead(c.fpn_channels, channels=c.reid.channels, dim=c.reid.dim, separable=c.reid.separable), act),
            action_head=ActionHead(c.fpn_channels, c.num_actions, hidden=c.action.hidden,
                                   bidirectional=c.action.bidirectional),
            extra_heads=extra_heads)

    @property
    def num_actions(self) -> int:
        return self.action_head.num_actions

    def features(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """Pyramid ``[P3, P4, P5]`` of the ``B*T`` frames, with motion mixed into C5 first."""
        B, T, _, H, W = check_video(frames)
        c3, c4, c5 = self.backbone(frames.flatten(0, 1))  # each (B*T, c, h, w)
        c5 = self.temporal(c5.reshape(B, T, *c5.shape[1:])).flatten(0, 1)  # (B, T, c5, h, w) -> (B*T, ...)
        return self.fpn([c3, c4, c5])

    def embed(self, reid_map: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, T, N, 4)`` boxes -> ``(B, T, N, D)`` embeddings (zeros where ``mask`` is False)."""
        B, T, N, _ = boxes.shape
        index = torch.nonzero(mask)  # (K, 3): b, t, n
        rois = torch.cat([(index[:, 0] * T + index[:, 1]).to(boxes.dtype)[:, None], boxes[mask]], dim=1)  # (K, 5)
        out = boxes.new_zeros((B, T, N, self.reid_head.dim))
        out[mask] = self.reid_head.embed(reid_map, rois)
        return out

    @torch.no_grad()
    def stream_step(self, image: torch.Tensor, state: StreamState, *, key: int, score_threshold: float,
                    nms_threshold: float = 0.6, embed_min_score: float = 0.0) -> StreamOutput:
        """One new frame ``image (1, 3, H, W)`` of a stream: the same computation as :meth:`forward`
        gives for the newest frame of the strided clip ending at it (tested), decoded as the
        detection head was trained to be. ``key`` names the frame in the tubes given to
        :meth:`stream_actions` later. ReID embeddings are computed only for detections scoring at
        least ``embed_min_score`` (a tracker reads appearance only for its confident detections)."""
        c3, c4, c5 = self.backbone(image)
        state.c5.append(c5)
        c5_clip = torch.stack(state.window(state.c5), dim=1)  # (1, t, C, h, w)
        c5_now = self.temporal.forward_last(c5_clip)  # (1, C, h, w): the newest frame, seeing the past
        p3, p4, p5 = self.fpn([c3, c4, c5_now])
        found = self.detection_head.postprocess(self.detection_head([p3, p4, p5]), tuple(image.shape[-2:]),
                                                score_threshold=score_threshold, nms_threshold=nms_threshold)[0]
        boxes, scores = found["boxes"], found["scores"]
        embeddings = None
        confident = torch.nonzero(scores >= embed_min_score).squeeze(1)
        if len(confident):
            rois = torch.cat([boxes.new_zeros(len(confident), 1), boxes[confident]], dim=1)  # (K, 5)
            embedded = self.reid_head.embed(self.reid_head.feature_map(p3), rois).float()
            embeddings = embedded.new_zeros((len(boxes), embedded.shape[1]))
            embeddings[confident] = embedded
        state.frames.append([key, p3, None])
        return StreamOutput(boxes, scores, embeddings)

    @torch.no_grad()
    def stream_actions(self, state: StreamState, boxes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Action probabilities ``(N, A)`` (float32) at the newest frame for ``N`` tubes over the
        action window (:meth:`StreamState.window_keys`): ``boxes (1, T, N, 4)`` in network pixels
        and ``mask (1, T, N)``. The recurrent head computes the newest frame with the whole window
        as context."""
        window = state.window(state.frames)
        missing = [entry for entry in window if entry[2] is None]
        if missing:
            computed = self.action_head.features(torch.cat([entry[1] for entry in missing]))  # (M, C/2, h, w)
            for entry, feat in zip(missing, computed.contiguous().split(1)):  # contiguous: what RoIAlign reads
                entry[1], entry[2] = None, feat
        features = torch.cat([entry[2] for entry in window], dim=0)  # (T, C/2, h, w)
        logits = self.action_head.from_features(features, boxes, mask)  # (1, T, N, A)
        return logits.float().softmax(-1)[0, -1]

    def forward(self, frames: torch.Tensor, boxes: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> dict:
        B, T, _, H, W = check_video(frames)
        p3, p4, p5 = self.features(frames)
        out = {"detections": self.detection_head([p3, p4, p5]), "reid_map": self.reid_head.feature_map(p3), "p3": p3,
               "image_size": (H, W), "clip": (B, T)}
        if boxes is not None:
            if mask is None or boxes.shape[:2] != (B, T) or mask.shape != boxes.shape[:3]:
                raise ValueError(f"boxes must be (B={B}, T={T}, N, 4) with a (B, T, N) mask, got "
                                 f"{tuple(boxes.shape)} and {None if mask is None else tuple(mask.shape)}")
            out["action_logits"] = self.action_head(p3, boxes, mask)
            out["embeddings"] = self.embed(out["reid_map"], boxes, mask)
        for name, head in self.extra_heads.items():
            out[name] = head([p3, p4, p5], boxes, mask)
        return out


def build_model(variant: str = "tiny", num_actions: int = 6, num_classes: int = 1) -> MotActionNet:
    """A variant's network with random weights (``config/model/<variant>.yaml``)."""
    return MotActionNet.from_config(model_preset(variant, num_actions, num_classes))
