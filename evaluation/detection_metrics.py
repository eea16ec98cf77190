"""Detection average precision: Pascal-VOC all-point AP at one IoU threshold (also the AVA
protocol's per-class AP), and COCO-style AP50 / AP50:95 computed the way pycocotools' ``COCOeval``
does (a test checks equality with pycocotools on several fixtures)."""
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
    """AP of one class over images (see :func:`precision_recall`)."""
    return precision_recall(predictions, ground_truth, iou_threshold)[2]


def precision_recall(predictions: list[dict], ground_truth: list[dict],
                     iou_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray, float]:
    """``(recall, precision, AP)`` of one class over images, the curve at each ranked detection.

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
        return np.zeros(0), np.zeros(0), float("nan")
    if not records:
        return np.zeros(0), np.zeros(0), 0.0
    records.sort(key=lambda r: -r[0])
    tp = np.cumsum([r[1] for r in records])
    fp = np.cumsum([1 - r[1] for r in records])
    recall, precision = tp / num_gt, tp / np.maximum(tp + fp, 1e-12)
    return recall, precision, average_precision(recall, precision)


# ------------------------------------------------------------------------------ COCO-style AP
COCO_IOUS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1)
COCO_RECALLS = np.linspace(0.0, 1.0, int(np.round(1.0 / 0.01)) + 1)


def _coco_iou(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """pycocotools' box IoU: against a crowd box the union is the detection's own area."""
    if len(dt) == 0 or len(gt) == 0:
        return np.zeros((len(dt), len(gt)))
    lt = np.maximum(dt[:, None, :2], gt[None, :, :2])
    rb = np.minimum(dt[:, None, 2:], gt[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_d = np.prod(dt[:, 2:] - dt[:, :2], axis=1)[:, None]
    area_g = np.prod(gt[:, 2:] - gt[:, :2], axis=1)[None, :]
    union = np.where(crowd[None, :], area_d, area_d + area_g - inter)
    return inter / np.maximum(union, np.finfo(float).tiny)


def coco_ap(predictions: list[dict], ground_truth: list[dict], max_detections: int = 100) -> dict[str, float]:
    """COCO AP (mean over IoU 0.50:0.95 and classes), AP50 and AP75, area range "all".

    ``predictions[i]``: ``boxes (D, 4)`` xyxy, ``scores (D,)``, ``labels (D,)``;
    ``ground_truth[i]``: ``boxes (G, 4)``, ``labels (G,)``, optional ``crowd (G,)`` bool — a crowd
    (ignore) box absorbs any number of detections that overlap it, as COCO's ``iscrowd``.
    Classes without ground truth are left out of the mean, as pycocotools does. Also returns
    ``per_class`` ``{label: AP50}``.
    """
    if len(predictions) != len(ground_truth):
        raise ValueError(f"coco_ap: {len(predictions)} prediction entries for {len(ground_truth)} images")
    labels = sorted({int(x) for g in ground_truth for x in np.asarray(g["labels"]).reshape(-1)}
                    | {int(x) for p in predictions for x in np.asarray(p["labels"]).reshape(-1)})
    T, R = len(COCO_IOUS), len(COCO_RECALLS)
    precision = -np.ones((T, R, len(labels)))
    for k, label in enumerate(labels):
        scores, matched, ignored, num_gt = [], [], [], 0
        for pred, gt in zip(predictions, ground_truth):
            g_lab = np.asarray(gt["labels"]).reshape(-1)
            g_sel = g_lab == label
            g_boxes = np.asarray(gt["boxes"], np.float64).reshape(-1, 4)[g_sel]
            g_crowd = np.asarray(gt.get("crowd", np.zeros(len(g_lab), bool)), bool).reshape(-1)[g_sel]
            order_g = np.argsort(g_crowd, kind="mergesort")  # real boxes first
            g_boxes, g_crowd = g_boxes[order_g], g_crowd[order_g]
            p_sel = np.asarray(pred["labels"]).reshape(-1) == label
            p_scores = np.asarray(pred["scores"], np.float64).reshape(-1)[p_sel]
            p_boxes = np.asarray(pred["boxes"], np.float64).reshape(-1, 4)[p_sel]
            order_d = np.argsort(-p_scores, kind="mergesort")[:max_detections]
            p_scores, p_boxes = p_scores[order_d], p_boxes[order_d]
            num_gt += int((~g_crowd).sum())
            iou = _coco_iou(p_boxes, g_boxes, g_crowd)
            dt_match = np.zeros((T, len(p_boxes)), bool)
            dt_ignore = np.zeros((T, len(p_boxes)), bool)
            for t, thr in enumerate(COCO_IOUS):
                gt_taken = np.zeros(len(g_boxes), bool)
                for d in range(len(p_boxes)):
                    best, m = min(thr, 1 - 1e-10), -1
                    for j in range(len(g_boxes)):
                        if gt_taken[j] and not g_crowd[j]:
                            continue
                        if m > -1 and not g_crowd[m] and g_crowd[j]:
                            break  # real boxes come first: a real match beats any crowd box
                        if iou[d, j] < best:
                            continue
                        best, m = iou[d, j], j
                    if m == -1:
                        continue
                    dt_ignore[t, d] = g_crowd[m]
                    dt_match[t, d] = True
                    gt_taken[m] = True
            scores.append(p_scores)
            matched.append(dt_match)
            ignored.append(dt_ignore)
        if num_gt == 0:
            continue
        all_scores = np.concatenate(scores)
        order = np.argsort(-all_scores, kind="mergesort")
        dtm = np.concatenate(matched, axis=1)[:, order]
        dti = np.concatenate(ignored, axis=1)[:, order]
        tps = np.cumsum(dtm & ~dti, axis=1).astype(float)
        fps = np.cumsum(~dtm & ~dti, axis=1).astype(float)
        for t in range(T):
            rc = tps[t] / num_gt
            pr = tps[t] / (fps[t] + tps[t] + np.spacing(1))
            pr = np.maximum.accumulate(pr[::-1])[::-1] if len(pr) else pr
            q = np.zeros(R)
            idx = np.searchsorted(rc, COCO_RECALLS, side="left")
            valid = idx < len(pr)
            q[valid] = pr[idx[valid]]
            precision[t, :, k] = q

    def mean(p):
        p = p[p > -1]
        return float(p.mean()) if p.size else float("nan")

    return {"AP": mean(precision), "AP50": mean(precision[0]), "AP75": mean(precision[5]),
            "per_class": {label: mean(precision[0, :, k]) for k, label in enumerate(labels)}}
