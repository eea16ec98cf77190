#!/usr/bin/env python
"""The joint network against the pipeline of specialists a user would otherwise build: YOLO11n
trained from scratch on the same frames, ByteTrack / BoT-SORT / this project's tracker on its
detections, and R3D-18 / CNN+LSTM clip classifiers on each track's tubes; same data, at least the
joint network's CPU time each, scored by the same evaluator (evaluation/specialists/benchmark.py
says what is held equal). Needs the bench environment (README: Install).

    python scripts/benchmark_specialists.py --setting synthetic --out runs/specialists-synthetic
    python scripts/benchmark_specialists.py --setting pets09 --out runs/specialists-pets09
    python scripts/benchmark_specialists.py --setting synthetic --checkpoint runs/<run>/best.pt --joint-cpu-s 3100
    python scripts/benchmark_specialists.py --setting synthetic --detection-only --out runs/specialists-det
    python scripts/benchmark_specialists.py --setting synthetic --reuse runs/specialists-det --out runs/specialists-act
    python scripts/benchmark_specialists.py --setting synthetic --joint-override model=fast --reuse runs/specialists-act --out runs/specialists-fast
    python scripts/benchmark_specialists.py --quick --out /tmp/specialists-quick   # minutes: checks it runs, measures nothing
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import math
import sys
from pathlib import Path

from common.cli import run_cli


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setting", choices=("synthetic", "pets09"), default="synthetic",
                   help="synthetic: experiment=synthetic_30min, scored on the test split; pets09: "
                        "experiment=pets09_tiny, scored on frames 431-530")
    p.add_argument("--out", type=Path, required=True, help="folder for the runs, results and report.md / report.json")
    p.add_argument("--checkpoint", type=Path, help="the joint network's checkpoint of that experiment, chosen as the setting chooses (synthetic: its "
                        "best.pt; pets09: its last.pt, since the only validation frames are the scored ones) "
                        "(default: train it)")
    p.add_argument("--joint-cpu-s", type=float, help="with --checkpoint: the CPU seconds its training took")
    p.add_argument("--detection-only", action="store_true",
                   help="train and score the detector and the trackers only (no clip classifiers, no action "
                        "metrics on either side): the detection and tracking half, in a third of the time")
    p.add_argument("--reuse", type=Path, metavar="OUT",
                   help="take the specialists an earlier run trained (its --out; same setting and budget) instead of "
                        "training them again: e.g. the detector of a --detection-only run; the missing ones are trained")
    p.add_argument("--joint-override", action="append", default=[], metavar="KEY=VALUE",
                   help="an override of the joint network's training (repeatable): model=..., model.*, trainer.*, "
                        "optimizer.*, loss.* (e.g. model=fast): the data, and so the specialists, stay the setting's")
    p.add_argument("--no-calibration", action="store_true",
                   help="every tracker with its default settings, instead of each pipeline's chosen by HOTA on the "
                        "setting's validation sequences (the synthetic val split; PETS09 has none apart from its "
                        "scored frames, so there it is always off)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads of every side's inference (default 2)")
    p.add_argument("--rounds", type=int, default=3, help="fps: each pipeline's best of this many rounds")
    p.add_argument("--quick", action="store_true", help="a tiny generated benchmark, a few training seconds per side: "
                                                        "for tests, its numbers mean nothing")
    args = p.parse_args(argv)
    if args.threads < 1 or args.rounds < 1:
        p.error("--threads and --rounds must be at least 1")
    joint_keys = ("model=", "model.", "trainer.", "optimizer.", "loss.")
    bad = [o for o in args.joint_override if "=" not in o or not o.lstrip("+").startswith(joint_keys)]
    if bad:
        p.error(f"--joint-override {bad[0]!r}: only model=..., model.*, trainer.*, optimizer.* and loss.* keys "
                "(KEY=VALUE): the data is the setting's, shared with the specialists")
    if args.joint_override and args.checkpoint is not None:
        p.error("--joint-override changes the joint network's training: it goes without --checkpoint")
    if (args.checkpoint is None) != (args.joint_cpu_s is None):
        p.error("--checkpoint and --joint-cpu-s go together")
    if args.joint_cpu_s is not None and not (math.isfinite(args.joint_cpu_s) and args.joint_cpu_s > 0):
        p.error(f"--joint-cpu-s must be a positive number of CPU seconds, got {args.joint_cpu_s}")
    return args


def run(args):
    from common.errors import InputError
    from evaluation.specialists.benchmark import SETTINGS, format_report, quick_setting, run_benchmark

    if args.checkpoint is not None:
        from models.checkpoint import read_inference_spec
        read_inference_spec(args.checkpoint)  # a wrong or damaged file is refused before hours of training
    if importlib.util.find_spec("ultralytics") is None:  # said now, not after the joint network's training
        raise InputError("the specialists need ultralytics: install the bench environment "
                         "(pip install -c constraints-bench.txt -e \".[bench,deploy]\")")

    if args.quick:
        setting, budget, extra = quick_setting(args.out / "data"), 10.0, {"fps_frames": 10, "rounds": 1}
    else:
        setting, budget, extra = SETTINGS[args.setting], None, {"rounds": args.rounds}
    if args.detection_only:
        setting = dataclasses.replace(setting, actions=False)
    if args.joint_override:
        setting = dataclasses.replace(setting, overrides=(*setting.overrides, *args.joint_override))
    report = run_benchmark(setting, args.out, checkpoint=args.checkpoint, joint_cpu_s=args.joint_cpu_s,
                           budget_s=budget, threads=args.threads, reuse=args.reuse,
                           calibration=not args.no_calibration, **extra)
    print(format_report(report))
    print(f"wrote {args.out / 'report.md'} and {args.out / 'report.json'}")
    return report


def main(argv=None) -> int:
    return run_cli(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
