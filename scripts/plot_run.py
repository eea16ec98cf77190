#!/usr/bin/env python
"""Learning curves of a training run as a PNG (losses, validation metrics, task weights, learning
rate), from its TensorBoard logs.

    python scripts/plot_run.py runs/latest                 # writes runs/latest/curves.png
    python scripts/plot_run.py runs/pets09_tiny-<time> --out docs/pets09_tiny_curves.png
    python scripts/plot_run.py runs/<run> runs/<its resumed run>   # one set of curves across a resume
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.cli import run_cli


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", type=Path, nargs="+",
                   help="a run folder of scripts/run_trainer.py, then the folders of its resumed continuations")
    p.add_argument("--out", type=Path, help="PNG to write (default: curves.png in the last run folder)")
    return p.parse_args(argv)


def run(args) -> None:
    from evaluation.curves import plot_curves
    print(f"wrote {plot_curves(args.run_dirs, args.out or args.run_dirs[-1] / 'curves.png')}")


def main(argv=None) -> int:
    return run_cli(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
