"""Running a :class:`~tracking.pipeline.Pipeline` over one video, image folder, camera or
det.txt, with the outputs a user asks for: an annotated video, a V-ICR JSON, a MOTChallenge file,
a live window. ``scripts/inference.py`` is this module's command line.

Every output path is checked before the first frame, so a bad path fails at once instead of after
the whole video. The annotated video is written under a temporary name and renamed when complete.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import InputError
from common.io import check_output_path, check_outputs_apart
from common.progress import ProgressBar
from tracking.pipeline import Pipeline


@dataclass(frozen=True)
class Outputs:
    video: Path | None = None  # annotated video (.mp4 or .avi)
    json: Path | None = None  # V-ICR <video>.json
    mot: Path | None = None  # MOTChallenge tracker result
    show: bool = False  # live window when a display can be opened
    show_speed: float = 1.0  # the window plays at the video's frame rate times this (0: as fast as it runs)
    trail: int = 12  # trail length in frames (0: none)

    @property
    def any(self) -> bool:
        return bool(self.video or self.json or self.mot or self.show)


def _detection_source(path: Path, video, fps: float | None, log):
    """``(rows, meta, stream or None, frames)`` for the tracker alone on a det.txt. Detections for
    frames the sequence does not have, and a video that is not the detections' sequence (another
    size or length than its seqinfo.ini says), are :class:`InputError` s."""
    from common.errors import FormatError
    from data.formats.mot import read_mot_file, read_seqinfo
    from data.video import DEFAULT_FPS, FrameStream

    rows = read_mot_file(path)
    seqinfo = path.parent.parent / "seqinfo.ini"
    info = read_seqinfo(seqinfo) if seqinfo.is_file() else None
    rate = fps or (info.frame_rate if info else None)
    last = int(rows.frame.max()) if len(rows) else 0
    if info is not None and last > info.seq_length:
        raise FormatError(path, f"detections for frame {last}, but {seqinfo} says the sequence has {info.seq_length}")
    if video is not None:
        stream = FrameStream(video, fps=rate, log=log)
        if info is not None and (stream.width, stream.height) != (info.width, info.height):
            raise InputError(f"{video}: {stream.width}x{stream.height} frames, but the detections' sequence "
                             f"({seqinfo}) is {info.width}x{info.height}: not the same video")
        if info is not None and stream.frame_count and stream.frame_count != info.seq_length:
            raise InputError(f"{video}: {stream.frame_count} frames, but the detections' sequence ({seqinfo}) has "
                             f"{info.seq_length}: not the same video")
        if stream.frame_count and last > stream.frame_count:
            raise FormatError(path, f"detections for frame {last}, but {video} has {stream.frame_count} frames")
        if len(rows) and (rows.boxes[:, 2].min() > stream.width or rows.boxes[:, 3].min() > stream.height):
            raise FormatError(path, f"no detection lies inside {video}'s {stream.width}x{stream.height} frames")
        meta = {"name": stream.name, "fps": stream.fps, "width": stream.width, "height": stream.height,
                "frames": stream.frame_count}
        return rows, meta, stream, iter(stream)
    if rate is None:
        log(f"warning: {path}: no frame rate known (no seqinfo.ini beside det/): assuming {DEFAULT_FPS:g} fps; "
            "the tracker's time buffers depend on it, give --fps")
        rate = DEFAULT_FPS
    n = info.seq_length if info else last
    meta = {"name": info.name if info else path.parent.parent.name, "fps": rate,
            "width": info.width if info else int(np.ceil(rows.boxes[:, 2].max())) if len(rows) else 0,
            "height": info.height if info else int(np.ceil(rows.boxes[:, 3].max())) if len(rows) else 0, "frames": n}
    return rows, meta, None, ((i, i / rate, None) for i in range(n))


WINDOW = "mot-action"
KEY_SPACE, KEY_ESC = 32, 27


class Player:
    """Paces and steers the live window: frames play at the video's ``fps`` times ``speed`` (0: as
    fast as they come), space pauses and resumes, q, Esc or closing the window stops.

    ``window`` shows images and reads keys (:class:`_Window`, or a stand-in in tests: ``show(image)``,
    ``wait_key(ms) -> int`` (-1: none), ``visible() -> bool``); ``clock`` gives seconds. Each frame is
    held until its due time on a playback clock, so the time spent processing the next frame counts
    towards it; a run slower than real time (or a pause) moves the clock instead of leaving a debt to
    catch up on.
    """

    def __init__(self, window, fps: float, speed: float = 1.0, total: int | None = None,
                 clock=time.monotonic, poll_ms: int = 50):
        self.window, self.speed, self.total, self.clock, self.poll_ms = window, speed, total, clock, poll_ms
        self.period = 1.0 / (fps * speed) if speed > 0 and fps and fps > 0 else None
        self.paused = False
        self.waited = 0.0  # seconds spent holding frames and paused, not processing
        self._anchor, self._since_anchor = None, 0  # playback clock: frame n of it is due at anchor + n * period
        self._returned, self._took = None, None  # for the processing rate
        self._image, self._number = None, 0

    @property
    def processing_fps(self) -> float | None:
        return 1.0 / self._took if self._took else None

    def show(self, image, number: int) -> bool:
        """Shows frame ``number`` (1-based) and holds it until the next one is due; False when the
        user asked to stop."""
        now = self.clock()
        if self._returned is not None:
            # The time outside the player is what the frame cost to process and draw.
            took = max(now - self._returned, 1e-6)
            self._took = took if self._took is None else 0.9 * self._took + 0.1 * took
        self._image, self._number = image, number
        self._render()
        if self.period is None:
            due = now
        else:
            if self._anchor is None:
                self._anchor, self._since_anchor = now, 0
            elif now - (self._anchor + self._since_anchor * self.period) > self.period:
                # Behind by more than a frame: this one goes at once and the next is due a period
                # after it, owing nothing. (A smaller lag is made up, so jitter does not slow playback.)
                self._anchor, self._since_anchor = now - self.period, 0
            self._since_anchor += 1
            due = self._anchor + self._since_anchor * self.period
        keep_going = self._wait_until(due)
        self._returned = self.clock()
        self.waited += self._returned - now
        return keep_going

    def _wait_until(self, due: float) -> bool:
        while True:
            remaining_ms = int(math.ceil((due - self.clock()) * 1000))
            # At least one wait per frame: OpenCV draws the window and reads keys only in waitKey.
            key = self.window.wait_key(max(1, min(self.poll_ms, remaining_ms)))
            if not self._react(key):
                return False
            if self.paused:
                return self._pause()
            if self.clock() >= due:
                return True

    def _react(self, key: int) -> bool:
        key = key & 0xFF if key is not None and key >= 0 else -1
        if key in (ord("q"), ord("Q"), KEY_ESC) or not self.window.visible():
            return False
        if key == KEY_SPACE:
            self.paused = not self.paused
            self._render()
        return True

    def _pause(self) -> bool:
        while self.paused:
            if not self._react(self.window.wait_key(self.poll_ms)):
                return False
        # The pause is not time to make up: the next frame is due one period from now.
        self._anchor, self._since_anchor = self.clock(), 0
        return True

    def _render(self) -> None:
        """The frame with its number, the processing rate and the speed (or "paused"), on a copy:
        the annotated video is written without them."""
        from common.drawing import draw_label
        image = self._image.copy()
        rate = self.processing_fps
        lines = [f"frame {self._number}" + (f"/{self.total}" if self.total else "")
                 + (f"  {rate:.1f} fps" if rate else ""),
                 "paused" if self.paused else (f"x{self.speed:g}" if self.speed > 0 else "max speed")]
        scale = 0.6 if image.shape[0] > 400 else 0.35
        y = 0
        for line in lines:
            y += draw_label(image, line, (0, y), (0, 0, 0), (255, 255, 255), scale, pad=(3, 2))
        self.window.show(image)


class _Window:
    """The OpenCV window. OpenCV aborts the whole process when it cannot open a window, so
    :func:`display_available` tries one in a child process before this is made."""

    def __init__(self):
        self._seen = False  # some backends report no visibility at all: only a window seen open can close

    def show(self, image) -> None:
        import cv2
        cv2.imshow(WINDOW, image)

    def wait_key(self, ms: int) -> int:
        import cv2
        return cv2.waitKey(ms)

    def visible(self) -> bool:
        import cv2
        try:
            shown = cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:  # the window is gone
            shown = False
        self._seen = self._seen or shown
        return shown or not self._seen

    def close(self) -> None:
        import cv2
        cv2.destroyAllWindows()


def display_available() -> bool:
    import subprocess
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    probe = "import cv2; cv2.namedWindow('probe'); cv2.waitKey(1); cv2.destroyAllWindows()"
    try:
        return subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _draw(frame, tracks, ids: list[int], action_names: list[str], trails: dict, trail_length: int):
    """The frame with each track's box, id (as written to the result files), action (or score) and trail."""
    from common.drawing import draw_tracks

    captions = []
    for t, i in zip(tracks, ids):
        trail = trails.setdefault(i, [])
        trail.append(((t.box[0] + t.box[2]) / 2, t.box[3]))
        del trail[:-max(trail_length, 1)]
        if t.action_probs is not None and action_names:
            a = int(t.action_probs.argmax())
            captions.append(f"{action_names[a]} {t.action_probs[a]:.2f}")
        else:
            captions.append(f"{t.score:.2f}")
    large = frame.shape[0] > 400
    return draw_tracks(frame, np.array([t.box for t in tracks]).reshape(-1, 4), ids, captions,
                       trails={i: trails[i] for i in ids} if trail_length else None,
                       thickness=2 if large else 1, font_scale=0.5 if large else 0.35)


def _open_writer(tmp: Path, final: Path, fps: float, frame):
    import cv2
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if tmp.suffix.lower() == ".mp4" else "MJPG"))
    writer = cv2.VideoWriter(str(tmp), fourcc, fps, (frame.shape[1], frame.shape[0]))
    if not writer.isOpened():
        raise InputError(f"{final}: cannot open a video writer for it")
    return writer


def _check_video_written(tmp: Path, final: Path, frames: int) -> None:
    """OpenCV's writer reports no error when the disk fills up; the file it left is read back
    before it replaces anything."""
    import cv2
    capture = cv2.VideoCapture(str(tmp))
    found = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    capture.release()
    if found < frames:
        kept = f"the previous {final.name} is intact" if final.exists() else f"no {final.name} was written"
        raise InputError(f"{final}: the annotated video could not be written ({found} of {frames} frames readable "
                         f"back: disk full?); {kept}")


def run_video(pipeline: Pipeline, outputs: Outputs, *, video=None, detections: Path | None = None,
              fps: float | None = None, max_frames: int | None = None, log=None, progress=None) -> dict:
    """Runs ``pipeline`` over ``video`` (a file, an image folder or a camera index), or over the
    detections of a det.txt (with ``video`` optional, for drawing). Returns a summary.

    ``progress``: called as ``progress(frames_done, total_frames)`` after every processed frame;
    ``total_frames`` is None when the length is unknown (a camera). An exception it raises ends the
    run with it, no output written; KeyboardInterrupt instead stops it as Ctrl-C does, keeping the
    frames done. In the window (``outputs.show``), space pauses and q, Esc or
    closing it stops: the outputs are then written for the frames done, as with ``max_frames``, and
    the summary's ``stopped`` is True."""
    from common.io import atomic_path
    from data.formats.mot import write_mot_file
    from data.formats.vicr import write_vicr_video
    from data.video import FrameStream

    log = log or (lambda message: print(message, file=sys.stderr))
    if not outputs.any:
        raise InputError("nothing to do: ask for a video, a JSON, a MOT file or a window")
    for path, what in ((outputs.video, "video"), (outputs.json, "JSON"), (outputs.mot, "MOT file")):
        if path is not None:
            check_output_path(Path(path), what)
    if outputs.video is not None and Path(outputs.video).suffix.lower() not in (".mp4", ".avi"):
        raise InputError(f"{outputs.video}: the annotated video must be .mp4 or .avi")
    if not (math.isfinite(outputs.show_speed) and outputs.show_speed >= 0):
        raise InputError(f"show speed must be >= 0 (0: as fast as it runs), got {outputs.show_speed}")
    source_video = video if isinstance(video, (str, os.PathLike)) and Path(video).is_file() else None
    check_outputs_apart([(outputs.video, "--output"), (outputs.json, "--save-json"), (outputs.mot, "--save-mot")],
                        {source_video: "the input video", detections: "the input detections", **pipeline.sources})
    if detections is not None:
        det_rows, meta, stream, frames = _detection_source(Path(detections), video, fps, log)
    else:
        stream = FrameStream(video, fps=fps, log=log)
        meta = {"name": stream.name, "fps": stream.fps, "width": stream.width, "height": stream.height,
                "frames": stream.frame_count}
        frames = iter(stream)
    if stream is not None and stream.fps_source == "assumed":
        log(f"warning: {video}: no frame rate known (no seqinfo.ini, none in the container): assuming "
            f"{stream.fps:g} fps; the tracker's time buffers depend on it, give --fps")
    session = pipeline.start(fps=meta["fps"], name=meta["name"], width=meta["width"], height=meta["height"])
    action_names = pipeline.action_names
    trails: dict[int, list] = {}
    total = min(meta["frames"] or 0, max_frames or 10 ** 12) or None
    window = None
    if outputs.show:
        if display_available():
            window = _Window()
        else:
            log("--show: no display found (none could be opened); continuing without a window")
    player = Player(window, meta["fps"], outputs.show_speed, total) if window is not None else None
    start, count, interrupted, stopped, drawn_count = time.time(), 0, False, False, 0
    writer, video_error, finishing_video = None, None, False
    try:
        with contextlib.ExitStack() as stack:
            video_tmp = stack.enter_context(atomic_path(outputs.video, "the annotated video")) if outputs.video else None
            stack.callback(lambda: writer is not None and writer.release())  # on errors, before the file is removed
            if window is not None:
                stack.callback(window.close)
            bar = ProgressBar(total, unit="frames")
            stack.callback(bar.close)
            try:
                for index, timestamp, frame in frames:
                    if max_frames and count >= max_frames:
                        break
                    if detections is not None:
                        result = session.step_detections(index, timestamp, det_rows)
                    else:
                        result = session.step(index, timestamp, frame)
                    count += 1
                    bar.update(count, f"tracks {len(result.tracks)}")
                    if progress is not None:
                        progress(count, total)
                    if frame is None or not (outputs.video or player):
                        continue
                    ids = [session.recorder.output_id(t.track_id) for t in result.tracks]
                    drawn = _draw(frame, result.tracks, ids, action_names, trails, outputs.trail)
                    if outputs.video:
                        if writer is None:
                            writer = _open_writer(video_tmp, Path(outputs.video), meta["fps"], frame)
                        writer.write(drawn)
                        drawn_count += 1
                    if player is not None and not player.show(drawn, count):
                        stopped = True
                        break
            except KeyboardInterrupt:
                # Keep what was done: the outputs below are written for the frames processed so far.
                interrupted = True
            finishing_video = writer is not None  # from here on an error is the video's write, check or rename
            if writer is not None:
                writer.release()
                _check_video_written(video_tmp, Path(outputs.video), drawn_count)
    except InputError as exc:
        if not finishing_video:
            raise
        video_error = exc  # the MOT and JSON files are still written below: the tracking is not lost
    elapsed = time.time() - start
    busy = elapsed - (player.waited if player is not None else 0.0)  # the rate is the processing's, not the playback's
    written = []
    if outputs.mot:
        write_mot_file(outputs.mot, session.mot_rows(), layout="mot15")
        written.append(str(outputs.mot))
    if outputs.json:
        # The frames actually read: a truncated video's header announces more than it holds.
        cut_short = interrupted or stopped or bool(max_frames) or (stream is not None and stream.truncated_at is not None)
        total = session.recorder.last_index + 1 if cut_short else meta["frames"]
        write_vicr_video(outputs.json, session.vicr_labels(total, partial=interrupted or stopped))
        written.append(str(outputs.json))
    if outputs.video and writer is not None and video_error is None:
        written.append(str(outputs.video))
    skipped = getattr(stream, "skipped", 0) if stream is not None else 0
    summary = {"frames": count, "fps": count / max(busy, 1e-9), "tracks": len(session.recorder.frames),
               "skipped": skipped, "written": written, "interrupted": interrupted, "stopped": stopped}
    if interrupted:
        log(f"interrupted: the outputs hold the {count} frames processed so far")
    if stopped:
        log(f"stopped by the user in the window: the outputs hold the {count} frames processed so far")
    ending = "interrupted" if interrupted else "stopped by the user" if stopped else "done"
    print(f"{ending}: {count} frames in {elapsed:.1f} s ({summary['fps']:.1f} fps), {summary['tracks']} tracks"
          + (f", {skipped} undecodable frames skipped" if skipped else "")
          + (f"; wrote {', '.join(written)}" if written else ""))
    if video_error is not None:
        raise video_error
    return summary


def track_video(pipeline: Pipeline, *, name: str, fps: float, width: int, height: int, frames=None,
                total_frames: int = 0, detections=None):
    """The tracks of one video as MOT rows, with no other output: the network on ``frames``
    (``(index, timestamp, frame)`` as :class:`~data.video.FrameStream` yields them), or the tracker
    alone on ``detections`` (MOT rows) over ``total_frames`` frames."""
    session = pipeline.start(fps=fps, name=name, width=width, height=height)
    bar = ProgressBar(total_frames or None, unit="frames")
    if detections is not None:
        for index in range(total_frames):
            session.step_detections(index, index / fps, detections)
            bar.update(index + 1, "tracking")
    else:
        for count, (index, timestamp, frame) in enumerate(frames, start=1):
            session.step(index, timestamp, frame)
            bar.update(count, "tracking")
    bar.close()
    return session.mot_rows()
