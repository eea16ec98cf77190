"""Clip-level action datasets (class folders, CSV, JSON list): readers and their errors, the main
person, the labels it carries, video checks, and Acc@1/Acc@5."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from common.errors import FormatError
from data.action_clips import ActionClipSequence, main_track, read_action_dataset, read_tracks
from data.formats.mot import MotRows, write_mot_file
from evaluation.action_metrics import topk_accuracy

ROOT = Path(__file__).resolve().parents[2]


def _video(path: Path, frames: int = 12, size=(64, 96)):
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (size[1], size[0]))
    for k in range(frames):
        writer.write(np.full((*size, 3), 10 * k % 255, np.uint8))
    writer.release()
    return path


def test_the_three_layouts(tmp_path):
    folders = tmp_path / "folders"
    for split, label, name in (("train", "walking", "a"), ("train", "running", "b"), ("val", "walking", "c")):
        _video(folders / split / label / f"{name}.avi")
    videos = read_action_dataset(folders)
    assert [(v.split, v.label, v.path.name) for v in videos] == [("train", "running", "b.avi"),
                                                                  ("train", "walking", "a.avi"), ("val", "walking", "c.avi")]
    flat = tmp_path / "ucf"
    _video(flat / "ApplyEyeMakeup" / "v1.avi")
    assert [(v.split, v.label) for v in read_action_dataset(flat)] == [("all", "ApplyEyeMakeup")]
    csvs = tmp_path / "csv"
    _video(csvs / "videos" / "v1.avi")
    (csvs / "train.csv").write_text("video_name,label\nv1.avi,waving\n")
    assert [(v.label, v.path) for v in read_action_dataset(csvs)] == [("waving", csvs / "videos" / "v1.avi")]
    (tmp_path / "q.json").write_text(json.dumps([{"video_path": "./csv/videos/v1.avi", "label": "plank", "split": "train"}]))
    assert read_action_dataset(tmp_path / "q.json")[0].label == "plank"


@pytest.mark.parametrize("name, content, message", [
    ("train.csv", "name,class\nv.avi,a\n", "train.csv:1: expected the header 'video_name,label'"),
    ("train.csv", "video_name,label\nv.avi\n", "train.csv:2: expected 'video_name,label'"),
    ("list.json", json.dumps([{"video_path": "v.avi"}]), r"list.json: \[0\]: expected an object"),
])
def test_bad_lines_are_named(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(FormatError, match=message):
        read_action_dataset(tmp_path / name if name.endswith(".json") else tmp_path)


def test_the_main_person_carries_the_label(tmp_path):
    tracks = {1: [(k, np.array([0.0, 0, 10, 10])) for k in range(12)],  # there all along, small
              2: [(k, np.array([0.0, 0, 40, 60])) for k in range(12)],  # there all along, large: the main person
              3: [(k, np.array([0.0, 0, 90, 60])) for k in range(4)]}
    assert main_track(tracks) == 2
    video = read_action_dataset(_video(tmp_path / "walking" / "v.avi").parents[1])[0]
    seq = ActionClipSequence(video, tracks, label_id=1, num_actions=2)
    ann = seq.annotations(2)
    assert dict(zip(ann.track_ids.tolist(), ann.actions.tolist())) == {1: -1, 2: 1, 3: -1}  # others unlabelled
    rows = MotRows(np.array([1, 2]), np.array([5, 5]), np.array([[1.0, 2, 3, 4], [1.0, 2, 3, 5]]), np.ones(2),
                   np.ones(2, int), np.ones(2))
    write_mot_file(tmp_path / "v.txt", rows)
    assert [f for f, _ in read_tracks(tmp_path / "v.txt")[5]] == [0, 1]


def test_topk_accuracy_on_a_hand_built_case():
    probs = np.array([[0.1, 0.6, 0.3], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.4, 0.35, 0.25]])
    labels = np.array([1, 1, 0, 2])
    assert topk_accuracy(probs, labels, 1) == 0.25  # only the first
    assert topk_accuracy(probs, labels, 2) == 0.5  # and the second
    assert topk_accuracy(probs, labels, 3) == 1.0


def test_video_check_lists_and_quarantines_bad_files(tmp_path):
    data = tmp_path / "data"
    good = _video(data / "walking" / "good.avi", frames=30)
    bad = _video(data / "walking" / "cut.avi", frames=60)
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    (data / "running").mkdir()
    (data / "running" / "text.mp4").write_text("not a video")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "download_data.py"), "--check", str(data),
                             "--quarantine", str(tmp_path / "bad")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "cut.avi: truncated: decodes" in result.stdout and "text.mp4: cannot open as a video" in result.stdout
    assert "checked 3 videos" in result.stdout and "2 bad" in result.stdout
    assert good.is_file() and (tmp_path / "bad" / "walking" / "cut.avi").is_file()
    assert (tmp_path / "bad" / "running" / "text.mp4").is_file() and not (data / "running" / "text.mp4").exists()


def test_clip_and_video_accuracy_of_a_checkpoint(trained_checkpoint, small_dataset, tmp_path):
    """Synthetic sequences written as class-folder videos, with their people as tracks."""
    from data.formats.mot import read_mot_file
    from data.formats.vicr import read_label_map
    names = read_label_map(small_dataset / "label_map.txt").names
    seq = sorted((small_dataset / "train").iterdir())[0]
    frames = sorted((seq / "img1").glob("*.jpg"))
    for label in (names[0], names[1]):
        path = tmp_path / "data" / label / f"{seq.name}-{label}.avi"
        path.parent.mkdir(parents=True)
        first = cv2.imread(str(frames[0]))
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (first.shape[1], first.shape[0]))
        for f in frames:
            writer.write(cv2.imread(str(f)))
        writer.release()
        (tmp_path / "tracks").mkdir(exist_ok=True)
        shutil.copy(seq / "gt" / "gt.txt", tmp_path / "tracks" / f"{path.stem}.txt")
    assert len(read_mot_file(seq / "gt" / "gt.txt"))
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "evaluate.py"), "--checkpoint", str(trained_checkpoint),
                             "--action-dataset", str(tmp_path / "data"), "--split", "all", "--tracks",
                             str(tmp_path / "tracks"), "--json", str(tmp_path / "m.json")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "m.json").read_text())
    # 40 frames, clips of 4 frames 2 apart (7 frames): 5 clips per video.
    assert report["videos"] == 2 and report["clips"] == 10
    # Both videos show the same frames under two labels: the same prediction, so at most one is right.
    assert report["video_acc1"] in (0.0, 50.0) and report["clip_acc1"] in (0.0, 50.0)
    assert report["video_acc5"] >= report["video_acc1"]
    assert "clips" in result.stdout and "Acc@1" in result.stdout


@pytest.mark.real_data
def test_real_clips_as_a_class_folder_dataset(real_data, tmp_path):
    """The real UCF101/Kinetics clips as a user's class-folder copy: indexed with their labels,
    checked clean, a truncated copy caught, and each frame's main person carrying the label."""
    clips = {"ApplyEyeMakeup": "ApplyEyeMakeup_test.avi", "arm_wrestling": "arm_wrestling_demo.mp4",
             "cleaning_pool": "cleaning_pool_test.mp4"}
    data = tmp_path / "data"
    for label, name in clips.items():
        (data / label).mkdir(parents=True)
        (data / label / name).symlink_to(real_data / "action" / name)
    videos = read_action_dataset(data)
    assert [(v.label, v.path.name, v.split) for v in videos] == [(k, v, "all") for k, v in sorted(clips.items())]
    check = [sys.executable, str(ROOT / "scripts" / "download_data.py"), "--check", str(data)]
    clean = subprocess.run(check, capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0 and "checked 3 videos" in clean.stdout and "0 bad" in clean.stdout, clean.stdout
    whole = (real_data / "action" / "cleaning_pool_test.mp4").read_bytes()
    (data / "cleaning_pool" / "cut.mp4").write_bytes(whole[: len(whole) * 2 // 3])
    cut = subprocess.run(check, capture_output=True, text=True, timeout=300)
    assert cut.returncode == 1 and "cut.mp4" in cut.stdout and "1 bad" in cut.stdout, cut.stdout

    video = videos[0]  # ApplyEyeMakeup: one face close up, plus a made-up small bystander
    seq = ActionClipSequence(video, {7: [(k, np.array([40.0, 20, 260, 230])) for k in range(20)],
                                     9: [(k, np.array([0.0, 0, 20, 40])) for k in range(5)]}, label_id=0, num_actions=3)
    assert len(seq) > 20 and seq.frame(0).shape == (240, 320, 3)
    assert dict(zip(seq.annotations(3).track_ids.tolist(), seq.annotations(3).actions.tolist())) == {7: 0, 9: -1}
    assert len(seq.annotations(25).boxes) == 0
