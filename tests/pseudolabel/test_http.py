"""The OpenAI-compatible backend against a real local server process (a vLLM-like stub): the
request format, a server that fails and recovers, unreadable and cut-off replies, replies past the
timeout, a run killed and resumed that asks nothing twice, a dead server (before or during the
run), and a real MOTChallenge folder holding a video instead of img1/."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("openai")

from common.errors import InputError  # noqa: E402
from data.formats.vicr import LabelMap, read_vicr_video  # noqa: E402
from pseudolabel.pipeline import LabellingConfig, pseudo_label  # noqa: E402
from data.formats.mot import tracks_from_rows  # noqa: E402
from pseudolabel.tubes import find_videos, resolve_rows_file  # noqa: E402
from pseudolabel.vlm import OpenAIBackend  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
STUB = Path(__file__).with_name("vllm_stub.py")
CONFIG = LabellingConfig(frames_per_second=4, context_margin=0.25, min_pixels=32 * 32, max_pixels=64 * 64,
                         min_track_frames=10, top_k=3, refinement_iterations=0, jpeg_quality=80)
MAP = LabelMap({0: "walking", 1: "running"})


class Stub:
    def __init__(self, tmp_path, *args):
        self.log = tmp_path / f"stub-{time.monotonic_ns()}.jsonl"
        self.process = subprocess.Popen([sys.executable, str(STUB), "--log", str(self.log), *map(str, args)],
                                        stdout=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{self.process.stdout.readline().strip()}/v1"

    def requests(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []

    def stop(self):
        self.process.kill()
        self.process.wait()


@pytest.fixture
def stub_factory(tmp_path):
    started = []

    def start(*args):
        started.append(Stub(tmp_path, *args))
        return started[-1]

    yield start
    for stub in started:
        stub.stop()


def _videos(small_dataset):
    videos = find_videos(small_dataset / "train", print)[0][:1]
    return videos, lambda v: tracks_from_rows(__import__("data.formats.mot", fromlist=["read_mot_file"]).read_mot_file(
        resolve_rows_file("gt", v, "tracks")))


def test_request_format_and_a_server_that_recovers(small_dataset, tmp_path, stub_factory):
    stub = stub_factory("--fail-first", 3)
    videos, tracks_of = _videos(small_dataset)
    backend = OpenAIBackend("Qwen/Qwen3-VL-8B-Instruct", stub.url, concurrency=2, timeout=10, retries=4)
    stats = pseudo_label(videos, tracks_of, backend=backend, config=CONFIG, working_dir=tmp_path / "w",
                         output_dir=tmp_path / "o", label_map=MAP)
    log = stub.requests()
    assert [r["status"] for r in log[:3]] == [503] * 3 and stats.failed == 0 and stats.invalid == 0
    assert stats.requests == stats.tube_seconds > 5
    first = log[3]
    assert first["max_tokens"] == 256 and first["response_format"] == "json_schema"
    assert first["video_prefix"] == "data:video/jpeg;base64," and first["frames"] == 4
    media = first["media"]["video"]
    assert media["fps"] == 10.0 and media["do_sample_frames"] is False and len(media["frames_indices"]) == 4
    assert media["total_num_frames"] == 40


def test_unreadable_cut_off_and_slow_replies(small_dataset, tmp_path, stub_factory):
    stub = stub_factory("--malformed", "second 1 ", "--truncated", "second 2 ", "--slow", "second 3 ", 3)
    videos, tracks_of = _videos(small_dataset)
    backend = OpenAIBackend("m", stub.url, concurrency=8, timeout=1.0, retries=1)
    stats = pseudo_label(videos, tracks_of, backend=backend, config=CONFIG, working_dir=tmp_path / "w",
                         output_dir=tmp_path / "o", label_map=MAP)
    tubes = json.loads((tmp_path / "w" / videos[0].name / "tubes" / "metadata.json").read_text())["tubes"]
    per_second = {s: sum(t["second"] == s for t in tubes) for s in (1, 2, 3)}
    reasked = [r for r in stub.requests() if r["reask"]]
    # Every unreadable or cut-off first reply (seconds 1 and 2) was asked once more and read then.
    assert len(reasked) == per_second[1] + per_second[2] and stats.invalid == 0
    # Replies past the timeout (second 3) failed after the retries; the run went on and wrote its files.
    assert stats.failed == per_second[3] > 0
    results = json.loads((tmp_path / "w" / videos[0].name / "tubes" / "recognition_results.json").read_text())
    assert all("3" not in t["temporal_labels"] for t in results["tubes"].values())
    assert (tmp_path / "o" / f"{videos[0].name}.json").is_file()


def test_a_killed_run_resumes_without_asking_again(small_dataset, tmp_path, stub_factory):
    stub = stub_factory()
    config = tmp_path / "pl.yaml"
    config.write_text((ROOT / "config" / "pseudo_label.yaml").read_text().replace("concurrency: 16", "concurrency: 1"))
    cmd = [sys.executable, str(ROOT / "scripts" / "pseudo_label.py"), "--input-dir", small_dataset / "train",
           "--tracks", "gt", "--label-map", small_dataset / "label_map.txt", "--working-dir", tmp_path / "w",
           "--output-dir", tmp_path / "o", "--vlm", "openai", "--base-url", stub.url, "--config", config,
           "--refinement-iterations", "1"]
    first = subprocess.Popen(list(map(str, cmd)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(stub.requests()) < 12 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    before = {r["question"] for r in stub.requests()}
    done = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    after = stub.requests()[len(before):]
    repeated = [r for r in after if r["question"] in before]
    # At most the answers in flight at the kill are asked again (concurrency 1: one).
    assert len(repeated) <= 1 and len(after) > 0
    assert "cache hits" in done.stderr


def _script(*args, timeout=300):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "pseudo_label.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("server", ["nothing listens", "accepts and never answers"])
def test_a_dead_server_stops_the_run_before_any_work(small_dataset, tmp_path, server):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        if server == "accepts and never answers":
            sock.listen(64)  # the kernel completes connections; nobody reads or replies
        else:
            sock.close()
        start = time.monotonic()
        # The defaults of config/pseudo_label.yaml: timeout 120 s, 4 retries, 16 in flight.
        result = _script("--input-dir", small_dataset / "train", "--tracks", "gt", "--vlm", "openai", "--base-url", url,
                         "--working-dir", tmp_path / "w", "--output-dir", tmp_path / "o")
        elapsed = time.monotonic() - start
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert elapsed < 30, elapsed
    assert last.startswith(f"error: {url}: no OpenAI-compatible server answers (GET /models: ")
    assert not (tmp_path / "w").exists() and not (tmp_path / "o").exists()  # stopped before tracking or writing


def test_a_server_that_dies_mid_run_stops_it_and_its_answers_are_kept(small_dataset, tmp_path, stub_factory):
    stub = stub_factory("--die-after", 10)
    videos, tracks_of = _videos(small_dataset)
    backend = OpenAIBackend("m", stub.url, concurrency=1)  # the default timeout (120 s) and retries (4)
    backend.check_server()
    start = time.monotonic()
    with pytest.raises(InputError) as info:
        pseudo_label(videos, tracks_of, backend=backend, config=CONFIG, working_dir=tmp_path / "w",
                     output_dir=tmp_path / "o", label_map=MAP)
    assert time.monotonic() - start < 30
    assert str(info.value).startswith(f"{stub.url}: the server stopped answering (3 attempts in a row failed")
    assert "the 10 answers received so far are kept in" in str(info.value)
    assert not (tmp_path / "o").exists()  # no outputs written empty
    # The rerun against a live server asks only what the dead one did not answer.
    again = stub_factory()
    stats = pseudo_label(videos, tracks_of, backend=OpenAIBackend("m", again.url, concurrency=1), config=CONFIG,
                         working_dir=tmp_path / "w", output_dir=tmp_path / "o", label_map=MAP)
    assert stats.cache_hits == 10 and stats.requests == stats.tube_seconds - 10 == len(again.requests())


@pytest.mark.real_data
def test_a_motchallenge_folder_holding_a_video_is_labelled(real_data, tmp_path, stub_factory):
    pets = real_data / "mot" / "PETS09-S2L1"  # vtest.avi and seqinfo.ini, no img1/
    (tmp_path / "in").mkdir()
    os.symlink(pets, tmp_path / "in" / pets.name)
    # The ground truth's first 6 seconds (42 frames at the sequence's 7 fps) keep the test short.
    rows = [line for line in (pets / "gt" / "gt.txt").read_text().splitlines() if int(line.split(",")[0]) <= 42]
    (tmp_path / "tracks.txt").write_text("\n".join(rows) + "\n")
    stub = stub_factory()
    result = _script("--input-dir", tmp_path / "in", "--tracks", tmp_path / "tracks.txt", "--vlm", "openai",
                     "--base-url", stub.url, "--refinement-iterations", 1, "--working-dir", tmp_path / "w",
                     "--output-dir", tmp_path / "o")
    assert result.returncode == 0, result.stderr[-2000:]
    labels = read_vicr_video(tmp_path / "o" / "PETS09-S2L1.json")
    info = labels.video
    assert (info.fps, info.width, info.height, info.total_frames) == (7.0, 768, 576, 795)  # seqinfo.ini's rate
    tubes = json.loads((tmp_path / "w" / "PETS09-S2L1" / "tubes" / "metadata.json").read_text())["tubes"]
    assert len(tubes) >= 10 and max(i for t in tubes for i in t["frame_indices"]) <= 41
    asked = stub.requests()
    # Labelling and one refinement per tube second, and the grouping request (asked once more: the
    # stub's reply to it is not a grouping).
    assert len(asked) == 2 * len(tubes) + 2 and all(r["frames"] == 4 for r in asked if r["video_prefix"])
    assert {f.action for p in labels.persons.values() for f in p.frames} == {"walking"}
