#!/usr/bin/env python
"""Detect, track and recognise actions on a video, an image folder or a camera.

    python scripts/inference.py --checkpoint runs/<run>/best.pt --video clip.mp4 --output out.mp4 \\
        --save-json out.json --save-mot out.txt [--show]
    python scripts/inference.py --detections det/det.txt --save-mot out.txt [--video frames/]

With ``--detections`` the tracker runs alone on a MOTChallenge det.txt (no checkpoint needed; no
appearance, no actions). ``--show`` opens a live window when a display can be opened; otherwise it
says so and keeps writing the outputs. The window plays at the video's frame rate (``--show-speed``
scales it; 0 plays as fast as it runs); space pauses, q or Esc (or closing the window) stops, and the
outputs are then written for the frames done so far.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from common.cli import add_plugin_argument, load_plugins, run_cli
from tracking.pipeline import add_pipeline_arguments, network_flags_given


def parse_args(argv=None) -> argparse.Namespace:
    load_plugins(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="best.pt / last.pt written by scripts/run_trainer.py")
    p.add_argument("--video", help="video file, image folder or camera index")
    p.add_argument("--detections", type=Path, help="MOTChallenge det.txt: track these boxes instead of running the network")
    p.add_argument("--output", type=Path, help="annotated video to write (.mp4 or .avi)")
    p.add_argument("--save-json", type=Path, help="V-ICR-style <video>.json with tracks, per-frame actions and "
                                                  "per-second timeline")
    p.add_argument("--save-mot", type=Path, help="MOTChallenge tracker result file")
    p.add_argument("--show", action="store_true", help="display the annotated frames live (space: pause, q or "
                                                       "Esc: stop and write what is done)")
    p.add_argument("--show-speed", type=float, metavar="X", help="with --show: play at the video's frame rate "
                                                                 "times X (default 1; 0: as fast as it runs)")
    add_pipeline_arguments(p)
    add_plugin_argument(p)
    p.add_argument("--fps", type=float, help="frame rate when the source has none (image folders without "
                                             "seqinfo.ini, det.txt alone)")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--trail", type=int, default=12, help="trail length in frames (0: none)")
    args = p.parse_args(argv)
    if not args.detections and not args.checkpoint:
        p.error("give --checkpoint (network) or --detections (tracker alone)")
    if args.detections:
        network_flags = ["--checkpoint"] * bool(args.checkpoint) + network_flags_given(args)
        if network_flags:
            p.error(f"{', '.join(network_flags)}: not used with --detections (the tracker alone on given boxes); "
                    "drop it, or drop --detections to run the network")
    if not args.detections and args.video is None:
        p.error("--video is required with --checkpoint")
    if not (args.output or args.save_json or args.save_mot or args.show):
        p.error("nothing to do: give --output, --save-json, --save-mot or --show")
    if args.fps is not None and not (math.isfinite(args.fps) and args.fps > 0):
        p.error(f"--fps must be > 0, got {args.fps}")
    if args.max_frames is not None and args.max_frames < 1:
        p.error(f"--max-frames must be at least 1, got {args.max_frames}")
    if args.trail < 0:
        p.error(f"--trail must be >= 0, got {args.trail}")
    if args.show_speed is not None and not args.show:
        p.error("--show-speed: not used without --show; add --show or drop it")
    if args.show_speed is not None and not (math.isfinite(args.show_speed) and args.show_speed >= 0):
        p.error(f"--show-speed must be >= 0 (0: as fast as it runs), got {args.show_speed}")
    return args


def run(args) -> dict | int:
    from tracking.pipeline import Pipeline, options_from_args
    from tracking.runner import Outputs, run_video

    options = options_from_args(args)
    pipeline = Pipeline.tracker_only(options) if args.detections else Pipeline.from_checkpoint(args.checkpoint, options)
    if pipeline.thresholds_note:
        print(pipeline.thresholds_note, file=sys.stderr)
    outputs = Outputs(video=args.output, json=args.save_json, mot=args.save_mot, show=args.show,
                      show_speed=1.0 if args.show_speed is None else args.show_speed, trail=args.trail)
    summary = run_video(pipeline, outputs, video=args.video, detections=args.detections, fps=args.fps,
                        max_frames=args.max_frames)
    return 130 if summary["interrupted"] else summary


def main(argv=None) -> int:
    return run_cli(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
