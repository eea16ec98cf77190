"""ACT / MultiSports spatio-temporal action detection files (UCF101-24, JHMDB-21, MultiSports).

* Annotation pickle: a dict with ``labels`` (names), ``test_videos`` and optionally ``train_videos``
  (one list of video names per split: ``[[...], ...]``; a flat list is one split), ``nframes``
  (``{video: int}``), ``resolution`` (``{video: (height, width)}``) and ``gttubes``
  (``{video: {label_index: [array (n, 5) of frame, x1, y1, x2, y2]}}``, frames 1-based, xyxy
  pixels). The file is read with an unpickler that only builds plain containers and numpy arrays:
  a pickle can name any function to call, and an annotation file has no reason to.
* Detections CSV: header ``video,frame,label,score,x1,y1,x2,y2``, one box per row (frame 1-based,
  ``label`` a 0-based index into ``labels``, xyxy pixels).
"""
from __future__ import annotations

import csv
import io
import math
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import FormatError
from common.io import atomic_write_text

REQUIRED_KEYS = ("labels", "test_videos", "nframes", "resolution", "gttubes")
DETECTION_HEADER = ("video", "frame", "label", "score", "x1", "y1", "x2", "y2")

# What a pickle of containers and numpy arrays names, under numpy 1 (numpy.core) and 2 (numpy._core),
# Python 2 (__builtin__, latin-1 strings) and 3; _codecs.encode is how protocol 2 stores bytes.
_SAFE_GLOBALS = frozenset({
    *((core, name) for core in ("numpy.core.multiarray", "numpy._core.multiarray")
      for name in ("_reconstruct", "scalar")),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"), ("collections", "OrderedDict"),
    *((builtins, name) for builtins in ("builtins", "__builtin__")
      for name in ("set", "frozenset", "list", "dict", "tuple", "bytearray", "complex")),
})


@dataclass
class ActAnnotations:
    """An ACT / MultiSports annotation file. Tubes are ``(n, 5)`` float64: frame, x1, y1, x2, y2."""

    labels: list[str]
    test_videos: list[list[str]]  # one list per split
    train_videos: list[list[str]]  # one list per split ([] when the file has none)
    nframes: dict[str, int]
    resolution: dict[str, tuple[int, int]]  # (height, width)
    gttubes: dict[str, dict[int, list[np.ndarray]]]


@dataclass
class ActDetections:
    """Per-frame detections, one entry per box; ``boxes`` are ``(N, 4)`` xyxy pixels."""

    video: np.ndarray  # (N,) str (object)
    frame: np.ndarray  # (N,) int, 1-based
    label: np.ndarray  # (N,) int, 0-based index into the annotations' labels
    score: np.ndarray  # (N,) float
    boxes: np.ndarray  # (N, 4) float

    def __len__(self) -> int:
        return len(self.video)


class _ContainersOnly(pickle.Unpickler):
    """Unpickler that refuses every global outside plain containers and numpy arrays."""

    def __init__(self, fh, path: Path):
        super().__init__(fh, encoding="latin1")  # latin-1 reads Python 2 pickles (ACT's own files)
        self.path = path

    def find_class(self, module: str, name: str):
        """The allowed global, else a FormatError naming it; numpy.core is read as numpy._core on
        numpy 2 so that numpy 1 pickles load without deprecation warnings."""
        if (module, name) not in _SAFE_GLOBALS:
            raise FormatError(self.path, f"refused to load {module + '.' + name!r} "
                                         "(only plain containers and numpy arrays are read)")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core."):]
        return super().find_class(module, name)


def _load_pickle(path: Path):
    """The unpickled object; one-line FormatErrors for a missing, refused, truncated or corrupt file."""
    if not path.is_file():
        raise FormatError(path, "file not found")
    try:
        with open(path, "rb") as fh:
            return _ContainersOnly(fh, path).load()
    except FormatError:
        raise
    except Exception as exc:  # a corrupt pickle can fail in any of the opcodes' constructors
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, EOFError) or "truncated" in detail:
            raise FormatError(path, "truncated pickle (the data ends before the pickle does)") from None
        raise FormatError(path, f"corrupt pickle ({type(exc).__name__}: {detail})") from None


def _splits(path: Path, value, key: str) -> list[list[str]]:
    """``value`` as one list of video names per split (a flat list of names is one split)."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        value = [list(value)]
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(split, (list, tuple)) and all(isinstance(v, str) for v in split) for split in value):
        raise FormatError(path, f"'{key}' must be a list of video-name lists (one per split)")
    return [list(split) for split in value]


def _integer(value) -> int | None:
    """``value`` as an int when it is an integer (Python or numpy), else None."""
    return int(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else None


def _tube(path: Path, where: str, tube, nframes: int) -> np.ndarray:
    """One ground-truth tube validated: ``(n, 5)`` finite, frames integer, increasing, in 1..nframes."""
    array = np.asarray(tube) if isinstance(tube, np.ndarray) else None
    if array is None or array.dtype.kind not in "iuf" or array.ndim != 2 or array.shape[1] != 5 or not len(array):
        shape = array.shape if array is not None else type(tube).__name__
        raise FormatError(path, f"{where}: expected a numeric (n, 5) array of frame, x1, y1, x2, y2, got {shape}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise FormatError(path, f"{where}: non-finite value")
    frames = array[:, 0]
    if (frames != np.round(frames)).any() or frames.min() < 1 or frames.max() > nframes:
        raise FormatError(path, f"{where}: frames must be integers in 1..{nframes} (nframes), "
                                f"got {frames.min():g}..{frames.max():g}")
    if (np.diff(frames) <= 0).any():
        raise FormatError(path, f"{where}: frames must be strictly increasing")
    return array


def read_act_annotations(path: str | os.PathLike) -> ActAnnotations:
    """Read and validate an ACT / MultiSports annotation pickle without running anything it names."""
    path = Path(path)
    data = _load_pickle(path)
    if not isinstance(data, dict):
        raise FormatError(path, f"expected a pickled dict, got {type(data).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise FormatError(path, f"missing key {missing[0]!r} (expected {', '.join(REQUIRED_KEYS)})")
    labels = data["labels"]
    if not isinstance(labels, (list, tuple)) or not all(isinstance(x, str) for x in labels):
        raise FormatError(path, "'labels' must be a list of names")
    test_videos = _splits(path, data["test_videos"], "test_videos")
    train_videos = _splits(path, data.get("train_videos", []), "train_videos")
    for key in ("nframes", "resolution", "gttubes"):
        if not isinstance(data[key], dict):
            raise FormatError(path, f"{key!r} must be a dict keyed by video, got {type(data[key]).__name__}")
    nframes = {}
    for video, n in data["nframes"].items():
        if _integer(n) is None or n < 1:
            raise FormatError(path, f"nframes[{video!r}] must be a positive integer, got {n!r}")
        nframes[video] = int(n)
    resolution = {}
    for video, hw in data["resolution"].items():
        if (not isinstance(hw, (tuple, list)) or len(hw) != 2
                or any(_integer(v) is None or v < 1 for v in hw)):
            raise FormatError(path, f"resolution[{video!r}] must be (height, width) positive integers, got {hw!r}")
        resolution[video] = (int(hw[0]), int(hw[1]))
    gttubes = {}
    for video, per_label in data["gttubes"].items():
        if video not in nframes:
            raise FormatError(path, f"gttubes has video {video!r} that nframes lacks")
        if not isinstance(per_label, dict):
            raise FormatError(path, f"gttubes[{video!r}] must be a dict keyed by label index")
        gttubes[video] = {}
        for label, tubes in per_label.items():
            if _integer(label) is None or not 0 <= label < len(labels):
                raise FormatError(path, f"gttubes[{video!r}] has label {label!r} outside 0..{len(labels) - 1}")
            if not isinstance(tubes, (list, tuple)):
                raise FormatError(path, f"gttubes[{video!r}][{label}] must be a list of tubes")
            gttubes[video][int(label)] = [_tube(path, f"gttubes[{video!r}][{label}][{i}]", t, nframes[video])
                                          for i, t in enumerate(tubes)]
    for key, splits in (("test_videos", test_videos), ("train_videos", train_videos)):
        for video in (v for split in splits for v in split):
            if video not in gttubes or video not in nframes:
                raise FormatError(path, f"{key} lists {video!r} but gttubes or nframes lacks it")
    return ActAnnotations(list(labels), test_videos, train_videos, nframes, resolution, gttubes)


def read_act_detections(path: str | os.PathLike, annotations: ActAnnotations | None = None,
                        split: int = 0) -> ActDetections:
    """Read a detections CSV (``video,frame,label,score,x1,y1,x2,y2``). With ``annotations``, every
    row's video must be in the test videos of ``split``, its label an index into ``labels`` and its
    frame within the video's ``nframes``."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "file not found")
    videos = set(annotations.test_videos[split]) if annotations is not None else None
    rows = []
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        for line_no, cols in enumerate(csv.reader(fh), start=1):
            cols = [c.strip() for c in cols]
            if not any(cols):
                continue
            if line_no == 1:
                if tuple(c.lower() for c in cols) != DETECTION_HEADER:
                    raise FormatError(path, f"expected the header {','.join(DETECTION_HEADER)}, "
                                            f"got {','.join(cols)[:80]!r}", line_no)
                continue
            if len(cols) != len(DETECTION_HEADER):
                raise FormatError(path, f"expected {len(DETECTION_HEADER)} columns "
                                        f"({','.join(DETECTION_HEADER)}), got {len(cols)}", line_no)
            try:
                frame, label = int(cols[1]), int(cols[2])
                score, *box = (float(c) for c in cols[3:])
            except ValueError as exc:
                raise FormatError(path, f"non-numeric field ({exc})", line_no) from None
            if not cols[0]:
                raise FormatError(path, "empty video", line_no)
            if frame < 1 or label < 0:
                raise FormatError(path, f"frame must be >= 1 and label >= 0, got frame {frame}, label {label}", line_no)
            if not all(math.isfinite(v) for v in (score, *box)):
                raise FormatError(path, "non-finite score or box", line_no)
            if box[2] < box[0] or box[3] < box[1]:
                raise FormatError(path, f"box has x2 < x1 or y2 < y1: {box}", line_no)
            if videos is not None:
                if cols[0] not in videos:
                    raise FormatError(path, f"video {cols[0]!r} is not among the annotations' test videos", line_no)
                if label >= len(annotations.labels):
                    raise FormatError(path, f"label {label} is not an index into the "
                                            f"{len(annotations.labels)} labels", line_no)
                if frame > annotations.nframes[cols[0]]:
                    raise FormatError(path, f"frame {frame} is past the video's "
                                            f"{annotations.nframes[cols[0]]} frames", line_no)
            rows.append((cols[0], frame, label, score, *box))
    if not rows:
        return ActDetections(np.zeros(0, dtype=object), np.zeros(0, np.int64), np.zeros(0, np.int64),
                             np.zeros(0), np.zeros((0, 4)))
    video, frame, label, score, *box = zip(*rows)
    return ActDetections(np.array(video, dtype=object), np.array(frame, np.int64), np.array(label, np.int64),
                         np.array(score, np.float64), np.array(box, np.float64).T.copy())


def write_act_detections(path: str | os.PathLike, detections: ActDetections) -> None:
    """Write detections as the CSV :func:`read_act_detections` reads (floats written exactly)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(DETECTION_HEADER)
    for i in range(len(detections)):
        writer.writerow([detections.video[i], int(detections.frame[i]), int(detections.label[i]),
                         repr(float(detections.score[i])), *(repr(float(c)) for c in detections.boxes[i])])
    atomic_write_text(Path(path), out.getvalue())
