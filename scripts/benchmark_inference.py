#!/usr/bin/env python
"""Streaming inference speed: end to end (decode + network + tracker) per variant, association
time per frame at 10 / 50 / 200 objects, peak memory, achieved GFLOP/s against a matmul, and the
same end-to-end measure for ultralytics YOLO11n + ByteTrack when ultralytics is installed (the
bench environment: ``pip install -c constraints-bench.txt -e ".[bench,deploy]"``).

    python scripts/benchmark_inference.py                       # PETS09-S2L1 frames, 640x384, 2 threads
    python scripts/benchmark_inference.py --variants tiny --frames 100 --checkpoint runs/<run>/best.pt
    python scripts/benchmark_inference.py --precisions fp32   # float32 only

See evaluation/benchmark_inference.py for what is measured and how.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.cli import run_cli
from common.device import PRECISIONS
from common.errors import InputError

DEFAULT_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "mot" / "PETS09-S2L1" / "vtest.avi"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="any video OpenCV reads (default: PETS09-S2L1)")
    p.add_argument("--variants", default="tiny,lite")
    p.add_argument("--checkpoint", type=Path, help="trained weights for the end-to-end runs (default: random weights)")
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=384)
    p.add_argument("--precisions", default="fp32,bf16",
                   help="comma-separated: fp32, bf16 (bfloat16 autocast, eager; for ours and YOLO11n alike), int8 "
                        "(ONNX Runtime static quantization of both graphs, calibrated on the video's first 64 frames)")
    p.add_argument("--runtimes", default="torch",
                   help="comma-separated: torch (eager: fp32, bf16), onnxruntime (ours exported by scripts/export.py, "
                        "YOLO11n by ultralytics' own ONNX export: fp32, int8)")
    p.add_argument("--repeat", type=int, default=3,
                   help="rounds over all pipelines; each one's fastest round counts (the machine's speed drifts)")
    p.add_argument("--no-yolo", action="store_true", help="skip the YOLO11n + ByteTrack row")
    p.add_argument("--json", type=Path, help="write every figure here")
    return p.parse_args(argv)


RUNTIME_PRECISIONS = {"torch": PRECISIONS, "onnxruntime": ("fp32", "int8")}


def run(args) -> dict:
    import torch

    from common.io import atomic_write_json
    from evaluation.benchmark_inference import action_head_ms, association_fps, end_to_end, matmul_gflops

    if not args.video.is_file():
        raise InputError(f"{args.video}: video not found")
    precisions = args.precisions.split(",")
    if not set(precisions) <= {*PRECISIONS, "int8"}:
        raise InputError(f"--precisions takes {', '.join((*PRECISIONS, 'int8'))}, got {args.precisions}")
    runtimes = args.runtimes.split(",")
    if not set(runtimes) <= {"torch", "onnxruntime"}:
        raise InputError(f"--runtimes takes torch and/or onnxruntime, got {args.runtimes}")
    torch.set_num_threads(args.threads)
    report = {"threads": args.threads, "size": [args.width, args.height], "frames": args.frames, "end_to_end": {}}
    for runtime in runtimes:
        for precision in precisions:
            if precision not in RUNTIME_PRECISIONS[runtime]:
                print(f"\n{runtime}, {precision}: not measured ({runtime} runs {', '.join(RUNTIME_PRECISIONS[runtime])})")
                continue
            # INT8's share is given of the fp32 matmul rate: torch has no CPU int8 matmul to time.
            rate = "fp32" if precision == "int8" else precision
            peak = report.get(f"matmul_gflops_{rate}") or matmul_gflops(args.threads, precision=rate)
            report[f"matmul_gflops_{rate}"] = peak
            print(f"\n{runtime}, {precision}: end to end on {args.video.name}: {args.frames} frames at "
                  f"{args.width}x{args.height}, {args.threads} threads; a {rate} matmul reaches {peak:.1f} GFLOP/s here")
            report["end_to_end"][f"{runtime}/{precision}"] = end_to_end(args, precision, peak, runtime)
    # Best of 3 (as benchmark_tracking does): one-off stalls of this shared machine otherwise show
    # up as a slower tracker.
    print("\n| association (tracker.update, best of 3) | 10 objects | 50 objects | 200 objects |")
    print("|---|---|---|---|")
    assoc = {}
    for emb in (False, True):
        values = [max(association_fps(n, embeddings=emb, seed=0) for _ in range(3)) for n in (10, 50, 200)]
        assoc["with_embeddings" if emb else "boxes_only"] = dict(zip(("10", "50", "200"), values))
        print(f"| {'boxes + 128-d embeddings' if emb else 'boxes only'} | " + " | ".join(f"{v:,.0f} fps" for v in values) + " |")
    report["association_fps"] = assoc
    first = args.variants.split(",")[0]
    ms = {n: action_head_ms(first, n, args.threads, args.width, args.height) for n in (1, 10)}
    report["action_head_ms"] = ms
    print(f"\naction head ({first}, tubes of 8 boxes): {ms[1]:.1f} ms per frame for 1 track, {ms[10]:.1f} ms for 10")
    if args.json:
        atomic_write_json(args.json, report)
    return report


def main(argv=None) -> int:
    return run_cli(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
