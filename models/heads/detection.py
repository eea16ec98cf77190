"""Anchor-free detection head (FCOS): per location class logits, ltrb distances and centerness."""
from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.ops import batched_nms


class Scale(nn.Module):
    def __init__(self, value: float = 1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(value))

    def forward(self, x):
        return x * self.scale


def _tower(channels: int, depth: int) -> nn.Sequential:
    layers = []
    for _ in range(depth):
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(min(16, channels // 4), channels), nn.SiLU(inplace=True)]
    return nn.Sequential(*layers)


def level_points(shapes: list[tuple[int, int]], strides: tuple[int, ...], device) -> list[torch.Tensor]:
    """Centres ``(h*w, 2)`` (x, y pixels) of every location of each level, row-major."""
    points = []
    for (h, w), s in zip(shapes, strides):
        ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
        points.append(torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1).float() * s + s / 2)
    return points


class DetectionHead(nn.Module):
    """Shared over P3-P5. Outputs, flattened over levels and locations (L = sum of h*w):

    ``cls_logits (N, L, K)``, ``box_ltrb (N, L, 4)`` distances in pixels (>= 0), ``centerness (N, L)``
    logits, ``scores (N, L, K)`` detection confidences in [0, 1], and ``points (L, 2)`` /
    ``strides (L,)`` of each location.

    ``score`` says how confidences are formed: ``"cls_quality"`` is the geometric mean of the class
    probability and the quality branch (FCOS, GFL-style separate quality), ``"cls"`` is the class
    probability alone, for a classifier trained with IoU-aware targets (``DetectionLoss(quality="joint")``,
    VarifocalNet): there the class score already ranks by localisation, and the quality branch, only
    trained on positives, would add noise elsewhere.
    """

    SCORES = ("cls_quality", "cls")

    def __init__(self, in_channels: int, num_classes: int = 1, tower_depth: int = 2, strides=(8, 16, 32),
                 prior_prob: float = 0.01, score: str = "cls_quality"):
        super().__init__()
        if score not in self.SCORES:
            raise ValueError(f"detection head: score must be one of {self.SCORES}, got {score!r}")
        self.num_classes, self.strides, self.score = num_classes, tuple(strides), score
        self.cls_tower = _tower(in_channels, tower_depth)
        self.reg_tower = _tower(in_channels, tower_depth)
        self.cls_logits = nn.Conv2d(in_channels, num_classes, 3, padding=1)
        self.box_ltrb = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.centerness = nn.Conv2d(in_channels, 1, 3, padding=1)
        self.scales = nn.ModuleList(Scale(1.0) for _ in strides)
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - prior_prob) / prior_prob))

    def forward(self, features: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        if len(features) != len(self.strides):
            raise ValueError(f"detection head expects {len(self.strides)} levels, got {len(features)}")
        cls, box, ctr = [], [], []
        for f, s, scale in zip(features, self.strides, self.scales):
            c, r = self.cls_tower(f), self.reg_tower(f)
            N = f.shape[0]
            cls.append(self.cls_logits(c).flatten(2).transpose(1, 2))  # (N, h*w, K)
            # Distances in units of the stride, softplus keeps them positive and smooth.
            box.append(nn.functional.softplus(scale(self.box_ltrb(r))).flatten(2).transpose(1, 2) * s)  # (N, h*w, 4)
            ctr.append(self.centerness(r).reshape(N, -1))  # (N, h*w)
        shapes = [tuple(f.shape[-2:]) for f in features]
        points = level_points(shapes, self.strides, features[0].device)
        strides = torch.cat([torch.full((len(p),), s, device=p.device, dtype=torch.float32) for p, s in zip(points, self.strides)])
        cls_logits, ctr_logits = torch.cat(cls, 1), torch.cat(ctr, 1)
        scores = cls_logits.sigmoid()
        if self.score == "cls_quality":
            scores = (scores * ctr_logits.sigmoid()[..., None]).sqrt()
        return {"cls_logits": cls_logits, "box_ltrb": torch.cat(box, 1), "centerness": ctr_logits, "scores": scores,
                "points": torch.cat(points, 0), "strides": strides}


def decode_boxes(points: torch.Tensor, ltrb: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` ltrb distances at ``(..., 2)`` points -> xyxy boxes."""
    return torch.cat([points - ltrb[..., :2], points + ltrb[..., 2:]], dim=-1)


@torch.no_grad()
def postprocess_detections(out: dict, image_size: tuple[int, int], score_threshold: float = 0.05,
                           nms_threshold: float = 0.6, pre_nms_top_k: int = 1000, max_detections: int = 100) -> list[dict]:
    """Per image: ``boxes (D, 4)`` xyxy clipped to ``image_size`` (H, W), ``scores (D,)``,
    ``labels (D,)``, and ``locations (D,)`` (index into the flattened locations, for ReID lookup)."""
    H, W = image_size
    scores_all = out["scores"]  # (N, L, K)
    results = []
    for n in range(scores_all.shape[0]):
        scores = scores_all[n].flatten()  # (L*K,)
        keep = scores > score_threshold
        idx = torch.nonzero(keep).squeeze(1)
        if len(idx) > pre_nms_top_k:
            idx = idx[scores[idx].topk(pre_nms_top_k).indices]
        loc, label = idx // scores_all.shape[2], idx % scores_all.shape[2]
        boxes = decode_boxes(out["points"][loc], out["box_ltrb"][n, loc])
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, W)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, H)
        s = scores[idx]
        kept = batched_nms(boxes, s, label, nms_threshold)[:max_detections]
        results.append({"boxes": boxes[kept], "scores": s[kept], "labels": label[kept], "locations": loc[kept]})
    return results
