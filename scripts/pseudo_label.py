#!/usr/bin/env python
"""Pseudo-label the people in videos with a vision-language model (V-ICR style: per-second top-5
actions, iterative refinement, similar actions grouped into a label map), resumably.

    # a vLLM server (vllm serve Qwen/Qwen3-VL-8B-Instruct), tracks from a trained checkpoint
    python scripts/pseudo_label.py --input-dir data/input --checkpoint runs/latest/best.pt
    # Qwen3-VL in this process; tracks from MOT files named <video>.txt
    python scripts/pseudo_label.py --vlm transformers --model Qwen/Qwen3-VL-2B-Instruct --tracks tracks/
    # the synthetic benchmark's noisy ground-truth "VLM", on its own tracks (distillation experiments)
    python scripts/pseudo_label.py --input-dir data/generated/synthetic/train --tracks gt --vlm oracle \\
        --oracle-gt data/generated/synthetic --label-map data/generated/synthetic/label_map.txt

Outputs (seed 000's): <working-dir>/<video>/tubes/recognition_results.json,
<working-dir>/<video>/label_map.txt, <output-dir>/<video>.json; the run's summary in
<working-dir>/metadata.json; answers are cached in <working-dir>/vlm_cache.sqlite, so a rerun asks
only what is missing. Defaults: config/pseudo_label.yaml.

Exit status: 0 done; 1 some requests got no answer (rerun to ask them); 2 an error, one line (bad
input, an unwritable output folder, no server answering, a damaged cache, nothing labelled);
3 some inputs could not be read and were skipped (named in the summary and in
<working-dir>/metadata.json), the others are labelled; 130 interrupted.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.cli import add_plugin_argument, load_plugins, run_cli
from tracking.pipeline import add_pipeline_arguments

EXIT_UNANSWERED = 1  # some requests got no answer: a rerun asks them
EXIT_SKIPPED = 3  # some inputs could not be read: the others are labelled


def parse_args(argv=None) -> argparse.Namespace:
    load_plugins(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input-dir", type=Path, default=Path("data/input"),
                   help="videos, and/or MOTChallenge sequence folders (default: data/input)")
    p.add_argument("--working-dir", type=Path, default=Path("data/working"), help="tubes, labels, cache")
    p.add_argument("--output-dir", type=Path, default=Path("data/output"), help="<video>.json")
    source = p.add_argument_group("tracks (one of)")
    source.add_argument("--checkpoint", help="track with this framework's network (best.pt)")
    source.add_argument("--tracks", help="MOT file, a folder of <video>.txt, or 'gt' (each sequence's gt/gt.txt)")
    source.add_argument("--detections", help="det.txt, a folder of <video>.txt, or 'det' (each sequence's "
                                             "det/det.txt), tracked by the tracker")
    p.add_argument("--label-map", type=Path, help="predefined label_map.txt: every answer is restricted to it "
                                                  "(default: <input-dir>/label_map.txt when present)")
    p.add_argument("--skip-recognition", action="store_true",
                   help="tracks and tubes only (<output-dir>/<video>.txt, tubes/metadata.json): no VLM, no cache")
    p.add_argument("--refinement-iterations", type=int, help="refinement passes (default 5, as seed 000)")
    p.add_argument("--config", type=Path, help="another config file in config/pseudo_label.yaml's form")
    vlm = p.add_argument_group("VLM (defaults in config/pseudo_label.yaml)")
    vlm.add_argument("--vlm", choices=("openai", "transformers", "oracle"), help="backend")
    vlm.add_argument("--model", help="served model name, or hub id / folder for transformers")
    vlm.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    vlm.add_argument("--concurrency", type=int, help="requests in flight")
    vlm.add_argument("--timeout", type=float, help="seconds per request")
    vlm.add_argument("--frames-as", choices=("video", "images"), help="a tube second as one video or as images")
    vlm.add_argument("--oracle-gt", type=Path, help="--vlm oracle: the synthetic benchmark it answers from")
    vlm.add_argument("--oracle-top1", type=float, default=0.7, help="--vlm oracle: how often its top-1 is right")
    vlm.add_argument("--oracle-invalid", type=float, default=0.05, help="--vlm oracle: share of unusable replies")
    add_pipeline_arguments(p)
    add_plugin_argument(p)
    args = p.parse_args(argv)
    if sum(x is not None for x in (args.checkpoint, args.tracks, args.detections)) != 1:
        p.error("give exactly one source of tracks: --checkpoint, --tracks or --detections")
    if args.refinement_iterations is not None and args.refinement_iterations < 0:
        p.error("--refinement-iterations must be >= 0")
    if not (0 <= args.oracle_top1 <= 1 and 0 <= args.oracle_invalid < 1):
        p.error("--oracle-top1 must be in [0, 1] and --oracle-invalid in [0, 1)")
    return args


def run(args):
    from pseudolabel import run as pseudo_label
    from tracking.pipeline import options_from_args

    overrides = {"vlm.backend": args.vlm, "vlm.model": args.model, "vlm.base_url": args.base_url,
                 "vlm.concurrency": args.concurrency, "vlm.timeout": args.timeout, "vlm.frames_as": args.frames_as,
                 "vlm.device": args.device, "labelling.refinement_iterations": args.refinement_iterations}
    stats = pseudo_label(input_dir=args.input_dir, working_dir=args.working_dir, output_dir=args.output_dir,
                         config=args.config, overrides=overrides, checkpoint=args.checkpoint, tracks=args.tracks,
                         detections=args.detections, label_map=args.label_map, oracle_gt=args.oracle_gt,
                         oracle_noise=(args.oracle_top1, args.oracle_invalid),
                         skip_recognition=args.skip_recognition, pipeline_options=options_from_args(args))
    return EXIT_UNANSWERED if stats.failed else EXIT_SKIPPED if stats.skipped else stats


def main(argv=None) -> int:
    return run_cli(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
