#!/usr/bin/env python
"""The tracker alone on public detections, scored with HOTA / IDF1 / MOTA, beside the established
trackers from PyPI when they are installed (a separate environment: ``pip install -c
constraints-bench.txt -e ".[bench]"``).

    python scripts/benchmark_tracking.py                    # ../shared/data/real/mot
    python scripts/benchmark_tracking.py --data-root MOT15/train --sequences TUD-Campus --json out.json

See evaluation/benchmark_tracking.py for the protocol.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from common.cli import run_cli
from common.errors import InputError
from evaluation.benchmark_tracking import DEFAULT_SEQUENCES

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "mot"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=str(DEFAULT_ROOT), help="folder holding the MOTChallenge sequences")
    p.add_argument("--sequences", nargs="+", default=list(DEFAULT_SEQUENCES))
    p.add_argument("--trackers", nargs="+", help="subset of: ours and the installed baselines (default: all)")
    p.add_argument("--repeat", type=int, default=5, help="rounds over all trackers; each one's fastest per sequence counts for fps")
    p.add_argument("--threads", type=int, default=1, help="torch/BLAS threads (trackers are single-threaded)")
    p.add_argument("--json", type=Path, help="write the report here")
    return p.parse_args(argv)


def run(args) -> dict:
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    from common.io import atomic_write_json
    from evaluation.benchmark_tracking import available_trackers, benchmark, format_report, load_sequences, verdict

    torch.set_num_threads(args.threads)
    sequences = load_sequences(Path(args.data_root), args.sequences)
    trackers = available_trackers()
    if args.trackers:
        unknown = sorted(set(args.trackers) - set(trackers))
        if unknown:
            raise InputError(f"--trackers: {', '.join(unknown)} not available (installed: {', '.join(trackers)})")
        trackers = {k: v for k, v in trackers.items() if k in args.trackers}
    report = benchmark(trackers, sequences, max(1, args.repeat))
    print(format_report(report, [s.name for s in sequences]))
    print(verdict(report))
    if args.json:
        atomic_write_json(args.json, report)
    return report


def main(argv=None) -> int:
    return run_cli(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
