"""FCOS detection loss with centre-sampling label assignment: positives come from where the
object is (locations near the box centre, on the pyramid level matching its size)."""
from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import box_iou, generalized_box_iou_loss, sigmoid_focal_loss

from losses.task import TaskTerms
from models.heads.detection import decode_boxes

INF = 1e8


@torch.no_grad()
def assign_fcos_targets(points: torch.Tensor, strides: torch.Tensor, boxes: torch.Tensor, valid: torch.Tensor,
                        size_ranges: tuple[tuple[float, float], ...], level_strides: tuple[int, ...],
                        center_radius: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Assign each location to at most one ground-truth box.

    ``points (L, 2)``, ``strides (L,)``; ``boxes (I, M, 4)`` xyxy with ``valid (I, M)``. A location
    is a candidate for a box when it lies within ``center_radius`` strides of the box centre (and
    inside the box) and the box's largest ltrb distance fits the location's level range; ties go to
    the smallest box. A valid box that wins no location (thinner than a stride, say) gets the
    finest-level location nearest its centre, so every object is learned.

    Returns ``matched (I, L)`` (index of the box, -1 for background) and ``ltrb (I, L, 4)``.
    """
    I, M, _ = boxes.shape
    L = points.shape[0]
    if M == 0:
        return points.new_full((I, L), -1, dtype=torch.long), points.new_zeros((I, L, 4))
    lo = torch.empty(L, device=points.device)
    hi = torch.empty(L, device=points.device)
    for (r_lo, r_hi), s in zip(size_ranges, level_strides):
        lo[strides == s], hi[strides == s] = r_lo, r_hi
    x, y = points[None, :, None, 0], points[None, :, None, 1]  # (1, L, 1)
    x1, y1, x2, y2 = (boxes[:, None, :, k] for k in range(4))  # (I, 1, M)
    ltrb = torch.stack([x - x1, y - y1, x2 - x, y2 - y], dim=-1)  # (I, L, M, 4)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    radius = strides[None, :, None] * center_radius
    in_center = ((x - cx).abs() < radius) & ((y - cy).abs() < radius)
    in_box = ltrb.min(dim=-1).values > 0
    max_reg = ltrb.max(dim=-1).values
    in_range = (max_reg >= lo[None, :, None]) & (max_reg <= hi[None, :, None])
    candidate = in_center & in_box & in_range & valid[:, None, :]
    area = ((x2 - x1) * (y2 - y1)).expand(I, L, M).masked_fill(~candidate, INF)
    best_area, matched = area.min(dim=2)  # (I, L)
    matched[best_area >= INF] = -1
    # Fallback: the nearest finest-level location for boxes that won nothing.
    finest = torch.nonzero(strides == level_strides[0]).squeeze(1)
    dist = (points[finest, None, None, 0] - cx[:, 0][None]) ** 2 + (points[finest, None, None, 1] - cy[:, 0][None]) ** 2  # (Lf, I, M)
    nearest = finest[dist.argmin(dim=0)]  # (I, M)
    won = torch.zeros((I, M), dtype=torch.bool, device=points.device)
    hit = matched >= 0
    won[torch.nonzero(hit)[:, 0], matched[hit]] = True
    for i, m in torch.nonzero(valid & ~won).tolist():
        loc = nearest[i, m]
        if matched[i, loc] < 0:
            matched[i, loc] = m
    ltrb_matched = ltrb.gather(2, matched.clamp(min=0)[..., None, None].expand(I, L, 1, 4)).squeeze(2)  # (I, L, 4)
    return matched, ltrb_matched


def centerness_target(ltrb: torch.Tensor) -> torch.Tensor:
    ltrb = ltrb.clamp(min=1e-2)
    lr, tb = ltrb[..., [0, 2]], ltrb[..., [1, 3]]
    return torch.sqrt((lr.min(-1).values / lr.max(-1).values) * (tb.min(-1).values / tb.max(-1).values))


def varifocal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.75, gamma: float = 2.0,
                   keep: torch.Tensor | None = None) -> torch.Tensor:
    """Summed varifocal loss (Zhang et al., VarifocalNet, 2021). ``target`` in [0, 1]: the IoU of
    the predicted box at positives, 0 at negatives. Positives are weighted by their target (good
    boxes matter more), negatives by ``alpha * p**gamma`` (easy background fades out). ``keep``
    (same shape, bool) leaves the other elements out."""
    p = logits.sigmoid()
    weight = torch.where(target > 0, target, alpha * p.detach().pow(gamma))
    if keep is not None:
        weight = weight * keep
    return (nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight).sum()


def inside_any(points: torch.Tensor, boxes: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``(I, L)`` whether each of the ``(L, 2)`` points lies inside any valid box of ``boxes (I, K, 4)``."""
    if boxes.shape[1] == 0:
        return torch.zeros((boxes.shape[0], points.shape[0]), dtype=torch.bool, device=points.device)
    x, y = points[None, :, None, 0], points[None, :, None, 1]  # (1, L, 1)
    x1, y1, x2, y2 = (boxes[:, None, :, k] for k in range(4))  # (I, 1, K)
    return ((x >= x1) & (x <= x2) & (y >= y1) & (y <= y2) & valid[:, None, :]).any(dim=2)


class DetectionLoss(nn.Module):
    """Sigmoid focal loss (classification) + GIoU (boxes, weighted by centerness) + BCE on the
    quality branch.

    ``quality="iou"`` trains the third branch to predict the IoU of the predicted box with its
    object (as GFL and VarifocalNet do) rather than FCOS's geometric centerness: the detection
    score multiplies it in, so well-localised boxes outrank sloppy ones, which matters for thin
    people where a few pixels decide IoU 0.5.

    ``quality="joint"`` goes one step further (VarifocalNet's IoU-aware classification score): the
    class target at a positive is the IoU of its predicted box instead of 1, with the varifocal loss
    (positives weighted by that IoU, negatives down-weighted by ``alpha * p**gamma``), so the
    classifier itself ranks well-localised boxes first; the detection head must then score by the
    class probability alone (``DetectionHead(score="cls")``). The quality branch still learns the IoU.
    """

    QUALITIES = ("iou", "centerness", "joint")

    def __init__(self, size_ranges=((0, 64), (64, 128), (128, INF)), level_strides=(8, 16, 32), center_radius: float = 1.5,
                 focal_alpha: float = 0.25, focal_gamma: float = 2.0, box_weight: float = 1.0, quality: str = "iou",
                 varifocal_alpha: float = 0.75):
        super().__init__()
        if quality not in self.QUALITIES:
            raise ValueError(f"quality must be one of {self.QUALITIES}, got {quality!r}")
        self.varifocal_alpha = varifocal_alpha
        self.size_ranges, self.level_strides = tuple(tuple(r) for r in size_ranges), tuple(level_strides)
        self.center_radius, self.alpha, self.gamma = center_radius, focal_alpha, focal_gamma
        self.box_weight, self.quality = box_weight, quality

    def forward(self, det: dict, boxes: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor,
                annotated: torch.Tensor | None = None, ignore_boxes: torch.Tensor | None = None,
                ignore_valid: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``det`` from the detection head over I images; ``boxes (I, M, 4)``, ``labels (I, M)``,
        ``valid (I, M)``; ``annotated (I,)`` leaves unlabelled frames out of the loss;
        ``ignore_boxes (I, K, 4)`` with ``ignore_valid (I, K)``: regions whose locations are neither
        positives nor background (zero-marked people of MOT ground truth, crowds)."""
        cls_logits, box_ltrb, ctr_logits = det["cls_logits"], det["box_ltrb"], det["centerness"]
        I, L, K = cls_logits.shape
        if boxes.shape[:2] != labels.shape or boxes.shape[0] != I:
            raise ValueError(f"detection loss: {I} images, boxes {tuple(boxes.shape)}, labels {tuple(labels.shape)}")
        matched, ltrb = assign_fcos_targets(det["points"], det["strides"], boxes, valid, self.size_ranges,
                                            self.level_strides, self.center_radius)
        image_mask = torch.ones(I, dtype=torch.bool, device=boxes.device) if annotated is None else annotated.bool()
        pos = (matched >= 0) & image_mask[:, None]  # (I, L)
        num_pos = pos.sum().clamp(min=1).float()
        target = torch.zeros_like(cls_logits)
        pos_idx = torch.nonzero(pos)
        pos_labels = labels[pos_idx[:, 0], matched[pos]].clamp(min=0)
        iou_t = None
        if pos.any():
            ctr_t = centerness_target(ltrb[pos])
            points = det["points"][None].expand(I, L, 2)[pos]
            pred_boxes = decode_boxes(points, box_ltrb[pos])
            gt_boxes = boxes[pos_idx[:, 0], matched[pos]]
            weight = ctr_t.clamp(min=0.05)
            box_loss = self.box_weight * (generalized_box_iou_loss(pred_boxes, gt_boxes, reduction="none") * weight).sum() / weight.sum()
            iou_t = box_iou(pred_boxes.detach(), gt_boxes).diagonal().clamp(min=0.0)
            quality_t = ctr_t if self.quality == "centerness" else iou_t
            ctr_loss = nn.functional.binary_cross_entropy_with_logits(ctr_logits[pos], quality_t, reduction="sum") / num_pos
        else:
            box_loss = ctr_loss = box_ltrb.sum() * 0.0
        keep = image_mask[:, None].expand(I, L)  # (I, L): locations in the classification loss
        if ignore_boxes is not None and ignore_boxes.shape[1]:
            keep = keep & (pos | ~inside_any(det["points"], ignore_boxes, ignore_valid))
        keep = keep[..., None].expand(I, L, K)
        if self.quality == "joint":
            if iou_t is not None:
                target[pos_idx[:, 0], pos_idx[:, 1], pos_labels] = iou_t
            cls_loss = varifocal_loss(cls_logits, target, self.varifocal_alpha, self.gamma, keep) / num_pos
        else:
            target[pos_idx[:, 0], pos_idx[:, 1], pos_labels] = 1.0
            cls_loss = (sigmoid_focal_loss(cls_logits, target, self.alpha, self.gamma, "none") * keep).sum() / num_pos
        return {"det_cls": cls_loss, "det_box": box_loss, "det_ctr": ctr_loss, "num_pos": num_pos.detach()}

    def task_terms(self, outputs: dict, batch: dict) -> TaskTerms:
        """The multi-task loss's call: the clip's frames as ``B*T`` images."""
        B, T = outputs["clip"]
        boxes, mask = batch["boxes"], batch["mask"]  # (B, T, N, 4), (B, T, N)
        N = boxes.shape[2]
        ignore = batch.get("ignore_boxes")
        K = 0 if ignore is None else ignore.shape[2]
        terms = self(outputs["detections"], boxes.reshape(B * T, N, 4),  # (B*T, N, 4)
                     batch["labels"].clamp(min=0).reshape(B * T, N), mask.reshape(B * T, N),  # (B*T, N)
                     batch["annotated"].reshape(B * T),  # (B*T,)
                     None if not K else ignore.reshape(B * T, K, 4),  # (B, T, K, 4) -> (B*T, K, 4)
                     None if not K else batch["ignore_mask"].reshape(B * T, K))  # (B*T, K)
        num_pos = terms.pop("num_pos")
        return TaskTerms(terms, bool(batch["annotated"].any()), {"num_pos": num_pos})
