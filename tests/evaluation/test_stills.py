"""Person AP on still images: the COCO AP of given detections against YOLO / COCO labelled people,
and a checkpoint scored on stills through scripts/evaluate.py."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from data.stills import StillImage, read_stills, still_kind_of
from evaluation.stills import stills_ap

ROOT = Path(__file__).resolve().parents[2]


def _people():
    # two people in 200x100 (fractions, as YOLO labels give them) and an ignore region
    return StillImage(Path("a.jpg"), np.array([[0.1, 0.1, 0.2, 0.9], [0.5, 0.2, 0.6, 0.8]]),
                      np.array([[0.8, 0.0, 1.0, 0.5]]), normalised=True)


def test_boxes_on_the_people_score_full_ap_and_misses_and_ignored_boxes_count_as_coco_counts_them():
    image = _people()
    people = np.array([[20, 10, 40, 90], [100, 20, 120, 80]], float)  # the fractions in pixels of 200x100
    perfect = {"boxes": people, "scores": np.array([0.9, 0.8]), "size": (200, 100)}
    assert stills_ap([perfect], [image])["det_AP50"] == pytest.approx(100.0)
    # A box on the ignore region, scored highest, costs nothing; the same box on background does.
    on_ignored = {**perfect, "boxes": np.r_[[[165, 5, 195, 45]], people], "scores": np.array([0.99, 0.9, 0.8])}
    assert stills_ap([on_ignored], [image])["det_AP50"] == pytest.approx(100.0)
    on_background = {**perfect, "boxes": np.r_[[[60, 50, 80, 95]], people], "scores": np.array([0.99, 0.9, 0.8])}
    assert 40 < stills_ap([on_background], [image])["det_AP50"] < 100
    half = {"boxes": people[:1], "scores": np.array([0.9]), "size": (200, 100)}
    assert stills_ap([half], [image])["det_AP50"] == pytest.approx(50.0, abs=1.0)  # recall stops at one of two
    report = stills_ap([{"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "size": (200, 100)}], [image])
    assert report["det_AP50"] == 0 and report["people"] == 2 and report["images"] == 1
    with pytest.raises(ValueError, match="1 detections for 2 images"):
        stills_ap([perfect], [image, image])


def test_the_annotation_kind_follows_the_path(tmp_path):
    assert still_kind_of(None) == "yolo" and still_kind_of(tmp_path) == "yolo"
    assert still_kind_of(tmp_path / "instances_val.json") == "coco"
    assert still_kind_of(tmp_path / "annotation_val.odgt") == "crowdhuman"
    from common.errors import InputError
    with pytest.raises(InputError, match=r"labels.csv: not still-image annotations"):
        still_kind_of(tmp_path / "labels.csv")
    with pytest.raises(InputError, match=r"needs its annotation file"):
        read_stills("coco", tmp_path)


def _yolo_folder(root: Path) -> Path:
    images, labels = root / "images" / "val", root / "labels" / "val"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    for k in range(3):
        image = np.full((120, 160, 3), 90, np.uint8)
        image[30:90, 40 + 20 * k:60 + 20 * k] = (0, 0, 255)
        cv2.imwrite(str(images / f"{k}.jpg"), image)
        (labels / f"{k}.txt").write_text(f"0 {(50 + 20 * k) / 160} 0.5 0.125 0.5\n")
    return images


def test_a_checkpoint_on_stills_prints_and_writes_its_ap(trained_checkpoint, tmp_path):
    images = _yolo_folder(tmp_path)
    out = tmp_path / "stills.json"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "evaluate.py"), "--checkpoint", str(trained_checkpoint),
                           "--stills", str(images), "--conf-threshold", "0", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"person detection on 3 still images (3 people) of {images}: AP50 " in done.stdout
    report = json.loads(out.read_text())
    assert report["images"] == 3 and report["people"] == 3 and 0 <= report["det_AP50"] <= 100
    refused = subprocess.run([sys.executable, str(ROOT / "scripts" / "evaluate.py"), "--stills", str(images)],
                             capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "--stills scores a --checkpoint" in refused.stderr
    refused = subprocess.run([sys.executable, str(ROOT / "scripts" / "evaluate.py"), "--checkpoint", str(trained_checkpoint),
                              "--stills", str(images), "--dataset", "synthetic"], capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and "--dataset cannot go with it" in refused.stderr
    missing = subprocess.run([sys.executable, str(ROOT / "scripts" / "evaluate.py"), "--checkpoint", str(trained_checkpoint),
                              "--stills", str(tmp_path / "images" / "nowhere")], capture_output=True, text=True, timeout=600)
    lines = missing.stderr.strip().splitlines()
    assert missing.returncode == 2 and len(lines) == 1 and "nowhere: YOLO image folder not found" in lines[0], missing.stderr
