"""Anchor-free detection head (FCOS): per location class logits, ltrb distances and centerness."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torchvision.ops import batched_nms

from common.boxes import iou_one_to_many
from models.layers import ConvBNAct, SeparableConvBNAct


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


def _separable_towers(channels: int, depth: int, levels: int, kernel: int) -> nn.ModuleList:
    """One tower per level: BatchNorm statistics differ between levels, and a BatchNorm shared
    across them would normalise each level with the others' running statistics at inference."""
    return nn.ModuleList(nn.Sequential(*(SeparableConvBNAct(channels, channels, kernel) for _ in range(depth)))
                         for _ in range(levels))


def _dense_bn_towers(channels: int, depth: int, levels: int) -> nn.ModuleList:
    """FCOS's dense 3x3 towers with BatchNorm instead of GroupNorm, one per level (as above): the
    same capacity, and at inference the BatchNorm folds into the convolutions, where GroupNorm costs
    a pass over every map."""
    return nn.ModuleList(nn.Sequential(*(ConvBNAct(channels, channels, 3) for _ in range(depth))) for _ in range(levels))


def level_points(shapes: list[tuple[int, int]], strides: tuple[int, ...], device) -> list[torch.Tensor]:
    """Centres ``(h*w, 2)`` (x, y pixels) of every location of each level, row-major."""
    points = []
    for (h, w), s in zip(shapes, strides):
        ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
        points.append(torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1).float() * s + s / 2)
    return points


class DetectionHead(nn.Module):
    """Over P3-P5 (prediction convs shared by the levels). Outputs, flattened over levels and locations (L = sum of h*w):

    ``cls_logits (N, L, K)``, ``box_ltrb (N, L, 4)`` distances in pixels (>= 0), ``centerness (N, L)``
    logits, ``scores (N, L, K)`` detection confidences in [0, 1], and ``points (L, 2)`` /
    ``strides (L,)`` of each location.

    ``score`` says how confidences are formed: ``"cls_quality"`` is the geometric mean of the class
    probability and the quality branch (FCOS, GFL-style separate quality), ``"cls"`` is the class
    probability alone, for a classifier trained with IoU-aware targets (``DetectionLoss(quality="joint")``,
    VarifocalNet): there the class score already ranks by localisation, and the quality branch, only
    trained on positives, would add noise elsewhere.

    ``nms`` and ``soft_sigma`` say how :meth:`postprocess` suppresses duplicates for this head:
    ``"hard"`` (torchvision's batched NMS) or ``"soft"`` (Gaussian Soft-NMS); see
    :func:`postprocess_detections`.

    ``tower`` says what the classification and regression towers are made of: ``"gn"`` (FCOS:
    dense 3x3 convs with GroupNorm, shared by the levels), ``"bn"`` (the same dense convs with
    BatchNorm, one tower per level, folded into the convs at inference) or ``"separable"`` (depthwise-separable
    convs with BatchNorm, one tower per level, as YOLOv8/11 do; BatchNorm folds into the convs at
    inference, and the towers cost about a third of the GroupNorm ones per frame). ``tower_kernel``
    is the depthwise kernel of the separable towers (5 widens the receptive field for about the
    cost of 3 on CPU, as NanoDet and PP-PicoDet do).
    """

    SCORES = ("cls_quality", "cls")
    NMS = ("hard", "soft")
    TOWERS = ("gn", "bn", "separable")

    def __init__(self, in_channels: int, num_classes: int = 1, tower_depth: int = 2, strides=(8, 16, 32),
                 prior_prob: float = 0.01, score: str = "cls_quality", nms: str = "hard", soft_sigma: float = 0.5,
                 tower: str = "gn", tower_kernel: int = 3):
        super().__init__()
        if score not in self.SCORES:
            raise ValueError(f"detection head: score must be one of {self.SCORES}, got {score!r}")
        if nms not in self.NMS or soft_sigma <= 0:
            raise ValueError(f"detection head: nms must be one of {self.NMS} and soft_sigma > 0, got {nms!r}, {soft_sigma}")
        if tower not in self.TOWERS:
            raise ValueError(f"detection head: tower must be one of {self.TOWERS}, got {tower!r}")
        self.num_classes, self.strides, self.score = num_classes, tuple(strides), score
        self.nms, self.soft_sigma, self.tower = nms, soft_sigma, tower
        if tower == "gn":
            self.cls_tower = _tower(in_channels, tower_depth)
            self.reg_tower = _tower(in_channels, tower_depth)
        elif tower == "bn":
            self.cls_towers = _dense_bn_towers(in_channels, tower_depth, len(self.strides))
            self.reg_towers = _dense_bn_towers(in_channels, tower_depth, len(self.strides))
        else:
            self.cls_towers = _separable_towers(in_channels, tower_depth, len(self.strides), tower_kernel)
            self.reg_towers = _separable_towers(in_channels, tower_depth, len(self.strides), tower_kernel)
        self.cls_logits = nn.Conv2d(in_channels, num_classes, 3, padding=1)
        self.box_ltrb = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.centerness = nn.Conv2d(in_channels, 1, 3, padding=1)
        self.scales = nn.ModuleList(Scale(1.0) for _ in strides)
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - prior_prob) / prior_prob))

    def confidence(self, cls_logits: torch.Tensor, ctr_logits: torch.Tensor) -> torch.Tensor:
        """``scores (N, L, K)`` from ``cls_logits (N, L, K)`` and ``centerness (N, L)`` logits, as
        ``score`` says (see the class docstring)."""
        scores = cls_logits.sigmoid()
        if self.score == "cls_quality":
            scores = (scores * ctr_logits.sigmoid()[..., None]).sqrt()
        return scores

    @torch.no_grad()
    def postprocess(self, outputs: dict, image_size: tuple[int, int], score_threshold: float = 0.05,
                    nms_threshold: float = 0.6, pre_nms_top_k: int = 1000, max_detections: int = 100) -> list[dict]:
        """:func:`postprocess_detections` with the suppression this head was trained for. Outputs
        computed in a lower precision (bfloat16 autocast) are decoded in float32, with the scores
        recomputed from float32 logits: bfloat16 scores come in steps of 0.002-0.004 and tie."""
        if outputs["cls_logits"].dtype != torch.float32:
            outputs = {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in outputs.items()}
            outputs["scores"] = self.confidence(outputs["cls_logits"], outputs["centerness"])
        return postprocess_detections(outputs, image_size, score_threshold=score_threshold, nms_threshold=nms_threshold,
                                      pre_nms_top_k=pre_nms_top_k, max_detections=max_detections, nms=self.nms,
                                      soft_sigma=self.soft_sigma)

    def forward(self, features: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        if len(features) != len(self.strides):
            raise ValueError(f"detection head expects {len(self.strides)} levels, got {len(features)}")
        cls, box, ctr = [], [], []
        for level, (f, s, scale) in enumerate(zip(features, self.strides, self.scales)):
            if self.tower == "gn":
                c, r = self.cls_tower(f), self.reg_tower(f)
            else:
                c, r = self.cls_towers[level](f), self.reg_towers[level](f)
            N = f.shape[0]
            cls.append(self.cls_logits(c).flatten(2).transpose(1, 2))  # (N, h*w, K)
            # Distances in units of the stride, softplus keeps them positive and smooth.
            box.append(nn.functional.softplus(scale(self.box_ltrb(r))).flatten(2).transpose(1, 2) * s)  # (N, h*w, 4)
            ctr.append(self.centerness(r).reshape(N, -1))  # (N, h*w)
        shapes = [tuple(f.shape[-2:]) for f in features]
        points = level_points(shapes, self.strides, features[0].device)
        strides = torch.cat([torch.full((len(p),), s, device=p.device, dtype=torch.float32) for p, s in zip(points, self.strides)])
        cls_logits, ctr_logits = torch.cat(cls, 1), torch.cat(ctr, 1)
        scores = self.confidence(cls_logits, ctr_logits)
        return {"cls_logits": cls_logits, "box_ltrb": torch.cat(box, 1), "centerness": ctr_logits, "scores": scores,
                "points": torch.cat(points, 0), "strides": strides}


def decode_boxes(points: torch.Tensor, ltrb: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` ltrb distances at ``(..., 2)`` points -> xyxy boxes."""
    return torch.cat([points - ltrb[..., :2], points + ltrb[..., 2:]], dim=-1)


@torch.no_grad()
def soft_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, sigma: float = 0.5,
             score_threshold: float = 0.05, max_detections: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian Soft-NMS (Bodla et al., 2017), per class: the best box is kept and every other box
    of its class has its score multiplied by ``exp(-IoU^2 / sigma)``; repeat while scores stay
    above ``score_threshold``. Returns ``(kept indices, their decayed scores)`` in keeping order.
    Duplicates of a person lose rank instead of vanishing, so two people standing close are both
    kept while the loose second box around one of them drops below the real detections.

    The loop is sequential by nature and runs at most ``max_detections`` steps, so it runs in
    numpy: per iteration, a dozen torch dispatches cost more than the arithmetic (28 ms a frame
    with a hundred candidates, against about 1 ms here; about 4 ms with a thousand)."""
    if len(scores) == 0:
        return torch.zeros(0, dtype=torch.long, device=scores.device), scores.new_zeros(0)
    b = boxes.detach().cpu().double().numpy()
    # Offsetting each class far apart makes one IoU computation class-aware (as batched_nms does).
    b = b + (labels.detach().cpu().double().numpy() * (b.max() + 1))[:, None]
    s = scores.detach().cpu().double().numpy()
    # The live candidates, in their original order (so ties break as argmax over all would); they
    # shrink as boxes are kept or decay below the threshold: on real footage a frame has about a
    # thousand candidates, and every step touches only the live ones.
    index = np.flatnonzero(s > score_threshold)
    candidates, live = b[index], s[index]
    areas = (candidates[:, 2] - candidates[:, 0]) * (candidates[:, 3] - candidates[:, 1])
    kept, kept_scores = [], []
    while len(kept) < max_detections and len(index):
        best = int(np.argmax(live))
        kept.append(int(index[best]))
        kept_scores.append(live[best])
        live = live * np.exp(-iou_one_to_many(candidates[best], candidates, areas) ** 2 / sigma)
        stay = live > score_threshold
        stay[best] = False
        index, live, candidates, areas = index[stay], live[stay], candidates[stay], areas[stay]
    return (torch.tensor(kept, dtype=torch.long, device=boxes.device),
            torch.tensor(kept_scores, dtype=scores.dtype, device=scores.device))


@torch.no_grad()
def postprocess_detections(out: dict, image_size: tuple[int, int], score_threshold: float = 0.05,
                           nms_threshold: float = 0.6, pre_nms_top_k: int = 1000, max_detections: int = 100,
                           nms: str = "hard", soft_sigma: float = 0.5) -> list[dict]:
    """Per image: ``boxes (D, 4)`` xyxy clipped to ``image_size`` (H, W), ``scores (D,)``,
    ``labels (D,)``, and ``locations (D,)`` (index into the flattened locations, for ReID lookup),
    highest score first.

    ``nms="hard"`` removes boxes overlapping a better one by IoU > ``nms_threshold``;
    ``nms="soft"`` decays their scores instead (:func:`soft_nms`, ``soft_sigma``). A trained
    head's own choice is applied by :meth:`DetectionHead.postprocess`.
    """
    if nms not in DetectionHead.NMS:
        raise ValueError(f"nms must be one of {DetectionHead.NMS}, got {nms!r}")
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
        if nms == "soft":
            kept, s_kept = soft_nms(boxes, s, label, soft_sigma, score_threshold, max_detections)
        else:
            kept = batched_nms(boxes, s, label, nms_threshold)[:max_detections]
            s_kept = s[kept]
        results.append({"boxes": boxes[kept], "scores": s_kept, "labels": label[kept], "locations": loc[kept]})
    return results
