#!/usr/bin/env python
"""Serve a page where you drop a video and see every person tracked with their actions.

    python scripts/app.py --checkpoint runs/latest/best.pt          # then open http://127.0.0.1:7860
    python scripts/app.py --checkpoint runs/ --port 8080            # choose among the runs' best.pt
    curl -F video=@clip.mp4 http://127.0.0.1:7860/api/track -o clip.json   # a video in, the V-ICR JSON out

Listens on 127.0.0.1 only unless --host says otherwise (the page runs models on what anyone who
reaches it uploads). Needs the app extra: pip install -c constraints.txt -e ".[app]".
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from common.cli import run_cli

EXAMPLE = Path("data/generated/synthetic/test/SYN-test-01/img1")  # the Quick start's test sequence


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=Path("runs/latest/best.pt"),
                   help="a run's best.pt, or a folder of runs to choose from in the page (default runs/latest/best.pt)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest video accepted (default 200 MB)")
    p.add_argument("--example", type=Path, help=f"a video or image folder offered as the example (default {EXAMPLE} "
                                                "when the Quick start has generated it)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    args = p.parse_args(argv)
    if not 0 <= args.port <= 65535:
        p.error(f"--port must be in 0-65535, got {args.port}")
    if not (math.isfinite(args.max_upload_mb) and args.max_upload_mb > 0):
        p.error(f"--max-upload-mb must be > 0, got {args.max_upload_mb}")
    return args


def run(args) -> int:
    from common.errors import InputError

    try:
        import uvicorn

        from webapp.server import AppConfig, create_app, find_checkpoints
    except ImportError as exc:
        raise InputError(f'the app needs the app extra (pip install -c constraints.txt -e ".[app]"): {exc}') from None
    if args.example is not None and not args.example.exists():
        raise InputError(f"{args.example}: --example not found")
    example = args.example or (EXAMPLE if EXAMPLE.is_dir() else None)
    config = AppConfig(find_checkpoints(args.checkpoint), args.max_upload_mb, example, args.device)
    app = create_app(config)
    print(f"serving {', '.join(config.checkpoints)} on http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def main(argv=None) -> int:
    return run_cli(run, parse_args(argv), interrupted="stopped")


if __name__ == "__main__":
    sys.exit(main())
