"""scripts/app.py as a user meets it: the served page driven in a real headless Chromium (upload a
real video, watch it finish, the browser plays the H.264 video, the timeline is there, the
downloaded JSON has the tracks; a text file gets a message in the page), and the HTTP API's
refusals, queue and clean-up."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("av")

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CLIP = "demo_videos/mmpose_street_walking_5frames.mp4"  # 5 real frames, 960x540, people walking
LOW = {"conf_threshold": "0", "track_high": "0", "track_new": "0"}  # a 4-step model scores low: track everything


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, checkpoint: Path, tmp: Path, *extra: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "TMPDIR": str(tmp)}  # the jobs' folder is made under it: the test can see it go
        self.tmp = tmp
        self.log = open(tmp / "server.log", "w")
        self.process = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "app.py"), "--checkpoint", str(checkpoint),
                                         "--port", str(self.port), *extra], stdout=self.log, stderr=subprocess.STDOUT,
                                        env=env, cwd=tmp)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                self.get("/api/config")
                return
            except OSError:
                assert self.process.poll() is None, (tmp / "server.log").read_text()
                time.sleep(0.3)
        raise AssertionError("the app did not start: " + (tmp / "server.log").read_text())

    def get(self, path: str):
        """``(status, JSON body)``, also for error statuses."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def post(self, path: str, fields: dict, files: dict | None = None):
        """A multipart POST; ``(status, JSON body)`` also for error statuses."""
        boundary = uuid.uuid4().hex
        body = b""
        for key, value in fields.items():
            body += f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, (name, data) in (files or {}).items():
            body += (f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"; filename="{name}"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        request = urllib.request.Request(self.url + path, data=body, method="POST",
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def wait(self, job_id: str, timeout: float = 300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            status, body = self.get(f"/api/jobs/{job_id}")
            if body["state"] in ("done", "failed"):
                return body
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} did not finish")

    def jobs_root(self) -> list[Path]:
        return list(self.tmp.glob("mot-action-app-*"))

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=60)
        self.log.close()
        return code


@pytest.fixture(scope="module")
def server(trained_checkpoint, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    checkpoint = tmp / "run" / "best.pt"
    checkpoint.parent.mkdir()
    shutil.copy(trained_checkpoint, checkpoint)
    running = Server(checkpoint, tmp, "--max-upload-mb", "1")
    yield running
    assert running.stop() == 0
    assert running.jobs_root() == []  # every upload and product is gone when the app stops


@pytest.mark.browser
def test_the_page_in_a_real_browser(server, real_data, tmp_path):
    """Upload a real clip in headless Chromium, wait for the result, check that the browser plays
    the video, shows the timeline and table, and that the downloaded JSON has the tracks; then a
    text file uploaded as a video gives the message in the page. Saves a screenshot."""
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (Debian: apt install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            page.goto(server.url)
            page.wait_for_selector("#checkpoint option", state="attached")
            for key, value in LOW.items():
                page.fill(f"#{key}", value)
            page.set_input_files("#file", str(real_data / CLIP))
            page.click("#run")
            page.wait_for_selector("#result:not([hidden])", timeout=300_000)
            duration = page.eval_on_selector("#result-video", """video => new Promise((resolve) => {
                if (video.readyState >= 1) resolve(video.duration);
                video.addEventListener('loadedmetadata', () => resolve(video.duration));
                video.addEventListener('error', () => resolve(-1)); })""")
            assert duration > 0  # Chromium decoded the H.264 file's header: 5 frames at 5 fps
            page.wait_for_function("document.getElementById('timeline').naturalWidth > 0")
            with page.expect_download() as download:
                page.click("#download-json")
            labels = json.loads(Path(download.value.path()).read_text())
            assert download.value.suggested_filename == "mmpose_street_walking_5frames.json"
            assert labels["video"]["total_frames"] == 5 and labels["persons"]
            rows = page.locator("#tracks tbody tr").count()
            assert rows == len(labels["persons"])
            page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
            assert (tmp_path / "app.png").stat().st_size > 10_000

            text = tmp_path / "notes.mp4"
            text.write_text("not a video at all\n" * 20)
            page.set_input_files("#file", str(text))
            page.click("#run")
            page.wait_for_selector("#error:not([hidden])", timeout=60_000)
            message = page.text_content("#error")
            assert "notes.mp4" in message and "not a video this app can read" in message
            assert "Traceback" not in message and str(server.tmp) not in message
        finally:
            browser.close()


def test_the_scripted_endpoint_returns_the_vicr_json(server, real_data):
    data = (real_data / CLIP).read_bytes()
    status, labels = server.post("/api/track", LOW, {"video": ("../../escape.mp4", data)})
    assert status == 200, labels
    assert labels["video"]["name"] == "escape" and labels["video"]["total_frames"] == 5
    assert all(len(p["frames"]) >= 1 for p in labels["persons"].values())
    assert not list(server.tmp.glob("**/escape*"))  # the job's files went with the answer


def test_refusals_are_messages_not_traces(server):
    cases = [
        ({"video": ("notes.txt", b"hello\n" * 100)}, {}, 400, "notes.txt: a text file, not a video"),
        ({"video": ("notes.mp4", b"hello\n" * 100)}, {}, 400, "notes.mp4: cannot open as a video"),
        ({"video": ("empty.mp4", b"")}, {}, 400, "empty.mp4: the file is empty"),
        ({"video": ("big.mp4", os.urandom(3 * 2 ** 20))}, {}, 413, "over the 1 MB"),
        ({}, {}, 400, "no video"),
        ({"video": ("a.mp4", b"x")}, {"conf_threshold": "2"}, 400, "detection threshold must be in [0, 1], got 2.0"),
        ({"video": ("a.mp4", b"x")}, {"checkpoint": "other"}, 400, "checkpoint 'other': not one of run"),
        ({"video": ("a.mp4", b"x")}, {"track_new": "abc"}, 400, "track_new"),
        ({}, {"example": "true"}, None, None),  # the example: fine when there is one, a message when not
    ]
    for files, fields, code, fragment in cases:
        status, body = server.post("/api/jobs", fields, files)
        if code is None:
            assert status == 400 and "without an example video" in body["error"]
            continue
        assert status == code and fragment in body["error"], (files.keys(), fields, body)
        assert "Traceback" not in body["error"]
    status, body = server.get("/api/jobs/" + "0" * 32)
    assert status == 404 and body["error"].startswith("no such job")
    assert not any(p.is_dir() and any(p.iterdir()) for root in server.jobs_root() for p in root.iterdir())


def test_two_uploads_are_queued_and_a_closed_page_removes_its_files(server, real_data):
    data = (real_data / CLIP).read_bytes()
    ids = [server.post("/api/jobs", LOW, {"video": (f"clip{k}.mp4", data)})[1]["id"] for k in range(2)]
    second = server.get(f"/api/jobs/{ids[1]}")[1]
    assert second["state"] in ("queued", "running", "done")
    if second["state"] == "queued":
        assert second["ahead"] >= 1
    first, second = server.wait(ids[0]), server.wait(ids[1])
    assert first["state"] == second["state"] == "done", (first, second)
    assert first["result"]["frames"] == second["result"]["frames"] == 5
    folder = next(root / ids[0] for root in server.jobs_root())
    assert (folder / "video.mp4").is_file() and (folder / "timeline.png").is_file()
    assert server.post(f"/api/jobs/{ids[0]}/delete", {})[1] == {"removed": True}  # the page's beacon
    assert not folder.exists()
    assert server.get(f"/api/jobs/{ids[1]}")[1]["state"] == "done"  # the other user's job is untouched
