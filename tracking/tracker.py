"""Multi-object tracker: Kalman motion + ReID appearance, Hungarian association in stages.

Per frame (``update``):

1. every track is predicted forward by the real time since the previous frame;
2. **high-score** detections are matched to confirmed and lost tracks on a fused cost
   ``(1 - w) * (1 - IoU) + w * cosine distance`` (``w = appearance_weight``), gated by the
   Kalman filter's Mahalanobis distance; a track lost for longer than ``motion_horizon_s`` is
   matched on appearance alone (within the gate, which widens as its uncertainty grows);
3. **low-score** detections are matched by IoU to the confirmed tracks still unmatched
   (ByteTrack's second stage: occluded people score low but are still there);
4. unconfirmed tracks are matched to the remaining high-score detections;
5. tracks still unmatched get one more chance against their **last observed** box rather than
   the prediction (OC-SORT's observation-centric recovery), and a track re-found after a gap is
   re-updated along the straight path between its two observations so its velocity is right;
6. unmatched high-score detections above ``new_track_score`` start tentative tracks, confirmed
   after ``min_hits`` matches; lost tracks are dropped after ``lost_buffer_s`` seconds.

The id counter belongs to the tracker instance; ``reset()`` starts a new video.

The filter states live in the tracker, stacked (struct of arrays, one row per track, in the order
of ``Tracker.tracks``): every step above is a handful of array operations whatever the number of
people, and only the bookkeeping that has to be per person (history, state) loops over tracks.
The equations are :mod:`tracking.kalman_filter`'s, which are tested against filterpy's.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, fields, replace
from typing import NamedTuple

import numpy as np

from common.boxes import iou_matrix
from tracking.kalman_filter import (CHI2_95_4DOF, BoxKalmanFilter, boxes_of_states, initial_states, mahalanobis_matrix,
                                    predict_states, update_states, xyxy_to_z)
from tracking.matching import INFEASIBLE, cosine_distance, linear_assignment
from tracking.trackers import TrackBase


# Seconds. Timestamps are k / fps, whose differences miss exact multiples of the frame period by
# rounding that depends on k: a time limit that is such a multiple must not flip with the frame number.
TIME_TOLERANCE = 1e-6


class _Frame(NamedTuple):
    """One frame's detections, as every association stage reads them."""
    boxes: np.ndarray  # (N, 4) xyxy, float64
    z: np.ndarray  # (N, 4) the same as Kalman measurements [cx, cy, w, h]
    scores: np.ndarray  # (N,)
    embeddings: np.ndarray | None  # (N, D) unit rows, or None


class TrackState(enum.Enum):
    TENTATIVE = 0
    CONFIRMED = 1
    LOST = 2
    REMOVED = 3


class Track(TrackBase):
    """One identity: its reported box, appearance, recent boxes (for action tubes) and action
    history. Its Kalman state is a row of the tracker's arrays (``_row``, valid during a frame).

    ``box`` is the Kalman estimate after this frame's update, not the raw detection (smoother:
    +1.6 HOTA, +2.0 IDF1 on the public-detection benchmark); ``last_observation`` is the last
    detection matched to it.
    """

    def __init__(self, track_id: int, box: np.ndarray, score: float, embedding: np.ndarray | None, timestamp: float,
                 frame_index: int, history: int):
        super().__init__(track_id, history=history)
        self.state = TrackState.TENTATIVE
        self.score = score
        self.hits = 1
        self.start_time = self.last_time = timestamp
        self.embedding = embedding  # unit (D,) or None
        self.box = self.last_observation = np.array(box, dtype=np.float64)  # a copy: the caller may reuse its buffer
        self.history.append((frame_index, self.last_observation.copy()))
        self.updated_this_frame = True
        self._row = -1


@dataclass(frozen=True)
class TrackerConfig:
    """Every threshold of the tracker, each default written here once (scripts take theirs from
    this class).

    ``high_score``: detections at or above it drive the first stage; new tracks need
    ``new_track_score``; ``low_score``: detections between it and ``high_score`` only extend
    existing tracks. ``match_cost``: the largest fused cost accepted in the first stage;
    ``low_match_iou`` and ``unconfirmed_match_iou``: the smallest IoU in the second and third;
    ``appearance_weight`` weighs the cosine distance against ``1 - IoU``; ``reid_max_distance``:
    the largest cosine distance for re-finding a lost track; ``motion_horizon_s``: how long a track
    may go unobserved before it is matched on appearance alone; ``lost_buffer_s``: how long a lost
    track is kept; ``min_hits`` matches confirm a track; ``embedding_ema`` and ``action_smoothing``
    (chosen on the synthetic val split) are the EMA factors of the appearance and action;
    ``history`` boxes are kept per track for action tubes; ``observation_recovery`` enables the
    OC-SORT steps; ``gate`` bounds the squared Mahalanobis distance of a match;
    ``report_observation``: a track observed this frame reports the matched detection's box
    instead of the Kalman estimate (only what is reported changes, not the association: the
    estimate localises noisy public detections better, the matched box a precise detector's;
    ``scripts/calibrate_tracker.py`` chooses it per network). ``min_hits`` and
    ``lost_buffer_s`` were chosen on PETS09-S2L1 frames 1-430 and the two TUD sequences with their
    public detections, and checked on PETS09 frames 431-530 (scripts/benchmark_tracking.py).
    """

    high_score: float = 0.5
    low_score: float = 0.1
    new_track_score: float = 0.6
    match_cost: float = 0.8
    low_match_iou: float = 0.5
    unconfirmed_match_iou: float = 0.3
    appearance_weight: float = 0.5
    reid_max_distance: float = 0.3
    motion_horizon_s: float = 0.5
    lost_buffer_s: float = 3.0
    min_hits: int = 3
    embedding_ema: float = 0.9
    action_smoothing: float = 0.4
    history: int = 16
    observation_recovery: bool = True
    report_observation: bool = False
    gate: float = CHI2_95_4DOF * 4

    def with_scores(self, **settings) -> "TrackerConfig":
        """These settings with ``settings`` (``high_score``, ``new_track_score``,
        ``report_observation``, as a calibration chooses them) replaced, ``low_score`` lowered to
        ``high_score`` where it was above it."""
        high = settings.get("high_score", self.high_score)
        return replace(self, **settings, low_score=min(self.low_score, high))

    def check(self) -> None:
        if not 0 <= self.low_score <= self.high_score <= 1:
            raise ValueError(f"need 0 <= low_score <= high_score <= 1, got {self.low_score}, {self.high_score}")
        if not 0 <= self.new_track_score <= 1:
            raise ValueError(f"new_track_score must be in [0, 1], got {self.new_track_score}")
        if self.lost_buffer_s < 0 or self.motion_horizon_s < 0 or self.min_hits < 1 or self.history < 1:
            raise ValueError("lost_buffer_s and motion_horizon_s must be >= 0, min_hits and history >= 1")
        for name in ("appearance_weight", "embedding_ema", "action_smoothing"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


class Tracker:
    """Tracks people across frames: ``Tracker(config, fps=...)``, or ``Tracker(fps=..., high_score=...)``
    with any :class:`TrackerConfig` field as a keyword. ``fps`` is the frame rate used when
    ``update`` gets no timestamp (the tracker's buffers are in seconds); ``kalman`` overrides the
    Kalman filter's noise settings (:class:`BoxKalmanFilter`). The pipeline's default tracker
    (``--tracker mot-action``; the interface it offers: :class:`tracking.trackers.MultiObjectTracker`)."""

    def __init__(self, config: TrackerConfig | None = None, *, fps: float = 10.0, kalman: dict | None = None,
                 **overrides):
        config = replace(config or TrackerConfig(), **overrides)
        config.check()
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.config = config
        for f in fields(config):  # read as plain attributes in the hot path
            setattr(self, f.name, getattr(config, f.name))
        self.fps = fps
        self.kalman = kalman or {}
        noise = BoxKalmanFilter(np.array([0.0, 0.0, 1.0, 1.0]), **self.kalman)  # its defaults, in one place
        self._std = (noise.std_position, noise.std_velocity, noise.std_measurement)
        self.reset()

    def reset(self) -> None:
        """Forget every track and restart ids at 1 (a new video)."""
        self.tracks: list[Track] = []
        self.removed: list[Track] = []
        self._next_id = 1
        self.frame_index = -1
        self.timestamp: float | None = None
        # One row per track, in the order of self.tracks: state (T, 8) and decoupled covariance
        # (T, 3, 4) (layout in tracking.kalman_filter) now and right after the last observation
        # (for OC-SORT's re-update), appearance.
        self._x, self._P = np.zeros((0, 8)), np.zeros((0, 3, 4))
        self._saved_x, self._saved_P = np.zeros((0, 8)), np.zeros((0, 3, 4))
        self._last_time = np.zeros(0)
        self._embedding: np.ndarray | None = None  # (T, D) float32, unit rows; zeros where unknown
        self._has_embedding = np.zeros(0, dtype=bool)

    # ------------------------------------------------------------------------------------------
    def update(self, boxes: np.ndarray, scores: np.ndarray, embeddings: np.ndarray | None = None,
               timestamp: float | None = None) -> list[Track]:
        """Add one frame's detections (``(N, 4)`` xyxy, ``(N,)`` scores, optional ``(N, D)``
        embeddings; ``timestamp`` in seconds). Returns the confirmed tracks observed this frame.
        Embeddings of detections below ``high_score`` are never read (those are matched by IoU
        alone), so a caller may leave their rows empty."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(scores) != len(boxes) or (embeddings is not None and len(embeddings) != len(boxes)):
            raise ValueError(f"got {len(boxes)} boxes, {len(scores)} scores and "
                             f"{None if embeddings is None else len(embeddings)} embeddings")
        if embeddings is not None:  # unit length once here; every cosine below is then one matmul
            embeddings = np.asarray(embeddings, dtype=np.float32)
            embeddings = embeddings.reshape(len(boxes), embeddings.shape[-1] if embeddings.ndim > 1 else 0)
            embeddings = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
            if self._embedding is not None and len(embeddings) and embeddings.shape[1] != self._embedding.shape[1]:
                raise ValueError(f"embeddings have {embeddings.shape[1]} dimensions, earlier frames had "
                                 f"{self._embedding.shape[1]} (reset() before a new video or model)")
        if timestamp is None:
            timestamp = 0.0 if self.timestamp is None else self.timestamp + 1.0 / self.fps
        if self.timestamp is not None and timestamp < self.timestamp:
            raise ValueError(f"timestamps must not go back: {timestamp} after {self.timestamp}")
        self.frame_index += 1
        dt = 0.0 if self.timestamp is None else timestamp - self.timestamp
        self.timestamp = timestamp
        self._predict(dt)
        frame = _Frame(boxes, xyxy_to_z(boxes), scores, embeddings)

        high = np.flatnonzero(scores >= self.high_score)
        low = np.flatnonzero((scores >= self.low_score) & (scores < self.high_score))
        confirmed = [t for t in self.tracks if t.state in (TrackState.CONFIRMED, TrackState.LOST)]
        tentative = [t for t in self.tracks if t.state == TrackState.TENTATIVE]

        # Stage 1: confirmed and lost tracks vs high-score detections, motion + appearance.
        # Matched tracks leave the later stages, so their Kalman updates wait for one batched call.
        matched, left_tracks, left_high = self._match(confirmed, high, frame, self._fused_cost, self.match_cost)
        # Stage 2: tracks seen recently vs low-score detections, IoU only.
        recent = [t for t in left_tracks if timestamp - t.last_time <= self.motion_horizon_s + TIME_TOLERANCE]
        stale = [t for t in left_tracks if timestamp - t.last_time > self.motion_horizon_s + TIME_TOLERANCE]
        matches, recent, _ = self._match(recent, low, frame, self._iou_cost, 1 - self.low_match_iou)
        matched += matches
        left_tracks = recent + stale
        # Stage 3: unconfirmed tracks vs the high-score detections left.
        matches, left_tentative, left_high = self._match(tentative, left_high, frame, self._iou_cost,
                                                         1 - self.unconfirmed_match_iou)
        matched += matches
        # Observation-centric recovery: last observed box instead of the drifted prediction.
        if self.observation_recovery and len(left_high):
            matches, left_tracks, left_high = self._match(left_tracks, left_high, frame, self._observation_cost,
                                                          1 - self.low_match_iou)
            matched += matches
        self._apply(matched, frame, timestamp)

        for t in left_tentative:
            t.state = TrackState.REMOVED
        for t in left_tracks:
            if t.state == TrackState.CONFIRMED:
                t.state = TrackState.LOST
        self._start_tracks([d for d in left_high if scores[d] >= self.new_track_score], frame, timestamp)
        for t in self.tracks:
            if t.state == TrackState.LOST and timestamp - t.last_time > self.lost_buffer_s + TIME_TOLERANCE:
                t.state = TrackState.REMOVED
        for t, box in zip(self.tracks, boxes_of_states(self._x), strict=True):  # removed ones too: their last estimate
            t.box = box
            if self.report_observation and t.updated_this_frame:
                t.box = t.last_observation.copy()
        self._drop_removed()
        return [t for t in self.tracks if t.state == TrackState.CONFIRMED and t.updated_this_frame]

    @property
    def active_tracks(self) -> list[Track]:
        return [t for t in self.tracks if t.state == TrackState.CONFIRMED]

    # ------------------------------------------------------------------------------------------
    def _predict(self, dt: float) -> None:
        std_position, std_velocity, _ = self._std
        self._x, self._P = predict_states(self._x, self._P, dt, std_position, std_velocity)
        self._boxes = boxes_of_states(self._x)
        for k, t in enumerate(self.tracks):
            t._row = k
            t.updated_this_frame = False

    def _rows(self, tracks: list[Track]) -> np.ndarray:
        return np.fromiter((t._row for t in tracks), dtype=np.int64, count=len(tracks))

    def _apply(self, matches, frame: _Frame, timestamp) -> None:
        if not matches:
            return
        reupdate_gap = 1.5 / self.fps
        rows = self._rows([t for t, _ in matches])
        dets = np.fromiter((d for _, d in matches), dtype=np.int64, count=len(matches))
        # Tracks observed recently take one Kalman update, batched; the others replay their gap.
        plain = timestamp - self._last_time[rows] <= reupdate_gap
        if plain.any():
            self._x[rows[plain]], self._P[rows[plain]] = update_states(
                self._x[rows[plain]], self._P[rows[plain]], frame.z[dets[plain]], self._std[2])
        if not plain.all():
            last = xyxy_to_z(np.stack([matches[k][0].last_observation for k in np.flatnonzero(~plain)]))
            self._reupdate(rows[~plain], frame.z[dets[~plain]], last, timestamp - self._last_time[rows[~plain]])
        self._saved_x[rows], self._saved_P[rows] = self._x[rows], self._P[rows]
        self._last_time[rows] = timestamp
        # Appearance EMA of the confident matches, batched; only confident views shape it.
        boxes, scores, embeddings = frame.boxes, frame.scores, frame.embeddings
        if embeddings is not None:
            if self._embedding is None:
                self._embedding = np.zeros((len(self.tracks), embeddings.shape[1]), dtype=np.float32)
            confident = scores[dets] >= self.high_score
            at, new = rows[confident], embeddings[dets[confident]]  # (K,), (K, D) unit
            old = np.where(self._has_embedding[at][:, None], self._embedding[at], new)
            mixed = self.embedding_ema * old + (1 - self.embedding_ema) * new
            mixed /= np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-12)
            self._embedding[at], self._has_embedding[at] = mixed, True
            for k in np.flatnonzero(confident):
                matches[k][0].embedding = self._embedding[rows[k]].copy()
        observed, observed_scores = boxes[dets], scores[dets].tolist()  # boxes: a copy, the caller's array stays theirs
        for (track, _), box, score in zip(matches, observed, observed_scores):
            track.last_observation = box
            track.last_time, track.score = timestamp, score
            track.hits += 1
            track.history.append((self.frame_index, track.last_observation))
            track.updated_this_frame = True
            if track.state == TrackState.LOST:
                track.state = TrackState.CONFIRMED
            elif track.state == TrackState.TENTATIVE and track.hits >= self.min_hits:
                track.state = TrackState.CONFIRMED

    def _reupdate(self, rows: np.ndarray, measured: np.ndarray, last_measured: np.ndarray, gaps: np.ndarray) -> None:
        """OC-SORT's re-update: replay each gap from the last observation with virtual observations
        on the straight line to the new one, instead of trusting a prediction that drifted; one
        step per 0.1 s of gap, batched over the tracks with as many steps."""
        std_position, std_velocity, std_measurement = self._std
        steps = np.maximum(np.round(gaps / 0.1).astype(int), 1)
        for count in np.unique(steps):
            group = steps == count
            x, P = self._saved_x[rows[group]], self._saved_P[rows[group]]
            start, end, dt = last_measured[group], measured[group], gaps[group] / count  # [cx, cy, w, h]: linear in xyxy
            for k in range(1, count + 1):
                x, P = predict_states(x, P, dt, std_position, std_velocity)
                x, P = update_states(x, P, start + (end - start) * k / count, std_measurement)
            self._x[rows[group]], self._P[rows[group]] = x, P

    def _start_tracks(self, dets: list[int], frame: _Frame, timestamp) -> None:
        if not dets:
            return
        boxes, scores, embeddings = frame.boxes, frame.scores, frame.embeddings
        x, P = initial_states(boxes[dets], self._std[2])
        for d in dets:
            track = Track(self._next_id, boxes[d], float(scores[d]), None if embeddings is None else embeddings[d].copy(),
                          timestamp, self.frame_index, self.history)
            self._next_id += 1
            if self.frame_index == 0:  # nothing to confirm against on the first frame
                track.state = TrackState.CONFIRMED
            self.tracks.append(track)
        self._x, self._P = np.concatenate([self._x, x]), np.concatenate([self._P, P])
        self._saved_x, self._saved_P = np.concatenate([self._saved_x, x]), np.concatenate([self._saved_P, P])
        self._last_time = np.concatenate([self._last_time, np.full(len(dets), timestamp)])
        self._has_embedding = np.concatenate([self._has_embedding, np.full(len(dets), embeddings is not None)])
        if embeddings is not None:
            if self._embedding is None:
                self._embedding = np.zeros((len(self.tracks) - len(dets), embeddings.shape[1]), dtype=np.float32)
            self._embedding = np.concatenate([self._embedding, embeddings[dets]])
        elif self._embedding is not None:
            self._embedding = np.concatenate([self._embedding, np.zeros((len(dets), self._embedding.shape[1]), np.float32)])

    def _drop_removed(self) -> None:
        if all(t.state != TrackState.REMOVED for t in self.tracks):
            return
        keep = np.array([t.state != TrackState.REMOVED for t in self.tracks], dtype=bool)
        self.removed += [t for t in self.tracks if t.state == TrackState.REMOVED and t.hits >= self.min_hits]
        self.tracks = [t for t, k in zip(self.tracks, keep) if k]
        self._x, self._P, self._saved_x, self._saved_P = self._x[keep], self._P[keep], self._saved_x[keep], self._saved_P[keep]
        self._last_time, self._has_embedding = self._last_time[keep], self._has_embedding[keep]
        if self._embedding is not None:
            self._embedding = self._embedding[keep]

    def _match(self, tracks: list[Track], dets: np.ndarray, frame: _Frame, cost_fn, max_cost):
        if not tracks or len(dets) == 0:
            return [], list(tracks), np.asarray(dets, dtype=np.int64)
        cost = cost_fn(tracks, dets, frame)
        pairs, rows, cols = linear_assignment(cost, max_cost)
        return ([(tracks[r], int(dets[c])) for r, c in pairs], [tracks[r] for r in rows], np.asarray(dets)[cols])

    def _motion_gate(self, rows: np.ndarray, det_z: np.ndarray, where: np.ndarray) -> np.ndarray:
        """True where a pair is outside the Kalman gate; computed only ``where`` asked."""
        distances = mahalanobis_matrix(self._x[rows, :4], self._P[rows, 0], self._std[2], det_z, where=where)
        return distances > self.gate

    # Costs in float64 like the boxes: no conversion per call.
    def _iou_cost(self, tracks, dets, frame: _Frame) -> np.ndarray:
        return 1.0 - iou_matrix(self._boxes[self._rows(tracks)], frame.boxes[dets], dtype=np.float64)

    def _observation_cost(self, tracks, dets, frame: _Frame) -> np.ndarray:
        return 1.0 - iou_matrix(np.stack([t.last_observation for t in tracks]), frame.boxes[dets], dtype=np.float64)

    def _fused_cost(self, tracks, dets, frame: _Frame) -> np.ndarray:
        rows = self._rows(tracks)
        det_embeddings = None if frame.embeddings is None else frame.embeddings[dets]
        iou = iou_matrix(self._boxes[rows], frame.boxes[dets], dtype=np.float64)
        iou_cost = 1.0 - iou
        if det_embeddings is None or self._embedding is None or not self._has_embedding[rows].all():
            cost, feasible = iou_cost, iou > 0
        else:
            app = cosine_distance(self._embedding[rows], det_embeddings, unit=True)
            w = self.appearance_weight
            cost = (1 - w) * iou_cost + w * app
            stale = (self.timestamp - self._last_time[rows] > self.motion_horizon_s + TIME_TOLERANCE)[:, None]
            # Long-unobserved tracks: their predicted box is unreliable, appearance decides.
            cost = np.where(stale, app, cost)
            # Recently seen tracks must overlap the detection or look like it; stale ones look like it.
            feasible = (app <= self.reid_max_distance) | (~stale & (iou > 0))
        # The Kalman gate last, and only on the pairs still feasible (a few per track).
        feasible &= ~self._motion_gate(rows, frame.z[dets], feasible)
        return np.where(feasible, cost, INFEASIBLE)
