"""scripts/download_data.py: the synthetic benchmark end to end, and checks of user copies."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "download_data.py"
TINY = ["--width", "128", "--height", "96", "--length", "12", "--train", "1", "--val", "1", "--test", "0"]


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=300)


def test_synthetic_generates_then_recognises_itself(tmp_path):
    out = tmp_path / "syn"
    first = run("--dataset", "synthetic", "--out", out, "--seed", 4, *TINY)
    assert first.returncode == 0, first.stderr
    assert "train" in first.stdout and "boxes per action" in first.stdout
    meta = json.loads((out / "meta.json").read_text())
    assert meta["seed"] == 4 and meta["config"]["width"] == 128
    assert len(list((out / "train" / "SYN-train-01" / "img1").iterdir())) == 12
    again = run("--dataset", "synthetic", "--out", out, "--seed", 4, *TINY)
    assert again.returncode == 0 and "already holds this benchmark" in again.stdout
    other = run("--dataset", "synthetic", "--out", out, "--seed", 5, *TINY)
    assert other.returncode == 2 and "holds a different synthetic dataset" in other.stderr
    assert "Traceback" not in other.stderr


def test_bad_knob_is_one_line(tmp_path):
    result = run("--dataset", "synthetic", "--out", tmp_path / "x", "--actions", "standing,flying")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "flying" in result.stderr


@pytest.mark.parametrize("dataset", ["mot17", "mot20", "ava", "pets09"])
def test_missing_copy_says_where_to_download(tmp_path, dataset):
    result = run("--dataset", dataset, "--root", tmp_path / "absent")
    assert result.returncode == 2
    assert "Download it from" in result.stderr and "expected layout" in result.stderr
    assert "Traceback" not in result.stderr


def test_mot_layout_is_indexed(tmp_path):
    """A MOTChallenge-style copy (here: the synthetic train split renamed) is checked and indexed."""
    syn = tmp_path / "syn"
    assert run("--dataset", "synthetic", "--out", syn, "--seed", 0, *TINY).returncode == 0
    mot = tmp_path / "MOT17"
    (mot / "train").mkdir(parents=True)
    (syn / "train" / "SYN-train-01").rename(mot / "train" / "MOT17-02-FRCNN")
    result = run("--dataset", "mot17", "--root", mot, "--out", tmp_path / "index.json")
    assert result.returncode == 0, result.stderr
    index = json.loads((tmp_path / "index.json").read_text())
    entry = index["splits"]["train"][0]
    assert entry["frames"] == 12 and entry["frames_from"] == "img1" and entry["gt_boxes"] > 0


@pytest.mark.real_data
def test_pets09_index_and_frame_extraction(real_data, tmp_path):
    src = real_data / "mot" / "PETS09-S2L1"
    seq = tmp_path / "PETS09-S2L1"  # a writable stand-in: links to the shared files
    seq.mkdir()
    for name in ("seqinfo.ini", "gt", "det", "vtest.avi"):
        (seq / name).symlink_to(src / name)
    result = run("--dataset", "pets09", "--root", seq, "--extract-frames", "--out", tmp_path / "pets.json")
    assert result.returncode == 0, result.stderr
    assert len(list((seq / "img1").glob("*.jpg"))) == 795
    entry = json.loads((tmp_path / "pets.json").read_text())["splits"]["train"][0]
    assert entry["frames"] == 795 and entry["gt_boxes"] == 2873 and entry["identities"] == 15


def _videos(folder: Path) -> list[Path]:
    """A good video and three damaged ones whose decoding makes FFmpeg print dozens of lines."""
    import cv2
    import numpy as np
    rng = np.random.default_rng(0)
    paths = []
    for name, fourcc in (("good.avi", "MJPG"), ("cut.avi", "MJPG"), ("flipped.avi", "MJPG"), ("flipped.mp4", "mp4v")):
        path = folder / "walking" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (96, 64))
        for _ in range(60):
            writer.write(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
        writer.release()
        data = bytearray(path.read_bytes())
        if name == "cut.avi":
            data = data[: len(data) // 2]
        elif name.startswith("flipped"):
            for k in range(3000, len(data) - 3000, 501 if name.endswith("mp4") else 997):
                data[k] ^= 0xFF
        path.write_bytes(bytes(data))
        paths.append(path)
    return paths


@pytest.mark.parametrize("jobs", [1, 2])
def test_check_prints_one_line_per_bad_video_and_never_overwrites_in_quarantine(tmp_path, jobs):
    """--check printed the decoder's own messages (about 380 lines for 8 videos), and moving a bad
    video onto a file already in the quarantine overwrote that file."""
    data, bad = tmp_path / "data", tmp_path / "bad"
    _videos(data)
    (bad / "walking").mkdir(parents=True)
    (bad / "walking" / "cut.avi").write_text("the user's own file")
    result = run("--check", data, "--quarantine", bad, "--jobs", jobs)
    assert result.returncode == 1 and result.stderr == "", result.stderr[:500]
    lines = result.stdout.splitlines()
    assert lines[-1] == f"checked 4 videos under {data}: {len(lines) - 1} bad" and len(lines) >= 3
    assert f"{data / 'walking' / 'cut.avi'}: truncated: decodes" in result.stdout
    assert (f"(moved to {bad / 'walking' / 'cut-2.avi'}: cut.avi was already there)") in result.stdout
    assert (bad / "walking" / "cut.avi").read_text() == "the user's own file"
    assert (bad / "walking" / "cut-2.avi").stat().st_size > 0 and not (data / "walking" / "cut.avi").exists()
    assert (data / "walking" / "good.avi").is_file()


def test_a_quarantine_overlapping_the_checked_folder_or_unwritable_is_one_line(tmp_path):
    data = tmp_path / "data"
    _videos(data)
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    (tmp_path / "file").write_text("")
    for quarantine, message in ((data, "inside the checked folder"), (data / "bad", "inside the checked folder"),
                                (tmp_path, "the checked folder"), (tmp_path / "file", "cannot be made or written"),
                                (tmp_path / "file" / "bad", "cannot be made or written (Not a directory)"),
                                (Path("/proc/quarantine"), "cannot be made or written")):
        result = run("--check", data, "--quarantine", quarantine)
        assert result.returncode == 2 and result.stdout == "", (quarantine, result.stdout)
        assert result.stderr.startswith(f"error: --quarantine {quarantine}: ") and message in result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before  # nothing moved
    clean = tmp_path / "clean"
    clean.mkdir()
    (data / "walking" / "good.avi").rename(clean / "good.avi")
    result = run("--check", clean, "--quarantine", tmp_path / "q" / "videos")
    assert result.returncode == 0 and "checked 1 videos" in result.stdout and "0 bad" in result.stdout
    assert not (tmp_path / "q").exists()  # made to try it, removed again: nothing was moved there


def test_force_never_deletes_a_users_file_in_a_sequence_folder(tmp_path):
    out = tmp_path / "syn"
    assert run("--dataset", "synthetic", "--out", out, *TINY).returncode == 0
    mine = out / "train" / "SYN-train-01" / "gt" / "my_labels.txt"
    mine.write_text("hours of labelling")
    result = run("--dataset", "synthetic", "--out", out, "--force", "--seed", 3, *TINY)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "holds files the generator did not write (train/SYN-train-01/gt/my_labels.txt)" in result.stderr
    assert mine.read_text() == "hours of labelling" and json.loads((out / "meta.json").read_text())["seed"] == 0


def test_a_preview_with_an_unknown_extension_is_refused_before_any_work(tmp_path):
    result = run("--dataset", "synthetic", "--out", tmp_path / "syn", "--preview", tmp_path / "p.xyz", *TINY)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == (f"error: {tmp_path / 'p.xyz'}: unknown image extension '.xyz' (expected one of .jpg, "
                             ".jpeg, .png, .bmp, .webp, .tif, .tiff)\n")
    assert not (tmp_path / "syn").exists()
    result = run("--dataset", "synthetic", "--out", tmp_path / "syn", "--preview", tmp_path / "p.png", *TINY)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png", "syn"]  # no partial file left beside it
