"""From a video to the tubes the VLM sees: tracks, then per track and per second a few frames
cropped around the person (with context) and resized within the VLM's pixel budget, with their
true frame indices and timestamps.

A video is a video file, an image folder, or a MOTChallenge sequence folder (``seqinfo.ini`` +
``img1/``, or a video file instead of ``img1/`` as PETS09-S2L1 ships). One that cannot be read is
skipped and named; the others are labelled. Tracks come from a checkpoint of this framework (the
streaming pipeline), from an existing MOT file, or from detections plus the tracker; tracks
shorter than ``min_track_frames`` are skipped and counted (seed 000: 30 frames).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from common.errors import InputError
from data.video import VIDEO_EXTENSIONS


@dataclass
class VideoSource:
    """One input: where its frames are and what the pipeline calls it."""

    name: str
    path: Path  # video file, image folder, or sequence folder
    fps: float
    width: int
    height: int
    total_frames: int
    sequence: Path | None = None  # the MOTChallenge folder (for gt/gt.txt and det/det.txt)
    frames: Path | None = None  # where the frames are when not ``path``: a sequence's image folder or video

    def stream(self, log=None):
        from data.video import FrameStream
        return FrameStream(self.frames or self.path, fps=self.fps, log=log)


def find_videos(input_dir: Path, log) -> tuple[list[VideoSource], list[tuple[Path, str]]]:
    """The videos of ``input_dir`` (video files, and sequence folders with a seqinfo.ini), and
    those that cannot be read, skipped: ``(path, error)``. Raises when none can be read."""
    if not input_dir.is_dir():
        raise InputError(f"{input_dir}: input folder not found")
    found, skipped = [], []
    for entry in sorted(input_dir.iterdir()):
        is_sequence = entry.is_dir() and (entry / "seqinfo.ini").is_file()
        if not (is_sequence or (entry.is_file() and entry.suffix.lower() in VIDEO_EXTENSIONS)):
            continue
        try:
            found.append(_open(entry, is_sequence, log))
        except InputError as exc:
            log(f"warning: skipped: {exc}")
            skipped.append((entry, str(exc)))
    if not found:
        if skipped:
            raise InputError(f"{input_dir}: none of its {len(skipped)} videos can be read (first: {skipped[0][1]})")
        raise InputError(f"{input_dir}: no videos ({', '.join(VIDEO_EXTENSIONS)}) or sequence folders with a seqinfo.ini")
    return found, skipped


def _open(entry: Path, is_sequence: bool, log) -> VideoSource:
    """One input, its first frame decoded (so a corrupt file is found before any work)."""
    from data.formats.vicr import LabelMap
    from data.sequences import MotSequence
    from data.video import FrameStream

    if is_sequence:
        # MotSequence knows where a sequence's frames are (img1/ or a video file); an empty label
        # map keeps it from reading a dataset's label_map.txt, which tubes do not need.
        seq = MotSequence(entry, label_map=LabelMap({}))
        frames = seq.video_path or entry / seq.info.im_dir
        FrameStream(frames, fps=seq.fps, log=log)
        source = VideoSource(seq.name, entry, seq.fps, seq.width, seq.height, len(seq), entry, frames)
    else:
        stream = FrameStream(entry, log=log)
        if stream.fps_source == "assumed":
            log(f"warning: {entry}: no frame rate in the container: assuming {stream.fps:g} fps")
        source = VideoSource(entry.stem, entry, stream.fps, stream.width, stream.height, stream.frame_count)
    if not (math.isfinite(source.fps) and source.fps > 0):  # seconds and timestamps are counted in it
        raise InputError(f"{entry}: frame rate {source.fps} is not a finite number > 0")
    return source


# ------------------------------------------------------------------------------------ tracks
Tracks = dict  # track id -> [(frame index (0-based), xyxy box (4,))], frames in order


def tracks_from_rows(rows) -> Tracks:
    """MOT rows (1-based frames) -> tracks. Ground truth's ignore rows (conf 0) and non-pedestrian
    classes are left out."""
    keep = rows.track_id >= 0
    if rows.layout == "mot16":
        keep &= (rows.class_id == 1) & (rows.conf > 0)
    tracks: Tracks = {}
    for frame, track, box in zip(rows.frame[keep], rows.track_id[keep], rows.boxes[keep]):
        tracks.setdefault(int(track), []).append((int(frame) - 1, np.asarray(box, dtype=np.float64)))
    return {t: sorted(v, key=lambda fb: fb[0]) for t, v in sorted(tracks.items())}


def rows_from_tracks(tracks: Tracks) -> "MotRows":
    """Tracks -> MOT rows (1-based frames, confidence 1): :func:`tracks_from_rows` undone."""
    from data.formats.mot import MotRows
    rows = [(f + 1, t, box) for t, items in tracks.items() for f, box in items]
    n = len(rows)
    return MotRows(np.array([r[0] for r in rows], int), np.array([r[1] for r in rows], int),
                   np.array([r[2] for r in rows], float).reshape(n, 4), np.ones(n), np.ones(n, int), np.ones(n))


def resolve_rows_file(spec: str, video: VideoSource, kind: str) -> Path:
    """``--tracks``/``--detections`` for one video: a file, a folder of ``<video>.txt``, or the
    sequence's own ``gt``/``det`` file."""
    if spec in ("gt", "det"):
        if video.sequence is None:
            raise InputError(f"--{kind} {spec}: {video.path} is not a MOTChallenge sequence folder")
        path = video.sequence / spec / f"{spec}.txt"
    else:
        path = Path(spec)
        if path.is_dir():
            path = path / f"{video.name}.txt"
    if not path.is_file():
        raise InputError(f"{path}: {kind} file not found for video {video.name}")
    return path


def run_tracker(video: VideoSource, pipeline, detections=None, log=None) -> Tracks:
    """Tracks of ``video`` from a pipeline: the network's (``pipeline`` from a checkpoint) or the
    tracker's alone on ``detections`` (MOT rows)."""
    from common.progress import ProgressBar

    session = pipeline.start(fps=video.fps, name=video.name, width=video.width, height=video.height)
    bar = ProgressBar(video.total_frames or None, unit="frames")
    if detections is not None:
        threshold = pipeline.options.detection_threshold
        for index in range(video.total_frames):
            rows = detections.at_frame(index + 1)
            keep = rows.conf >= threshold
            session.step(index, index / video.fps, detections=(rows.boxes[keep], rows.conf[keep]))
            bar.update(index + 1, "tracking")
    else:
        for count, (index, timestamp, frame) in enumerate(video.stream(log=log), start=1):
            session.step(index, timestamp, frame)
            bar.update(count, "tracking")
    bar.close()
    return tracks_from_rows(session.mot_rows())


def keep_long_tracks(tracks: Tracks, min_frames: int) -> tuple[Tracks, int]:
    """Tracks with at least ``min_frames`` frames, and how many were shorter."""
    kept = {t: v for t, v in tracks.items() if len(v) >= min_frames}
    return kept, len(tracks) - len(kept)


# ------------------------------------------------------------------------------------- tubes
@dataclass
class TubeSecond:
    """One track during one second: the frames the VLM sees and where to cut them."""

    track: int
    second: int
    frame_indices: list[int]  # 0-based, ascending, at least 2 (Qwen3-VL merges frames in pairs)
    crop: tuple[int, int, int, int]  # x1, y1, x2, y2 in the frame's pixels, the same for every frame
    size: tuple[int, int]  # (width, height) the crop is resized to
    frames: list[bytes] = field(default_factory=list)  # JPEG bytes, filled by extract_frames


def _pick(indices: list[int], count: int) -> list[int]:
    if len(indices) <= count:
        return list(indices)
    return [indices[int(round(k))] for k in np.linspace(0, len(indices) - 1, count)]


def _resize_to_budget(width: int, height: int, min_pixels: int, max_pixels: int, multiple: int = 32) -> tuple[int, int]:
    """The crop's size scaled into ``[min_pixels, max_pixels]``, sides multiples of ``multiple``
    (the vision encoder's patch times its merge), aspect kept as well as that allows."""
    area = width * height
    scale = math.sqrt(min(max(area, min_pixels), max_pixels) / max(area, 1))
    w = max(multiple, int(round(width * scale / multiple)) * multiple)
    h = max(multiple, int(round(height * scale / multiple)) * multiple)
    while w * h > max_pixels and (w > multiple or h > multiple):
        if w >= h:
            w -= multiple
        else:
            h -= multiple
    return w, h


def plan_tubes(tracks: Tracks, fps: float, width: int, height: int, frames_per_second: int = 4, margin: float = 0.25,
               min_pixels: int = 64 * 64, max_pixels: int = 256 * 256) -> list[TubeSecond]:
    """Per track and per second it covers: ``frames_per_second`` frames evenly spread over the
    track's frames in that second (borrowing the nearest ones of its neighbouring seconds when a
    second holds fewer than two), one crop around the union of their boxes widened by ``margin``
    on every side, and its size within the pixel budget."""
    tubes = []
    for track, items in tracks.items():
        frames = [f for f, _ in items]
        boxes = {f: b for f, b in items}
        seconds = sorted({int(math.floor(f / fps + 1e-9)) for f in frames})
        for second in seconds:
            inside = [f for f in frames if int(math.floor(f / fps + 1e-9)) == second]
            if len(inside) < 2:  # borrow the nearest frames of this track around the second
                centre = (second + 0.5) * fps
                inside = sorted(sorted(frames, key=lambda f: (abs(f - centre), f))[:2])
                if len(inside) < 2:
                    continue
            chosen = _pick(inside, frames_per_second)
            union = np.array([boxes[f] for f in chosen])
            x1, y1 = union[:, 0].min(), union[:, 1].min()
            x2, y2 = union[:, 2].max(), union[:, 3].max()
            dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
            crop = (int(max(0, math.floor(x1 - dx))), int(max(0, math.floor(y1 - dy))),
                    int(min(width, math.ceil(x2 + dx))), int(min(height, math.ceil(y2 + dy))))
            if crop[2] - crop[0] < 2 or crop[3] - crop[1] < 2:
                continue  # the person is outside the frame
            size = _resize_to_budget(crop[2] - crop[0], crop[3] - crop[1], min_pixels, max_pixels)
            tubes.append(TubeSecond(track, second, chosen, crop, size))
    return tubes


def extract_frames(video: VideoSource, tubes: list[TubeSecond], jpeg_quality: int = 90, log=None) -> None:
    """Reads the video once and fills every tube's frames (cropped, resized, JPEG-encoded)."""
    from common.progress import ProgressBar

    wanted: dict[int, list[tuple[TubeSecond, int]]] = {}
    for tube in tubes:
        tube.frames = [b""] * len(tube.frame_indices)
        for slot, index in enumerate(tube.frame_indices):
            wanted.setdefault(index, []).append((tube, slot))
    last = max(wanted, default=-1)
    bar = ProgressBar(last + 1 or None, unit="frames")
    for count, (index, _, frame) in enumerate(video.stream(log=log), start=1):
        for tube, slot in wanted.pop(index, []):
            x1, y1, x2, y2 = tube.crop
            crop = cv2.resize(frame[y1:y2, x1:x2], tube.size, interpolation=cv2.INTER_AREA)
            ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])  # BGR in, a standard JPEG out
            tube.frames[slot] = data.tobytes()
        bar.update(count, "cutting tubes")
        if not wanted or index >= last:
            break
    bar.close()
    # Frames the video could not give (undecodable, or past a truncated end): the tube keeps the
    # ones it has if at least two remain.
    for tube in tubes:
        pairs = [(i, f) for i, f in zip(tube.frame_indices, tube.frames) if f]
        tube.frame_indices, tube.frames = [i for i, _ in pairs], [f for _, f in pairs]
