"""Bad inputs to the scripts, as a new user (or someone sharing files) gives them: each is one line
on stderr with the file and the problem, or a named warning, never a traceback, a silent wrong
result or lost work. docs/bad_inputs.md lists them."""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from data.formats.vicr import read_vicr_video
from data.video import VideoReader

ROOT = Path(__file__).resolve().parents[2]


def script(name, *args, env=None):
    environ = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    environ.update(env or {})
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *map(str, args)], capture_output=True,
                          text=True, timeout=600, env=environ)


def one_line(result, *fragments):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _frames(folder: Path, count: int = 12, size=(96, 128)) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(count):
        cv2.imwrite(str(folder / f"{k + 1:06d}.jpg"), rng.integers(0, 255, (*size, 3), dtype=np.uint8))
    return folder


def test_checkpoint_and_flag_errors_are_one_line(tmp_path, trained_checkpoint):
    frames = _frames(tmp_path / "img1")
    (tmp_path / "empty.pt").write_bytes(b"")
    one_line(script("inference.py", "--checkpoint", tmp_path / "empty.pt", "--video", frames, "--save-mot",
                    tmp_path / "o.txt"), "empty.pt: empty file, not a checkpoint")
    one_line(script("inference.py", "--checkpoint", trained_checkpoint, "--video", frames, "--save-mot",
                    tmp_path / "o.txt", "--device", "gpu0"), "device 'gpu0': expected auto, cpu, cuda, cuda:N or mps")
    result = script("inference.py", "--checkpoint", trained_checkpoint, "--video", frames, "--save-mot", tmp_path / "o.txt",
                    "--fps", "-10")
    assert result.returncode == 2 and "--fps must be > 0" in result.stderr and "Traceback" not in result.stderr
    one_line(script("run_trainer.py", f"resume={tmp_path / 'empty.pt'}"), "empty.pt: empty file, not a checkpoint")


def test_output_paths_are_checked_before_the_first_frame(tmp_path, trained_checkpoint):
    frames = _frames(tmp_path / "img1")
    (tmp_path / "file").write_text("")
    result = script("inference.py", "--checkpoint", trained_checkpoint, "--video", frames, "--save-json",
                    tmp_path / "ok.json", "--save-mot", tmp_path / "file" / "out.txt")
    one_line(result, "out.txt: cannot create MOT file: ", "is a file, not a folder")
    assert not (tmp_path / "ok.json").exists()
    if os.geteuid() != 0:  # root writes into read-only folders anyway
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        one_line(script("inference.py", "--checkpoint", trained_checkpoint, "--video", frames, "--save-mot",
                        ro / "out.txt"), "cannot write MOT file in")
    one_line(script("evaluate.py", "--checkpoint", trained_checkpoint, "--dataset", tmp_path, "--json",
                    tmp_path / "file" / "m.json"), "cannot create metrics JSON")


def test_a_display_that_cannot_open_does_not_abort(tmp_path):
    det = tmp_path / "seq" / "det" / "det.txt"
    det.parent.mkdir(parents=True)
    det.write_text("".join(f"{f},-1,10,10,20,40,0.9,-1,-1,-1\n" for f in range(1, 6)))
    result = script("inference.py", "--detections", det, "--fps", 10, "--show", "--save-mot", tmp_path / "x.txt",
                    env={"DISPLAY": ":99"})
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("no display found") == 1 and (tmp_path / "x.txt").is_file()


def test_image_folder_faults_are_named_and_the_output_keeps_every_frame(tmp_path, trained_checkpoint):
    frames = _frames(tmp_path / "clip", count=8)
    data = (frames / "000003.jpg").read_bytes()
    (frames / "000003.jpg").write_bytes(data[: len(data) // 2])  # cut short: OpenCV would decode it half grey
    cv2.imwrite(str(frames / "000005.jpg"), np.zeros((48, 64, 3), np.uint8))  # another size
    result = script("inference.py", "--checkpoint", trained_checkpoint, "--video", frames, "--output",
                    tmp_path / "out.avi", "--save-json", tmp_path / "out.json")
    assert result.returncode == 0, result.stderr
    assert "000003.jpg: truncated JPEG" in result.stderr and "000005.jpg: 64x48, not the folder's 128x96: resized" in result.stderr
    assert "no frame rate known" in result.stderr and "give --fps" in result.stderr  # no seqinfo.ini: said, not assumed silently
    assert len(VideoReader(tmp_path / "out.avi")) == 7 and "1 undecodable frames skipped" in result.stdout
    assert not list(tmp_path.glob(".*partial*"))


def test_a_truncated_video_is_named_and_the_json_counts_frames_read(tmp_path, trained_checkpoint):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (128, 96))
    rng = np.random.default_rng(0)
    for _ in range(40):
        writer.write(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
    writer.release()
    video.write_bytes(video.read_bytes()[: int(video.stat().st_size * 0.5)])
    announced = VideoReader(video).frame_count
    result = script("inference.py", "--checkpoint", trained_checkpoint, "--video", video, "--save-json",
                    tmp_path / "out.json", "--conf-threshold", 0)
    assert result.returncode == 0, result.stderr
    read = int(result.stdout.split("done: ")[1].split(" frames")[0])
    assert read < announced == 40
    assert f"the video ends after frame {read} of the 40 its header announces" in result.stderr
    assert read_vicr_video(tmp_path / "out.json").video.total_frames == read


@pytest.mark.real_data
def test_detections_of_another_sequence_are_refused(real_data, tmp_path):
    det = real_data / "mot" / "TUD-Stadtmitte" / "det" / "det.txt"
    one_line(script("inference.py", "--detections", det, "--video", real_data / "mot" / "PETS09-S2L1" / "vtest.avi",
                    "--save-mot", tmp_path / "o.txt"), "768x576 frames, but the detections' sequence", "not the same video")
    seq = tmp_path / "TUD-Stadtmitte"
    shutil.copytree(real_data / "mot" / "TUD-Stadtmitte", seq)
    with open(seq / "det" / "det.txt", "a") as fh:
        fh.write("400,-1,10,10,20,40,0.9,-1,-1,-1\n")
    one_line(script("inference.py", "--detections", seq / "det" / "det.txt", "--save-mot", tmp_path / "o.txt"),
             "det.txt: detections for frame 400, but", "has 179")


def test_a_broken_training_frame_is_one_line_with_workers(small_dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_dataset, data)
    for frame in (data / "train").glob("*/img1/*.jpg"):  # whichever clip comes first hits one
        frame.write_bytes(b"\xff\xd8 broken")
    result = script("run_trainer.py", f"data.root={data}", "data.num_workers=1", "data.size=[128,192]",
                    "data.clip_len=4", "data.batch_size=2", "trainer.max_steps=2", f"runs_root={tmp_path / 'runs'}")
    one_line(result, ".jpg: truncated JPEG")


def test_force_never_deletes_a_users_files(tmp_path):
    out = tmp_path / "mine"
    tiny = ["--width", "96", "--height", "64", "--length", "4", "--train", "1", "--val", "0", "--test", "0"]
    assert script("download_data.py", "--dataset", "synthetic", "--out", out, *tiny).returncode == 0
    (out / "thesis.tex").write_text("years of work")
    one_line(script("download_data.py", "--dataset", "synthetic", "--out", out, "--force", "--seed", "3", *tiny),
             "holds files the generator did not write (thesis.tex)")
    assert (out / "thesis.tex").read_text() == "years of work"


def test_the_specialists_benchmark_refuses_bad_flags_and_files_before_any_training(tmp_path):
    """Hours of training come first in that benchmark: what would fail after them is said at once."""
    result = script("benchmark_specialists.py", "--out", tmp_path / "out", "--checkpoint", tmp_path / "none.pt",
                    "--joint-cpu-s", "nan")
    assert result.returncode == 2 and "--joint-cpu-s must be a positive number of CPU seconds, got nan" in result.stderr
    one_line(script("benchmark_specialists.py", "--out", tmp_path / "out", "--checkpoint", tmp_path / "none.pt",
                    "--joint-cpu-s", "60"), "none.pt: checkpoint not found")
    assert not (tmp_path / "out").exists()
    if importlib.util.find_spec("ultralytics") is None:  # the README's main environment: the bench one has it
        one_line(script("benchmark_specialists.py", "--out", tmp_path / "out", "--setting", "pets09"),
                 "the specialists need ultralytics: install the bench environment")
        assert not (tmp_path / "out").exists()
