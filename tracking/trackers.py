"""What a tracker must offer, and the trackers the pipeline can run, chosen by name.

The engine (:class:`tracking.streaming.StreamingEngine`), the session
(:class:`tracking.pipeline.Session`) and the recorder (:class:`tracking.recorder.TrackRecorder`)
use a tracker only through :class:`MultiObjectTracker`, and its tracks only through
:class:`ReportedTrack`; anything that offers those runs behind ``--tracker``. A new tracker is a
factory ``factory(*, config, fps) -> MultiObjectTracker`` and one call
``register_tracker("name", factory)``; tests/extending/test_new_tracker.py is a worked example.

Conventions, written once here for every tracker:

- boxes are ``[x1, y1, x2, y2]`` (xyxy) in pixels of the original frame, float64 numpy arrays;
  ``update`` gets ``(N, 4)``, a track's ``box`` is ``(4,)`` and may reach past the frame (the
  recorder clips it);
- scores are detection confidences in [0, 1]; timestamps are seconds, never decreasing within a
  video;
- ``frame_index`` counts the tracker's own ``update`` calls since ``reset()`` from 0 (-1 before the
  first); it keys the boxes in a track's ``history`` and the engine's frame buffers alike, so a
  video's undecodable, skipped frames do not shift the action tubes;
- a track's ``history`` holds its last observed (detected) boxes, oldest first, as
  ``(frame_index, box)``: the engine cuts the action tube from it.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from common.errors import InputError

if TYPE_CHECKING:
    from tracking.tracker import TrackerConfig


@runtime_checkable
class ReportedTrack(Protocol):
    """What the engine, the recorder and the drawing read or call on a track."""

    track_id: int  # > 0, unique within a video (the recorder renumbers them 1, 2, 3... in order of first report)
    box: np.ndarray  # (4,) xyxy: the box reported for this frame
    score: float  # the score of the detection last matched to it
    action_probs: np.ndarray | None  # (A,) time-smoothed action probabilities; None until add_action
    history: Iterable[tuple[int, np.ndarray]]  # (frame_index, observed xyxy box), oldest first

    def add_action(self, probs: np.ndarray, timestamp: float, smoothing: float) -> None:
        """This frame's action probabilities, smoothed over time with factor ``smoothing``."""

    def timeline(self) -> dict[int, tuple[int, float]]:
        """second -> (action id, mean smoothed probability of it over that second)."""


@runtime_checkable
class MultiObjectTracker(Protocol):
    """What the engine, the session and the recorder read or call on a tracker: one instance per
    video (``reset()`` starts another)."""

    frame_index: int  # update() calls since reset(), from 0; -1 before the first
    high_score: float  # the network computes embeddings only for detections at or above it
    action_smoothing: float  # the factor the engine passes to ReportedTrack.add_action
    tracks: Sequence[ReportedTrack]  # the tracks still alive, whatever their state
    removed: Sequence[ReportedTrack]  # finished tracks whose action timelines the recorder still writes

    def update(self, boxes: np.ndarray, scores: np.ndarray, embeddings: np.ndarray | None = None,
               timestamp: float | None = None) -> list[ReportedTrack]:
        """One frame's detections (``(N, 4)`` xyxy, ``(N,)`` scores, optional ``(N, D)``
        embeddings whose rows below ``high_score`` may be empty): returns the confirmed tracks
        observed in this frame."""

    def reset(self) -> None:
        """Forget every track and restart ids (a new video)."""


class TrackBase:
    """The part of a track every tracker shares: id, reported box and score, observed boxes (the
    action tube) and the action smoothing. :class:`tracking.tracker.Track` extends it; another
    tracker may use it as is, calling :meth:`observe` once per matched frame."""

    def __init__(self, track_id: int, *, history: int):
        self.track_id = track_id
        self.box: np.ndarray | None = None
        self.score = 0.0
        self.history: deque = deque(maxlen=history)
        self.action_probs: np.ndarray | None = None
        self.action_timeline: dict[int, dict] = {}  # second -> {"probs": summed probs, "n": count}

    def observe(self, frame_index: int, detection: np.ndarray, score: float, box: np.ndarray | None = None) -> None:
        """This frame's matched ``detection`` (xyxy, kept in the history) and the ``box`` to report
        (default: the detection; a filtered estimate otherwise)."""
        observed = np.array(detection, dtype=np.float64)  # a copy: the caller may reuse its buffer
        self.history.append((frame_index, observed))
        self.box = observed if box is None else np.array(box, dtype=np.float64)
        self.score = float(score)

    def add_action(self, probs: np.ndarray, timestamp: float, smoothing: float) -> None:
        """Smooth per-frame action probabilities over time and accumulate them per second."""
        probs = np.asarray(probs, dtype=np.float64)
        self.action_probs = probs if self.action_probs is None else smoothing * self.action_probs + (1 - smoothing) * probs
        second = int(np.floor(timestamp + 1e-9))
        entry = self.action_timeline.setdefault(second, {"probs": np.zeros_like(probs), "n": 0})
        entry["probs"] = entry["probs"] + self.action_probs
        entry["n"] += 1

    def timeline(self) -> dict[int, tuple[int, float]]:
        """second -> (action id, mean smoothed probability of it over that second)."""
        out = {}
        for second, entry in sorted(self.action_timeline.items()):
            mean = entry["probs"] / max(entry["n"], 1)
            out[second] = (int(mean.argmax()), float(mean.max()))
        return out


@dataclass
class FrameResult:
    """One frame, as the engine and the session return it: the confirmed tracks observed in it and
    the detections they came from (xyxy pixels of the frame; the network's raw output, or the
    detections given)."""

    index: int
    timestamp: float
    tracks: list[ReportedTrack]
    detection_boxes: np.ndarray  # (D, 4)
    detection_scores: np.ndarray  # (D,)

    @property
    def detections(self) -> int:
        return len(self.detection_boxes)


class TrackerFactory(Protocol):
    def __call__(self, *, config: TrackerConfig, fps: float) -> MultiObjectTracker:
        """A fresh tracker for one video: ``config`` holds the thresholds the flags set (a tracker
        maps those it has a counterpart for), ``fps`` the video's frame rate."""


# The documented way to add a tracker is a register_tracker call at import time, from this module
# for the project's own trackers and from a researcher's module for theirs; the pipeline and the
# --tracker flag read this one mapping, so a registered tracker needs no other edit.
_REGISTRY: dict[str, TrackerFactory] = {}
TRACKERS: Mapping[str, TrackerFactory] = MappingProxyType(_REGISTRY)
DEFAULT_TRACKER = "mot-action"


def register_tracker(name: str, factory: TrackerFactory) -> None:
    """Makes ``factory`` available as ``--tracker name`` / ``PipelineOptions(tracker_name=name)``
    (register before the command line is parsed: the flag's choices are read then). A name taken
    twice is a programming error."""
    if not isinstance(name, str) or not name or name != name.strip() or " " in name:
        raise ValueError(f"a tracker name is one word, got {name!r}")
    if not callable(factory):
        raise TypeError(f"tracker {name!r}: the factory must be callable, got {factory!r}")
    if name in _REGISTRY:
        raise ValueError(f"tracker {name!r} is already registered")
    _REGISTRY[name] = factory


def unregister_tracker(name: str) -> None:
    """Removes a tracker registered for a while only (a test's own)."""
    del _REGISTRY[name]


def check_tracker_name(name: str) -> None:
    if name not in _REGISTRY:
        raise InputError(f"tracker {name!r}: unknown; registered: {', '.join(sorted(_REGISTRY))}")


def build_tracker(name: str, *, config: TrackerConfig, fps: float) -> MultiObjectTracker:
    """A fresh tracker ``name`` for one video."""
    check_tracker_name(name)
    tracker = _REGISTRY[name](config=config, fps=fps)
    if not isinstance(tracker, MultiObjectTracker):
        raise TypeError(f"tracker {name!r}: its factory built {type(tracker).__name__}, which lacks part of "
                        "tracking.trackers.MultiObjectTracker")
    return tracker


def _mot_action(*, config: TrackerConfig, fps: float) -> MultiObjectTracker:
    # Imported when built: tracking.tracker imports this module (TrackBase).
    from tracking.tracker import Tracker
    return Tracker(config, fps=fps)


def _ultralytics(kind: str) -> TrackerFactory:
    def build(*, config: TrackerConfig, fps: float) -> MultiObjectTracker:
        # Imported when chosen: its module imports this one, and ultralytics is optional.
        from tracking.ultralytics_trackers import UltralyticsTracker
        return UltralyticsTracker(kind=kind, config=config, fps=fps)
    return build


register_tracker(DEFAULT_TRACKER, _mot_action)
register_tracker("bytetrack", _ultralytics("bytetrack"))
register_tracker("botsort", _ultralytics("botsort"))
