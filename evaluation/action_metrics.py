"""Action metrics: frame-mAP at IoU 0.5 (the AVA / Pascal-VOC protocol) and the identity-aware
action score, which only credits an action when the track that carries it is the one matched to
that person (IDF1's identity assignment)."""
from __future__ import annotations

from collections import Counter
import numpy as np

from evaluation.detection_metrics import average_precision, precision_recall
from evaluation.mot_metrics import MATCH_IOU, SequenceFrames


def frame_map(gt_boxes: list[np.ndarray], gt_labels: list[np.ndarray], pred_boxes: list[np.ndarray],
              pred_scores: list[np.ndarray], num_classes: int, iou_threshold: float = MATCH_IOU) -> dict:
    """Frame-mAP: per class, every predicted box is a detection of that class scored by its class
    score; ground truth are the boxes labelled with the class; VOC all-point AP with greedy matching
    at ``iou_threshold``; the mean is over classes that have ground truth.

    Returns ``{"mAP", "per_class": {c: AP}, "curves": {c: (recall, precision)}}``.
    """
    per_class, curves = {}, {}
    for c in range(num_classes):
        gts = [{"boxes": b[np.asarray(lab) == c]} for b, lab in zip(gt_boxes, gt_labels)]
        if sum(len(g["boxes"]) for g in gts) == 0:
            continue
        preds = [{"boxes": b, "scores": s[:, c] if len(s) else np.zeros(0)} for b, s in zip(pred_boxes, pred_scores)]
        recall, precision, ap = precision_recall(preds, gts, iou_threshold)
        per_class[c], curves[c] = ap, (recall, precision)
    return {"mAP": float(np.mean(list(per_class.values()))) if per_class else float("nan"),
            "per_class": per_class, "curves": curves}


def identity_action_score(seq: SequenceFrames, gt_labels: list[np.ndarray], tracker_scores: list[np.ndarray],
                          assignment: dict[int, int], fps: float, num_classes: int) -> dict:
    """Per ground-truth identity and second (frames ``[s * fps, (s + 1) * fps)``), the true action is
    the most frequent label of the identity's labelled boxes in that second. The prediction is the
    mean action score of the track assigned to the identity (``assignment``, IDF1's), over the
    frames of that second where it overlaps the identity's box with IoU >= 0.5; with no such frame
    the identity-second has no prediction and counts as wrong. So a track with the right action on
    the wrong person scores nothing.

    Returns ``{"accuracy", "mAP", "per_class", "num_items"}``; the mAP ranks identity-seconds by the
    class score (VOC all-point AP; items without a prediction are never retrieved).
    """
    truth: dict[tuple[int, int], Counter] = {}
    evidence: dict[tuple[int, int], list[np.ndarray]] = {}
    for k in range(seq.num_frames):
        second = int(k / fps)
        g_ids, t_ids, sim = seq.gt_ids[k], seq.tracker_ids[k], seq.similarity[k]
        labels = gt_labels[k]
        for gi, gid in enumerate(g_ids.tolist()):
            if labels[gi] < 0:
                continue
            truth.setdefault((gid, second), Counter())[int(labels[gi])] += 1
            tid = assignment.get(gid)
            if tid is None:
                continue
            hit = np.flatnonzero(t_ids == tid)
            if len(hit) and sim[gi, hit[0]] >= MATCH_IOU:
                evidence.setdefault((gid, second), []).append(tracker_scores[k][hit[0]])
    items = sorted(truth)
    if not items:
        return {"accuracy": float("nan"), "mAP": float("nan"), "per_class": {}, "num_items": 0}
    true = np.array([min(truth[i].items(), key=lambda kv: (-kv[1], kv[0]))[0] for i in items])
    scores = np.full((len(items), num_classes), -np.inf)
    for n, item in enumerate(items):
        if item in evidence:
            scores[n] = np.mean(evidence[item], axis=0)
    covered = np.isfinite(scores[:, 0])
    accuracy = float(np.mean(covered & (scores.argmax(1) == true)))
    per_class = {}
    for c in range(num_classes):
        positives = int((true == c).sum())
        if positives == 0:
            continue
        order = np.argsort(-scores[covered, c], kind="mergesort")
        hits = (true[covered] == c)[order]
        tp, fp = np.cumsum(hits), np.cumsum(~hits)
        per_class[c] = average_precision(tp / positives, tp / np.maximum(tp + fp, 1)) if len(hits) else 0.0
    return {"accuracy": accuracy, "mAP": float(np.mean(list(per_class.values()))), "per_class": per_class,
            "num_items": len(items)}


def topk_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of rows of ``probs (N, A)`` whose true class (``labels (N,)``) is among the ``k`` most
    probable (ties broken by class order)."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    if not len(labels):
        return float("nan")
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())
