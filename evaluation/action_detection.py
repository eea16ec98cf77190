"""Spatio-temporal action detection scores as the field prints them.

* MultiSports / UCF101-24 / JHMDB-21 (the ACT evaluation as mmaction2's ``MultiSportsMetric`` runs
  it): frame-mAP at IoU 0.5, and video-mAP at a spatio-temporal IoU threshold (0.2, 0.5 and the
  means over 0.05:0.45, 0.10:0.90, 0.50:0.95) of tubes against ground-truth tubes. Tubes come from
  :func:`link_tubes` (the reference's greedy per-class linking of frame detections) or from any
  other producer, such as the project's tracker, as :class:`Tube` lists.
* AVA (the official ActivityNet ``get_ava_performance``): frame-mAP at IoU 0.5 over the classes of
  the label map, excluded timestamps skipped, at most 50 detections per keyframe.

Every AP is Pascal VOC's all-point AP, and each detection in score order is matched to the
ground-truth box it overlaps most; if that box is already taken the detection is a false positive
(it is not passed on to the next best box). Scores are fractions in [0, 1]; the reference prints
MultiSports numbers as percentages.
"""
from __future__ import annotations

import heapq
import os
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from common.boxes import iou_matrix, iou_one_to_many
from common.errors import InputError
from data.formats.act import ActAnnotations, ActDetections
from data.formats.ava import AvaRows
from evaluation.detection_metrics import average_precision

#: MultiSports labels that its evaluation code leaves out; no UCF101-24 / JHMDB-21 label has these names.
MULTISPORTS_SKIPPED = ("aerobic kick jump", "aerobic off axis jump", "aerobic butterfly jump",
                       "aerobic balance turn", "basketball save", "basketball jump ball")
#: Video-mAP threshold ranges, written as the reference computes them (0.1 + 0.1 * i, not linspace),
#: so that a threshold such as 0.30000000000000004 falls where the reference's does.
VIDEO_MAP_RANGES = (("0.05:0.45", tuple(0.05 + 0.05 * i for i in range(9))),
                    ("0.10:0.90", tuple(0.1 + 0.1 * i for i in range(9))),
                    ("0.50:0.95", tuple(0.5 + 0.05 * i for i in range(10))))
AVA_MAX_DETECTIONS = 50  # get_ava_performance keeps the 50 best-scored rows of each keyframe


@dataclass
class Tube:
    """A predicted action tube: ``boxes (T, 5)`` rows of frame (1-based), x1, y1, x2, y2 in pixels,
    frames strictly increasing (gaps allowed), and one score for the whole tube."""

    video: str
    boxes: np.ndarray
    score: float

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 5)
        if not len(self.boxes) or (np.diff(self.boxes[:, 0]) <= 0).any():
            raise ValueError(f"tube in {self.video!r}: needs at least one box and strictly increasing frames")


def _ranked_ap(hits: list[bool], num_gt: int) -> float:
    """VOC all-point AP of detections already in rank order, ``hits`` marking the true positives."""
    if not hits:
        return 0.0
    tp = np.cumsum(hits)
    return average_precision(tp / num_gt, tp / np.arange(1, len(hits) + 1))


def _by_score(scores) -> np.ndarray:
    """Indices by descending score, sorted as the reference tools sort (``argsort`` of the
    negated scores, numpy's default unstable sort), so that tied scores rank as they do there."""
    return np.argsort(-np.asarray(scores, dtype=np.float64))


def _mean(per_label: dict) -> float:
    """Mean AP over the labels that had ground truth (NaN when none had)."""
    return float(np.mean(list(per_label.values()))) if per_label else float("nan")


# ------------------------------------------------------------------------------ MultiSports / ACT
def frame_ap(annotations: ActAnnotations, detections: ActDetections, iou_threshold: float = 0.5,
             split: int = 0, skipped: tuple[str, ...] = MULTISPORTS_SKIPPED) -> dict:
    """Frame-mAP: per label, the detections of that label over all frames of the split's test
    videos, ranked by score, against the label's ground-truth boxes of each frame. Labels without
    ground truth (or named in ``skipped``) are left out of the mean.

    Returns ``{"mAP", "per_label": {name: AP}}``.
    """
    videos = annotations.test_videos[split]
    per_label = {}
    for label, name in enumerate(annotations.labels):
        if name in skipped:
            continue
        gt: dict[tuple[str, int], list] = {}
        for video in videos:
            for tube in annotations.gttubes[video].get(label, []):
                for row in tube:
                    gt.setdefault((video, int(row[0])), []).append(row[1:5])
        if not gt:
            continue
        gt = {key: np.array(boxes) for key, boxes in gt.items()}
        taken = {key: np.zeros(len(boxes), dtype=bool) for key, boxes in gt.items()}
        rows = np.flatnonzero(detections.label == label)
        hits = []
        for d in rows[_by_score(detections.score[rows])]:
            key = (detections.video[d], int(detections.frame[d]))
            hit = False
            if key in gt:
                ious = iou_one_to_many(detections.boxes[d], gt[key])
                best = int(np.argmax(ious))
                hit = bool(ious[best] >= iou_threshold and not taken[key][best])
                taken[key][best] |= hit
            hits.append(hit)
        per_label[name] = _ranked_ap(hits, sum(len(b) for b in gt.values()))
    return {"mAP": _mean(per_label), "per_label": per_label}


def _iou_plus_one(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU with the inclusive-pixel convention (width ``x2 - x1 + 1``) that the ACT linking's
    per-frame suppression uses, in its order of operations so that the rescored values agree."""
    w = np.maximum(0, np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]) + 1)
    h = np.maximum(0, np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]) + 1)
    inter = w * h
    areas = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    return inter / (areas + (box[2] - box[0] + 1) * (box[3] - box[1] + 1) - inter)


def rescore_overlaps(boxes: np.ndarray, scores: np.ndarray, overlap: float = 0.6,
                     top_k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The linking's per-frame suppression: in score order, every box overlapping a kept box by
    IoU > ``overlap`` keeps its place but has its score scaled by ``1 - IoU`` (and no longer
    suppresses others); the ``top_k`` best after rescoring are returned, best first."""
    weight = np.ones(len(scores))
    order = np.argsort(scores)[::-1]  # the reference's own sort, for its order of ties
    while order.size:
        ious = _iou_plus_one(boxes[order[0]], boxes[order[1:]])
        over = ious > overlap
        weight[order[1:][over]] = 1 - ious[over]
        order = order[1:][~over]
    scores = scores * weight
    keep = np.argsort(scores)[::-1][:top_k]
    return boxes[keep], scores[keep]


def _link_label(frames: dict[int, tuple[np.ndarray, np.ndarray]], nframes: int,
                min_length: int) -> list[tuple[np.ndarray, float]]:
    """Greedy linking of one label's boxes through one video (``frames``: frame -> (boxes, scores)).
    Returns ``(boxes (T, 5), score)`` per tube, in the reference's order (ties in video-AP depend
    on it)."""
    finished, current = [], []  # a tube is a list of (frame, box, score)
    empty = (np.zeros((0, 4)), np.zeros(0))
    for frame in range(1, nframes + 1):
        if not current and frame not in frames:
            continue
        boxes, scores = rescore_overlaps(*frames.get(frame, empty))
        # Stable, like the reference's argsort on at most top_k live tubes (insertion sort).
        current.sort(key=lambda t: -np.mean(np.array([s for _, _, s in t])))
        ended = []
        for tube in current:
            valid = np.flatnonzero(iou_one_to_many(tube[-1][1], boxes) >= 0.5) if len(boxes) else []
            if len(valid):
                best = valid[int(np.argmax(scores[valid]))]  # the best-scored box that overlaps enough
                tube.append((frame, boxes[best], scores[best]))
                boxes, scores = np.delete(boxes, best, axis=0), np.delete(scores, best)
            else:
                ended.append(tube)
        finished += ended[::-1]  # the reference moves ended tubes out back to front
        current = [t for t in current if not any(t is e for e in ended)]
        current += [[(frame, box, score)] for box, score in zip(boxes, scores)]
    out = []
    for tube in finished + current:
        score = float(np.mean(np.array([s for _, _, s in tube])))
        if score < 0.005 or tube[-1][0] - tube[0][0] + 1 < min_length:
            continue
        out.append((np.array([[f, *box] for f, box, _ in tube]), score))
    return out


def link_tubes(annotations: ActAnnotations, detections: ActDetections, split: int = 0,
               min_length: int = 15, mmaction2_scores: bool = False) -> dict[int, list[Tube]]:
    """Tubes from per-frame detections, per label, by the ACT / MultiSports greedy linking: frame
    by frame, each label's boxes are rescored (:func:`rescore_overlaps`); live tubes, best mean
    score first, each take the best-scored remaining box with IoU >= 0.5 to their last box, or end;
    left-over boxes start new tubes. A tube scores the mean of its boxes' (rescored) scores; tubes
    shorter than ``min_length`` frames or scoring below 0.005 are dropped.

    ``mmaction2_scores=True`` links as mmaction2's ``MultiSportsMetric`` does, where every box
    takes the score of the *last* detection row (its ``get_vid_dets`` reads the variable of an
    earlier loop): all boxes tie, so rescoring and linking follow box order and overlap alone. Its
    published video-mAPs need this; the ACT / MOC linking it copies uses each box's own score.

    Returns ``{label index: [Tube, ...]}`` over the split's test videos.
    """
    scores = detections.score
    if mmaction2_scores and len(scores):
        scores = np.full(len(scores), scores[-1])
    grouped: dict[tuple[str, int], dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i in range(len(detections)):
        grouped[(detections.video[i], int(detections.label[i]))][int(detections.frame[i])].append(i)
    tubes: dict[int, list[Tube]] = {label: [] for label in range(len(annotations.labels))}
    for video in annotations.test_videos[split]:
        for label in range(len(annotations.labels)):
            rows = grouped.get((video, label))
            if not rows:
                continue
            frames = {f: (detections.boxes[r], scores[r]) for f, r in rows.items()}
            tubes[label] += [Tube(video, boxes, score)
                             for boxes, score in _link_label(frames, annotations.nframes[video], min_length)]
    return tubes


def _paired_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N,)`` IoU of the boxes ``a[i]`` and ``b[i]`` (xyxy)."""
    inter = (np.maximum(0, np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]))
             * np.maximum(0, np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])))
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a + area_b - inter)


def spatiotemporal_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Spatio-temporal IoU of two tubes (``(T, 5)`` rows of frame, x1, y1, x2, y2, frames
    increasing): temporal IoU times the mean per-frame IoU over their common span. As in the ACT
    code the temporal IoU counts frame *intervals*, ``(min end - max start) / (max end - min
    start)``, so tubes sharing one frame score 0. A frame of the common span where one tube has no
    box counts as IoU 0 (the reference assumes tubes without gaps)."""
    start, end = max(a[0, 0], b[0, 0]), min(a[-1, 0], b[-1, 0])
    union = max(a[-1, 0], b[-1, 0]) - min(a[0, 0], b[0, 0])
    if end < start or union == 0:
        return 0.0
    a = a[(a[:, 0] >= start) & (a[:, 0] <= end)]
    b = b[(b[:, 0] >= start) & (b[:, 0] <= end)]
    _, ia, ib = np.intersect1d(a[:, 0], b[:, 0], assume_unique=True, return_indices=True)
    spatial = _paired_iou(a[ia, 1:], b[ib, 1:]).sum() / (end - start + 1)
    return float(spatial * ((end - start) / union))


def video_ap(annotations: ActAnnotations, tubes: dict[int, list[Tube]], iou_threshold: float,
             split: int = 0, skipped: tuple[str, ...] = MULTISPORTS_SKIPPED) -> dict:
    """Video-mAP: per label, the predicted tubes (``{label index: [Tube]}``, from any producer)
    ranked by score; each is matched to the ground-truth tube of its video and label with the
    highest :func:`spatiotemporal_iou` and is a true positive if that reaches ``iou_threshold`` and
    the ground-truth tube is not taken yet. Labels without ground truth are left out of the mean.

    Returns ``{"mAP", "per_label": {name: AP}}``.
    """
    per_label = {}
    for label, name in enumerate(annotations.labels):
        if name in skipped:
            continue
        gt = {v: annotations.gttubes[v][label] for v in annotations.test_videos[split]
              if annotations.gttubes[v].get(label)}
        if not gt:
            continue
        taken = {v: np.zeros(len(g), dtype=bool) for v, g in gt.items()}
        predicted = tubes.get(label, [])
        hits = []
        for j in _by_score([t.score for t in predicted]):
            tube, hit = predicted[j], False
            if tube.video in gt:
                ious = [spatiotemporal_iou(g, tube.boxes) for g in gt[tube.video]]
                best = int(np.argmax(ious))
                hit = bool(ious[best] >= iou_threshold and not taken[tube.video][best])
                taken[tube.video][best] |= hit
            hits.append(hit)
        per_label[name] = _ranked_ap(hits, sum(len(g) for g in gt.values()))
    return {"mAP": _mean(per_label), "per_label": per_label}


def video_map_summary(annotations: ActAnnotations, tubes: dict[int, list[Tube]], split: int = 0,
                      skipped: tuple[str, ...] = MULTISPORTS_SKIPPED) -> dict[str, float]:
    """The video-mAPs the MultiSports evaluation prints: at 0.2 and 0.5, and the means over the
    ranges of :data:`VIDEO_MAP_RANGES` (keys ``video_mAP@0.2``, ``video_mAP@0.10:0.90``, ...)."""
    cache: dict[float, float] = {}

    def at(threshold: float) -> float:
        """Video-mAP at ``threshold``, computed once (the ranges share thresholds)."""
        if threshold not in cache:
            cache[threshold] = video_ap(annotations, tubes, threshold, split, skipped)["mAP"]
        return cache[threshold]

    out = {f"video_mAP@{t}": at(t) for t in (0.2, 0.5)}
    for name, thresholds in VIDEO_MAP_RANGES:
        out[f"video_mAP@{name}"] = sum(at(t) for t in thresholds) / len(thresholds)
    return out


def multisports_metrics(annotations: ActAnnotations, detections: ActDetections, split: int = 0,
                        min_length: int = 15, skipped: tuple[str, ...] = MULTISPORTS_SKIPPED,
                        mmaction2_scores: bool = False) -> dict[str, float]:
    """What mmaction2's ``MultiSportsMetric`` reports, as fractions: ``frame_mAP@0.5`` and the
    video-mAPs of :func:`video_map_summary` on tubes linked by :func:`link_tubes` (whose
    ``mmaction2_scores`` reproduces that metric's own numbers)."""
    out = {"frame_mAP@0.5": frame_ap(annotations, detections, 0.5, split, skipped)["mAP"]}
    tubes = link_tubes(annotations, detections, split, min_length, mmaction2_scores)
    out.update(video_map_summary(annotations, tubes, split, skipped))
    return out


# ------------------------------------------------------------------ tubes from tracked identities
def _runs(frames: list[int], labels: list[int], max_gap: int) -> list[tuple[int, int]]:
    """``(start, end)`` index ranges (end exclusive) of equal consecutive ``labels`` whose frames
    are at most ``max_gap`` apart."""
    runs, start = [], 0
    for i in range(1, len(frames) + 1):
        if i == len(frames) or labels[i] != labels[start] or frames[i] - frames[i - 1] > max_gap:
            runs.append((start, i))
            start = i
    return runs


def gt_tubes_from_identities(frame_ids: list[np.ndarray], frame_boxes: list[np.ndarray],
                             frame_labels: list[np.ndarray]) -> dict[int, list[np.ndarray]]:
    """Ground-truth action tubes of an annotated tracking sequence: each identity's boxes cut where
    its action changes or it leaves the frame. Per frame ``k`` (0-based; the tube rows carry
    ``k + 1``): ``frame_ids[k] (G,)``, ``frame_boxes[k] (G, 4)`` xyxy pixels, ``frame_labels[k] (G,)``
    (negative: unlabelled, not part of any tube). Returns ``{label: [(n, 5) array]}``."""
    rows: dict[int, list] = defaultdict(list)
    for k, (ids, boxes, labels) in enumerate(zip(frame_ids, frame_boxes, frame_labels)):
        for i, box, label in zip(ids.tolist(), boxes, labels.tolist()):
            if label >= 0:
                rows[i].append((k + 1, label, box))
    tubes: dict[int, list[np.ndarray]] = defaultdict(list)
    for entries in rows.values():
        frames, labels = [e[0] for e in entries], [e[1] for e in entries]
        for a, b in _runs(frames, labels, max_gap=1):
            tubes[labels[a]].append(np.array([[e[0], *e[2]] for e in entries[a:b]], np.float64))
    return dict(tubes)


def tubes_from_tracks(video: str, frame_ids: list[np.ndarray], frame_boxes: list[np.ndarray],
                      frame_scores: list[np.ndarray], fps: float, max_gap: int | None = None) -> dict[int, list[Tube]]:
    """The tracker's identities as action tubes, for video-mAP without greedy linking: each track
    is labelled per second with the action of highest mean probability over its frames in that
    second (the V-ICR timeline), and cut where that label changes or the track is lost for more
    than ``max_gap`` frames (default: one second); a tube scores the mean probability of its label
    over its frames. Per frame ``k``: ``frame_ids[k] (D,)`` track ids, ``frame_boxes[k] (D, 4)`` xyxy
    pixels, ``frame_scores[k] (D, A)`` action probabilities."""
    from data.tubes import second_of

    max_gap = max(1, int(round(fps))) if max_gap is None else max_gap
    rows: dict[int, list] = defaultdict(list)
    for k, (ids, boxes, scores) in enumerate(zip(frame_ids, frame_boxes, frame_scores)):
        for i, box, probs in zip(ids.tolist(), boxes, scores):
            rows[i].append((k + 1, box, probs))
    tubes: dict[int, list[Tube]] = defaultdict(list)
    for entries in rows.values():
        frames = [e[0] for e in entries]
        probs = np.stack([e[2] for e in entries])  # (T, A)
        seconds = np.array([second_of(f - 1, fps) for f in frames])
        per_second = {s: int(probs[seconds == s].mean(0).argmax()) for s in np.unique(seconds).tolist()}
        labels = [per_second[s] for s in seconds.tolist()]
        for a, b in _runs(frames, labels, max_gap):
            label = labels[a]
            boxes = np.array([[e[0], *e[1]] for e in entries[a:b]], np.float64)
            tubes[label].append(Tube(video, boxes, float(probs[a:b, label].mean())))
    return dict(tubes)


# ------------------------------------------------------------------------------ AVA
def _ava_keyframes(rows: AvaRows, classes: set[int], capacity: int,
                   sort_by: np.ndarray) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``{(video, timestamp): (boxes, actions, scores)}`` of the rows whose action is in
    ``classes``, keeping per keyframe the ``capacity`` best by ``sort_by`` (0: all), best first.
    Built on a heap as the official reader does, since the order of equal scores (which decides
    ties in matching and ranking) is that heap's."""
    heaps: dict[tuple[str, int], list] = {}
    for i in range(len(rows)):
        if int(rows.action_id[i]) not in classes:
            continue
        heap = heaps.setdefault((rows.video_id[i], int(rows.timestamp[i])), [])
        x1, y1, x2, y2 = rows.boxes[i].tolist()
        item = (float(sort_by[i]), int(rows.action_id[i]), y1, x1, y2, x2, float(rows.score[i]))  # official layout
        if capacity < 1 or len(heap) < capacity:
            heapq.heappush(heap, item)
        elif item[0] > heap[0][0]:
            heapq.heapreplace(heap, item)
    out = {}
    for key, heap in heaps.items():
        entries = sorted(heap, key=lambda t: -t[0])
        out[key] = (np.array([(e[3], e[2], e[5], e[4]) for e in entries]), np.array([e[1] for e in entries]),
                    np.array([e[6] for e in entries]))
    return out


def ava_frame_map(gt: AvaRows, predictions: AvaRows, label_map: dict[int, str],
                  excluded: set[tuple[str, int]] = frozenset(), iou_threshold: float = 0.5,
                  max_detections: int = AVA_MAX_DETECTIONS) -> dict:
    """AVA frame-mAP exactly as the official evaluator (ActivityNet ``get_ava_performance``):
    rows of actions outside ``label_map`` are dropped; each keyframe keeps its ``max_detections``
    best-scored predictions (0: all); keyframes in ``excluded`` are skipped for ground truth and
    predictions alike; degenerate predicted boxes are dropped; per class, predictions in a
    keyframe (best first) match the ground-truth box they overlap most (false positive if it is
    taken or IoU < ``iou_threshold``); predictions in keyframes without ground truth are false
    positives. AP is VOC all-point over all keyframes; the mean is over classes with ground truth.

    Returns ``{"mAP", "per_class": {action id: AP}}``.
    """
    classes = set(label_map)
    # The official reader takes an 8th ground-truth column (the person id) for a score and orders
    # each keyframe's boxes by it; this decides which of two equally overlapping boxes is matched.
    gt_frames = _ava_keyframes(gt, classes, 0, np.where(gt.person_id >= 0, gt.person_id, 1.0))
    gt_frames = {k: v for k, v in gt_frames.items() if k not in excluded}
    predicted = _ava_keyframes(predictions, classes, max_detections, predictions.score)
    num_gt = defaultdict(int)
    for _, actions, _ in gt_frames.values():
        for a in actions.tolist():
            num_gt[a] += 1
    scores, hits = defaultdict(list), defaultdict(list)
    empty = (np.zeros((0, 4)), np.zeros(0, np.int64), None)
    for key, (boxes, actions, conf) in predicted.items():
        if key in excluded:
            continue
        valid = (boxes[:, 0] < boxes[:, 2]) & (boxes[:, 1] < boxes[:, 3])
        boxes, actions, conf = boxes[valid], actions[valid], conf[valid]
        gt_boxes, gt_actions, _ = gt_frames.get(key, empty)
        for c in np.unique(actions).tolist():
            mine, theirs = boxes[actions == c], gt_boxes[gt_actions == c]
            hit = np.zeros(len(mine), dtype=bool)
            if len(theirs):
                iou = iou_matrix(mine, theirs, dtype=np.float64)
                best = iou.argmax(axis=1)
                taken = np.zeros(len(theirs), dtype=bool)
                for d, g in enumerate(best):
                    hit[d] = iou[d, g] >= iou_threshold and not taken[g]
                    taken[g] |= hit[d]
            scores[c].append(conf[actions == c])
            hits[c].append(hit)
    per_class = {}
    for c in sorted(num_gt):
        if not scores[c]:
            per_class[c] = 0.0
            continue
        conf, hit = np.concatenate(scores[c]), np.concatenate(hits[c])
        order = np.argsort(conf)[::-1]  # the official tool's own sort, so tied scores rank as there
        per_class[c] = _ranked_ap(hit[order].tolist(), num_gt[c])
    return {"mAP": _mean(per_class), "per_class": per_class}


# ------------------------------------------------------------------------ scoring given files
PROTOCOLS = ("multisports", "ava")
LINKINGS = ("mmaction2", "box-scores")


def score_files(protocol: str, gt: str | os.PathLike, detections: str | os.PathLike, *,
                label_map: str | os.PathLike | None = None, exclusions: str | os.PathLike | None = None,
                linking: str = "mmaction2", split: int = 0) -> dict:
    """``scripts/evaluate.py --protocol``: a benchmark's annotation file and a detections file
    scored as that benchmark's evaluation scores them.

    * ``multisports``: ``gt`` an ACT / MultiSports annotation pickle (UCF101-24, JHMDB-21 and
      MultiSports ship it), ``detections`` a ``video,frame,label,score,x1,y1,x2,y2`` CSV; frame-mAP
      at 0.5 and the video-mAPs of tubes linked from the detections, in percent as the reference
      prints them. ``linking="mmaction2"`` reproduces mmaction2's ``MultiSportsMetric`` (every
      linked box scored alike, see :func:`link_tubes`), ``"box-scores"`` links on each box's own
      score as ACT intends; ``split`` indexes the file's ``test_videos`` lists (JHMDB-21 has 3).
    * ``ava``: ``gt`` and ``detections`` AVA CSVs (the official 8-column results layout), the
      ``label_map`` pbtxt (required: it names the evaluated classes) and optional excluded
      timestamps; frame-mAP at 0.5 as a fraction, as the official evaluator prints it.

    Returns ``{"protocol", "metrics": {name: value}, "per_class": {name: AP}}``.
    """
    from data.formats.act import read_act_annotations, read_act_detections
    from data.formats.ava import read_ava_csv, read_ava_results, read_excluded_timestamps, read_pbtxt_label_map

    if protocol == "multisports":
        if linking not in LINKINGS:
            raise ValueError(f"linking {linking!r}: expected one of {', '.join(LINKINGS)}")
        annotations = read_act_annotations(gt)
        if not 0 <= split < len(annotations.test_videos):
            raise InputError(f"{gt}: --annotation-split {split}: the file has {len(annotations.test_videos)} test "
                             f"split(s), numbered from 0")
        found = read_act_detections(detections, annotations, split)
        frame = frame_ap(annotations, found, 0.5, split)
        metrics = {"frame_mAP@0.5": frame["mAP"] * 100}
        tubes = link_tubes(annotations, found, split, mmaction2_scores=linking == "mmaction2")
        metrics.update({k: v * 100 for k, v in video_map_summary(annotations, tubes, split).items()})
        return {"protocol": protocol, "linking": linking, "metrics": metrics,
                "per_class": {name: ap * 100 for name, ap in frame["per_label"].items()}}
    if protocol == "ava":
        if label_map is None:
            raise InputError("--protocol ava needs --label-map (the action list .pbtxt: it names the evaluated classes)")
        names = read_pbtxt_label_map(label_map)
        excluded = read_excluded_timestamps(exclusions) if exclusions else frozenset()
        result = ava_frame_map(read_ava_csv(gt), read_ava_results(detections), names, excluded)
        return {"protocol": protocol, "metrics": {"frame_mAP@0.5": result["mAP"]},
                "per_class": {names[c]: ap for c, ap in result["per_class"].items()}}
    raise ValueError(f"protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")


def format_scores(report: dict) -> str:
    """The metrics, then AP per class, one per line (MultiSports in percent to 4 decimals, AVA as a
    fraction to 8, each as its reference prints it)."""
    digits = 8 if report["protocol"] == "ava" else 4
    width = max(len(k) for k in [*report["metrics"], *report["per_class"]]) + 2
    lines = [f"{name:<{width}}{value:.{digits}f}" for name, value in report["metrics"].items()]
    lines.append("AP per class" + (" (frame, IoU 0.5)" if report["protocol"] == "multisports" else "") + ":")
    lines += [f"  {name:<{width}}{value:.{digits}f}" for name, value in report["per_class"].items()]
    return "\n".join(lines)
