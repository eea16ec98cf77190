"""The detector specialist of issue 20: the YOLO dataset it writes holds exactly the project's
boxes (the writer needs no ultralytics), and YOLO11n trains from scratch on it and detects."""
from pathlib import Path

import numpy as np
import pytest
import yaml

from common.boxes import clip_xyxy
from common.errors import InputError
from data.sequences import FrameAnnotations, Sequence, mot_split
from data.synthetic import SyntheticConfig, generate_dataset
from data.video import read_image
from evaluation.specialists.detector import check_imgsz, detect_sequence, train_yolo, write_yolo_dataset

CONFIG = SyntheticConfig(width=160, height=96, length=10, min_people=2, max_people=3, min_distractors=0,
                         max_distractors=0, sequences={"train": 1, "val": 1, "test": 0})


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    generate_dataset(out, seed=5, config=CONFIG)
    return out


def _labels_as_xyxy(path: Path, width: int, height: int) -> np.ndarray:
    rows = np.loadtxt(path, ndmin=2).reshape(-1, 5)
    assert (rows[:, 0] == 0).all()
    cx, cy, w, h = (rows[:, 1:] * [width, height, width, height]).T
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def test_labels_hold_the_sequences_boxes(synthetic, tmp_path):
    train, val = mot_split(synthetic, "train"), mot_split(synthetic, "val")
    data_yaml = write_yolo_dataset(train, val, tmp_path / "yolo", every=2)
    spec = yaml.safe_load(data_yaml.read_text())
    assert spec["names"] == {0: "person"} and Path(spec["path"]).is_absolute()
    assert Path(spec["path"]) == (tmp_path / "yolo").resolve()
    for split, seqs in (("train", train), ("val", val)):
        (seq,) = seqs
        labels = sorted((tmp_path / "yolo" / "labels" / split).glob("*.txt"))
        images = sorted((tmp_path / "yolo" / "images" / split).glob("*.jpg"))
        assert [p.stem for p in labels] == [p.stem for p in images]
        assert len(labels) == len(range(0, len(seq), 2))  # every second frame
        for label, i in zip(labels, range(0, len(seq), 2)):
            assert label.stem.endswith(f"-{i + 1:06d}")
            boxes = clip_xyxy(seq.annotations(i).boxes, seq.width, seq.height)
            boxes = boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
            assert len(boxes) > 0
            got = _labels_as_xyxy(label, seq.width, seq.height)
            assert len(got) == len(boxes)
            np.testing.assert_allclose(got, boxes, atol=1e-3 * seq.width)
        assert read_image(images[0]).shape == (seq.height, seq.width, 3)
    with pytest.raises(InputError, match="new or empty"):
        write_yolo_dataset(train, val, tmp_path / "yolo")


class _Frames(Sequence):
    """Three flat 40x64 frames: a person beside an ignore region that overlaps them, an unlabelled
    frame, and a person half outside the frame."""

    name, width, height, fps = "toy", 64, 40, 10.0

    def __len__(self):
        return 3

    def frame(self, index):
        return np.full((self.height, self.width, 3), 30, np.uint8)

    def annotations(self, index):
        if index == 1:
            return FrameAnnotations.empty(annotated=False)
        boxes = np.array([[10.0, 5, 30, 35]]) if index == 0 else np.array([[50.0, -10, 80, 20]])
        ann = FrameAnnotations(boxes, np.array([1]), np.array([-1]))
        if index == 0:
            ann.ignore_boxes = np.array([[20.0, 10, 50, 30]])
        return ann


def test_unlabelled_frames_are_left_out_and_ignore_regions_greyed(tmp_path):
    write_yolo_dataset([_Frames()], [_Frames()], tmp_path)
    images = sorted((tmp_path / "images" / "train").glob("*.jpg"))
    assert [p.stem for p in images] == ["000-toy-000001", "000-toy-000003"]
    first = read_image(images[0]).astype(int)
    assert abs(first[20, 40] - 114).max() <= 3  # inside the ignore region only: grey
    assert abs(first[20, 25] - 30).max() <= 3  # the labelled person inside it keeps its pixels
    assert abs(first[2, 2] - 30).max() <= 3
    clipped = _labels_as_xyxy(tmp_path / "labels" / "train" / "000-toy-000003.txt", 64, 40)
    np.testing.assert_allclose(clipped, [[50, 0, 64, 20]], atol=1e-3)


def test_imgsz_must_be_the_networks_multiple_of_32():
    assert check_imgsz((96, 160)) == (96, 160)
    with pytest.raises(InputError, match="multiple of 32"):
        check_imgsz((100, 160))


def test_yolo11n_trains_from_scratch_and_detects(synthetic, tmp_path):
    pytest.importorskip("ultralytics")
    train, val = mot_split(synthetic, "train"), mot_split(synthetic, "val")
    data_yaml = write_yolo_dataset(train, val, tmp_path / "yolo")
    trained = train_yolo(data_yaml, tmp_path / "run", imgsz=(96, 160), budget_s=8, seed=0, batch=4, threads=1)
    assert trained.weights.is_file() and trained.weights.name == "best.pt"
    assert trained.imgsz == 160 and trained.epochs >= 1
    assert trained.cpu_seconds > 0 and trained.wall_seconds > 0
    (seq,) = val
    out = detect_sequence(trained.weights, seq, imgsz=(96, 160), threads=1)
    rows = out.rows
    assert out.frames == len(seq) and out.seconds_per_frame > 0
    assert len(rows) > 0  # a random-ish detector at conf 0.001 still proposes boxes
    assert rows.frame.min() >= 1 and rows.frame.max() <= len(seq)
    assert (rows.track_id == -1).all() and (rows.class_id == 1).all()
    assert ((rows.conf >= 0.001) & (rows.conf <= 1)).all()
    b = rows.boxes
    assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all() and (b[:, 2] <= seq.width).all() and (b[:, 3] <= seq.height).all()
    assert (b[:, 2] >= b[:, 0]).all() and (b[:, 3] >= b[:, 1]).all()
    # The same frames as an iterator give the same detections.
    again = detect_sequence(trained.weights, (seq.frame(i) for i in range(len(seq))), imgsz=(96, 160), threads=1)
    np.testing.assert_allclose(again.rows.boxes, rows.boxes, atol=1e-4)


def test_the_last_weights_are_kept_where_asked(synthetic, tmp_path):
    """Where the only validation frames are the scored ones (PETS09), ultralytics' best.pt would be
    chosen by them: the end-of-schedule EMA weights (last.pt) are kept instead."""
    pytest.importorskip("ultralytics")
    train, val = mot_split(synthetic, "train"), mot_split(synthetic, "val")
    data_yaml = write_yolo_dataset(train, val, tmp_path / "yolo")
    trained = train_yolo(data_yaml, tmp_path / "run", imgsz=(96, 160), budget_s=4, seed=0, batch=4, threads=1,
                         weights="last")
    assert trained.weights.is_file() and trained.weights.name == "last.pt"
    with pytest.raises(ValueError, match="'best' or 'last'"):
        train_yolo(data_yaml, tmp_path / "run2", imgsz=(96, 160), budget_s=4, weights="final")
