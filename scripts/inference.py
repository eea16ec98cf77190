#!/usr/bin/env python
"""Detect, track and recognise actions on a video, an image folder or a camera.

    python scripts/inference.py --checkpoint runs/<run>/best.pt --video clip.mp4 --output out.mp4 \\
        --save-json out.json --save-mot out.txt [--show]
    python scripts/inference.py --detections det/det.txt --save-mot out.txt [--video frames/]

With ``--detections`` the tracker runs alone on a MOTChallenge det.txt (no checkpoint needed; no
appearance, no actions). ``--show`` opens a live window when a display exists; without one it
says so and keeps writing the outputs.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from common.cli import run_cli  # noqa: E402
from common.errors import InputError  # noqa: E402


def has_display() -> bool:
    """OpenCV's imshow aborts the process without a display, so look before calling it."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="best.pt / last.pt written by scripts/run_trainer.py")
    p.add_argument("--video", help="video file, image folder or camera index")
    p.add_argument("--detections", help="MOTChallenge det.txt: track these boxes instead of running the network")
    p.add_argument("--output", help="annotated video to write (.mp4 or .avi)")
    p.add_argument("--save-json", help="V-ICR-style <video>.json with tracks, per-frame actions and per-second timeline")
    p.add_argument("--save-mot", help="MOTChallenge tracker result file")
    p.add_argument("--conf-threshold", type=float, default=0.1, help="lowest detection score kept (0.1: the "
                                                                       "tracker's second stage uses low scores)")
    p.add_argument("--track-high", type=float, default=0.5, help="detections above this score drive the first "
                                                                   "association stage (ByteTrack's high threshold)")
    p.add_argument("--track-new", type=float, default=0.6, help="a new track needs a detection above this score")
    p.add_argument("--show", action="store_true", help="display the annotated frames live")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: the network under bfloat16 autocast, 1.2-1.5x faster on CPUs with AVX512-BF16 "
                        "or AMX, same accuracy (README: inference speed)")
    p.add_argument("--fps", type=float, help="frame rate when the source has none (image folders, det.txt alone)")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--trail", type=int, default=12, help="trail length in frames (0: none)")
    args = p.parse_args(argv)
    if not args.detections and not args.checkpoint:
        p.error("give --checkpoint (network) or --detections (tracker alone)")
    if not args.detections and args.video is None:
        p.error("--video is required with --checkpoint")
    if not (args.output or args.save_json or args.save_mot or args.show):
        p.error("nothing to do: give --output, --save-json, --save-mot or --show")
    return args


def _frames_for_detections(args, det_path: Path):
    """(index, timestamp, frame or None) for tracker-only runs, with or without frames."""
    from data.formats.mot import read_mot_file, read_seqinfo
    from data.video import FrameStream
    rows = read_mot_file(det_path)
    seqinfo = det_path.parent.parent / "seqinfo.ini"
    info = read_seqinfo(seqinfo) if seqinfo.is_file() else None
    fps = args.fps or (info.frame_rate if info else 10.0)
    if args.video is not None:
        stream = FrameStream(args.video, fps=fps)
        meta = {"name": stream.name, "fps": stream.fps, "width": stream.width, "height": stream.height,
                "frames": stream.frame_count}
        return rows, meta, stream, iter(stream)
    n = info.seq_length if info else int(rows.frame.max()) if len(rows) else 0
    meta = {"name": info.name if info else det_path.parent.parent.name, "fps": fps,
            "width": info.width if info else int(np.ceil(rows.boxes[:, 2].max())) if len(rows) else 0,
            "height": info.height if info else int(np.ceil(rows.boxes[:, 3].max())) if len(rows) else 0, "frames": n}
    return rows, meta, None, ((i, i / fps, None) for i in range(n))


def run(args) -> dict:
    import cv2

    from data.formats.mot import write_mot_file
    from data.formats.vicr import write_vicr_video
    from evaluation.visualize import draw_tracks
    from tracking.recorder import TrackRecorder
    from tracking.tracker import Tracker
    from common.progress import ProgressBar
    from common.device import resolve_device

    device = resolve_device(args.device)
    action_names: list[str] = []
    engine = None
    if args.detections:
        det_rows, meta, stream, frames = _frames_for_detections(args, Path(args.detections))
        tracker = Tracker(fps=meta["fps"], high_score=args.track_high, new_track_score=args.track_new,
                          low_score=min(args.conf_threshold, args.track_high))
    else:
        from data.video import FrameStream
        from tracking.streaming import StreamingEngine
        from train.checkpoint import load_model_from_checkpoint
        model, state = load_model_from_checkpoint(args.checkpoint, device)
        action_names = list(state.get("action_names", []))
        stream = FrameStream(args.video, fps=args.fps)
        meta = {"name": stream.name, "fps": stream.fps, "width": stream.width, "height": stream.height,
                "frames": stream.frame_count}
        tracker = Tracker(fps=stream.fps, high_score=args.track_high, new_track_score=args.track_new,
                          low_score=min(args.conf_threshold, args.track_high))
        engine = StreamingEngine(model=model, tracker=tracker, input_size=tuple(state["input_size"]),
                                 clip_len=state.get("clip_len", 8), stride=state.get("stride", 2),
                                 conf_threshold=args.conf_threshold, device=device, precision=args.precision)
        frames = iter(stream)

    show = args.show and has_display()
    if args.show and not show:
        print("--show: no display found (DISPLAY is not set); continuing without a window", file=sys.stderr)
    writer = None
    recorder = TrackRecorder(action_names)
    trails = {}
    total = min(meta["frames"] or 0, args.max_frames or 10 ** 12) or None
    bar = ProgressBar(total, unit="frames")
    start, count = time.time(), 0
    try:
        for index, timestamp, frame in frames:
            if args.max_frames and count >= args.max_frames:
                break
            if engine is not None:
                tracks = engine.process(frame, index, timestamp).tracks
            else:
                rows = det_rows.at_frame(index + 1)
                keep = rows.conf >= args.conf_threshold
                tracks = tracker.update(rows.boxes[keep], rows.conf[keep], None, timestamp)
            recorder.add(index, timestamp, tracks)
            for t in tracks:
                box = t.box
                trail = trails.setdefault(t.track_id, [])
                trail.append(((box[0] + box[2]) / 2, box[3]))
                del trail[:-args.trail]
            if frame is not None and (args.output or show):
                captions = []
                for t in tracks:
                    if t.action_probs is not None and action_names:
                        a = int(t.action_probs.argmax())
                        captions.append(f"{action_names[a]} {t.action_probs[a]:.2f}")
                    else:
                        captions.append(f"{t.score:.2f}")
                drawn = draw_tracks(frame, np.array([t.box for t in tracks]).reshape(-1, 4),
                                    [t.track_id for t in tracks], captions,
                                    trails={t.track_id: trails[t.track_id] for t in tracks} if args.trail else None,
                                    thickness=2 if frame.shape[0] > 400 else 1,
                                    font_scale=0.5 if frame.shape[0] > 400 else 0.35)
                if args.output:
                    if writer is None:
                        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
                        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if args.output.lower().endswith(".mp4") else "MJPG"))
                        writer = cv2.VideoWriter(args.output, fourcc, meta["fps"], (frame.shape[1], frame.shape[0]))
                        if not writer.isOpened():
                            raise InputError(f"{args.output}: cannot open for writing")
                    writer.write(drawn)
                if show:
                    cv2.imshow("mot-action", drawn)
                    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                        break
            count += 1
            bar.update(count, f"tracks {len(tracks)}")
    finally:
        bar.close()
        if writer is not None:
            writer.release()
        if show:
            cv2.destroyAllWindows()
    elapsed = time.time() - start
    written = []
    if args.save_mot:
        write_mot_file(args.save_mot, recorder.mot_rows(), layout="mot15")
        written.append(args.save_mot)
    if args.save_json:
        labels = recorder.vicr_labels(meta["name"], meta["fps"], meta["width"], meta["height"], meta["frames"], tracker)
        write_vicr_video(args.save_json, labels)
        written.append(args.save_json)
    if args.output and writer is not None:
        written.append(args.output)
    skipped = getattr(stream, "skipped", 0) if stream is not None else 0
    persons = recorder.frames
    summary = {"frames": count, "fps": count / max(elapsed, 1e-9), "tracks": len(persons), "skipped": skipped,
               "written": written}
    print(f"done: {count} frames in {elapsed:.1f} s ({summary['fps']:.1f} fps), {len(persons)} tracks"
          + (f", {skipped} undecodable frames skipped" if skipped else "")
          + (f"; wrote {', '.join(written)}" if written else ""))
    return summary


def main(argv=None) -> int:
    args = parse_args(argv)
    warnings.simplefilter("default")
    return run_cli(run, args)


if __name__ == "__main__":
    sys.exit(main())
