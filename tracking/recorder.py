"""Collects what the tracker reports frame by frame and turns it into the result files:
MOTChallenge rows and V-ICR-style ``<video>.json``. Used by every pipeline session
(:mod:`tracking.pipeline`), so inference and evaluation write the same thing.

What is written: boxes clipped to the frame (the Kalman estimate of a person at the edge can
reach past it), and identities numbered 1, 2, 3... in the order they are first reported (the
tracker's own ids also count tentative tracks that never got confirmed, which would leave gaps).
"""
from __future__ import annotations

import numpy as np

from common.boxes import clip_xyxy
from data.formats.mot import MotRows
from data.formats.vicr import LabelMap, VicrFrame, VicrPerson, VicrVideoInfo, VicrVideoLabels
from tracking.trackers import MultiObjectTracker, ReportedTrack


class TrackRecorder:
    """``add(frame_index, timestamp, tracks)`` per frame (0-based index); ``mot_rows()`` and
    ``vicr_labels(...)`` at the end. ``width`` and ``height`` (0: unknown) clip the boxes."""

    def __init__(self, action_names: list[str] | None = None, width: int = 0, height: int = 0):
        self.action_names = list(action_names or [])
        self.width, self.height = width, height
        self.frames: dict[int, list[VicrFrame]] = {}  # written id -> its frames
        self._rows: list[tuple[int, int, np.ndarray, float]] = []
        self._written_id: dict[int, int] = {}  # tracker id -> written id
        self._track_id: dict[int, int] = {}  # written id -> tracker id
        self.num_frames = 0
        self.last_index = -1

    def output_id(self, track_id: int) -> int:
        """The id written (and drawn) for a tracker id: consecutive, in order of first report."""
        if track_id not in self._written_id:
            written = len(self._written_id) + 1
            self._written_id[track_id], self._track_id[written] = written, track_id
        return self._written_id[track_id]

    def add(self, index: int, timestamp: float, tracks: list[ReportedTrack]) -> None:
        self.num_frames += 1
        self.last_index = max(self.last_index, index)
        for t in tracks:
            box = np.asarray(t.box, dtype=np.float64)  # the filtered estimate, as ByteTrack reports
            if self.width and self.height:
                box = clip_xyxy(box, self.width, self.height)[0]
                if box[2] <= box[0] or box[3] <= box[1]:
                    continue  # wholly outside the frame
            tid = self.output_id(t.track_id)
            self._rows.append((index + 1, tid, box, float(t.score)))
            probs = t.action_probs
            action_id = int(probs.argmax()) if probs is not None else None
            action = self.action_names[action_id] if action_id is not None and action_id < len(self.action_names) else None
            self.frames.setdefault(tid, []).append(VicrFrame(
                index, round(timestamp, 4), tuple(float(v) for v in box), action, action_id,
                action_scores=None if probs is None else tuple(float(p) for p in probs), score=float(t.score)))

    def mot_rows(self) -> MotRows:
        if not self._rows:
            return MotRows.empty()
        frame, tid, boxes, scores = zip(*self._rows)
        n = len(frame)
        return MotRows(np.array(frame), np.array(tid), np.stack(boxes), np.array(scores), np.ones(n, int), np.ones(n))

    def vicr_labels(self, name: str, fps: float, width: int, height: int, total_frames: int,
                    tracker: MultiObjectTracker, partial: bool = False) -> VicrVideoLabels:
        """Per-person frames and the per-second action timeline each track kept. ``total_frames``
        is raised to the frames actually recorded when it is lower."""
        all_tracks = {t.track_id: t for t in [*tracker.tracks, *tracker.removed]}
        names = self.action_names
        people = {}
        for tid, frames in sorted(self.frames.items()):
            track = all_tracks.get(self._track_id[tid])
            timeline = {s: (names[a] if a < len(names) else str(a), a)
                        for s, (a, _) in (track.timeline().items() if track is not None else [])}
            people[f"id_{tid}"] = VicrPerson(frames=frames, action_timeline=timeline)
        total = max(int(total_frames or 0), self.last_index + 1)
        return VicrVideoLabels(VicrVideoInfo(name, float(fps), int(width), int(height), total, self.num_frames / float(fps)),
                               LabelMap({i: n for i, n in enumerate(names)}), people, partial=partial)
