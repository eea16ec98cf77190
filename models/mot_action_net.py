"""The network: backbone -> temporal encoder (on C5) -> FPN -> detection, ReID and action heads."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from models.backbone import CSPBackbone
from models.fpn import FPN
from models.heads.action import ActionHead
from models.heads.detection import DetectionHead
from models.heads.reid import ReIDHead
from models.layers import check_video
from models.temporal import TemporalEncoder

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config" / "model"
VARIANTS = ("tiny", "lite", "full")


class MotActionNet(nn.Module):
    """One network for detection, ReID and per-track action over a clip ``(B, T, 3, H, W)``.

    ``forward(frames, boxes, mask)`` returns a dict with

    * ``detections``: the detection head's outputs for the ``B*T`` frames (see :class:`DetectionHead`);
    * ``reid_map``: ``(B*T, C, H/8, W/8)``, from which :meth:`embed` pools per-box embeddings;
    * ``p3``: the fused finest level ``(B*T, C, H/8, W/8)``;
    * when ``boxes (B, T, N, 4)`` and ``mask (B, T, N)`` are given (ground-truth tubes in training,
      tracked tubes at inference): ``action_logits (B, T, N, A)`` and ``embeddings (B, T, N, D)``
      (zero where the mask is False).
    """

    def __init__(self, *, backbone: CSPBackbone, temporal: TemporalEncoder, fpn: FPN, detection_head: DetectionHead,
                 reid_head: ReIDHead, action_head: ActionHead):
        super().__init__()
        if tuple(fpn.in_channels) != tuple(backbone.out_channels):
            raise ValueError(f"FPN in_channels {fpn.in_channels} do not match backbone out_channels {backbone.out_channels}")
        if temporal.channels != backbone.out_channels[-1]:
            raise ValueError(f"temporal encoder works on C5 ({backbone.out_channels[-1]} channels), got {temporal.channels}")
        self.backbone, self.temporal, self.fpn = backbone, temporal, fpn
        self.detection_head, self.reid_head, self.action_head = detection_head, reid_head, action_head

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
        return out


def model_config(variant: str, num_actions: int, num_classes: int = 1):
    """The hydra config of a variant (``config/model/<variant>.yaml``, which may extend another
    through its defaults list), placed under ``model`` as in the composed training config, with
    the task sizes filled in."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf
    if variant not in VARIANTS:
        raise ValueError(f"unknown model variant {variant!r}; choose one of {VARIANTS}")
    with initialize_config_dir(config_dir=str(CONFIG_DIR.parent), version_base="1.3"):
        model = compose("train", overrides=[f"model={variant}"]).model
    cfg = OmegaConf.create({"model": OmegaConf.to_container(model)})
    cfg.model.num_actions, cfg.model.num_classes = num_actions, num_classes
    return cfg


def build_model(variant: str = "tiny", num_actions: int = 6, num_classes: int = 1) -> MotActionNet:
    from hydra.utils import instantiate
    return instantiate(model_config(variant, num_actions, num_classes).model.net)
