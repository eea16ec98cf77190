"""The detector specialist (issue 20): YOLO11n trained from scratch with ultralytics on the frames
the joint network trains on, then run on every test frame to feed a tracker.

Three steps, each callable on its own: :func:`write_yolo_dataset` turns annotated
:class:`~data.sequences.Sequence` objects into ultralytics' detection layout, :func:`train_yolo`
trains ``yolo11n.yaml`` (random init, no download) on the CPU for a wall-time budget with
ultralytics' own default hyperparameters, and :func:`detect_sequence` returns its raw detections
as :class:`~data.formats.mot.MotRows`.

Input size. The joint network letterboxes a frame into ``(H, W)``; ultralytics trains on a square
``imgsz`` only (``rect=True`` would switch mosaic off, one of the defaults compared here). So
training uses ``imgsz = max(H, W)``: ultralytics resizes each image's long side to it, which is the
scale the network's letterbox uses when the frames have the input's aspect (as in every config
here: 320x192 -> 192x320, PETS09 768x576 -> 384x512, MOT17 1920x1080 -> 608x1088), then mosaics
into the square. Its per-epoch validation is rectangular at that long side, and
:func:`detect_sequence` predicts at ``imgsz=(H, W)`` with ``rect=False``, i.e. letterboxed to
exactly the network's input (aspect kept, centred, grey 114 padding, as :mod:`models.inputs`).

ultralytics is imported only when training or detecting (the ``bench`` extra).
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from pathlib import Path

import numpy as np

from common.boxes import clip_xyxy, xyxy_to_tlwh
from common.device import torch_threads
from common.errors import InputError
from common.io import atomic_write_text
from data.formats.mot import PEDESTRIAN, MotRows
from data.sequences import Sequence
from data.video import write_image

INSTALL = 'pip install -c constraints-bench.txt -e ".[bench,deploy]"'
MODEL_YAML = "yolo11n.yaml"
STRIDE = 32  # YOLO11n's largest stride: input sides must be multiples of it
PAD_VALUE = 114  # ultralytics' (and models.inputs') letterbox grey
# Re-encoding quality of the written frames: near-lossless next to the sources' own JPEG (90 for
# the synthetic benchmark), and JPEG decodes far faster than PNG in a CPU-bound training loop.
JPEG_QUALITY = 95
TRAIN_RUN = "yolo11n"  # the run folder under train_yolo's out_dir


def write_yolo_dataset(train_sequences: list[Sequence], val_sequences: list[Sequence], folder: str | os.PathLike,
                       every: int = 1) -> Path:
    """Write ``images/{train,val}``, ``labels/{train,val}`` (``0 cx cy w h`` normalised, one person
    a line) and ``data.yaml`` (absolute ``path``, ``names: {0: person}``) under ``folder``, which
    must be new or empty; returns the ``data.yaml`` path. Every ``every``-th frame of each sequence
    is kept, and of those only annotated ones: a frame its source leaves unlabelled (AVA between
    keyframes) written with an empty label file would teach the people in it to be background.

    Ignore regions (:attr:`~data.sequences.FrameAnnotations.ignore_boxes`: people too hidden to
    learn from, zero-marked rows) have no label in ultralytics: left as they are, the people in
    them would be background, labelled they would be positives the evaluator does not count. So
    their pixels are painted grey 114, the letterbox padding the detector learns is nothing, and it
    is taught neither way about them; pixels of a labelled person inside one stay untouched.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    folder = Path(folder).resolve()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError(f"{folder}: the YOLO dataset folder must be new or empty (stale frames would be trained on)")
    for split, sequences in (("train", train_sequences), ("val", val_sequences)):
        if _write_split(sequences, folder, split, every) == 0:
            raise InputError(f"no annotated frames in the {split} sequences "
                             f"({', '.join(s.name for s in sequences) or 'none given'})")
    import yaml  # a dependency of hydra; imported here as only this writer needs it

    data_yaml = folder / "data.yaml"
    atomic_write_text(data_yaml, yaml.safe_dump({"path": str(folder), "train": "images/train", "val": "images/val",
                                                 "names": {0: "person"}}, sort_keys=False))
    return data_yaml


def _write_split(sequences: list[Sequence], folder: Path, split: str, every: int) -> int:
    """Frames and labels of one split; returns how many frames were written."""
    images, labels = folder / "images" / split, folder / "labels" / split
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    written = 0
    for k, seq in enumerate(sequences):
        for i in range(0, len(seq), every):
            ann = seq.annotations(i)
            if not ann.annotated:
                continue
            frame = seq.frame(i)
            height, width = frame.shape[:2]
            # ultralytics drops a whole image whose labels leave [0, 1]; ground truth often does
            # (people entering the frame), so boxes are clipped to the frame and empty ones dropped.
            boxes = clip_xyxy(ann.boxes, width, height)
            boxes = boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
            if ann.ignore_boxes is not None and len(ann.ignore_boxes):
                frame = _grey_out(frame, ann.ignore_boxes, boxes)
            # The sequence's position keeps names unique when two share a name (frame ranges of one video).
            stem = f"{k:03d}-{seq.name}-{i + 1:06d}"
            write_image(images / f"{stem}.jpg", frame, jpeg_quality=JPEG_QUALITY, clean_stale=False)
            atomic_write_text(labels / f"{stem}.txt", _yolo_label_lines(boxes, width, height), clean_stale=False)
            written += 1
    return written


def _yolo_label_lines(boxes: np.ndarray, width: int, height: int) -> str:
    """``(N, 4)`` xyxy pixel boxes of a ``width`` x ``height`` frame -> ultralytics label text,
    ``0 cx cy w h`` normalised to [0, 1], one line each (empty text for no boxes)."""
    tlwh = xyxy_to_tlwh(boxes)
    scale = np.array([width, height, width, height], dtype=np.float64)
    cxcywh = np.concatenate([tlwh[:, :2] + tlwh[:, 2:] / 2, tlwh[:, 2:]], axis=1) / scale
    return "".join(f"0 {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n" for cx, cy, w, h in cxcywh)


def _grey_out(frame: np.ndarray, ignore_boxes: np.ndarray, keep_boxes: np.ndarray) -> np.ndarray:
    """A copy of ``frame`` with the ignore regions grey, except where a kept box covers them."""
    height, width = frame.shape[:2]
    mask = np.zeros((height, width), dtype=bool)
    for boxes, value in ((ignore_boxes, True), (keep_boxes, False)):
        for x1, y1, x2, y2 in np.round(clip_xyxy(boxes, width, height)).astype(int):
            mask[y1:y2, x1:x2] = value
    out = frame.copy()
    out[mask] = PAD_VALUE
    return out


@dataclass(frozen=True)
class TrainedDetector:
    """What :func:`train_yolo` produced and what it cost."""

    weights: Path  # best.pt (ultralytics' best fitness on the val split) or last.pt (the EMA at the end)
    cpu_seconds: float  # user + system CPU time of the training process (setup and final validation included)
    wall_seconds: float  # the same span in wall time
    epochs: int  # epochs started; a time-stopped last one is partial (and still validated)
    imgsz: int  # the square training side, max(H, W)
    log: Path  # ultralytics' output


def check_imgsz(imgsz: tuple[int, int]) -> tuple[int, int]:
    """``(H, W)`` as ints, or an :class:`InputError` unless both are positive multiples of 32
    (ultralytics would round them up silently, and the input would no longer be the network's)."""
    size = tuple(int(v) for v in imgsz)
    if len(size) != 2 or any(v <= 0 or v % STRIDE for v in size):
        raise InputError(f"imgsz {tuple(imgsz)}: expected (H, W), each a positive multiple of {STRIDE} (YOLO11n's stride)")
    return size


def train_yolo(dataset_yaml: str | os.PathLike, out_dir: str | os.PathLike, *, imgsz: tuple[int, int], budget_s: float,
               seed: int = 0, batch: int = 16, threads: int = 1, max_epochs: int = 10_000,
               weights: str = "best") -> TrainedDetector:
    """Train YOLO11n from scratch (``yolo11n.yaml``, random init) on the CPU for ``budget_s`` CPU
    seconds of the training process (ultralytics' ``time=``, read on a CPU clock, which replaces the
    epoch count after the first epoch by the number that fits; ``max_epochs`` only bounds that first estimate), validating on the val split
    each epoch so that ``best.pt`` is picked by ultralytics' own fitness on it (``weights="last"``:
    ``last.pt``, the EMA weights at the end, where the val frames are the scored ones). Every other
    hyperparameter is ultralytics' default: this is the detector a user would train.

    Training runs in a child process with ``threads`` CPU threads: its CPU time is measured apart
    from the caller's, and ultralytics' process-wide settings (torch threads, deterministic mode,
    seeds) stay out of the caller. ``budget_s`` is the training loop's; setup and the final
    validation of ``best.pt`` come on top and are counted in ``cpu_seconds`` / ``wall_seconds``.
    """
    height, width = check_imgsz(imgsz)
    if not budget_s > 0:
        raise ValueError(f"budget_s must be > 0, got {budget_s}")
    if weights not in ("best", "last"):
        raise ValueError(f"weights must be 'best' or 'last', got {weights!r}")
    if batch < 2 or threads < 1:
        raise ValueError(f"need batch >= 2 (BatchNorm) and threads >= 1, got batch={batch}, threads={threads}")
    dataset_yaml = Path(dataset_yaml).resolve()
    if not dataset_yaml.is_file():
        raise InputError(f"{dataset_yaml}: dataset file not found (write it with write_yolo_dataset)")
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    request = {"data": str(dataset_yaml), "project": str(out_dir), "imgsz": max(height, width), "budget_s": float(budget_s),
               "seed": int(seed), "batch": int(batch), "threads": int(threads), "max_epochs": int(max_epochs),
               "weights": weights, "result": str(out_dir / "result.json")}
    log = out_dir / "train.log"
    env = {**os.environ, "YOLO_OFFLINE": "1", "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log, "w") as out:
        # The child imports this package as the caller does (installed, or from the working directory).
        done = subprocess.run([sys.executable, "-m", "evaluation.specialists.detector", "train", json.dumps(request)],
                              stdout=out, stderr=subprocess.STDOUT, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        raise InputError(f"YOLO11n training failed (exit {done.returncode}; {log}): {lines[-1] if lines else 'no output'}")
    result = json.loads(Path(request["result"]).read_text())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return TrainedDetector(Path(result["weights"]), cpu, wall, int(result["epochs"]), request["imgsz"], log)


def _train_child(request: dict) -> None:
    """The child process of :func:`train_yolo`."""
    from unittest import mock

    import torch
    import ultralytics.utils.torch_utils as torch_utils
    from ultralytics import YOLO

    # ultralytics resets torch to min(8, cores - 1) threads when it selects the device.
    torch_utils.NUM_THREADS = request["threads"]
    torch.set_num_threads(request["threads"])
    model = YOLO(MODEL_YAML)
    # ultralytics' ``time=`` budget reads time.time(); every use of it in the trainer is a duration,
    # so a CPU clock there turns the budget into CPU seconds of this process (all its threads;
    # workers=0, no loader processes): other load on the machine takes nothing from it.
    cpu_clock = SimpleNamespace(time=time.process_time)
    # Its dataset check fetches Arial.ttf for plots on every run; plots are off and there may be
    # no network, so the check is skipped (in this process only).
    with mock.patch("ultralytics.data.utils.check_font"), mock.patch("ultralytics.engine.trainer.time", cpu_clock):
        model.train(data=request["data"], epochs=request["max_epochs"], time=request["budget_s"] / 3600,
                    imgsz=request["imgsz"], batch=request["batch"], device="cpu", workers=0, pretrained=False,
                    amp=False, project=request["project"], name=TRAIN_RUN, exist_ok=True, plots=False, val=True,
                    seed=request["seed"])
    trainer = model.trainer
    kept = Path(trainer.last if request.get("weights") == "last" else trainer.best)
    if not kept.is_file():
        raise RuntimeError(f"ultralytics wrote no {kept}")
    Path(request["result"]).write_text(json.dumps({"weights": str(kept), "epochs": trainer.epoch + 1}))


@dataclass
class SequenceDetections:
    """:func:`detect_sequence`'s output: the detections and the detector's cost per frame."""

    rows: MotRows  # frame 1-based, track_id -1, xyxy pixels of the frame, conf = score, class 1 (pedestrian)
    seconds_per_frame: float  # wall time of one predict call (preprocess, network, NMS), first frame left out
    frames: int


def detect_sequence(weights: str | os.PathLike, sequence: Sequence | Iterable[np.ndarray], *, imgsz: tuple[int, int],
                    conf: float = 0.001, iou: float = 0.7, threads: int = 1, max_det: int = 300) -> SequenceDetections:
    """Run the trained detector on every frame of ``sequence`` (a :class:`~data.sequences.Sequence`
    or BGR frames in order), letterboxed to ``imgsz`` ``(H, W)``, and return every box it keeps
    after its NMS (IoU ``iou``) above ``conf``. The default score floor is ultralytics' validation
    one, not its 0.25 for prediction: the trackers pick their own thresholds (ByteTrack's second
    stage matches boxes down to 0.1) and AP needs the low-score tail.

    Runs in this process with ``threads`` torch threads, restored afterwards.
    """
    height, width = check_imgsz(imgsz)
    weights = Path(weights)
    if not weights.is_file():
        raise InputError(f"{weights}: detector weights not found")
    os.environ.setdefault("YOLO_OFFLINE", "1")  # before ultralytics is first imported: it reads it then
    try:
        import ultralytics.utils.torch_utils as torch_utils
        from ultralytics import YOLO
    except ImportError as exc:
        raise InputError(f"the detector specialist needs ultralytics ({exc.name} is not installed): {INSTALL}") from exc
    frames = (sequence.frame(i) for i in range(len(sequence))) if isinstance(sequence, Sequence) else iter(sequence)
    model = YOLO(weights, task="detect")
    saved = torch_utils.NUM_THREADS  # ultralytics' own thread setting, read by its predictor
    parts, times = [], []
    try:
        torch_utils.NUM_THREADS = threads
        with torch_threads(threads):
            for n, frame in enumerate(frames, start=1):
                start = time.perf_counter()
                result = model.predict(frame, imgsz=[height, width], conf=conf, iou=iou, max_det=max_det, device="cpu",
                                       rect=False, verbose=False)[0]
                times.append(time.perf_counter() - start)
                boxes = result.boxes.xyxy.cpu().numpy().astype(np.float64)
                scores = result.boxes.conf.cpu().numpy().astype(np.float64)
                k = len(scores)
                parts.append(MotRows(np.full(k, n), np.full(k, -1), boxes.reshape(-1, 4), scores,
                                     np.full(k, PEDESTRIAN), np.ones(k)))
    finally:
        torch_utils.NUM_THREADS = saved
    steady = times[1:] or times  # the first call builds the predictor and fuses the model
    return SequenceDetections(MotRows.concat(parts), float(np.mean(steady)) if steady else 0.0, len(times))


if __name__ == "__main__":  # only train_yolo runs this module: python -m ... train '<request JSON>'
    _train_child(json.loads(sys.argv[2]))
