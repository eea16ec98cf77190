#!/usr/bin/env python
"""Export a checkpoint's streaming step for deployment.

    python scripts/export.py --checkpoint runs/<run>/best.pt --format onnx --out runs/<run>/best.onnx
    python scripts/inference.py --checkpoint runs/<run>/best.pt --runtime onnxruntime --video clip.mp4 --save-mot out.txt

Writes three ONNX graphs (the frame step, the ReID embedding, the action head's tube step; see
models/onnx_export.py), each recording the checkpoint it came from. --runtime onnxruntime in
inference.py, evaluate.py and benchmark_inference.py runs the same engine on them (the deploy extra).
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
    out = args.out or Path(args.checkpoint).with_suffix(".onnx")
    if out.suffix.lower() != ".onnx":
        raise InputError(f"{out}: --out names the ONNX model: give a path ending in .onnx")
    graphs = graph_paths(out)
    for path in graphs.values():
        check_output_path(path, "ONNX model")
    check_outputs_apart({path: f"the {name} graph" for name, path in graphs.items()}, {args.checkpoint: "--checkpoint"})
    model, config, spec = load_model_from_checkpoint(args.checkpoint)
    paths = export_onnx(model, config, spec, args.checkpoint, out)
    print("wrote " + ", ".join(str(p) for p in paths.values()))


def main(argv=None) -> int:
    return run_cli(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
