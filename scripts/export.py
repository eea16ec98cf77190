#!/usr/bin/env python
"""Export a checkpoint's streaming step for deployment.

    python scripts/export.py --checkpoint runs/<run>/best.pt --format onnx --out runs/<run>/best.onnx
    python scripts/inference.py --checkpoint runs/<run>/best.pt --runtime onnxruntime --video clip.mp4 --save-mot out.txt
    python scripts/export.py --checkpoint runs/<run>/best.pt --int8 data/generated/synthetic/train/seq_000/img1
    python scripts/inference.py --checkpoint runs/<run>/best.pt --runtime onnxruntime --onnx runs/<run>/best.int8.onnx --video clip.mp4

Writes three ONNX graphs (the frame step, the ReID embedding, the action head's tube step; see
models/onnx_export.py), each recording the checkpoint it came from. --runtime onnxruntime in
inference.py, evaluate.py and benchmark_inference.py runs the same engine on them (the deploy extra).
--int8 also writes best.int8.onnx and its companions: the frame graph statically quantized by ONNX
Runtime (QDQ, per-channel int8 weights), its activation ranges calibrated on the first
--calibration-frames frames of a video or image folder (training frames, not the ones you score).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.cli import run_cli


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="best.pt / last.pt written by scripts/run_trainer.py")
    p.add_argument("--format", choices=("onnx",), default="onnx")
    p.add_argument("--out", type=Path, help="model.onnx to write (default: the checkpoint's path with .onnx)")
    p.add_argument("--int8", metavar="FRAMES", help="also write the INT8 graphs (<out>.int8.onnx), calibrated on this "
                                                    "video or image folder (training frames)")
    p.add_argument("--calibration-frames", type=int, default=256,
                   help="with --int8: how many consecutive frames calibrate the ranges (default 256)")
    return p.parse_args(argv)


def run(args) -> None:
    from common.errors import InputError
    from common.io import check_output_path, check_outputs_apart
    from models.checkpoint import load_model_from_checkpoint
    from models.onnx_export import export_onnx, graph_paths

    try:
        import onnx  # noqa: F401
    except ImportError as exc:
        raise InputError(f'--format onnx needs the deploy extra (pip install -c constraints.txt -e ".[deploy]"): {exc}') from None
    if args.calibration_frames < 1:
        raise InputError(f"--calibration-frames must be at least 1, got {args.calibration_frames}")
    out = args.out or Path(args.checkpoint).with_suffix(".onnx")
    if out.suffix.lower() != ".onnx":
        raise InputError(f"{out}: --out names the ONNX model: give a path ending in .onnx")
    graphs = {f"the {name} graph": path for name, path in graph_paths(out).items()}
    if args.int8:
        from models.onnx_quantize import int8_path
        if not Path(args.int8).exists():
            raise InputError(f"{args.int8}: --int8 calibration frames not found (a video or an image folder)")
        graphs.update({f"the INT8 {name} graph": path for name, path in graph_paths(int8_path(out)).items()})
    for path in graphs.values():
        check_output_path(path, "ONNX model")
    check_outputs_apart({path: what for what, path in graphs.items()},
                        {args.checkpoint: "--checkpoint", **({args.int8: "--int8"} if args.int8 else {})})
    model, config, spec = load_model_from_checkpoint(args.checkpoint)
    paths = export_onnx(model, config, spec, args.checkpoint, out)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    if args.int8:
        from models.onnx_quantize import calibration_images, quantize_export
        quantize_export(out, calibration_images(args.int8, spec.input_size, args.calibration_frames))


def main(argv=None) -> int:
    return run_cli(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
