"""scripts/inference.py: tracker alone on a real det.txt, the network on a synthetic video, --show
without a display, and clear errors."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from data.formats.mot import read_mot_file
from data.formats.vicr import read_vicr_video
from data.video import VideoReader

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "inference.py"


def run(*args, env=None):
    import os
    environ = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=600, env=env or environ)


@pytest.mark.real_data
def test_detections_only_on_a_real_det_file(real_data, tmp_path):
    det = real_data / "mot" / "TUD-Stadtmitte" / "det" / "det.txt"
    result = run("--detections", det, "--save-mot", tmp_path / "out.txt", "--save-json", tmp_path / "out.json")
    assert result.returncode == 0, result.stderr
    rows = read_mot_file(tmp_path / "out.txt")
    assert len(rows) > 500 and rows.frame.min() >= 1 and rows.frame.max() <= 179
    assert (rows.track_id > 0).all()
    for f in np.unique(rows.frame):  # one box per id and frame
        ids = rows.track_id[rows.frame == f]
        assert len(ids) == len(set(ids.tolist()))
    labels = read_vicr_video(tmp_path / "out.json")
    assert labels.video.total_frames == 179 and labels.video.fps == 25.0
    assert sum(len(p.frames) for p in labels.persons.values()) == len(rows)
    assert "done: 179 frames" in result.stdout


def _video_from_sequence(seq_dir: Path, out: Path, frames: int = 20) -> Path:
    images = sorted((seq_dir / "img1").glob("*.jpg"))[:frames]
    first = cv2.imread(str(images[0]))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), 10, (first.shape[1], first.shape[0]))
    for p in images:
        writer.write(cv2.imread(str(p)))
    writer.release()
    return out


def test_network_inference_writes_video_json_and_mot(trained_checkpoint, small_dataset, tmp_path):
    video = _video_from_sequence(small_dataset / "val" / "SYN-val-01", tmp_path / "clip.avi")
    # Low thresholds: a model trained for four steps is not confident, but the outputs must be consistent.
    result = run("--checkpoint", trained_checkpoint, "--video", video, "--output", tmp_path / "out.avi",
                 "--save-json", tmp_path / "out.json", "--save-mot", tmp_path / "out.txt", "--conf-threshold", "0.01",
                 "--track-high", "0.02", "--track-new", "0.02", "--show")
    assert result.returncode == 0, result.stderr
    assert "no display found" in result.stderr
    out = VideoReader(tmp_path / "out.avi")
    assert len(out) == 20 and (out.width, out.height) == (192, 128)
    labels = read_vicr_video(tmp_path / "out.json")
    rows = read_mot_file(tmp_path / "out.txt")
    assert labels.video.total_frames == 20 and labels.video.fps == 10.0
    assert [labels.labelmap.names[i] for i in range(6)] == ["standing", "walking", "running", "jumping", "waving", "crouching"]
    assert len(rows) > 0 and sum(len(p.frames) for p in labels.persons.values()) == len(rows)
    for pid, person in labels.persons.items():
        tid = int(pid.split("_")[1])
        mine = rows.select(rows.track_id == tid)
        assert [f.frame_idx + 1 for f in person.frames] == mine.frame.tolist()
        np.testing.assert_allclose([f.bbox for f in person.frames], mine.boxes, atol=1e-3)
        assert all(f.action in labels.labelmap.names.values() for f in person.frames)
        assert set(person.action_timeline) <= {0, 1}  # 20 frames at 10 fps: seconds 0 and 1
    payload = json.loads((tmp_path / "out.json").read_text())
    assert payload["summary"]["total_action_instances"] == sum(len(p.action_timeline) for p in labels.persons.values())


def test_show_without_display_still_writes_the_output(real_data, tmp_path):
    det = real_data / "mot" / "TUD-Campus" / "det" / "det.txt"
    result = run("--detections", det, "--show", "--save-mot", tmp_path / "x.txt")
    assert result.returncode == 0 and result.stderr.count("no display found") == 1
    assert (tmp_path / "x.txt").is_file()


@pytest.mark.parametrize("args, message", [
    (["--checkpoint", "missing.pt", "--video", "v.mp4", "--save-mot", "o.txt"], "checkpoint not found"),
    (["--detections", "nope/det.txt", "--save-mot", "o.txt"], "file not found"),
])
def test_bad_inputs_are_one_line(tmp_path, args, message):
    result = run(*args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_corrupt_video_is_one_line(trained_checkpoint, tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 4096)
    result = run("--checkpoint", trained_checkpoint, "--video", tmp_path / "bad.mp4", "--save-mot", tmp_path / "o.txt")
    assert result.returncode == 2 and "cannot open as a video" in result.stderr and "Traceback" not in result.stderr
