"""The live window: pacing at the video's frame rate, space to pause, q/Esc/closing to stop with
the outputs written for the frames done, the overlay kept out of the annotated video, the
progress hook; and, under Xvfb, the real window driven by keystrokes."""
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from data.formats.mot import read_mot_file
from data.formats.vicr import read_vicr_video
from data.video import VideoReader
from tracking import runner
from tracking.pipeline import Pipeline, PipelineOptions
from tracking.runner import KEY_ESC, KEY_SPACE, Outputs, Player, run_video

ROOT = Path(__file__).resolve().parents[2]


class FakeWindow:
    """A window on a fake clock: ``wait_key(ms)`` lets ``ms`` pass and returns the key scheduled
    for that moment, if any."""

    def __init__(self, keys=None, closed_at: float = math.inf):
        self.now = 0.0
        self.keys = sorted((keys or {}).items())  # [(time, key)]
        self.closed_at = closed_at
        self.shown = []  # (time, image)
        self.waits = []  # ms

    def clock(self) -> float:
        return self.now

    def show(self, image) -> None:
        self.shown.append((self.now, image))

    def wait_key(self, ms: int) -> int:
        self.waits.append(ms)
        self.now += ms / 1000
        if self.keys and self.keys[0][0] <= self.now:
            return self.keys.pop(0)[1]
        return -1

    def visible(self) -> bool:
        return self.now < self.closed_at


def _play(window, player, processing, frames):
    """Shows ``frames`` frames, each after ``processing(k)`` seconds of work; the times they
    appeared, and whether the user stopped."""
    appeared = []
    for k in range(frames):
        window.now += processing(k)
        appeared.append(window.now)
        if not player.show(np.zeros((64, 96, 3), np.uint8), k + 1):
            return appeared, True
    return appeared, False


@pytest.mark.parametrize("speed, period", [(1.0, 0.1), (2.0, 0.05), (0.5, 0.2)])
def test_frames_appear_at_the_video_rate_times_the_speed(speed, period):
    window = FakeWindow()
    player = Player(window, fps=10, speed=speed, clock=window.clock)
    appeared, stopped = _play(window, player, lambda k: 0.02, 8)
    assert not stopped
    # The processing of the next frame counts towards the current one's time: no drift. (The first
    # frame is held a full period, plus the second's processing, which cannot be known ahead.)
    assert appeared[1] - appeared[0] == pytest.approx(period + 0.02, abs=0.002)
    np.testing.assert_allclose(np.diff(appeared[1:]), period, atol=0.002)
    assert player.processing_fps == pytest.approx(50, rel=0.05)  # the work alone, not the waiting
    assert player.waited == pytest.approx(8 * period - 7 * 0.02, abs=0.02)


def test_speed_zero_plays_as_fast_as_it_runs():
    window = FakeWindow()
    player = Player(window, fps=10, speed=0, clock=window.clock)
    appeared, _ = _play(window, player, lambda k: 0.02, 6)
    assert window.waits == [1] * 6  # one short wait per frame, for OpenCV to draw and read keys
    np.testing.assert_allclose(np.diff(appeared), 0.021, atol=1e-6)


def test_a_slow_stretch_leaves_no_debt_to_catch_up_on():
    window = FakeWindow()
    player = Player(window, fps=10, clock=window.clock)
    appeared, _ = _play(window, player, lambda k: 0.3 if k < 5 else 0.01, 10)
    # Frame 1 is held a period (two polls of 50 ms); frames 2 to 5 come too late to be held at all.
    assert window.waits[:6] == [50, 50, 1, 1, 1, 1]
    # Fast again: the normal pace, not a burst to make up the lost time.
    np.testing.assert_allclose(np.diff(appeared[5:]), 0.1, atol=0.002)


def test_space_pauses_and_resumes_without_a_burst():
    window = FakeWindow(keys={0.25: KEY_SPACE, 2.25: KEY_SPACE})
    player = Player(window, fps=10, clock=window.clock)
    appeared, stopped = _play(window, player, lambda k: 0.0, 8)
    assert not stopped and not player.paused
    gaps = np.diff(appeared)
    assert gaps.max() > 1.9  # held for the two seconds paused
    after = gaps[int(gaps.argmax()) + 1:]
    np.testing.assert_allclose(after, 0.1, atol=0.002)
    # While paused the window keeps polling (responsive) and redraws the frame marked paused.
    assert window.waits.count(player.poll_ms) >= 30
    assert len(window.shown) == 8 + 2


@pytest.mark.parametrize("keys, closed_at", [({0.35: ord("q")}, math.inf), ({0.35: KEY_ESC}, math.inf),
                                             ({}, 0.35), ({0.25: KEY_SPACE, 0.6: ord("q")}, math.inf),
                                             ({0.25: KEY_SPACE}, 0.6)])
def test_q_esc_or_closing_the_window_stops(keys, closed_at):
    window = FakeWindow(keys=keys, closed_at=closed_at)
    player = Player(window, fps=10, clock=window.clock)
    appeared, stopped = _play(window, player, lambda k: 0.0, 20)
    assert stopped and len(appeared) <= 5


def test_the_overlay_is_drawn_on_a_copy():
    window = FakeWindow()
    player = Player(window, fps=10, total=795, clock=window.clock)
    image = np.zeros((64, 96, 3), np.uint8)
    player.show(image, 1)
    assert not image.any()  # the caller's frame (the one written to --output) is untouched
    assert window.shown[-1][1].any()


def _sequence(tmp_path: Path, frames: int, fps: int = 10) -> Path:
    """A sequence folder with frames, a seqinfo.ini and a det.txt of one walking person."""
    seq = tmp_path / "seq"
    (seq / "img1").mkdir(parents=True)
    (seq / "det").mkdir()
    (seq / "seqinfo.ini").write_text(f"[Sequence]\nname=seq\nimDir=img1\nframeRate={fps}\nseqLength={frames}\n"
                                     "imWidth=96\nimHeight=64\nimExt=.jpg\n")
    rng = np.random.default_rng(0)
    for k in range(frames):
        cv2.imwrite(str(seq / "img1" / f"{k + 1:06d}.jpg"), rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    (seq / "det" / "det.txt").write_text("".join(f"{k},-1,{10 + k},10,20,40,0.9,-1,-1,-1\n"
                                                 for k in range(1, frames + 1)))
    return seq


def test_progress_is_called_after_every_frame(tmp_path):
    seq = _sequence(tmp_path, 6)
    calls = []
    run_video(Pipeline.tracker_only(PipelineOptions()), Outputs(mot=tmp_path / "o.txt"),
              detections=seq / "det" / "det.txt", progress=lambda done, total: calls.append((done, total)))
    assert calls == [(k, 6) for k in range(1, 7)]
    calls.clear()
    run_video(Pipeline.tracker_only(PipelineOptions()), Outputs(mot=tmp_path / "o.txt"),
              detections=seq / "det" / "det.txt", max_frames=4, progress=lambda *a: calls.append(a))
    assert calls == [(k, 4) for k in range(1, 5)]


def test_stopping_in_the_window_writes_the_frames_done(tmp_path, monkeypatch, capsys):
    seq = _sequence(tmp_path, 12)
    pipeline = Pipeline.tracker_only(PipelineOptions())
    det = seq / "det" / "det.txt"
    reference = Outputs(video=tmp_path / "ref" / "v.avi")
    (tmp_path / "ref").mkdir()
    run_video(pipeline, reference, video=seq / "img1", detections=det, max_frames=5)

    class ScriptedWindow(FakeWindow):  # q while frame 5 is shown
        def show(self, image):
            super().show(image)
            if len(self.shown) == 5:
                self.keys = [(0, ord("q"))]

        def close(self):
            pass

    capsys.readouterr()
    monkeypatch.setattr(runner, "display_available", lambda: True)
    monkeypatch.setattr(runner, "_Window", ScriptedWindow)
    out = tmp_path / "out"
    out.mkdir()
    logged = []
    summary = run_video(pipeline, Outputs(video=out / "v.avi", json=out / "v.json", mot=out / "v.txt", show=True,
                                          show_speed=0), video=seq / "img1", detections=det, log=logged.append)
    assert summary["stopped"] and not summary["interrupted"] and summary["frames"] == 5
    assert any("stopped by the user" in line for line in logged)
    assert capsys.readouterr().out.startswith("stopped by the user: 5 frames")
    labels = read_vicr_video(out / "v.json")
    assert labels.video.total_frames == 5 and labels.partial
    assert read_mot_file(out / "v.txt").frame.max() <= 5
    written, expected = VideoReader(out / "v.avi"), VideoReader(reference.video)
    assert len(written) == len(expected) == 5
    for k in range(5):  # the same frames as without the window: no overlay in the video
        np.testing.assert_array_equal(written.read(k), expected.read(k))


@pytest.mark.parametrize("args, message", [
    (["--show", "--show-speed", "-1"], "--show-speed must be >= 0"),
    (["--show", "--show-speed", "nan"], "--show-speed must be >= 0"),
    (["--show", "--show-speed", "inf"], "--show-speed must be >= 0"),
    (["--show-speed", "2"], "--show-speed: not used without --show"),
])
def test_bad_show_speeds_are_one_line(args, message, capsys):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from inference import parse_args
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--detections", "det.txt", "--save-mot", "o.txt", *args])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and message in lines[-1], lines


def test_speed_is_checked_by_run_video_too(tmp_path):
    from common.errors import InputError
    seq = _sequence(tmp_path, 2)
    with pytest.raises(InputError, match="show speed must be >= 0"):
        run_video(Pipeline.tracker_only(PipelineOptions()), Outputs(mot=tmp_path / "o.txt", show=True, show_speed=-1),
                  detections=seq / "det" / "det.txt")


# --- the real window, under Xvfb ------------------------------------------------------------------------------


def _xvfb():
    """A started Xvfb on a display number it chose itself (no race with other servers), and that number."""
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "640x480x24", "-nolisten", "tcp"],
                              pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()  # written once the server accepts clients
    if not number:
        server.kill()
        server.wait()
        pytest.skip("Xvfb did not start")
    return server, number


def _stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.display
def test_the_window_pauses_resumes_and_quits_with_the_outputs_written(tmp_path):
    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        pytest.skip("needs Xvfb and xdotool")
    if re.search(r"GUI:\s+NONE", cv2.getBuildInformation()):
        pytest.skip("this OpenCV has no GUI backend (opencv-python-headless)")
    frames, fps = 40, 10  # 4 s of playback: a pause of 5 s would outlast it
    seq = _sequence(tmp_path, frames, fps)
    server, number = _xvfb()
    env = {**os.environ, "DISPLAY": f":{number}"}
    env.pop("WAYLAND_DISPLAY", None)
    inference = None
    try:
        inference = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "inference.py"), "--detections", str(seq / "det" / "det.txt"),
             "--video", str(seq / "img1"), "--show", "--save-mot", str(tmp_path / "o.txt"),
             "--save-json", str(tmp_path / "o.json")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def xdotool(*args, timeout=10):
            return subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True, timeout=timeout)

        found = xdotool("search", "--sync", "--onlyvisible", "--name", "mot-action", timeout=120)
        assert found.returncode == 0 and inference.poll() is None, (found.stderr, inference.poll())
        window = found.stdout.split()[0]
        xdotool("key", "--window", window, "space")
        time.sleep(5)
        assert inference.poll() is None, "the playback ended within 5 s: the pause did not hold"
        xdotool("key", "--window", window, "space")
        time.sleep(0.3)
        xdotool("key", "--window", window, "q")
        out, err = inference.communicate(timeout=60)
    finally:
        if inference is not None:
            _stop(inference)
        _stop(server)
    assert inference.returncode == 0, err
    done = int(re.search(r"stopped by the user: (\d+) frames", out).group(1))
    assert 0 < done < frames and "stopped by the user in the window" in err
    rows = read_mot_file(tmp_path / "o.txt")
    assert 0 < rows.frame.max() <= done
    labels = read_vicr_video(tmp_path / "o.json")
    assert labels.video.total_frames == done and labels.partial
