"""AVA action-detection files.

* Annotation / result CSV: ``video_id, timestamp, x1, y1, x2, y2, action_id, person_id[, score]``;
  boxes are xyxy normalised to ``[0, 1]``, the timestamp is the keyframe's second (AVA uses 902-1798),
  one row per (box, action): a person doing three things has three rows.
* Excluded timestamps CSV: ``video_id, timestamp`` (keyframes the evaluation skips).
* Label map ``.pbtxt``: ``item { name: "..." id: N }`` blocks (mmaction2's form) or
  ``label { name: "..." label_id: N label_type: ... }`` blocks (AVA's official ``action_list``).
  Plain ``N: name`` lists and one-name-per-line lists are read by :func:`data.formats.vicr.read_label_map`.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import FormatError


@dataclass
class AvaRows:
    video_id: np.ndarray  # (N,) str
    timestamp: np.ndarray  # (N,) int, seconds
    boxes: np.ndarray  # (N, 4) float xyxy normalised to [0, 1]
    action_id: np.ndarray  # (N,) int
    person_id: np.ndarray  # (N,) int, -1 when the file has no person column
    score: np.ndarray  # (N,) float, 1 for ground truth

    def __len__(self) -> int:
        return len(self.video_id)

    def select(self, mask) -> "AvaRows":
        return AvaRows(self.video_id[mask], self.timestamp[mask], self.boxes[mask], self.action_id[mask],
                       self.person_id[mask], self.score[mask])


def read_ava_csv(path: str | os.PathLike) -> AvaRows:
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "file not found")
    vids, times, boxes, actions, persons, scores = [], [], [], [], [], []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line_no, raw in enumerate(fh, start=1):
            text = raw.strip()
            if not text:
                continue
            cols = [c.strip() for c in text.split(",")]
            if len(cols) not in (7, 8, 9):
                raise FormatError(path, "expected 7-9 columns (video_id,timestamp,x1,y1,x2,y2,action_id"
                                        f"[,person_id][,score]), got {len(cols)}", line_no)
            try:
                timestamp = int(cols[1])
                box = [float(c) for c in cols[2:6]]
                action = int(cols[6])
                person = int(cols[7]) if len(cols) > 7 and cols[7] != "" else -1
                score = float(cols[8]) if len(cols) > 8 else 1.0
            except ValueError as exc:
                raise FormatError(path, f"non-numeric field ({exc})", line_no) from None
            if not all(-1e-6 <= c <= 1 + 1e-6 for c in box):
                raise FormatError(path, f"box coordinates must be normalised to [0, 1], got {box}", line_no)
            if box[2] < box[0] or box[3] < box[1]:
                raise FormatError(path, f"box has x2 < x1 or y2 < y1: {box}", line_no)
            if not cols[0]:
                raise FormatError(path, "empty video_id", line_no)
            vids.append(cols[0]); times.append(timestamp); boxes.append(box)
            actions.append(action); persons.append(person); scores.append(score)
    return AvaRows(np.array(vids, dtype=object), np.array(times, dtype=np.int64),
                   np.array(boxes, dtype=np.float64).reshape(-1, 4), np.array(actions, dtype=np.int64),
                   np.array(persons, dtype=np.int64), np.array(scores, dtype=np.float64))


def read_ava_results(path: str | os.PathLike) -> AvaRows:
    """An AVA results CSV in the official layout ``video_id,timestamp,x1,y1,x2,y2,action_id,score``
    (normalised xyxy), the file ActivityNet's evaluator reads; the layout with a person column is
    :func:`read_ava_csv`'s."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "file not found")
    rows = []
    for line_no, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        cols = [c.strip() for c in raw.split(",")]
        if not raw.strip():
            continue
        if len(cols) != 8:
            raise FormatError(path, "expected 8 columns (video_id,timestamp,x1,y1,x2,y2,action_id,score), "
                                    f"got {len(cols)}", line_no)
        try:
            row = (cols[0], int(cols[1]), *(float(c) for c in cols[2:6]), int(cols[6]), float(cols[7]))
        except ValueError as exc:
            raise FormatError(path, f"non-numeric field ({exc})", line_no) from None
        if not cols[0] or not np.isfinite(row[2:6] + row[7:]).all():
            raise FormatError(path, "empty video_id or non-finite box or score", line_no)
        rows.append(row)
    video, timestamp, x1, y1, x2, y2, action, score = zip(*rows) if rows else ([],) * 8
    return AvaRows(np.array(video, dtype=object), np.array(timestamp, np.int64),
                   np.array([x1, y1, x2, y2], np.float64).T.reshape(-1, 4), np.array(action, np.int64),
                   np.full(len(rows), -1, np.int64), np.array(score, np.float64))


def write_ava_csv(path: str | os.PathLike, rows: AvaRows, with_score: bool = False) -> None:
    lines = []
    for i in range(len(rows)):
        cols = [str(rows.video_id[i]), f"{int(rows.timestamp[i]):04d}"] + [f"{c:.3f}" for c in rows.boxes[i]]
        cols += [str(int(rows.action_id[i])), str(int(rows.person_id[i]))]
        if with_score:
            cols.append(f"{rows.score[i]:.6f}")
        lines.append(",".join(cols))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")


def read_excluded_timestamps(path: str | os.PathLike) -> set[tuple[str, int]]:
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "file not found")
    out = set()
    for line_no, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = raw.strip()
        if not text:
            continue
        cols = [c.strip() for c in text.split(",")]
        if len(cols) != 2 or not cols[0]:
            raise FormatError(path, f"expected 2 columns (video_id,timestamp), got {len(cols)}", line_no)
        try:
            out.add((cols[0], int(cols[1])))
        except ValueError:
            raise FormatError(path, f"timestamp is not an integer: {cols[1]!r}", line_no) from None
    return out


def write_excluded_timestamps(path: str | os.PathLike, excluded: set[tuple[str, int]]) -> None:
    lines = [f"{v},{t:04d}" for v, t in sorted(excluded)]
    Path(path).write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")


_ITEM = re.compile(r"(?:item|label)\s*\{(.*?)\}", re.S)
_FIELD = re.compile(r"(\w+)\s*:\s*(\"[^\"]*\"|'[^']*'|[^\s}]+)")


def read_pbtxt_label_map(path: str | os.PathLike) -> dict[int, str]:
    """``{id: name}`` from ``item { name: "..." id: N }`` blocks (extra fields are ignored)."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "file not found")
    text = path.read_text(encoding="utf-8")
    out: dict[int, str] = {}
    for match in _ITEM.finditer(text):
        line_no = text.count("\n", 0, match.start()) + 1
        fields = {k: v.strip("\"'") for k, v in _FIELD.findall(match.group(1))}
        raw_id = fields.get("id", fields.get("label_id"))  # AVA's own list writes label { label_id: N }
        if raw_id is None or ("name" not in fields and "display_name" not in fields):
            raise FormatError(path, "item without both 'name' and 'id'", line_no)
        try:
            index = int(raw_id)
        except ValueError:
            raise FormatError(path, f"item id is not an integer: {raw_id!r}", line_no) from None
        if index in out:
            raise FormatError(path, f"duplicate item id {index}", line_no)
        out[index] = fields.get("name", fields.get("display_name"))
    leftover = _ITEM.sub("", text).strip()
    if leftover:
        line_no = text.count("\n", 0, text.find(leftover.split()[0])) + 1
        raise FormatError(path, f"unexpected text outside item blocks: {leftover.splitlines()[0][:40]!r}", line_no)
    if not out:
        raise FormatError(path, "no 'item { ... }' blocks found")
    return out


def write_pbtxt_label_map(path: str | os.PathLike, label_map: dict[int, str]) -> None:
    blocks = [f'item {{\n  name: "{name}"\n  id: {index}\n}}' for index, name in sorted(label_map.items())]
    Path(path).write_text("\n".join(blocks) + "\n", encoding="utf-8")
