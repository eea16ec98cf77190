"""A tracker in one file, the worked example of docs/extending.md ("Adding a tracker"):

    python scripts/inference.py --plugin docs/examples/iou_tracker.py --tracker iou --detections det.txt --save-mot out.txt

Greedy IoU association, nothing else (no motion model, no appearance). What it takes: a class
offering :class:`tracking.trackers.MultiObjectTracker` (its tracks can be
:class:`~tracking.trackers.TrackBase`, which keeps the action tube and smooths actions), a factory
``(*, config, fps)``, and one ``register_tracker`` call at import. tests/extending/test_new_tracker.py
runs this file end to end.
"""
import numpy as np

from common.boxes import iou_matrix
from tracking.tracker import TrackerConfig
from tracking.trackers import TrackBase, register_tracker


class IouTracker:
    """Each detection, highest score first, continues the free track whose last box it overlaps
    most (at least ``min_iou``), or starts one; a track unseen for ``lost_buffer_s`` ends."""

    def __init__(self, *, config: TrackerConfig, fps: float, min_iou: float = 0.3):
        self.high_score, self.action_smoothing = config.high_score, config.action_smoothing  # read by the engine
        self.history = config.history
        self.max_gap = max(int(round(config.lost_buffer_s * fps)), 1)  # frames
        self.min_iou = min_iou
        self.reset()

    def reset(self) -> None:
        self.tracks, self.removed, self.frame_index, self._next_id = [], [], -1, 1
        self._last_seen: dict[int, int] = {}  # track id -> frame_index

    def update(self, boxes, scores, embeddings=None, timestamp=None) -> list[TrackBase]:
        self.frame_index += 1
        boxes, scores = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64).reshape(-1)
        free, observed = list(self.tracks), []
        for d in np.argsort(-scores, kind="stable"):
            overlap = iou_matrix(boxes[d], np.array([t.box for t in free]).reshape(-1, 4))[0]
            if len(free) and overlap.max() >= self.min_iou:
                track = free.pop(int(overlap.argmax()))
            else:
                track = TrackBase(self._next_id, history=self.history)
                self._next_id += 1
                self.tracks.append(track)
            track.observe(self.frame_index, boxes[d], scores[d])
            self._last_seen[track.track_id] = self.frame_index
            observed.append(track)
        ended = [t for t in free if self.frame_index - self._last_seen[t.track_id] > self.max_gap]
        self.removed += ended
        self.tracks = [t for t in self.tracks if t not in ended]
        return observed


register_tracker("iou", lambda *, config, fps: IouTracker(config=config, fps=fps))
