#!/usr/bin/env python
"""Score tracking, detection and action results with the official protocols.

    # a checkpoint on a dataset split: runs network + tracker over every sequence, writes
    # <seq>.txt (MOTChallenge) and <seq>.json (V-ICR) to --out-dir, then scores them
    python scripts/evaluate.py --checkpoint runs/<run>/best.pt --dataset synthetic
    # existing result files against ground truth
    python scripts/evaluate.py --results results/ --gt-root data/MOT17/train
    python scripts/evaluate.py --results TUD-Campus/test.txt TUD-Stadtmitte/test.txt --gt-root motmetrics/data
    # a checkpoint and the tracker on public detections, in one table, on frames 431-530 of a sequence
    python scripts/evaluate.py --checkpoint runs/<run>/best.pt --dataset PETS09-S2L1 --frames 431-530 --detections det
    # person AP on still images of other scenes (YOLO labels beside the images, a COCO .json or a
    # CrowdHuman .odgt): does the detector transfer beyond the camera it trained on?
    python scripts/evaluate.py --checkpoint runs/<run>/last.pt --stills ../shared/data/real/coco128/images/val2017 \
        --stills-annotations ../shared/data/real/coco128/object_detection/labels/val2017
    # spatio-temporal action detections, scored as a benchmark's own evaluation scores them
    python scripts/evaluate.py --protocol multisports --gt multisports_GT.pkl --detections dets.csv
    python scripts/evaluate.py --protocol ava --gt ava_val_v2.2.csv --detections results.csv --label-map \
        ava_action_list_v2.2_for_activitynet_2019.pbtxt --exclusions ava_val_excluded_timestamps_v2.2.csv

Metrics: MOTA, MOTP, FP, FN, IDsw, Frag, MT/ML, IDF1/IDP/IDR (equal to the MOTChallenge devkit),
HOTA/DetA/AssA (TrackEval), COCO AP50 and AP of the boxes, action frame-mAP at IoU 0.5 and the
identity-aware action score, video-mAP of the tracked tubes and the action-gated HOTA; see
evaluation/protocol.py for the protocol and the accepted files. --protocol multisports (ACT /
MultiSports / UCF101-24 / JHMDB-21 annotation pickles): frame-mAP and video-mAP at 0.2, 0.5 and
0.10:0.90 equal to mmaction2's MultiSportsMetric; --protocol ava: the official AVA frame-mAP.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.cli import add_plugin_argument, load_plugins, run_cli
from evaluation.action_detection import LINKINGS, PROTOCOLS
from tracking.pipeline import add_pipeline_arguments, network_flags_given


def parse_args(argv=None) -> argparse.Namespace:
    load_plugins(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="run this model + the tracker over the sequences, then score its output")
    p.add_argument("--dataset", help="'synthetic' (data/generated/synthetic, generated on first use) or a dataset "
                                     "root with split folders")
    p.add_argument("--split", default="test", help="split folder of --dataset (default: test)")
    p.add_argument("--gt-root", help="folder of ground-truth sequences (overrides --dataset/--split)")
    # extend: a repeated --results adds to the list (argparse's default kept only the last one, so
    # a first result for a sequence was dropped without a word).
    p.add_argument("--results", nargs="+", action="extend", help="result files (<seq>.txt / <seq>.json) or folders "
                                                                 "holding them")
    p.add_argument("--detections", help="also (or only) score the tracker alone on public detections: 'det' "
                                        "(each sequence's det/det.txt), a file, or a folder of <seq>.txt")
    p.add_argument("--action-dataset", type=Path, help="a clip-level action dataset (class folders, CSV files or a "
                                                          "JSON list): clip- and video-level Acc@1/Acc@5 of --checkpoint "
                                                          "on its --split (default test; 'all' for one-split layouts)")
    p.add_argument("--tracks", type=Path, help="with --action-dataset: <video>.txt / .json tracks (default: the "
                                               "checkpoint tracks each video)")
    p.add_argument("--stills", type=Path, help="a folder of still images: person AP50 / AP of --checkpoint on them")
    p.add_argument("--stills-annotations", type=Path,
                   help="with --stills: a folder of YOLO labels (default: .../labels/<split> beside .../images/<split>), "
                        "a COCO instances .json or a CrowdHuman .odgt")
    p.add_argument("--person-class", type=int, default=0,
                   help="with YOLO labels: the class that is a person (default 0, COCO's order)")
    p.add_argument("--frames", help="score MOT frames FIRST-LAST only, e.g. 431-530 (a checkpoint or the "
                                    "detections are run on those frames alone)")
    p.add_argument("--sequences", nargs="+", action="extend", help="only these sequences")
    p.add_argument("--out-dir", type=Path, help="where --checkpoint results, plots and the metrics files go "
                                                "(default: runs/eval-<time>)")
    p.add_argument("--json", type=Path, help="metrics JSON to write (a CSV with the same stem is written beside it; "
                                             "default: <out-dir>/metrics.json)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--batch-size", type=int, default=1,
                   help="seed 001's flag; evaluation streams each sequence frame by frame as inference does, "
                        "so only 1 is meaningful (other values are refused)")
    protocol = p.add_argument_group("scoring given action-detection files (--protocol)")
    protocol.add_argument("--protocol", choices=PROTOCOLS,
                          help="score --detections FILE against --gt FILE as that benchmark's evaluation does")
    protocol.add_argument("--gt", type=Path, help="with --protocol: the annotation file (multisports: the ACT / "
                                                  "MultiSports pickle; ava: the ground-truth CSV)")
    protocol.add_argument("--label-map", type=Path, help="with --protocol ava: the action list (.pbtxt)")
    protocol.add_argument("--exclusions", type=Path, help="with --protocol ava: the excluded timestamps CSV")
    protocol.add_argument("--linking", choices=LINKINGS, default="mmaction2",
                          help="with --protocol multisports: 'mmaction2' (default) links tubes as mmaction2's "
                               "MultiSportsMetric does, so numbers compare with it; 'box-scores' on each box's own "
                               "score, as ACT's linking intends (evaluation/action_detection.py says why they differ)")
    protocol.add_argument("--annotation-split", type=int, default=0,
                          help="with --protocol multisports: which of the file's test_videos lists (default 0)")
    add_pipeline_arguments(p)
    add_plugin_argument(p)
    args = p.parse_args(argv)
    given = [flag for flag, value in (("--gt", args.gt), ("--label-map", args.label_map),
                                      ("--exclusions", args.exclusions), ("--linking", args.linking != "mmaction2"),
                                      ("--annotation-split", args.annotation_split != 0)) if value]
    if args.protocol:
        others = [flag for flag, value in (("--checkpoint", args.checkpoint), ("--results", args.results),
                                           ("--dataset", args.dataset), ("--gt-root", args.gt_root),
                                           ("--action-dataset", args.action_dataset)) if value]
        if others:
            p.error(f"--protocol scores --gt and --detections files; {', '.join(others)} cannot go with it")
        if not (args.gt and args.detections):
            p.error("--protocol needs --gt FILE and --detections FILE")
        return args
    if given:
        p.error(f"{', '.join(given)}: read with --protocol only")
    if args.checkpoint and args.results:
        p.error("give --checkpoint (run a model) or --results (score existing files), not both")
    if not args.checkpoint:
        network_flags = network_flags_given(args)
        if network_flags:
            p.error(f"{', '.join(network_flags)}: these choose how --checkpoint runs, and none is given")
    if args.stills_annotations is not None and args.stills is None:
        p.error("--stills-annotations goes with --stills")
    for mode, value in (("--action-dataset", args.action_dataset), ("--stills", args.stills)):
        if value is not None:
            if not args.checkpoint:
                p.error(f"{mode} scores a --checkpoint")
            if args.action_dataset is not None and args.stills is not None:
                p.error("give --action-dataset or --stills, not both")
            if mode == "--stills":
                others = [flag for flag, given in (("--results", args.results), ("--dataset", args.dataset),
                                                   ("--gt-root", args.gt_root), ("--detections", args.detections),
                                                   ("--frames", args.frames), ("--sequences", args.sequences)) if given]
                if others:
                    p.error(f"--stills scores the images it names; {', '.join(others)} cannot go with it")
            return args
    if not (args.checkpoint or args.results or args.detections):
        p.error("give --checkpoint (run a model), --results (score existing files) or --detections")
    if not args.gt_root and not args.dataset:
        p.error("give --gt-root or --dataset")
    if args.batch_size != 1:
        p.error("--batch-size: evaluation streams frames one at a time (the tracker needs them in order); use 1")
    return args


def run(args) -> dict:
    from evaluation.protocol import gt_root_of, parse_frames, run_evaluation
    from tracking.pipeline import Pipeline, options_from_args

    if args.action_dataset is not None:
        return _clips(args)
    if args.stills is not None:
        return _stills(args)
    if args.protocol:
        return _protocol(args)
    frames = parse_frames(args.frames)
    gt_root = gt_root_of(args.dataset, args.split, args.gt_root)
    options = options_from_args(args)
    pipeline = Pipeline.from_checkpoint(args.checkpoint, options) if args.checkpoint else None
    if pipeline is not None and pipeline.thresholds_note:
        print(pipeline.thresholds_note, file=sys.stderr)
    tracker = Pipeline.tracker_only(options) if args.detections else None
    return run_evaluation(gt_root=gt_root, pipeline=pipeline, results=args.results, detections=args.detections,
                          tracker=tracker, sequences=args.sequences, frames=frames, out_dir=args.out_dir,
                          json_path=args.json, plots=not args.no_plots)


def _protocol(args) -> dict:
    from common.io import atomic_write_json, check_output_path, check_outputs_apart
    from evaluation.action_detection import format_scores, score_files

    if args.json:
        check_output_path(args.json, "metrics JSON")
        check_outputs_apart({args.json: "--json"}, {args.gt: "--gt", args.detections: "--detections",
                                                    args.label_map: "--label-map", args.exclusions: "--exclusions"})
    report = score_files(args.protocol, args.gt, args.detections, label_map=args.label_map, exclusions=args.exclusions,
                         linking=args.linking, split=args.annotation_split)
    print(format_scores(report))
    if args.json:
        atomic_write_json(args.json, report)
    return report


def _clips(args) -> dict:
    from common.errors import InputError
    from common.io import atomic_write_json
    from data.action_clips import read_action_dataset
    from evaluation.clip_accuracy import evaluate_clips
    from tracking.pipeline import Pipeline, options_from_args

    videos = [v for v in read_action_dataset(args.action_dataset) if v.split == args.split]
    if not videos:
        raise InputError(f"{args.action_dataset}: no videos in split {args.split!r}")
    report = evaluate_clips(Pipeline.from_checkpoint(args.checkpoint, options_from_args(args)), videos, args.tracks)
    print(f"{'':10}{'Acc@1':>8}{'Acc@5':>8}{'count':>8}")
    print(f"{'clips':10}{report['clip_acc1']:8.2f}{report['clip_acc5']:8.2f}{report['clips']:8d}")
    print(f"{'videos':10}{report['video_acc1']:8.2f}{report['video_acc5']:8.2f}{report['videos']:8d}")
    if args.json:
        atomic_write_json(args.json, report)
    return report


def _stills(args) -> dict:
    from common.io import atomic_write_json
    from data.stills import read_stills, still_kind_of
    from evaluation.stills import evaluate_stills
    from tracking.pipeline import Pipeline, options_from_args

    images = read_stills(still_kind_of(args.stills_annotations), args.stills, args.stills_annotations, args.person_class)
    report = evaluate_stills(Pipeline.from_checkpoint(args.checkpoint, options_from_args(args)), images)
    print(f"person detection on {report['images']} still images ({report['people']} people) of {args.stills}: "
          f"AP50 {report['det_AP50']:.2f}, AP {report['det_AP']:.2f}")
    if args.json:
        atomic_write_json(args.json, report)
    return report


def main(argv=None) -> int:
    return run_cli(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
