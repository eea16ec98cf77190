"""The web app's parts without a server: the browser video is H.264 with every frame, the
timeline and table come from the V-ICR file, upload names never become paths, the queue runs
one job at a time in order, and checkpoints are checked when the app starts."""
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
av = pytest.importorskip("av")

from common.errors import InputError  # noqa: E402
from data.formats.vicr import LabelMap, VicrFrame, VicrPerson, VicrVideoInfo, VicrVideoLabels  # noqa: E402
from webapp.jobs import DONE, FAILED, JobQueue  # noqa: E402
from webapp.results import encode_h264, timeline_image, tracks_table  # noqa: E402
from webapp.server import find_checkpoints, safe_stem, upload_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_the_browser_video_is_h264_with_every_frame(tmp_path):
    source = tmp_path / "drawn.avi"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"MJPG"), 10, (100, 74))
    for k in range(12):
        writer.write(np.full((74, 100, 3), 20 * k, np.uint8))
    writer.release()
    assert encode_h264(source, tmp_path / "video.mp4", fps=10) == 12
    with av.open(str(tmp_path / "video.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (100, 74)
        frames = [f.to_ndarray(format="gray") for f in container.decode(stream)]
    assert len(frames) == 12 and abs(float(frames[5].mean()) - 100) < 3
    with pytest.raises(InputError, match="cannot be read back"):
        encode_h264(tmp_path / "missing.avi", tmp_path / "x.mp4", fps=10)


def _labels() -> VicrVideoLabels:
    names = LabelMap({0: "walking", 1: "waving"})

    def person(first: int, last: int, actions: dict):
        frames = [VicrFrame(k, k / 10, (0, 0, 10, 20), None, None) for k in range(first, last + 1)]
        return VicrPerson(frames, {s: (names.names[a], a) for s, a in actions.items()})

    persons = {"id_3": person(25, 39, {2: 1, 3: 1}), "id_1": person(0, 29, {0: 0, 1: 0, 2: 1}), "id_9": person(5, 5, {})}
    return VicrVideoLabels(VicrVideoInfo("clip", 10.0, 64, 48, 40, 4.0), names, persons)


def test_tracks_table_and_timeline_come_from_the_vicr_file(tmp_path):
    rows = tracks_table(_labels())
    assert [r["id"] for r in rows] == ["1", "9", "3"]  # by first appearance
    assert rows[0] == {"id": "1", "first_s": 0.0, "last_s": 2.9, "frames": 30, "main_action": "walking"}
    assert rows[1]["main_action"] is None and rows[2]["main_action"] == "waving"
    image = cv2.imread(str(timeline_image(_labels(), tmp_path / "timeline.png")))
    assert image is not None and image.shape[1] == 1000
    # Both actions' colours are drawn (tab20's first two: blue and light blue), and grey for id 9.
    colours = {tuple(int(c) for c in px) for px in image.reshape(-1, 3)}
    assert (180, 119, 31) in colours and (232, 199, 174) in colours and (191, 191, 191) in colours


@pytest.mark.parametrize("name, stem, suffix", [
    ("../../etc/passwd", "passwd", ".video"), ("C:\\Users\\me\\My Clip (1).MP4", "My_Clip_1", ".mp4"),
    ("", "video", ".video"), ("....", "video", ".video"), ("ok.mp4/../../x.avi", "x", ".avi"),
    ("a" * 300 + ".mkv", "a" * 64, ".mkv"), ("clip.mp4\x00.sh", "clip_mp4", ".sh"),
])
def test_upload_names_never_become_paths(tmp_path, name, stem, suffix):
    assert safe_stem(name) == stem
    path = upload_path(tmp_path, name)
    assert path.parent == tmp_path and path.suffix == suffix and "/" not in path.name


def test_the_queue_runs_one_job_at_a_time_in_order(tmp_path):
    running, order = [], []

    def run(job):
        running.append(job.id)
        try:
            assert len(running) == 1, "two jobs ran at once"
            time.sleep(0.05)
            order.append(job.settings["n"])
            if job.settings["n"] == 2:
                raise InputError("clip2.mp4: the video has no frames")
        finally:
            running.remove(job.id)

    queue = JobQueue(run, root=tmp_path)
    jobs = [queue.new_job(f"clip{n}.mp4", {"n": n}) for n in range(4)]
    for job in jobs:
        queue.submit(job)
    assert queue.position(jobs[3]) >= 2
    for job in jobs:
        assert job.done_event.wait(10)
    assert order == [0, 1, 2, 3]
    assert [j.state for j in jobs] == [DONE, DONE, FAILED, DONE]
    assert jobs[2].error == "clip2.mp4: the video has no frames"
    assert queue.remove(jobs[0].id) and not jobs[0].folder.exists() and jobs[1].folder.exists()
    queue.ttl_s = 0
    queue.expire()  # finished jobs past their time go
    assert queue.jobs == {}
    queue.close()
    assert not queue.root.exists()


def test_checkpoints_are_checked_when_the_app_starts(tmp_path, trained_checkpoint):
    runs = tmp_path / "runs"
    for name in ("a", "b"):
        (runs / name).mkdir(parents=True)
        (runs / name / "best.pt").write_bytes(trained_checkpoint.read_bytes())
    (runs / "broken").mkdir()
    (runs / "broken" / "best.pt").write_text("not a checkpoint")
    (runs / "latest").symlink_to(runs / "b")
    assert find_checkpoints(runs) == {"a": runs / "a" / "best.pt", "b": runs / "b" / "best.pt"}
    with pytest.raises(InputError, match="no readable best.pt"):
        find_checkpoints(runs / "broken")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "app.py"), "--checkpoint", str(runs / "broken" / "best.pt")],
                          capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "broken/best.pt" in lines[0], done.stderr
