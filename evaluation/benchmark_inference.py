"""Streaming inference speed: end to end (decode + network + tracker) per variant, association
time per frame at 10 / 50 / 200 objects, peak memory, achieved GFLOP/s against a matmul, and the
same end-to-end measure for ultralytics YOLO11n + ByteTrack when ultralytics is installed.
``scripts/benchmark_inference.py`` is its command line.

Each precision is measured for every pipeline alike: ``bf16`` runs ours with
``precision="bf16"`` and YOLO11n's ``track`` call under the same bfloat16 autocast, so a ratio
always compares the two at one precision.

Each end-to-end measure runs in its own process (peak memory is that process's; the child is
``python -m evaluation.benchmark_inference --child ...``), reads the video frame by frame inside
the timed loop, and skips the warm-up frames; rounds run all pipelines one after the other and each
one's fastest round counts. Without a checkpoint the networks have random weights: the compute per
frame does not depend on the weights, but an untrained detector finds nobody, so the tracker and
the per-track action head then cost nothing; the association rows and the action-head figure
measure those parts on their own. YOLO11n is built from its yaml (random weights, no download) and
follows ultralytics' own tracking loop.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _frames(video: str, count: int):
    from data.video import FrameStream
    stream = FrameStream(video)
    for n, (index, timestamp, frame) in enumerate(stream):
        if n >= count:
            break
        yield index, timestamp, frame


# ------------------------------------------------------------------------------ child runs
CALIBRATION_FRAMES = 64  # INT8 ranges: the video's first frames (a speed benchmark; accuracy is measured elsewhere)


def _calibration(video, size: tuple[int, int]):
    """The first :data:`CALIBRATION_FRAMES` frames of ``video`` as network inputs ``(1, 3, H, W)``."""
    from models.onnx_quantize import calibration_images
    return calibration_images(video, size, CALIBRATION_FRAMES)


def _onnx_model(model, config, spec, checkpoint, size, threads: int, int8_video=None):
    """``model`` exported (to a temporary folder; not timed) and loaded for ONNX Runtime; with
    ``int8_video``, its INT8 graphs calibrated on that video's first frames."""
    import tempfile

    import torch

    from models.checkpoint import FORMAT
    from models.onnx_export import export_onnx
    from models.onnx_runtime import OnnxStreamingModel

    # The sessions hold the graphs in memory once built, so the files can go at once.
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        folder = Path(tmp)
        if checkpoint is None:  # random weights: a checkpoint file only to name the export's source
            checkpoint = folder / "random.pt"
            torch.save({"format": FORMAT, "model": model.state_dict()}, checkpoint)
        export_onnx(model, config, spec, checkpoint, folder / "model.onnx", input_size=size, log=lambda m: None)
        if int8_video is None:
            return OnnxStreamingModel(folder / "model.onnx", threads=threads)
        from models.onnx_quantize import quantize_export
        paths = quantize_export(folder / "model.onnx", _calibration(int8_video, size), log=lambda m: None)
        return OnnxStreamingModel(paths["frame"], threads=threads)


def child_ours(args) -> dict:
    import dataclasses

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from models.checkpoint import InferenceSpec, load_model_from_checkpoint
    from models.config import model_preset
    from models.mot_action_net import MotActionNet
    from tracking.pipeline import Pipeline, PipelineOptions

    torch.set_num_threads(args.threads)
    size = (args.height, args.width)
    # INT8 lives in the graphs; the pipeline around them runs as in fp32.
    options = PipelineOptions(precision="fp32" if args.precision == "int8" else args.precision, device="cpu")
    if args.checkpoint:
        model, config, spec = load_model_from_checkpoint(args.checkpoint)
        spec = dataclasses.replace(spec, input_size=size)
        options = options.with_thresholds(spec)  # as deployed: its high_score sets how many boxes are embedded
    else:
        config = model_preset(args.variant)
        model = MotActionNet.from_config(config).eval()
        spec = InferenceSpec(action_names=tuple(f"action{i}" for i in range(model.num_actions)), input_size=size,
                             clip_len=8, stride=2)
    eager = Pipeline(options=options, model=model, spec=spec, device=torch.device("cpu"))
    pipeline = eager
    if args.runtime == "onnxruntime":
        onnx_model = _onnx_model(model, config, spec, args.checkpoint, size, args.threads,
                                 int8_video=args.video if args.precision == "int8" else None)
        pipeline = Pipeline(options=options, model=onnx_model, spec=spec, device=torch.device("cpu"))
    session = pipeline.start(fps=10.0)
    total = args.warmup + args.frames
    detections, start = 0, None
    for n, (index, timestamp, frame) in enumerate(_frames(args.video, total)):
        if n == args.warmup:
            start = time.perf_counter()
        result = session.step(index, timestamp, frame)
        if n >= args.warmup:
            detections += len(result.detection_boxes)
    elapsed = time.perf_counter() - start
    # FLOPs of one steady-state frame of the same network (counted on the eager path: the exported
    # graphs do the same arithmetic).
    counting = eager.start(fps=10.0)
    frames = [f for _, _, f in _frames(args.video, spec.clip_len * spec.stride)]
    for k, frame in enumerate(frames[:-1]):
        counting.step(k, k / 10.0, frame)
    with FlopCounterMode(display=False) as counter:
        counting.step(len(frames) - 1, (len(frames) - 1) / 10.0, frames[-1])
    return {"fps": args.frames / elapsed, "gflops_per_frame": counter.get_total_flops() / 1e9,
            "detections_per_frame": detections / args.frames, "peak_rss_mb": _peak_rss_mb()}


def child_yolo(args) -> dict:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import torch
    import ultralytics.utils.torch_utils as torch_utils
    from ultralytics import YOLO

    # ultralytics sets torch to cpu_count - 1 threads; hold it to the same budget as ours.
    torch_utils.NUM_THREADS = args.threads
    torch.set_num_threads(args.threads)
    model = YOLO("yolo11n.yaml")
    if args.runtime == "onnxruntime":  # ultralytics' own export, run by its ONNX Runtime backend
        import tempfile
        folder = Path(tempfile.mkdtemp(prefix="bench-yolo-"))
        model.save(folder / "yolo11n.pt")
        exported = YOLO(folder / "yolo11n.pt").export(format="onnx", imgsz=(args.height, args.width), dynamic=False,
                                                       simplify=False, verbose=False)
        if args.precision == "int8":  # the same static quantization as ours, on the same frames
            from models.onnx_quantize import quantize_graph
            int8 = folder / "yolo11n.int8.onnx"
            quantize_graph(exported, int8, ({"images": image} for image in _calibration(args.video, (args.height, args.width))))
            exported = str(int8)
        model = YOLO(exported, task="detect")
    total = args.warmup + args.frames
    start = None
    for n, (_, _, frame) in enumerate(_frames(args.video, total)):
        if n == args.warmup:
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            model.track(frame, persist=True, tracker="bytetrack.yaml", imgsz=(args.height, args.width), device="cpu",
                        verbose=False)
        torch.set_num_threads(args.threads)
    elapsed = time.perf_counter() - start
    return {"fps": args.frames / elapsed, "peak_rss_mb": _peak_rss_mb()}


def _run_child(kind: str, args, variant: str = "", precision: str = "fp32", runtime: str = "torch") -> dict | str:
    cmd = [sys.executable, "-m", "evaluation.benchmark_inference", "--child", kind, "--variant", variant or "tiny",
           "--precision", precision, "--runtime", runtime, "--video", str(args.video), "--frames", str(args.frames), "--warmup",
           str(args.warmup), "--threads", str(args.threads), "--width", str(args.width), "--height", str(args.height)]
    if args.checkpoint and kind == "ours":
        cmd += ["--checkpoint", str(args.checkpoint)]
    # The child imports the installed package, as this process does (python -m finds it there).
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit {out.returncode}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def end_to_end(args, precision: str, peak: float, runtime: str = "torch") -> dict:
    """Every variant and YOLO11n at one precision and runtime (``torch`` eager, or
    ``onnxruntime`` for ours and ultralytics' own ONNX export alike), ``--repeat`` rounds over all
    of them (each pipeline's fastest round counts, so a slow spell of the machine touches them
    alike instead of whichever ran then): prints their table and ratios."""
    kinds = [("ours", v) for v in args.variants.split(",")]
    if not args.no_yolo:
        try:
            import ultralytics  # noqa: F401
            kinds.append(("yolo", "yolo11n_bytetrack"))
        except ImportError:
            print("YOLO11n + ByteTrack: not installed (its environment: pip install -c constraints-bench.txt -e \".[bench]\")")
    rows: dict = {}
    for _ in range(args.repeat):
        for kind, name in kinds:
            if isinstance(rows.get(name), str):
                continue  # failed once: do not retry
            r = _run_child(kind, args, name if kind == "ours" else "", precision, runtime)
            if isinstance(r, str) or name not in rows or r["fps"] > rows[name]["fps"]:
                rows[name] = r
    label = f"{runtime}, {precision}"
    print("| pipeline | fps | ms/frame | GFLOP/frame | GFLOP/s (% of matmul) | peak memory (MB) | detections/frame |")
    print("|---|---|---|---|---|---|---|")
    for kind, name in kinds:
        r = rows[name]
        if isinstance(r, str):
            print(f"| {name} ({label}) | failed: {r} | | | | | |")
        elif kind == "ours":
            achieved = r["gflops_per_frame"] * r["fps"]
            print(f"| {name} + tracker ({label}) | {r['fps']:.1f} | {1000 / r['fps']:.1f} | {r['gflops_per_frame']:.2f} | "
                  f"{achieved:.1f} ({100 * achieved / peak:.0f}%) | {r['peak_rss_mb']:.0f} | {r['detections_per_frame']:.1f} |")
        else:
            print(f"| YOLO11n + ByteTrack (ultralytics, {label}) | {r['fps']:.1f} | {1000 / r['fps']:.1f} | | | "
                  f"{r['peak_rss_mb']:.0f} | |")
    yolo = rows.get("yolo11n_bytetrack")
    if isinstance(yolo, dict):
        for variant in args.variants.split(","):
            if isinstance(rows.get(variant), dict):
                print(f"{variant} ({label}): {rows[variant]['fps'] / yolo['fps']:.2f}x YOLO11n + ByteTrack's fps ({label})")
    return rows


# ----------------------------------------------------------------------------- in-process parts
def matmul_gflops(threads: int, n: int = 1024, repeat: int = 10, rounds: int = 5, precision: str = "fp32") -> float:
    """Matmul GFLOP/s (float32, or bfloat16 with ``precision="bf16"``) with ``threads`` threads:
    the best of ``rounds`` timings, so a moment of contention does not make the reference (and
    every percentage against it) low."""
    import torch
    torch.set_num_threads(threads)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 * repeat / best / 1e9


def association_fps(num_objects: int, frames: int = 200, embeddings: bool = True, seed: int = 0) -> float:
    """Tracker updates per second with ``num_objects`` people walking in a 1920x1080 frame, each
    detected every frame with a little jitter (and a 128-d embedding when ``embeddings``)."""
    import numpy as np

    from tracking.tracker import Tracker

    rng = np.random.default_rng(seed)
    pos = rng.uniform([0, 0], [1800, 900], (num_objects, 2))
    vel = rng.uniform(-40, 40, (num_objects, 2))
    size = rng.uniform([30, 80], [60, 180], (num_objects, 2))
    emb = rng.normal(size=(num_objects, 128))
    tracker = Tracker(fps=25.0)
    spent = 0.0
    for k in range(frames):
        pos = pos + vel / 25.0
        boxes = np.concatenate([pos, pos + size], 1) + rng.normal(0, 1.0, (num_objects, 4))
        scores = rng.uniform(0.6, 1.0, num_objects)
        e = emb + rng.normal(0, 0.1, emb.shape) if embeddings else None
        start = time.perf_counter()
        tracker.update(boxes, scores, e, k / 25.0)
        spent += time.perf_counter() - start
    return frames / spent


def action_head_ms(variant: str, tracks: int, threads: int, width: int, height: int) -> float:
    """Per-frame cost of the action head on ``tracks`` tubes of 8 boxes (the streaming engine runs
    it on every confirmed track each frame)."""
    import torch

    from models.mot_action_net import build_model
    torch.set_num_threads(threads)
    model = build_model(variant).eval()
    p3 = torch.randn(8, model.fpn.out_channels, height // 8, width // 8)  # (T, C, H/8, W/8)
    boxes = torch.tensor([100.0, 100.0, 140.0, 220.0]).expand(1, 8, tracks, 4).contiguous()
    mask = torch.ones(1, 8, tracks, dtype=torch.bool)
    with torch.no_grad():
        for _ in range(2):
            model.action_head(p3, boxes, mask)
        start = time.perf_counter()
        for _ in range(10):
            model.action_head(p3, boxes, mask)
    return (time.perf_counter() - start) / 10 * 1000


def _child_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--child", required=True, choices=("ours", "yolo"))
    for flag in ("--variant", "--precision", "--video", "--checkpoint", "--runtime"):
        p.add_argument(flag)
    for flag in ("--frames", "--warmup", "--threads", "--width", "--height"):
        p.add_argument(flag, type=int)
    args = p.parse_args(argv)
    print(json.dumps(child_ours(args) if args.child == "ours" else child_yolo(args)))
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
