#!/usr/bin/env python
"""Parameter count (per module) and GFLOPs per frame of each model variant.

FLOPs are counted by ``torch.utils.flop_counter`` (one multiply-add = 2 FLOPs) for the detection
and ReID path of a ``--clip-len``-frame clip at ``--height`` x ``--width``, divided by the number
of frames, plus the action head on ``--tracks`` person tubes. The temporal encoder's attention is
counted too (PyTorch's fused inference kernel for it is invisible to the counter, so counting
runs the same arithmetic unfused).

``--modules`` adds, per variant, a table of each module's parameters, its share of those GFLOPs,
and what one frame of streaming costs it (``MotActionNet.stream_step``: the backbone on the new
frame, the temporal encoder's newest-frame pass over the cached C5 window, FPN, detection towers,
the ReID map, and the action head's per-frame features plus ``--tracks`` tubes over the window):
GFLOPs, and with ``--time`` milliseconds (eval, BatchNorm folded, ``--threads`` threads, best of
``--repeat`` rounds, each round running every module of every variant once, so that on a shared
machine all of them see the same load).

    python scripts/model_stats.py                                   # 640x384, clip of 8, 10 tracks
    python scripts/model_stats.py --variants tiny,fast --modules --time
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from models.layers import fuse_conv_bn
from models.mot_action_net import VARIANTS, build_model

MODULES = ("backbone", "temporal", "fpn", "detection_head", "reid_head", "action_head")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=384)
    p.add_argument("--clip-len", type=int, default=8)
    p.add_argument("--tracks", type=int, default=10)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--modules", action="store_true", help="per-module table (params, GFLOPs, streaming GFLOPs)")
    p.add_argument("--time", action="store_true", help="with --modules: ms per module of a streaming step")
    p.add_argument("--repeat", type=int, default=30, help="timed runs per module (the best is reported)")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args(argv)


@contextlib.contextmanager
def counting():
    """A FLOP counter that also sees the transformer layers' attention (their fused inference path
    is one opaque kernel to it)."""
    mha = torch.backends.mha
    enabled = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            yield counter
    finally:
        mha.set_fastpath_enabled(enabled)


def _per_module(counter: FlopCounterMode, divisor: float) -> dict[str, float]:
    """Each module's FLOPs; a module whose methods the network calls instead of its ``forward``
    (the ReID head's ``feature_map``) is the sum of its outermost counted submodules."""
    counts = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
    out = {}
    for name in MODULES:
        prefix = f"MotActionNet.{name}"
        inside = [k for k in counts if k == prefix or k.startswith(prefix + ".")]
        top = min((k.count(".") for k in inside), default=0)
        out[name] = sum(counts[k] for k in inside if k.count(".") == top) / divisor / 1e9
    return out


def clip_inputs(args):
    T, N = args.clip_len, args.tracks
    frames = torch.rand(1, T, 3, args.height, args.width)
    boxes = torch.tensor([20.0, 20.0, 80.0, 200.0]).expand(1, T, N, 4).contiguous()
    return frames, boxes, torch.ones(1, T, N, dtype=torch.bool)


def clip_gflops(model, args) -> float:
    """GFLOPs per frame of ``model`` on a ``--clip-len`` clip with ``--tracks`` tubes (the table's last column)."""
    with counting() as counter:
        model(*clip_inputs(args))
    return counter.get_total_flops() / args.clip_len / 1e9


def streaming_parts(model, args) -> dict:
    """One frame of streaming, module by module, on a BatchNorm-folded copy (as deployed)."""
    net = fuse_conv_bn(copy.deepcopy(model).eval())
    T, N = args.clip_len, args.tracks
    image = torch.rand(1, 3, args.height, args.width)
    with torch.no_grad():
        c3, c4, c5 = net.backbone(image)
        window = torch.randn(1, T, *c5.shape[1:])
        c5 = net.temporal.forward_last(window)
        levels = net.fpn([c3, c4, c5])
        features = net.action_head.features(levels[0]).expand(T, -1, -1, -1).contiguous()
    boxes = (torch.tensor([20.0, 20.0, 80.0, 200.0]) + 30 * torch.arange(N)[:, None]).expand(1, T, N, 4).contiguous()
    mask = torch.ones(1, T, N, dtype=torch.bool)
    return {
        "backbone": lambda: net.backbone(image),
        "temporal": lambda: net.temporal.forward_last(window),
        "fpn": lambda: net.fpn([c3, c4, c5]),
        "detection_head": lambda: net.detection_head(levels),
        "reid_head": lambda: net.reid_head.feature_map(levels[0]),
        "action_head": lambda: (net.action_head.features(levels[0]),
                                net.action_head.from_features(features, boxes, mask)),
    }


def best_ms(parts: dict[str, dict], repeat: int) -> dict[str, dict[str, float]]:
    """Best time (ms) of each variant's each part over ``repeat`` rounds; every round runs every
    part once, so all variants see the same load on a shared machine."""
    times = {v: {name: [] for name in fns} for v, fns in parts.items()}
    with torch.no_grad():
        for fns in parts.values():
            for fn in fns.values():
                fn()
                fn()
        for _ in range(repeat):
            for variant, fns in parts.items():
                for name, fn in fns.items():
                    start = time.perf_counter()
                    fn()
                    times[variant][name].append(time.perf_counter() - start)
    return {v: {name: 1e3 * min(t) for name, t in per.items()} for v, per in times.items()}


def module_table(variant: str, model, args, ms: dict[str, float]) -> None:
    frames, boxes, mask = clip_inputs(args)
    with counting() as counter:
        model(frames, boxes, mask)
    clip = _per_module(counter, args.clip_len)
    stream = {}
    for name, fn in streaming_parts(model, args).items():
        with counting() as counter:
            fn()
        stream[name] = counter.get_total_flops() / 1e9
    params = {n: sum(p.numel() for p in m.parameters()) / 1e6 for n, m in model.named_children()}
    print(f"\n{variant} at {args.width}x{args.height}, {args.tracks} tracks, window {args.clip_len}"
          + (f", {torch.get_num_threads()} threads, best of {args.repeat}" if ms else ""))
    print("| module | params (M) | GFLOPs/frame (clip) | GFLOPs/frame (streaming) |" + (" ms/frame (streaming) |" if ms else ""))
    print("|---|---|---|---|" + ("---|" if ms else ""))
    for name in MODULES:
        print(f"| {name} | {params[name]:.3f} | {clip[name]:.3f} | {stream[name]:.3f} |"
              + (f" {ms[name]:.1f} |" if ms else ""))
    print(f"| total | {sum(params[n] for n in MODULES):.3f} | {sum(clip.values()):.3f} | {sum(stream.values()):.3f} |"
          + (f" {sum(ms.values()):.1f} |" if ms else ""))


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"| variant | params (M) | backbone | temporal | FPN | det head | ReID head | action head | GFLOPs/frame @ {args.width}x{args.height} |")
    print("|---|---|---|---|---|---|---|---|---|")
    models = {}
    for variant in args.variants.split(","):
        torch.manual_seed(0)
        model = models[variant] = build_model(variant).eval()
        parts = {n: sum(p.numel() for p in m.parameters()) / 1e6 for n, m in model.named_children()}
        total = sum(p.numel() for p in model.parameters()) / 1e6
        gflops = clip_gflops(model, args)
        print(f"| {variant} | {total:.2f} | {parts['backbone']:.2f} | {parts['temporal']:.2f} | {parts['fpn']:.2f} | "
              f"{parts['detection_head']:.2f} | {parts['reid_head']:.2f} | {parts['action_head']:.2f} | {gflops:.2f} |")
    if args.modules:
        ms = best_ms({v: streaming_parts(m, args) for v, m in models.items()}, args.repeat) if args.time else {}
        for variant, model in models.items():
            module_table(variant, model, args, ms.get(variant, {}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
