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
