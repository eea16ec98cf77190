"""A new dataset format, end to end: the worked example of docs' "Adding a dataset format".

The format: one folder per sequence, ``<seq>/boxes.csv`` (a header, then ``frame,id,x1,y1,x2,y2``
rows: MOT frames, 1-based; xyxy pixels) and ``<seq>/frames/*.jpg`` (frame k of boxes.csv is the
k-th image). What it takes: a reader, a :class:`Sequence`, and one ``register_format`` call; then
``data.sources: [{kind: csvboxes, root: ...}]`` trains on it and ``evaluate.py --gt-root`` scores
against it.
"""
from pathlib import Path

import cv2
import numpy as np
import pytest

from common.errors import FormatError, InputError
from data.formats.mot import MotRows, write_mot_file
from data.registry import GtSequence, LoadContext, register_format, unregister_format
from data.sequences import FrameAnnotations, Sequence
from data.sources import SourceConfig, cut_to_frames, load_source, read_sources
from data.video import list_images, read_image

COLUMNS = ["frame", "id", "x1", "y1", "x2", "y2"]


# ------------------------------------------------------------------------------------ the reader
def read_boxes_csv(path: Path) -> MotRows:
    """The rows of a ``boxes.csv``; a bad line is a :class:`FormatError` naming the file and line."""
    lines = path.read_text().splitlines()
    if not lines or lines[0].replace(" ", "").split(",") != COLUMNS:
        raise FormatError(path, f"expected the header {','.join(COLUMNS)}", 1)
    rows = []
    for line_no, text in enumerate(lines[1:], start=2):
        try:
            frame, track, *box = (float(v) for v in text.split(","))
        except ValueError:
            raise FormatError(path, f"expected numbers {','.join(COLUMNS)}, got {text!r}", line_no) from None
        if len(box) != 4 or frame < 1 or box[2] < box[0] or box[3] < box[1]:
            raise FormatError(path, f"expected frame >= 1 and a box x1 <= x2, y1 <= y2, got {text!r}", line_no)
        rows.append((frame, track, *box))
    table = np.array(rows, float).reshape(-1, 6)
    n = len(table)
    # MotRows is the project's one table of boxes: conf 1 (scored), class 1 (pedestrian), fully visible.
    return MotRows(table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), table[:, 2:6],
                   np.ones(n), np.ones(n, np.int64), np.ones(n))


# ---------------------------------------------------------------------------------- the sequence
class CsvBoxesSequence(Sequence):
    """One ``<seq>`` folder. Index ``i`` is 0-based, the CSV's frame ``i + 1``."""

    fps = 10.0  # assumed: the format does not record a frame rate

    def __init__(self, root: Path):
        self.root, self.name = root, root.name
        self.images = list_images(root / "frames")
        if not self.images:
            raise InputError(f"{root / 'frames'}: no images")
        self.height, self.width = read_image(self.images[0]).shape[:2]
        self.rows = read_boxes_csv(root / "boxes.csv")
        if len(self.rows) and self.rows.frame.max() > len(self.images):
            raise FormatError(root / "boxes.csv", f"frame {self.rows.frame.max()} but {len(self.images)} images")

    def __len__(self) -> int:
        return len(self.images)

    def frame(self, index: int) -> np.ndarray:
        self._check_index(index)
        return read_image(self.images[index])

    def annotations(self, index: int) -> FrameAnnotations:
        self._check_index(index)
        rows = self.rows.at_frame(index + 1)
        return FrameAnnotations(rows.boxes, rows.track_id, np.full(len(rows), -1, np.int64))


# ------------------------------------------------------------------------------ the registration
def _sequence_dirs(folder: Path) -> list[Path]:
    if (folder / "boxes.csv").is_file():
        return [folder]
    return sorted(p for p in folder.iterdir() if (p / "boxes.csv").is_file()) if folder.is_dir() else []


def load_csv_source(source: SourceConfig, ctx: LoadContext) -> list[Sequence]:
    folder = ctx.root / source.split if source.split else ctx.root
    dirs = _sequence_dirs(folder)
    if not dirs:
        raise InputError(f"{ctx.where}.root: {folder} has no <seq>/boxes.csv")
    return cut_to_frames([CsvBoxesSequence(d) for d in dirs], source, ctx.where)


def find_csv_gt(folder: Path) -> list[GtSequence]:
    found = []
    for d in _sequence_dirs(folder):
        seq = CsvBoxesSequence(d)
        found.append(GtSequence(name=seq.name, root=d, gt=seq.rows, gt_path=d / "boxes.csv", num_frames=len(seq),
                                fps=0.0, class_aware=False, size=(seq.width, seq.height)))
    return found


@pytest.fixture
def csvboxes():
    """The format registered. A researcher's module calls ``register_format`` at its import; here
    it is registered only while a test runs, as other tests expect the built-in kinds alone."""
    register_format("csvboxes", load=load_csv_source, find_gt=find_csv_gt, gt_layout="boxes.csv")
    yield
    unregister_format("csvboxes")


# ------------------------------------------------------------------------------- a tiny dataset
def _write_dataset(root: Path, names=("walk-a", "walk-b"), frames: int = 8) -> Path:
    """People as bright rectangles moving right on a grey background, 96x128 frames."""
    for s, name in enumerate(names):
        seq = root / name
        (seq / "frames").mkdir(parents=True)
        lines = [",".join(COLUMNS)]
        for f in range(1, frames + 1):
            image = np.full((96, 128, 3), 80, np.uint8)
            for track, (x, y) in enumerate([(8 + 4 * f, 20), (70 - 3 * f + 10 * s, 40)], start=1):
                image[y:y + 40, x:x + 16] = (40 * track, 200, 255 - 60 * track)
                lines.append(f"{f},{track},{x},{y},{x + 16},{y + 40}")
            cv2.imwrite(str(seq / "frames" / f"{f:06d}.jpg"), image)
        (seq / "boxes.csv").write_text("\n".join(lines) + "\n")
    return root


def test_a_registered_format_is_a_training_source(csvboxes, tmp_path):
    root = _write_dataset(tmp_path / "data")
    (source,) = read_sources([{"kind": "csvboxes", "root": str(root), "frames": [2, 7]}], "config.data.sources")
    sequences = load_source(source, clip_span=4, where="config.data.sources[0]")
    assert [(s.name, len(s)) for s in sequences] == [("walk-a", 6), ("walk-b", 6)]
    first = sequences[0].annotations(0)  # frames [2, 7]: index 0 is the CSV's frame 2
    assert first.track_ids.tolist() == [1, 2] and first.boxes[0].tolist() == [16, 20, 32, 60]
    inside = sequences[0].frame(0)[24:56, 19:29].astype(int)
    assert np.abs(inside - (40, 200, 195)).max() < 20  # the box holds its person
    with pytest.raises(InputError, match=r"config.data.sources\[0\].root: .*empty has no <seq>/boxes.csv"):
        (tmp_path / "empty").mkdir()
        load_source(SourceConfig("csvboxes", str(tmp_path / "empty")), clip_span=4, where="config.data.sources[0]")


def test_the_config_check_lists_registered_kinds(csvboxes):
    with pytest.raises(InputError) as info:
        read_sources([{"kind": "csvbox", "root": "x"}], "config.data.sources")
    assert str(info.value) == ("config.data.sources[0].kind: expected one of 'synthetic', 'mot', 'crowdhuman', "
                               "'coco', 'yolo', 'clips', 'csvboxes', got 'csvbox'")


def test_a_registered_format_trains_a_model(csvboxes, tmp_path):
    from train.run import build_trainer, compose_config
    root = _write_dataset(tmp_path / "data")
    cfg = compose_config(["data.size=[96,128]", "data.batch_size=2", "data.clip_len=4", "data.stride=1",
                          "data.train_clip_step=2", "data.num_workers=0", "trainer.epochs=1", "trainer.max_steps=2",
                          "trainer.image_every=0", f"runs_root={tmp_path / 'runs'}"])
    cfg.data.sources = [{"kind": "csvboxes", "root": str(root / "walk-a")}]
    cfg.data.val_sources = [{"kind": "csvboxes", "root": str(root / "walk-b")}]
    trainer = build_trainer(cfg, run_dir=tmp_path / "run")
    assert trainer.train_loader.dataset.num_identities == 2  # walk-a's two people
    trainer.fit()
    assert (tmp_path / "run" / "last.pt").is_file()


def test_a_registered_layout_is_evaluation_ground_truth(csvboxes, tmp_path):
    from evaluation.protocol import run_evaluation
    gt = _write_dataset(tmp_path / "gt")
    results = tmp_path / "results"
    results.mkdir()
    for name in ("walk-a", "walk-b"):
        write_mot_file(results / f"{name}.txt", read_boxes_csv(gt / name / "boxes.csv"))
    report = run_evaluation(gt_root=gt, results=[str(results)], out_dir=tmp_path / "eval", plots=False)
    for row in ("walk-a", "walk-b", "COMBINED"):
        assert report["table"][row]["mota"] == pytest.approx(100) and report["table"][row]["idf1"] == pytest.approx(100)
    # One sequence folder given as the root, and a result that swaps the two people halfway.
    swapped = read_boxes_csv(gt / "walk-a" / "boxes.csv")
    late = swapped.frame > 4
    swapped.track_id[late] = 3 - swapped.track_id[late]
    write_mot_file(results / "walk-a.txt", swapped)
    report = run_evaluation(gt_root=gt / "walk-a", results=[str(results / "walk-a.txt")], out_dir=tmp_path / "eval2",
                            plots=False)
    assert report["sequences"] == ["walk-a"] and report["table"]["walk-a"]["idf1"] < 100


def test_mot_ground_truth_is_tried_first_and_a_folder_of_neither_names_both(csvboxes, tmp_path):
    from evaluation.protocol import find_gt_sequences
    gt = _write_dataset(tmp_path / "gt", names=("walk-a",))
    (gt / "walk-a" / "gt.txt").write_text("1,5,0,0,10,10,1,1,1\n")
    assert find_gt_sequences(gt, None)["walk-a"].gt.track_id.tolist() == [5]
    (tmp_path / "none").mkdir()
    with pytest.raises(InputError, match=r"none: no sequences with gt/gt.txt or gt.txt, or boxes.csv$"):
        find_gt_sequences(tmp_path / "none", None)
