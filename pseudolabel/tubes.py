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

from dataclasses import dataclass
from pathlib import Path

import cv2

from common.errors import InputError
from data.formats.mot import Tracks, tracks_from_rows
from data.tubes import TubeSecond, crop_tube_frame
from data.video import VIDEO_EXTENSIONS
from tracking.runner import track_video


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
    return source  # a frame rate is finite and > 0: read_seqinfo and FrameStream see to it


# ------------------------------------------------------------------------------------ tracks
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
    frames = video.stream(log=log) if detections is None else None
    return tracks_from_rows(track_video(pipeline, name=video.name, fps=video.fps, width=video.width,
                                        height=video.height, frames=frames, total_frames=video.total_frames,
                                        detections=detections))


def keep_long_tracks(tracks: Tracks, min_frames: int) -> tuple[Tracks, int]:
    """Tracks with at least ``min_frames`` frames, and how many were shorter."""
    kept = {t: v for t, v in tracks.items() if len(v) >= min_frames}
    return kept, len(tracks) - len(kept)


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
            crop = crop_tube_frame(frame, tube)
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
