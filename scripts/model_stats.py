#!/usr/bin/env python
"""Parameter count (per module) and GFLOPs per frame of each model variant.

FLOPs are counted by ``torch.utils.flop_counter`` (one multiply-add = 2 FLOPs) for the detection
and ReID path of a ``--clip-len``-frame clip at ``--height`` x ``--width``, divided by the number
of frames, plus the action head on ``--tracks`` person tubes.

    python scripts/model_stats.py                       # 640x384, clip of 8, 10 tracks
"""
from __future__ import annotations

import argparse
import sys

import torch
from torch.utils.flop_counter import FlopCounterMode

from models.mot_action_net import VARIANTS, build_model


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=384)
    p.add_argument("--clip-len", type=int, default=8)
    p.add_argument("--tracks", type=int, default=10)
    p.add_argument("--variants", default=",".join(VARIANTS))
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    print(f"| variant | params (M) | backbone | temporal | FPN | det head | ReID head | action head | GFLOPs/frame @ {args.width}x{args.height} |")
    print("|---|---|---|---|---|---|---|---|---|")
    for variant in args.variants.split(","):
        model = build_model(variant).eval()
        parts = {n: sum(p.numel() for p in m.parameters()) / 1e6 for n, m in model.named_children()}
        total = sum(p.numel() for p in model.parameters()) / 1e6
        T, N = args.clip_len, args.tracks
        frames = torch.rand(1, T, 3, args.height, args.width)
        boxes = torch.tensor([20.0, 20.0, 80.0, 200.0]).expand(1, T, N, 4).contiguous()
        mask = torch.ones(1, T, N, dtype=torch.bool)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(frames, boxes, mask)
        gflops = counter.get_total_flops() / T / 1e9
        print(f"| {variant} | {total:.2f} | {parts['backbone']:.2f} | {parts['temporal']:.2f} | {parts['fpn']:.2f} | "
              f"{parts['detection_head']:.2f} | {parts['reid_head']:.2f} | {parts['action_head']:.2f} | {gflops:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
