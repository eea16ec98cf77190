"""Choosing the tracker's score thresholds for a detector on a validation split.

A detector's scores mean what its training made them mean: the joint network's focal loss and
YOLO11n's loss give differently spread scores, and trackers' fixed defaults (``high_score`` 0.5,
``new_track_score`` 0.6) fit neither by construction. :func:`record_network` (or
:func:`record_rows` for given detections) runs the detector once over ground-truth sequences that
did not train it and records every detection (with the embeddings the tracker would read);
:func:`calibrate` replays them into a fresh tracker for each setting of
:func:`grid_for` (score thresholds, and for this project's tracker whether it reports the Kalman
estimate or the matched detection) and scores each with the evaluator's tracking metrics; the
setting with the best ``criterion`` (HOTA unless said) is chosen. Replay is exact: the network's outputs do not depend
on the tracker, and the tracker reads appearance only of detections at or above its own
``high_score``. ``scripts/calibrate_tracker.py`` records the choice in the checkpoint, where
:class:`tracking.pipeline.Pipeline` reads it; the specialists' benchmark calibrates every
pipeline the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from common.errors import InputError

# (high_score, new_track_score): high from 0.3 to 0.7, a new track at the same score or up to 0.2 above.
THRESHOLDS: tuple[tuple[float, float], ...] = tuple((high, round(high + step, 2)) for high in (0.3, 0.4, 0.5, 0.6, 0.7)
                                                    for step in (0.0, 0.1, 0.2))
CRITERIA = ("HOTA", "MOTA", "IDF1")


def grid_for(tracker_name: str) -> tuple[dict, ...]:
    """The settings tried for a tracker: every pair of :data:`THRESHOLDS`, and for this project's
    tracker each with the reported box its filtered estimate or the matched detection
    (``report_observation``: which localises better depends on how noisy the detector's boxes are)."""
    from tracking.trackers import DEFAULT_TRACKER
    reports = (False, True) if tracker_name == DEFAULT_TRACKER else (None,)
    return tuple({"high_score": high, "new_track_score": new, **({} if report is None else {"report_observation": report})}
                 for report in reports for high, new in THRESHOLDS)


@dataclass(frozen=True)
class FrameDetections:
    """What a detector gave the tracker in one frame."""

    timestamp: float
    boxes: np.ndarray  # (D, 4) xyxy pixels of the frame
    scores: np.ndarray  # (D,)
    embeddings: np.ndarray | None  # (D, E), rows of zeros below the recording's high_score; None: no appearance


@dataclass(frozen=True)
class RecordedSequence:
    name: str
    fps: float
    width: int
    height: int
    frames: tuple[FrameDetections, ...]  # the sequence's frames in order, frame k is MOT frame k + 1
    # Replay equals a live run only for settings at or above what was recorded: the lowest score
    # kept, and the lowest score embedded (None: no appearance recorded, any high_score replays).
    score_floor: float = 0.0
    embed_floor: float | None = None

    def check_replayable(self, config) -> None:
        if config.low_score < self.score_floor or (self.embed_floor is not None and config.high_score < self.embed_floor):
            raise ValueError(f"{self.name}: recorded detections from {self.score_floor} and embeddings from "
                             f"{self.embed_floor}: low_score {config.low_score} / high_score {config.high_score} "
                             "would need what was not recorded")


@dataclass(frozen=True)
class Calibration:
    settings: dict  # the chosen TrackerConfig fields (high_score, new_track_score[, report_observation])
    criterion: str
    table: tuple[dict, ...]  # per setting tried: its fields, then MOTA, IDF1, HOTA, FP, FN, IDsw
    chosen: int  # the row of table chosen

    def config(self, base):
        """``base`` (a :class:`~tracking.tracker.TrackerConfig`) with the chosen settings."""
        return base.with_scores(**self.settings)


class _RecordingTracker:
    """A :class:`~tracking.trackers.MultiObjectTracker` that passes every call to ``inner`` and keeps
    what each frame gave it."""

    def __init__(self, inner):
        self.inner = inner
        self.frames: list[FrameDetections] = []

    frame_index = property(lambda self: self.inner.frame_index)
    high_score = property(lambda self: self.inner.high_score)
    action_smoothing = property(lambda self: self.inner.action_smoothing)
    tracks = property(lambda self: self.inner.tracks)
    removed = property(lambda self: self.inner.removed)

    def update(self, boxes, scores, embeddings=None, timestamp=None):
        self.frames.append(FrameDetections(
            float(timestamp), np.array(boxes, dtype=np.float64).reshape(-1, 4), np.array(scores, dtype=np.float64),
            None if embeddings is None else np.array(embeddings, dtype=np.float32)))
        return self.inner.update(boxes, scores, embeddings, timestamp)

    def reset(self) -> None:
        self.inner.reset()
        self.frames.clear()


def record_network(pipeline, sequences: dict, lowest_high_score: float = THRESHOLDS[0][0], log=None) -> list[RecordedSequence]:
    """Runs ``pipeline`` (a :class:`tracking.pipeline.Pipeline` with a network) over the
    ground-truth ``sequences`` (``{name: GtSequence}``, whole sequences) and records its
    detections, with embeddings for every detection at or above ``lowest_high_score``."""
    from data.sequences import MotSequence
    from tracking.trackers import build_tracker

    if pipeline.model is None:
        raise ValueError("record_network needs a pipeline with a network; given detections: record_rows")
    config = pipeline.options.tracker.with_scores(high_score=lowest_high_score, new_track_score=lowest_high_score)
    recorded = []
    for name, gt_seq in sequences.items():
        seq = MotSequence(gt_seq.root)
        recorder = _RecordingTracker(build_tracker(pipeline.options.tracker_name, config=config, fps=seq.fps))
        session = pipeline.start(fps=seq.fps, name=name, width=seq.width, height=seq.height, tracker=recorder)
        session.engine.actions = False  # actions change neither the detections nor the tracks
        for index in range(gt_seq.num_frames):  # as evaluation.protocol.run_checkpoint runs a sequence
            session.step(index, index / seq.fps, seq.frame(index))
        if log:
            log(f"{name}: {gt_seq.num_frames} frames run")
        recorded.append(RecordedSequence(name, seq.fps, seq.width, seq.height, tuple(recorder.frames),
                                         score_floor=pipeline.options.detection_threshold,
                                         embed_floor=lowest_high_score))
    return recorded


def record_rows(rows_of: dict, sequences: dict) -> list[RecordedSequence]:
    """Detections given as MOT rows (``{name: MotRows}``, frames numbered from 1) of the
    ground-truth ``sequences``, as recordings without appearance."""
    from data.sequences import MotSequence

    recorded = []
    for name, gt_seq in sequences.items():
        seq, rows = MotSequence(gt_seq.root), rows_of[name]
        frames = []
        for index in range(gt_seq.num_frames):
            at = rows.at_frame(index + 1)
            frames.append(FrameDetections(index / seq.fps, np.asarray(at.boxes, np.float64).reshape(-1, 4),
                                          np.asarray(at.conf, np.float64), None))
        recorded.append(RecordedSequence(name, seq.fps, seq.width, seq.height, tuple(frames)))
    return recorded


def replay(recorded: RecordedSequence, tracker_name: str, config):
    """The MOT rows the tracker ``tracker_name`` with ``config`` (a
    :class:`~tracking.tracker.TrackerConfig`) gives on a recording."""
    from tracking.pipeline import Pipeline, PipelineOptions

    recorded.check_replayable(config)
    session = Pipeline.tracker_only(PipelineOptions(tracker=config, tracker_name=tracker_name)).start(
        fps=recorded.fps, name=recorded.name, width=recorded.width, height=recorded.height)
    for index, frame in enumerate(recorded.frames):
        keep = frame.scores >= config.low_score
        embeddings = None
        if frame.embeddings is not None:
            # As the network computes them for this high_score: none below it.
            embeddings = np.where((frame.scores >= config.high_score)[:, None], frame.embeddings, 0.0)[keep]
        session.step(index, frame.timestamp, detections=(frame.boxes[keep], frame.scores[keep], embeddings))
    return session.mot_rows()


def calibrate(recorded: list[RecordedSequence], sequences: dict, *, tracker_name: str, base, criterion: str = "HOTA",
              grid: tuple[dict, ...] | None = None) -> Calibration:
    """Scores every setting of ``grid`` (default :func:`grid_for` the tracker; ``base``'s own
    setting is added when the grid lacks it, as for ultralytics' 0.25 thresholds) on the recordings
    against the ``sequences``' ground truth and chooses the best by ``criterion`` (ties: the first
    in the grid, after ``base``'s own setting); ``base``: the :class:`~tracking.tracker.TrackerConfig`
    whose other settings stay."""
    from evaluation.protocol import SequenceResult, preprocessed, tracking_table

    if criterion not in CRITERIA:
        raise InputError(f"criterion {criterion!r}: expected one of {', '.join(CRITERIA)}")
    if not recorded:
        raise InputError("no sequences to calibrate on")
    grid, table = grid or grid_for(tracker_name), []
    own = {key: getattr(base, key) for key in grid[0]}
    if own not in grid:  # the tracker's own settings are always tried: calibration never loses to them on this data
        grid = (own, *grid)
    for settings in grid:
        config = base.with_scores(**settings)
        results = {r.name: SequenceResult(replay(r, tracker_name, config), None, Path(r.name)) for r in recorded}
        combined = tracking_table(list(preprocessed(sequences, results).values()))["COMBINED"]
        table.append({**settings, "MOTA": combined["mota"], "IDF1": combined["idf1"], "HOTA": combined["HOTA"],
                      "FP": int(combined["num_false_positives"]), "FN": int(combined["num_misses"]),
                      "IDsw": int(combined["num_switches"])})
    # A setting that tracks nothing scores NaN: never chosen over one that does. On a tie (an
    # untrained network scores 0 everywhere) the tracker's own settings stay.
    is_base = [all(getattr(base, key) == value for key, value in settings.items()) for settings in grid]
    best = max(range(len(table)), key=lambda k: (np.nan_to_num(table[k][criterion], nan=-np.inf), is_base[k], -k))
    settings = {key: table[best][key] for key in grid[best]}
    return Calibration(settings, criterion, tuple(table), best)


def format_settings(settings: dict) -> str:
    """``high_score=0.5, new_track_score=0.7, report_observation=True``."""
    return ", ".join(f"{key}={value}" for key, value in settings.items())


def format_calibration(calibration: Calibration) -> str:
    """The table of every setting tried, the chosen one marked."""
    keys = list(calibration.settings)
    heads = {"high_score": "high", "new_track_score": "new", "report_observation": "report"}
    lines = ["| " + " | ".join(heads[k] for k in keys) + " | MOTA | IDF1 | HOTA | FP | FN | IDsw |",
             "|---" * (len(keys) + 6) + "|"]
    for k, row in enumerate(calibration.table):
        cells = [("detection" if row[key] else "estimate") if key == "report_observation" else f"{row[key]:.2f}"
                 for key in keys]
        cells[0] += " (chosen)" if k == calibration.chosen else ""
        lines.append("| " + " | ".join(cells) + f" | {row['MOTA']:.2f} | {row['IDF1']:.2f} | {row['HOTA']:.2f} | "
                     f"{row['FP']} | {row['FN']} | {row['IDsw']} |")
    return "\n".join(lines)


def calibrate_checkpoint(checkpoint, gt_root: Path, *, criterion: str = "HOTA", options=None, write: bool = True,
                         log=None) -> Calibration:
    """Calibrates the tracker for ``checkpoint``'s network on the ground-truth sequences under
    ``gt_root`` (a validation split: never the frames that will score it) and, with ``write``,
    records the chosen settings in the checkpoint. ``options``: the
    :class:`~tracking.pipeline.PipelineOptions` it runs with (its tracker's other settings stay)."""
    from evaluation.protocol import find_gt_sequences
    from tracking.pipeline import Pipeline, PipelineOptions
    from train.checkpoint import record_tracker_settings

    options = replace(options or PipelineOptions(), checkpoint_thresholds=False)
    sequences = find_gt_sequences(Path(gt_root), None)  # a wrong folder is refused before the model loads
    people = sum(int(((seq.gt.conf != 0) & ((seq.gt.class_id == 1) | (not seq.class_aware))).sum())
                 for seq in sequences.values())
    if people == 0:  # every setting would score alike (0 or NaN) and the pick would be arbitrary
        raise InputError(f"{gt_root}: no ground-truth people to calibrate on (every gt row is empty, "
                         "an ignore region or another class)")
    pipeline = Pipeline.from_checkpoint(checkpoint, options)
    recorded = record_network(pipeline, sequences, log=log)
    calibration = calibrate(recorded, sequences, tracker_name=options.tracker_name, base=options.tracker,
                            criterion=criterion)
    if write:
        frames = sum(len(r.frames) for r in recorded)
        record_tracker_settings(checkpoint, calibration.settings,
                                f"{gt_root} ({len(recorded)} sequences, {frames} frames) by {criterion}",
                                tracker=options.tracker_name)
    return calibration
