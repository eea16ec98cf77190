#!/usr/bin/env python
"""Score tracking, detection and action results with the official protocols.

    # a checkpoint on a dataset split: runs network + tracker over every sequence, writes
    # <seq>.txt (MOTChallenge) and <seq>.json (V-ICR) to --out-dir, then scores them
    python scripts/evaluate.py --checkpoint runs/<run>/best.pt --dataset synthetic
    # existing result files against ground truth
    python scripts/evaluate.py --results results/ --gt-root data/MOT17/train
    python scripts/evaluate.py --results TUD-Campus/test.txt TUD-Stadtmitte/test.txt --gt-root motmetrics/data

Metrics: MOTA, MOTP, FP, FN, IDsw, Frag, MT/ML, IDF1/IDP/IDR (equal to the MOTChallenge devkit),
HOTA/DetA/AssA (TrackEval), COCO AP50 and AP of the boxes, action frame-mAP at IoU 0.5 and the
identity-aware action score; see evaluation/protocol.py for the protocol and the accepted files.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common.cli import run_cli  # noqa: E402
from tracking.pipeline import add_pipeline_arguments  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="run this model + the tracker over the sequences, then score its output")
    p.add_argument("--dataset", help="'synthetic' (data/generated/synthetic, generated on first use) or a dataset "
                                     "root with split folders")
    p.add_argument("--split", default="test", help="split folder of --dataset (default: test)")
    p.add_argument("--gt-root", help="folder of ground-truth sequences (overrides --dataset/--split)")
    p.add_argument("--results", nargs="+", help="result files (<seq>.txt / <seq>.json) or folders holding them")
    p.add_argument("--sequences", nargs="+", help="only these sequences")
    p.add_argument("--out-dir", type=Path, help="where --checkpoint results, plots and the metrics files go "
                                                "(default: runs/eval-<time>)")
    p.add_argument("--json", type=Path, help="metrics JSON to write (a CSV with the same stem is written beside it; "
                                             "default: <out-dir>/metrics.json)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--batch-size", type=int, default=1,
                   help="seed 001's flag; evaluation streams each sequence frame by frame as inference does, "
                        "so only 1 is meaningful (other values are refused)")
    add_pipeline_arguments(p)
    args = p.parse_args(argv)
    if bool(args.checkpoint) == bool(args.results):
        p.error("give --checkpoint (run a model) or --results (score existing files)")
    if not args.gt_root and not args.dataset:
        p.error("give --gt-root or --dataset")
    if args.batch_size != 1:
        p.error("--batch-size: evaluation streams frames one at a time (the tracker needs them in order); use 1")
    return args


def run(args) -> dict:
    from evaluation.protocol import gt_root_of, run_evaluation
    from tracking.pipeline import Pipeline, options_from_args

    gt_root = gt_root_of(args.dataset, args.split, args.gt_root)
    pipeline = Pipeline.from_checkpoint(args.checkpoint, options_from_args(args)) if args.checkpoint else None
    return run_evaluation(gt_root=gt_root, pipeline=pipeline, results=args.results, sequences=args.sequences,
                          out_dir=args.out_dir, json_path=args.json, plots=not args.no_plots)


def main(argv=None) -> int:
    return run_cli(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
