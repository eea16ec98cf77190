"""Clip- and video-level accuracy with either runtime: the exported graphs have no clip forward,
so the ONNX path streams the clip's frames (it once failed: 'OnnxStreamingModel' object is not callable)."""
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from data.action_clips import read_action_dataset
from evaluation.clip_accuracy import evaluate_clips
from tracking.pipeline import Pipeline, PipelineOptions

ROOT = Path(__file__).resolve().parents[2]


def _class_folder_dataset(small_dataset: Path, out: Path) -> Path:
    """One synthetic sequence written as a video in each of two class folders, its people as tracks."""
    from data.formats.vicr import read_label_map
    names = read_label_map(small_dataset / "label_map.txt").names
    seq = sorted((small_dataset / "train").iterdir())[0]
    frames = sorted((seq / "img1").glob("*.jpg"))
    first = cv2.imread(str(frames[0]))
    (out / "tracks").mkdir(parents=True)
    for label in (names[0], names[1]):
        path = out / "data" / label / f"{seq.name}-{label}.avi"
        path.parent.mkdir(parents=True)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (first.shape[1], first.shape[0]))
        for f in frames:
            writer.write(cv2.imread(str(f)))
        writer.release()
        shutil.copy(seq / "gt" / "gt.txt", out / "tracks" / f"{path.stem}.txt")
    return out


def test_clip_accuracy_runs_on_the_exported_graphs(trained_checkpoint, small_dataset, tmp_path):
    pytest.importorskip("onnxruntime")
    folder = _class_folder_dataset(small_dataset, tmp_path)
    checkpoint = tmp_path / "model.pt"
    shutil.copy(trained_checkpoint, checkpoint)
    export = subprocess.run([sys.executable, str(ROOT / "scripts" / "export.py"), "--checkpoint", str(checkpoint)],
                            capture_output=True, text=True, timeout=600)
    assert export.returncode == 0, export.stderr[-2000:]
    videos = read_action_dataset(folder / "data")
    eager = evaluate_clips(Pipeline.from_checkpoint(checkpoint, PipelineOptions(device="cpu")), videos,
                           folder / "tracks", log=lambda m: None)
    onnx = evaluate_clips(Pipeline.from_checkpoint(checkpoint, PipelineOptions(runtime="onnxruntime")), videos,
                          folder / "tracks", log=lambda m: None)
    # 40 frames, clips of 4 frames 2 apart: 5 clips per video, on both runtimes.
    assert onnx["videos"] == eager["videos"] == 2 and onnx["clips"] == eager["clips"] == 10
    # Both videos are the same frames under two labels: at most one is right, whatever the runtime.
    assert onnx["video_acc1"] in (0.0, 50.0) and onnx["clip_acc1"] in (0.0, 50.0)
    assert onnx["video_acc5"] >= onnx["video_acc1"] and onnx["clip_acc5"] >= onnx["clip_acc1"]


def test_the_graphs_clip_actions_equal_the_eager_streaming_step(trained_checkpoint, tmp_path):
    """clip_actions streams the clip through the exported graphs: at the clip's last frame it gives
    what the eager network's streaming step gives for the same frames and tube."""
    pytest.importorskip("onnxruntime")
    import torch

    from models.checkpoint import load_model_from_checkpoint
    from models.mot_action_net import StreamState
    from models.onnx_runtime import OnnxStreamingModel

    checkpoint = tmp_path / "model.pt"
    shutil.copy(trained_checkpoint, checkpoint)
    export = subprocess.run([sys.executable, str(ROOT / "scripts" / "export.py"), "--checkpoint", str(checkpoint)],
                            capture_output=True, text=True, timeout=600)
    assert export.returncode == 0, export.stderr[-2000:]
    model, _, spec = load_model_from_checkpoint(checkpoint)
    H, W = spec.input_size
    T = 4
    frames = torch.rand(1, T, 3, H, W, generator=torch.Generator().manual_seed(0))  # (1, T, 3, H, W)
    boxes = torch.tensor([W * 0.3, H * 0.2, W * 0.5, H * 0.9]).expand(1, T, 1, 4).contiguous()  # (1, T, N=1, 4)
    mask = torch.ones(1, T, 1, dtype=torch.bool)
    onnx = OnnxStreamingModel(checkpoint.with_suffix(".onnx"), checkpoint=checkpoint).clip_actions(frames, boxes, mask)
    state = StreamState(T, 1)
    for t in range(T):
        model.stream_step(frames[:, t], state, key=t, score_threshold=1.0)
    eager = model.stream_actions(state, boxes, mask)  # (N, A) at the newest frame
    assert onnx.shape == (T, 1, eager.shape[1])
    torch.testing.assert_close(onnx[-1], eager, atol=1e-4, rtol=1e-4)
