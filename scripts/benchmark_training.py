#!/usr/bin/env python
"""Training throughput (clips/s) and peak memory of each variant on this machine.

Each variant runs in its own process (so peak RSS is its own): ``--steps`` optimizer steps on
random clips of ``--clip-len`` frames at ``--height`` x ``--width`` with ``--tracks`` person tubes,
after ``--warmup`` steps. Prints a table; not a test.

    python scripts/benchmark_training.py --threads 2
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def run_one(args) -> dict:
    import torch

    from losses.action_loss import ActionLoss
    from losses.combined_loss import MultiTaskLoss
    from losses.detection_loss import DetectionLoss
    from losses.tracking_loss import ReIDLoss
    from models.mot_action_net import build_model
    from train.optim import build_optimizer

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = build_model(args.variant).to(device)
    crit = MultiTaskLoss(detection=DetectionLoss(), reid=ReIDLoss(64), action=ActionLoss()).to(device)
    opt = build_optimizer(model, crit)
    B, T, N, H, W = args.batch_size, args.clip_len, args.tracks, args.height, args.width
    x1 = torch.linspace(10, W - 60, N)
    boxes = torch.stack([x1, torch.full((N,), 20.0), x1 + 40, torch.full((N,), H - 20.0)], 1).expand(B, T, N, 4).contiguous()
    batch = {"frames": torch.rand(B, T, 3, H, W), "boxes": boxes, "mask": torch.ones(B, T, N, dtype=torch.bool),
             "labels": torch.zeros(B, T, N, dtype=torch.long), "identities": torch.arange(N).expand(B, N) % 64,
             "actions": torch.randint(0, 6, (B, T, N)), "soft_actions": torch.zeros(B, T, N, 6),
             "annotated": torch.ones(B, T, dtype=torch.bool)}
    batch = {k: v.to(device) for k, v in batch.items()}

    def step():
        terms = crit(model(batch["frames"], batch["boxes"], batch["mask"]), batch)
        opt.zero_grad()
        terms["total"].backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"variant": args.variant, "clips_per_s": B * args.steps / elapsed, "frames_per_s": B * T * args.steps / elapsed,
            "peak_rss_mb": peak_mb,
            "peak_cuda_mb": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", default="tiny,lite,full")
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--clip-len", type=int, default=8)
    p.add_argument("--tracks", type=int, default=6)
    p.add_argument("--height", type=int, default=192)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.variant:  # child process
        print(json.dumps(run_one(args)))
        return 0
    print(f"training step: batch {args.batch_size} x {args.clip_len} frames at {args.width}x{args.height}, "
          f"{args.tracks} tubes, {args.threads} threads, {args.device}")
    print("| variant | clips/s | frames/s | peak memory (MB) |")
    print("|---|---|---|---|")
    for variant in args.variants.split(","):
        cmd = [sys.executable, __file__, "--variant", variant]
        for key in ("batch_size", "clip_len", "tracks", "height", "width", "steps", "warmup", "threads", "device"):
            cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"| {variant} | failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode} | | |")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        mem = r["peak_cuda_mb"] if r["peak_cuda_mb"] is not None else r["peak_rss_mb"]
        print(f"| {variant} | {r['clips_per_s']:.2f} | {r['frames_per_s']:.1f} | {mem:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
