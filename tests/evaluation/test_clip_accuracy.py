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
