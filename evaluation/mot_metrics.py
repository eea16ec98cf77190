"""Tracking metrics that reproduce the official tools: CLEAR MOT and IDF1 with py-motmetrics (the
numbers of the MOTChallenge devkit), HOTA with TrackEval.

Both are computed from one :class:`SequenceFrames` per sequence, built by :func:`preprocess_sequence`,
which applies MOTChallenge's preprocessing exactly as TrackEval's ``MotChallenge2DBox`` does:

* ground truth with ``conf == 0`` (the "consider" flag) is removed;
* for MOT16/17/20-layout ground truth (with a class column): tracker boxes matched (Hungarian on
  IoU, pairs below IoU 0.5 not allowed) to a box of a distractor class — person on vehicle (2),
  static person (7), distractor (8), reflection (12) — are removed rather than counted as false
  positives, and only pedestrian (class 1) ground truth is kept;
* MOT15-layout ground truth has no classes, so only the first rule applies (as TrackEval does for
  the MOT15 benchmark).

A box pair is a match candidate when IoU >= 0.5. IoU is on the boxes as written (no +1 on widths),
in float64.

py-motmetrics 1.4.0 under numpy 2 cannot run its own ``distances.iou_matrix`` (``np.asfarray``) or
``merge_event_dataframes`` (``DataFrame.append``), so distances are computed here and only the
accumulator and ``MetricsHost.compute_many`` are used.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from common.boxes import iou_matrix
from data.formats.mot import MotRows

MATCH_IOU = 0.5
#: MOTChallenge classes whose matched tracker boxes are dropped (TrackEval's distractor_class_names).
DISTRACTOR_CLASSES = (2, 7, 8, 12)
PEDESTRIAN = 1

CLEAR_FIELDS = ("mota", "motp", "num_false_positives", "num_misses", "num_switches", "num_fragmentations",
                "mostly_tracked", "partially_tracked", "mostly_lost", "num_unique_objects", "idf1", "idp", "idr",
                "num_objects", "num_predictions", "num_matches", "idtp", "idfp", "idfn")


@dataclass
class SequenceFrames:
    """One sequence after preprocessing, frame by frame (index k is frame ``k + 1``).

    ``gt_ids[k]`` / ``tracker_ids[k]`` are the original ids; ``gt_boxes[k]`` / ``tracker_boxes[k]``
    are ``(n, 4)`` xyxy; ``similarity[k]`` is the ``(n_gt, n_tracker)`` IoU.
    """

    name: str
    num_frames: int
    gt_ids: list[np.ndarray] = field(default_factory=list)
    gt_boxes: list[np.ndarray] = field(default_factory=list)
    tracker_ids: list[np.ndarray] = field(default_factory=list)
    tracker_boxes: list[np.ndarray] = field(default_factory=list)
    similarity: list[np.ndarray] = field(default_factory=list)

    @property
    def num_gt_dets(self) -> int:
        return int(sum(len(g) for g in self.gt_ids))

    @property
    def num_tracker_dets(self) -> int:
        return int(sum(len(t) for t in self.tracker_ids))


def _iou64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return iou_matrix(np.asarray(a, np.float64), np.asarray(b, np.float64), dtype=np.float64)


def preprocess_sequence(name: str, gt: MotRows, results: MotRows, num_frames: int, class_aware: bool) -> SequenceFrames:
    """MOTChallenge preprocessing (see the module docstring). ``results`` frames must lie in
    ``1..num_frames`` and a track id may appear once per frame (``ValueError`` otherwise, with the
    offending frame)."""
    if len(results) and (results.frame.min() < 1 or results.frame.max() > num_frames):
        bad = results.frame[(results.frame < 1) | (results.frame > num_frames)][0]
        raise ValueError(f"frame {bad} is outside the sequence's frames 1-{num_frames}")
    seq = SequenceFrames(name, num_frames)
    gt_by_frame = _split_by_frame(gt, num_frames)
    res_by_frame = _split_by_frame(results, num_frames)
    for k in range(num_frames):
        g, r = gt_by_frame[k], res_by_frame[k]
        ids, counts = np.unique(r.track_id, return_counts=True)
        if (counts > 1).any():
            raise ValueError(f"track id {ids[counts > 1][0]} appears more than once in frame {k + 1}")
        keep_r = np.ones(len(r), bool)
        if class_aware and len(g) and len(r):
            sim = _iou64(g.boxes, r.boxes)
            score = np.where(sim < MATCH_IOU - np.finfo(float).eps, 0.0, sim)
            rows, cols = linear_sum_assignment(-score)
            matched = score[rows, cols] > np.finfo(float).eps
            rows, cols = rows[matched], cols[matched]
            keep_r[cols[np.isin(g.class_id[rows], DISTRACTOR_CLASSES)]] = False
        keep_g = g.conf != 0
        if class_aware:
            keep_g &= g.class_id == PEDESTRIAN
        g, r = g.select(keep_g), r.select(keep_r)
        seq.gt_ids.append(g.track_id.copy())
        seq.gt_boxes.append(g.boxes.copy())
        seq.tracker_ids.append(r.track_id.copy())
        seq.tracker_boxes.append(r.boxes.copy())
        seq.similarity.append(_iou64(g.boxes, r.boxes))
    return seq


def _split_by_frame(rows: MotRows, num_frames: int) -> list[MotRows]:
    order = np.argsort(rows.frame, kind="stable")
    rows = rows.select(order)
    bounds = np.searchsorted(rows.frame, np.arange(1, num_frames + 2))
    return [rows.select(slice(bounds[k], bounds[k + 1])) for k in range(num_frames)]


# ---------------------------------------------------------------------------------- motmetrics
def motmetrics_accumulator(seq: SequenceFrames):
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=False)
    for k in range(seq.num_frames):
        dist = 1.0 - seq.similarity[k]
        dist[seq.similarity[k] < MATCH_IOU] = np.nan  # motmetrics: distances above 1 - 0.5 are no match
        acc.update(seq.gt_ids[k].tolist(), seq.tracker_ids[k].tolist(), dist, frameid=k + 1)
    return acc


def clear_identity_metrics(sequences: list[SequenceFrames]) -> dict[str, dict[str, float]]:
    """CLEAR MOT and identity metrics per sequence and ``"COMBINED"`` (motmetrics' overall).

    Rates (MOTA, MOTP, IDF1, IDP, IDR) are percentages; MOTP follows MOTChallenge (mean IoU of
    matches x 100), not motmetrics' mean distance.
    """
    import motmetrics as mm

    host = mm.metrics.create()
    accs = [motmetrics_accumulator(s) for s in sequences]
    names = [s.name for s in sequences]
    table = host.compute_many(accs, metrics=list(CLEAR_FIELDS), names=names, generate_overall=True)
    out = {}
    for name, row in table.iterrows():
        r = {k: float(row[k]) for k in CLEAR_FIELDS}
        for k in ("mota", "idf1", "idp", "idr"):
            r[k] *= 100.0
        r["motp"] = (1.0 - r["motp"]) * 100.0 if r["num_matches"] else 0.0
        out["COMBINED" if name == "OVERALL" else str(name)] = r
    return out


# -------------------------------------------------------------------------------------- HOTA
def _trackeval_data(seq: SequenceFrames) -> dict:
    gt_all = np.unique(np.concatenate(seq.gt_ids)) if seq.num_gt_dets else np.zeros(0, int)
    tr_all = np.unique(np.concatenate(seq.tracker_ids)) if seq.num_tracker_dets else np.zeros(0, int)
    return {
        "num_timesteps": seq.num_frames, "num_gt_ids": len(gt_all), "num_tracker_ids": len(tr_all),
        "num_gt_dets": seq.num_gt_dets, "num_tracker_dets": seq.num_tracker_dets,
        "gt_ids": [np.searchsorted(gt_all, g) for g in seq.gt_ids],
        "tracker_ids": [np.searchsorted(tr_all, t) for t in seq.tracker_ids],
        "similarity_scores": seq.similarity, "seq": seq.name,
    }


def hota_metrics(sequences: list[SequenceFrames]) -> dict[str, dict[str, float]]:
    """HOTA, DetA, AssA, DetRe, DetPr, AssRe, AssPr, LocA (percent, averaged over TrackEval's 19
    alpha thresholds) per sequence and ``"COMBINED"`` (TrackEval's combination over sequences)."""
    from trackeval.metrics import HOTA

    metric = HOTA()
    raw = {s.name: metric.eval_sequence(_trackeval_data(s)) for s in sequences}
    raw["COMBINED"] = metric.combine_sequences({k: v for k, v in raw.items()})
    fields = ("HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA")
    return {name: {f: float(np.mean(res[f])) * 100.0 for f in fields} for name, res in raw.items()}


# ----------------------------------------------------------------------- identity assignment
def identity_assignment(seq: SequenceFrames) -> dict[int, int]:
    """IDF1's global one-to-one assignment of ground-truth ids to tracker ids: the one that
    maximises the number of frames in which the pair overlaps with IoU >= 0.5 (equivalently,
    minimises IDFP + IDFN). Returns ``{gt_id: tracker_id}`` for pairs that share at least one frame."""
    gt_all = np.unique(np.concatenate(seq.gt_ids)) if seq.num_gt_dets else np.zeros(0, int)
    tr_all = np.unique(np.concatenate(seq.tracker_ids)) if seq.num_tracker_dets else np.zeros(0, int)
    counts = np.zeros((len(gt_all), len(tr_all)))
    for g, t, sim in zip(seq.gt_ids, seq.tracker_ids, seq.similarity):
        if len(g) and len(t):
            gi, ti = np.nonzero(sim >= MATCH_IOU)
            np.add.at(counts, (np.searchsorted(gt_all, g[gi]), np.searchsorted(tr_all, t[ti])), 1)
    if counts.size == 0:
        return {}
    rows, cols = linear_sum_assignment(-counts)
    return {int(gt_all[r]): int(tr_all[c]) for r, c in zip(rows, cols) if counts[r, c] > 0}
