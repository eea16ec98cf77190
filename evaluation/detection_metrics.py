"""Detection average precision at one IoU threshold (Pascal-VOC all-point interpolation)."""
from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import box_iou


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope (VOC 2010+ all-point interpolation)."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def detection_ap(predictions: list[dict], ground_truth: list[dict], iou_threshold: float = 0.5) -> float:
    """AP of one class over images.

    ``predictions[i]``: ``boxes (D, 4)``, ``scores (D,)``; ``ground_truth[i]``: ``boxes (G, 4)`` and
    optional ``ignore (G,)`` bool. A detection matched to an ignored box is neither a true nor a
    false positive; ignored boxes do not count as positives. Greedy matching by descending score.
    """
    records, num_gt = [], 0
    for pred, gt in zip(predictions, ground_truth):
        gt_boxes = torch.as_tensor(gt["boxes"], dtype=torch.float32).reshape(-1, 4)
        ignore = torch.as_tensor(gt.get("ignore", np.zeros(len(gt_boxes), bool)), dtype=torch.bool).reshape(-1)
        num_gt += int((~ignore).sum())
        boxes = torch.as_tensor(pred["boxes"], dtype=torch.float32).reshape(-1, 4)
        scores = torch.as_tensor(pred["scores"], dtype=torch.float32).reshape(-1)
        order = scores.argsort(descending=True)
        boxes, scores = boxes[order], scores[order]
        iou = box_iou(boxes, gt_boxes) if len(gt_boxes) and len(boxes) else torch.zeros((len(boxes), len(gt_boxes)))
        taken = torch.zeros(len(gt_boxes), dtype=torch.bool)
        for d in range(len(boxes)):
            candidates = iou[d].clone()
            candidates[taken & ~ignore] = -1  # a real box matches once; ignored boxes absorb any number
            # Prefer a real box over an ignored one when both overlap enough.
            real = candidates.masked_fill(ignore, -1)
            if len(real) and real.max() >= iou_threshold:
                g = int(real.argmax())
                taken[g] = True
                records.append((float(scores[d]), 1))
            elif len(candidates) and candidates.masked_fill(~ignore, -1).max() >= iou_threshold:
                continue
            else:
                records.append((float(scores[d]), 0))
    if num_gt == 0:
        return float("nan")
    if not records:
        return 0.0
    records.sort(key=lambda r: -r[0])
    tp = np.cumsum([r[1] for r in records])
    fp = np.cumsum([1 - r[1] for r in records])
    return average_precision(tp / num_gt, tp / np.maximum(tp + fp, 1e-12))
