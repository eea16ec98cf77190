#!/usr/bin/env python
"""Choose the tracker's settings for a trained network on a validation split, and record them in
the checkpoint.

    python scripts/calibrate_tracker.py --checkpoint runs/<run>/best.pt --dataset synthetic --split val
    python scripts/calibrate_tracker.py --checkpoint runs/<run>/best.pt --gt-root my_val_sequences --dry-run

Runs the network once over the sequences, then the tracker for every setting tried (high score
0.3-0.7, a new track at 0-0.2 above it, and whether a track reports its Kalman estimate or the
matched detection), prints MOTA / IDF1 / HOTA of each, and writes the best by --criterion into the
checkpoint, for that --tracker. inference.py, evaluate.py and the web app then run that tracker
with those settings, except a threshold given as --track-high / --track-new. Exports made by
export.py stay valid (they are bound to the weights, which are not changed). Calibrate on frames that will not score the network
(a val split), or the scores it then gets are not held out. See evaluation/calibration.py.
"""
from __future__ import annotations

import argparse
import sys

from common.cli import add_plugin_argument, load_plugins, run_cli


def parse_args(argv=None) -> argparse.Namespace:
    from evaluation.calibration import CRITERIA
    from tracking.trackers import DEFAULT_TRACKER, TRACKERS

    load_plugins(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="best.pt / last.pt written by scripts/run_trainer.py")
    p.add_argument("--dataset", help="'synthetic' or a dataset root with split folders")
    p.add_argument("--split", default="val", help="split folder of --dataset (default: val)")
    p.add_argument("--gt-root", help="a folder of ground-truth sequences (instead of --dataset/--split)")
    p.add_argument("--criterion", choices=CRITERIA, default="HOTA", help="what chooses the setting (default HOTA)")
    p.add_argument("--tracker", choices=sorted(TRACKERS), default=DEFAULT_TRACKER)
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--dry-run", action="store_true", help="print the table; leave the checkpoint as it is")
    add_plugin_argument(p)
    args = p.parse_args(argv)
    if not args.gt_root and not args.dataset:
        p.error("give --dataset (with --split, default val) or --gt-root: the sequences to calibrate on")
    return args


def run(args) -> None:
    from evaluation.calibration import calibrate_checkpoint, format_calibration, format_settings
    from evaluation.protocol import gt_root_of
    from tracking.pipeline import PipelineOptions

    gt_root = gt_root_of(args.dataset, args.split, args.gt_root)
    calibration = calibrate_checkpoint(args.checkpoint, gt_root, criterion=args.criterion,
                                       options=PipelineOptions(tracker_name=args.tracker, device=args.device),
                                       write=not args.dry_run, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(format_calibration(calibration))
    print(f"chosen by {args.criterion} on {gt_root}: {format_settings(calibration.settings)}"
          + ("" if args.dry_run else f"; recorded in {args.checkpoint}"))


def main(argv=None) -> int:
    return run_cli(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
