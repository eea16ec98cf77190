"""Collects what the tracker reports frame by frame and turns it into the result files:
MOTChallenge rows and V-ICR-style ``<video>.json``. Used by ``scripts/inference.py`` and
``scripts/evaluate.py``, so both write the same thing."""
from __future__ import annotations

import numpy as np

from data.formats.mot import MotRows
from data.formats.vicr import LabelMap, VicrFrame, VicrPerson, VicrVideoInfo, VicrVideoLabels
from tracking.tracker import Track, Tracker


class TrackRecorder:
    """``add(frame_index, timestamp, tracks)`` per frame (0-based index); ``mot_rows()`` and
    ``vicr_labels(...)`` at the end."""

    def __init__(self, action_names: list[str] | None = None):
        self.action_names = list(action_names or [])
        self.frames: dict[int, list[VicrFrame]] = {}  # track id -> its frames
        self._rows: list[tuple[int, int, np.ndarray, float]] = []
        self.num_frames = 0

    def add(self, index: int, timestamp: float, tracks: list[Track]) -> None:
        self.num_frames += 1
        for t in tracks:
            box = np.asarray(t.box, dtype=np.float64)  # the filtered estimate, as ByteTrack reports
            self._rows.append((index + 1, t.track_id, box, float(t.score)))
            probs = t.action_probs
            action_id = int(probs.argmax()) if probs is not None else None
            action = self.action_names[action_id] if action_id is not None and action_id < len(self.action_names) else None
            self.frames.setdefault(t.track_id, []).append(VicrFrame(
                index, round(timestamp, 4), tuple(float(v) for v in box), action, action_id,
                action_scores=None if probs is None else tuple(float(p) for p in probs), score=float(t.score)))

    def mot_rows(self) -> MotRows:
        if not self._rows:
            return MotRows.empty()
        frame, tid, boxes, scores = zip(*self._rows)
        n = len(frame)
        return MotRows(np.array(frame), np.array(tid), np.stack(boxes), np.array(scores), np.ones(n, int), np.ones(n))

    def vicr_labels(self, name: str, fps: float, width: int, height: int, total_frames: int,
                    tracker: Tracker) -> VicrVideoLabels:
        """Per-person frames and the per-second action timeline each track kept."""
        all_tracks = {t.track_id: t for t in tracker.tracks + tracker.removed}
        names = self.action_names
        people = {}
        for tid, frames in sorted(self.frames.items()):
            track = all_tracks.get(tid)
            timeline = {s: (names[a] if a < len(names) else str(a), a)
                        for s, (a, _) in (track.timeline().items() if track is not None else [])}
            people[f"id_{tid}"] = VicrPerson(frames=frames, action_timeline=timeline)
        total = max(int(total_frames or 0), self.num_frames)
        return VicrVideoLabels(VicrVideoInfo(name, float(fps), int(width), int(height), total, self.num_frames / float(fps)),
                               LabelMap({i: n for i, n in enumerate(names)}), people)
