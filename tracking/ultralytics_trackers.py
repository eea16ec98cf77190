"""ultralytics' ByteTrack and BoT-SORT behind :class:`tracking.trackers.MultiObjectTracker`
(``--tracker bytetrack`` / ``--tracker botsort``): the same network, engine, action tubes and
outputs, another association. ultralytics comes with the ``bench`` extra and is imported only when
one of them is built.

The :class:`~tracking.tracker.TrackerConfig` thresholds that have a counterpart are mapped
(``high_score``, ``low_score``, ``new_track_score`` to ``track_high_thresh``, ``track_low_thresh``,
``new_track_thresh``; ``lost_buffer_s`` to ``track_buffer``, in frames at the video's rate); the
others are ultralytics' own, read from its ``bytetrack.yaml`` / ``botsort.yaml``. The protocol
hands trackers boxes, not frames, so BoT-SORT runs without camera-motion compensation and, like
ByteTrack, without appearance (the network's embeddings are not passed on). Both count frames,
not seconds: timestamps are not read.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from common.errors import InputError
from tracking.tracker import TrackerConfig
from tracking.trackers import ReportedTrack, TrackBase

KINDS = ("bytetrack", "botsort")
INSTALL = 'pip install -c constraints-bench.txt -e ".[bench,deploy]"'


class _Detections:
    """The part of ultralytics' ``Boxes`` (after ``.cpu().numpy()``) its trackers read: ``conf``,
    ``cls``, ``xyxy``, ``xywh`` (centre, size), ``len`` and boolean indexing."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray):
        self.xyxy, self.conf = xyxy, conf
        self.cls = np.zeros(len(conf), dtype=np.float32)  # one class: person
        self.xywh = np.concatenate([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index) -> "_Detections":
        return _Detections(self.xyxy[index], self.conf[index])


def _not_installed(kind: str, exc: ImportError) -> InputError:
    return InputError(f"tracker {kind!r} is ultralytics' ({exc.name} is not installed): install the bench extra, {INSTALL}")


def _own_settings(kind: str) -> dict:
    """ultralytics' ``<kind>.yaml`` (bytetrack or botsort), as its ``model.track`` reads it."""
    try:
        import ultralytics
        import yaml
    except ImportError as exc:
        raise _not_installed(kind, exc) from exc
    return yaml.safe_load((Path(ultralytics.__file__).parent / "cfg" / "trackers" / f"{kind}.yaml").read_text())


def default_config(kind: str, fps: float) -> TrackerConfig:
    """ultralytics' own settings for ``kind`` as the :class:`TrackerConfig` this adapter maps back
    to them at ``fps``: its yaml's thresholds and its lost buffer in frames (``model.track`` builds
    its trackers for 30 fps whatever the video's rate, so the buffer is that many frames). This
    project's defaults are another tracker's; a specialist "at its defaults" runs with these."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    own = _own_settings(kind)
    return TrackerConfig(high_score=float(own["track_high_thresh"]), low_score=float(own["track_low_thresh"]),
                         new_track_score=float(own["new_track_thresh"]), lost_buffer_s=int(own["track_buffer"]) / fps)


class UltralyticsTracker:
    """One of ultralytics' trackers (``kind``: bytetrack or botsort) for one video."""

    def __init__(self, *, kind: str, config: TrackerConfig, fps: float):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if not isinstance(config, TrackerConfig):
            raise TypeError(f"config: expected a TrackerConfig, got {type(config).__name__}")
        config.check()
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        settings = _own_settings(kind)
        try:
            from ultralytics.trackers.bot_sort import BOTSORT
            from ultralytics.trackers.byte_tracker import BYTETracker
        except ImportError as exc:  # ultralytics there, a tracker's own dependency (lap) not
            raise _not_installed(kind, exc) from exc
        settings.update(track_high_thresh=config.high_score, track_low_thresh=config.low_score,
                        new_track_thresh=config.new_track_score,
                        track_buffer=max(int(round(config.lost_buffer_s * fps)), 1))
        if kind == "botsort":
            settings.update(gmc_method="none", with_reid=False)  # no frames, no appearance: see the module's docstring
        self._cls, self._args = (BOTSORT if kind == "botsort" else BYTETracker), SimpleNamespace(**settings)
        self.kind, self.config, self.fps = kind, config, fps
        self.high_score, self.action_smoothing = config.high_score, config.action_smoothing
        self.reset()

    def reset(self) -> None:
        # A new instance rather than its reset(): the same call in every ultralytics version.
        self._tracker = self._cls(self._args)
        self.tracks: list[TrackBase] = []
        self.removed: list[TrackBase] = []
        self.frame_index = -1

    def update(self, boxes: np.ndarray, scores: np.ndarray, embeddings: np.ndarray | None = None,
               timestamp: float | None = None) -> list[ReportedTrack]:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(scores) != len(boxes):
            raise ValueError(f"got {len(boxes)} boxes and {len(scores)} scores")
        self.frame_index += 1
        # float32, as ultralytics' own detections reach its trackers.
        rows = self._tracker.update(_Detections(boxes.astype(np.float32), scores.astype(np.float32)), None)
        known = {t.track_id: t for t in self.tracks}
        observed = []
        for row in np.asarray(rows, dtype=np.float64).reshape(-1, 8):  # x1 y1 x2 y2 id score cls detection-index
            track_id, detection = int(row[4]), int(row[7])
            track = known.get(track_id)
            if track is None:
                track = known[track_id] = TrackBase(track_id, history=self.config.history)
                self.tracks.append(track)
            track.observe(self.frame_index, boxes[detection], scores[detection], box=row[:4])
            observed.append(track)
        alive = {int(t.track_id) for t in (*self._tracker.tracked_stracks, *self._tracker.lost_stracks)}
        self.removed += [t for t in self.tracks if t.track_id not in alive]
        self.tracks = [t for t in self.tracks if t.track_id in alive]
        return observed
