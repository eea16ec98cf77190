"""MOTChallenge files: ``seqinfo.ini``, ``gt.txt``, ``det.txt`` and tracker result files.

Row layouts (comma separated, one box per line, boxes in ``tlwh`` pixels; see :mod:`common.boxes`):

* ``mot16`` ground truth (MOT16/17/20): ``frame, id, left, top, width, height, conf, class, visibility``.
  ``conf`` is the *consider* flag: 0 marks a box to ignore in evaluation.
* ``mot15`` (2D MOT 2015 ground truth, detections and tracker results):
  ``frame, id, left, top, width, height, conf, x, y, z`` where x, y, z are world coordinates (-1 when
  unknown). Detections use ``id = -1`` and put the detector score in ``conf``.

``read_mot_file(..., layout="auto")`` picks ``mot16`` for 9-column files and ``mot15`` otherwise.
Rows are returned as :class:`MotRows`, boxes converted to ``xyxy``. Missing trailing columns take
their defaults (conf 1, class 1 = pedestrian, visibility 1, world -1).
"""
from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.boxes import tlwh_to_xyxy, xyxy_to_tlwh
from common.errors import FormatError
from common.io import atomic_write_text
from data.registry import GtSequence

#: MOT16/17/20 class ids (the devkit's list). Evaluation treats the distractor classes specially.
MOT_CLASSES = {
    1: "pedestrian", 2: "person_on_vehicle", 3: "car", 4: "bicycle", 5: "motorbike",
    6: "non_motorized_vehicle", 7: "static_person", 8: "distractor", 9: "occluder",
    10: "occluder_on_ground", 11: "occluder_full", 12: "reflection", 13: "crowd",
}
PEDESTRIAN = 1

LAYOUTS = ("auto", "mot15", "mot16")


@dataclass
class MotRows:
    """Rows of a MOTChallenge file, one entry per box. ``boxes`` are ``(N, 4)`` xyxy pixels."""

    frame: np.ndarray  # (N,) int, 1-based frame number
    track_id: np.ndarray  # (N,) int, -1 for detections
    boxes: np.ndarray  # (N, 4) float xyxy
    conf: np.ndarray  # (N,) float: consider flag (gt) or score (det / results)
    class_id: np.ndarray  # (N,) int
    visibility: np.ndarray  # (N,) float in [0, 1]
    world: np.ndarray = field(default=None)  # (N, 3) float, -1 when unknown
    layout: str | None = None  # "mot15" / "mot16" as read from a file (None: built in code)

    def __post_init__(self):
        n = len(self.frame)
        if self.world is None:
            self.world = np.full((n, 3), -1.0)
        for name in ("track_id", "conf", "class_id", "visibility"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"MotRows.{name} has {len(getattr(self, name))} rows, expected {n}")
        if self.boxes.shape != (n, 4) or self.world.shape != (n, 3):
            raise ValueError(f"MotRows boxes {self.boxes.shape} / world {self.world.shape} do not match {n} rows")

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def empty(cls) -> "MotRows":
        return cls(np.zeros(0, int), np.zeros(0, int), np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), np.zeros(0))

    @classmethod
    def concat(cls, parts: list["MotRows"]) -> "MotRows":
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("frame", "track_id", "boxes", "conf", "class_id", "visibility", "world")))

    def select(self, mask: np.ndarray) -> "MotRows":
        return MotRows(self.frame[mask], self.track_id[mask], self.boxes[mask], self.conf[mask],
                       self.class_id[mask], self.visibility[mask], self.world[mask], self.layout)

    def at_frame(self, frame: int) -> "MotRows":
        return self.select(self.frame == frame)

    def sorted(self) -> "MotRows":
        return self.select(np.lexsort((self.track_id, self.frame)))


def _parse_float(text: str, path, line_no: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FormatError(path, f"column '{column}' is not a number: {text.strip()!r}", line_no) from None
    if not np.isfinite(value):
        raise FormatError(path, f"column '{column}' is not finite: {text.strip()!r}", line_no)
    return value


INT_LIMIT = 2 ** 31  # frames and ids are 32-bit integers in the devkit and TrackEval


def _parse_int(text: str, path, line_no: int, column: str) -> int:
    value = _parse_float(text, path, line_no, column)
    if value != int(value):
        raise FormatError(path, f"column '{column}' must be an integer, got {text.strip()!r}", line_no)
    if not -INT_LIMIT < value < INT_LIMIT:
        raise FormatError(path, f"column '{column}' is out of range: {text.strip()!r} (at most {INT_LIMIT - 1:,})",
                          line_no)
    return int(value)


def read_mot_file(path: str | os.PathLike, layout: str = "auto", min_frame: int = 1) -> MotRows:
    """Read a MOTChallenge gt/det/result file. Raises :class:`FormatError` naming file and line."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "file not found")
    frames, ids, tlwh, conf, cls, vis, world = [], [], [], [], [], [], []
    file_layout = None
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line_no, raw in enumerate(fh, start=1):
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            cols = [c for c in (text.split(",") if "," in text else text.split())]
            if len(cols) < 6:
                raise FormatError(path, f"expected at least 6 comma-separated columns "
                                        f"(frame,id,left,top,width,height,...), got {len(cols)}", line_no)
            if file_layout is None:
                file_layout = layout if layout != "auto" else ("mot16" if len(cols) == 9 else "mot15")
            frame = _parse_int(cols[0], path, line_no, "frame")
            if frame < min_frame:
                raise FormatError(path, f"frame number must be >= {min_frame}, got {frame}", line_no)
            track = _parse_int(cols[1], path, line_no, "id")
            box = [_parse_float(c, path, line_no, name) for c, name in zip(cols[2:6], ("left", "top", "width", "height"))]
            if box[2] < 0 or box[3] < 0:
                raise FormatError(path, f"negative box size (width={box[2]}, height={box[3]})", line_no)
            c = _parse_float(cols[6], path, line_no, "conf") if len(cols) > 6 else 1.0
            if file_layout == "mot16":
                k = _parse_int(cols[7], path, line_no, "class") if len(cols) > 7 else PEDESTRIAN
                v = _parse_float(cols[8], path, line_no, "visibility") if len(cols) > 8 else 1.0
                if not -1e-6 <= v <= 1 + 1e-6:
                    raise FormatError(path, f"visibility must be in [0, 1], got {v}", line_no)
                w = [-1.0, -1.0, -1.0]
            else:
                k, v = PEDESTRIAN, 1.0
                w = [_parse_float(x, path, line_no, "world") for x in cols[7:10]] + [-1.0] * (10 - max(len(cols), 7))
            frames.append(frame); ids.append(track); tlwh.append(box); conf.append(c)
            cls.append(k); vis.append(v); world.append(w[:3])
    if not frames:
        return MotRows.empty()
    return MotRows(np.array(frames, dtype=np.int64), np.array(ids, dtype=np.int64), tlwh_to_xyxy(np.array(tlwh)),
                   np.array(conf, dtype=np.float64), np.array(cls, dtype=np.int64), np.array(vis, dtype=np.float64),
                   np.array(world, dtype=np.float64), file_layout)


def _fmt(value: float) -> str:
    """Shortest text that reads back to ``value`` at 1e-4 precision (MOT files carry 2-4 decimals)."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def write_mot_file(path: str | os.PathLike, rows: MotRows, layout: str = "mot15") -> None:
    """Write rows sorted by frame then id. ``mot16`` writes gt columns; ``mot15`` the 10-column
    layout MOTChallenge expects for detections and tracker results."""
    if layout not in ("mot15", "mot16"):
        raise ValueError(f"layout must be 'mot15' or 'mot16', got {layout!r}")
    rows = rows.sorted()
    tlwh = xyxy_to_tlwh(rows.boxes)
    lines = []
    for i in range(len(rows)):
        head = [str(int(rows.frame[i])), str(int(rows.track_id[i]))] + [_fmt(x) for x in tlwh[i]]
        if layout == "mot16":
            tail = [_fmt(rows.conf[i]), str(int(rows.class_id[i])), _fmt(rows.visibility[i])]
        else:
            tail = [_fmt(rows.conf[i])] + [_fmt(x) for x in rows.world[i]]
        lines.append(",".join(head + tail) + "\n")
    atomic_write_text(path, "".join(lines))


# --------------------------------------------------------------------------------------------- seqinfo
@dataclass
class SeqInfo:
    name: str
    frame_rate: float
    seq_length: int
    width: int
    height: int
    im_dir: str = "img1"
    im_ext: str = ".jpg"

    _KEYS = {"name": "name", "frameRate": "frame_rate", "seqLength": "seq_length", "imWidth": "width",
             "imHeight": "height", "imDir": "im_dir", "imExt": "im_ext"}


def read_seqinfo(path: str | os.PathLike) -> SeqInfo:
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "file not found")
    parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    parser.optionxform = str  # keys are camelCase in the format
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise FormatError(path, f"not a valid ini file ({exc.__class__.__name__}: {str(exc).splitlines()[0]})") from None
    if "Sequence" not in parser:
        raise FormatError(path, "missing the [Sequence] section")
    section = parser["Sequence"]
    values = {}
    for key, attr in SeqInfo._KEYS.items():
        if key not in section:
            if attr in ("im_dir", "im_ext"):
                continue
            raise FormatError(path, f"[Sequence] is missing the key '{key}'")
        text = section[key].strip()
        if attr in ("seq_length", "width", "height"):
            try:
                values[attr] = int(text)
            except ValueError:
                raise FormatError(path, f"'{key}' must be an integer, got {text!r}") from None
            if values[attr] <= 0:
                raise FormatError(path, f"'{key}' must be positive, got {text!r}")
        elif attr == "frame_rate":
            try:
                values[attr] = float(text)
            except ValueError:
                raise FormatError(path, f"'{key}' must be a number, got {text!r}") from None
            if not (np.isfinite(values[attr]) and values[attr] > 0):
                raise FormatError(path, f"'{key}' must be a positive finite number, got {text!r}")
        else:
            values[attr] = text
    return SeqInfo(**values)


def write_seqinfo(path: str | os.PathLike, info: SeqInfo) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = int(info.frame_rate) if float(info.frame_rate).is_integer() else info.frame_rate
    lines = ["[Sequence]", f"name={info.name}", f"imDir={info.im_dir}", f"frameRate={rate}",
             f"seqLength={info.seq_length}", f"imWidth={info.width}", f"imHeight={info.height}",
             f"imExt={info.im_ext}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------- action sidecar
# ``gt/actions.txt`` beside ``gt/gt.txt``: ``frame,id,action_id`` per annotated box, the action's
# name given by the dataset's ``label_map.txt`` (V-ICR format, see :mod:`data.formats.vicr`).
def read_action_sidecar(path: str | os.PathLike) -> dict[tuple[int, int], int]:
    """``{(frame, track_id): action_id}`` from a ``frame,id,action_id`` file."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "file not found")
    actions: dict[tuple[int, int], int] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line_no, raw in enumerate(fh, start=1):
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            cols = text.split(",")
            if len(cols) != 3:
                raise FormatError(path, f"expected 3 columns (frame,id,action_id), got {len(cols)}", line_no)
            frame, track, action = (_parse_int(c, path, line_no, n) for c, n in zip(cols, ("frame", "id", "action_id")))
            if frame < 1 or action < 0:
                raise FormatError(path, f"frame must be >= 1 and action_id >= 0, got {frame}, {action}", line_no)
            if (frame, track) in actions:
                raise FormatError(path, f"duplicate entry for frame {frame}, id {track}", line_no)
            actions[(frame, track)] = action
    return actions


def write_action_sidecar(path: str | os.PathLike, actions: dict[tuple[int, int], int]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{f},{t},{a}" for (f, t), a in sorted(actions.items())]
    path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")


def check_unique_ids(rows: MotRows, path: str | os.PathLike, what: str = "ground truth") -> None:
    """Each identity at most once per frame, as the MOTChallenge devkit and TrackEval require (a
    duplicate would be matched twice and inflate IDF1); a :class:`FormatError` names the first."""
    if not len(rows):
        return
    keys = np.stack([rows.frame, rows.track_id], axis=1)
    unique, counts = np.unique(keys, axis=0, return_counts=True)
    if (counts > 1).any():
        frame, track = unique[np.argmax(counts > 1)]
        raise FormatError(path, f"{what}: id {int(track)} appears {int(counts.max())} times in frame {int(frame)} "
                                "(each identity at most once per frame)")


# ------------------------------------------------------------------------- evaluation ground truth
def gt_file(seq_dir: Path) -> Path | None:
    """A sequence folder's ground truth: ``gt/gt.txt``, else ``gt.txt`` (as motmetrics' TUD data)."""
    for candidate in (seq_dir / "gt" / "gt.txt", seq_dir / "gt.txt"):
        if candidate.is_file():
            return candidate
    return None


def find_gt_sequences(folder: Path) -> list[GtSequence]:
    """The MOT layout's ground-truth sequences under ``folder``
    (``folder`` itself when it has a ground-truth file): ``gt.txt`` with ``seqinfo.ini`` (frame
    count, fps, size) and ``gt/actions.txt`` when present; ``[]`` when none has one."""
    dirs = [folder] if gt_file(folder) else sorted(p for p in folder.iterdir() if p.is_dir() and gt_file(p))
    sequences = []
    for d in dirs:
        path = gt_file(d)
        gt = read_mot_file(path)
        check_unique_ids(gt, path, "ground truth")
        info = read_seqinfo(d / "seqinfo.ini") if (d / "seqinfo.ini").is_file() else None
        name = info.name if info else d.name
        if len(gt) and info and gt.frame.max() > info.seq_length:
            raise FormatError(path, f"frame {gt.frame.max()} beyond seqLength={info.seq_length} of {d / 'seqinfo.ini'}")
        size = (info.width, info.height) if info and info.width and info.height else None
        check_boxes_fit(gt, size, path, name)
        actions_path = path.parent / "actions.txt"
        sequences.append(GtSequence(
            name=name, root=d, gt=gt, gt_path=path,
            num_frames=info.seq_length if info else int(gt.frame.max()) if len(gt) else 0,
            fps=info.frame_rate if info else 0.0, class_aware=gt.layout == "mot16",
            actions=read_action_sidecar(actions_path) if actions_path.is_file() else {},
            size=size))
    return sequences


def check_boxes_fit(rows: MotRows, size: tuple[int, int] | None, source, sequence: str) -> None:
    """A :class:`FormatError` on ``source`` when most of ``rows``' boxes start outside frames of
    ``size`` ``(width, height)``: rows written for a video of another size. A few boxes past the
    edge happen (people leaving, a tracker's estimate drifting); most of them do not."""
    if not len(rows) or size is None:
        return
    width, height = size
    outside = (rows.boxes[:, 0] >= width) | (rows.boxes[:, 1] >= height)
    if outside.mean() > 0.5:
        raise FormatError(source, f"{int(outside.sum())} of {len(rows)} boxes start outside {sequence}'s "
                                  f"{width}x{height} frames: boxes for frames of another size?")


# A result or ground truth per identity, as pseudo-labelling and action clips read it.
Tracks = dict  # track id -> [(frame index (0-based), xyxy box (4,))], frames in order


def tracks_from_rows(rows) -> Tracks:
    """MOT rows (1-based frames) -> tracks. Ground truth's ignore rows (conf 0) and non-pedestrian
    classes are left out."""
    keep = rows.track_id >= 0
    if rows.layout == "mot16":
        keep &= (rows.class_id == 1) & (rows.conf > 0)
    tracks: Tracks = {}
    for frame, track, box in zip(rows.frame[keep], rows.track_id[keep], rows.boxes[keep]):
        tracks.setdefault(int(track), []).append((int(frame) - 1, np.asarray(box, dtype=np.float64)))
    return {t: sorted(v, key=lambda fb: fb[0]) for t, v in sorted(tracks.items())}


def rows_from_tracks(tracks: Tracks) -> MotRows:
    """Tracks -> MOT rows (1-based frames, confidence 1): :func:`tracks_from_rows` undone."""
    rows = [(f + 1, t, box) for t, items in tracks.items() for f, box in items]
    n = len(rows)
    return MotRows(np.array([r[0] for r in rows], int), np.array([r[1] for r in rows], int),
                   np.array([r[2] for r in rows], float).reshape(n, 4), np.ones(n), np.ones(n, int), np.ones(n))
